"""Captioned videos for the dual encoder: the caption file format, the dataset of (clip,
caption) pairs that CLIP-style training draws from (Radford et al., ICML 2021), and a
captioned variant of the built-in motion dataset.

Caption file (``.tsv``, UTF-8): one ``video<TAB>caption`` line per caption; a video may have
several lines (several captions); blank lines and lines starting with ``#`` are skipped.
``video`` is a path relative to the data folder (or absolute)::

    train/left/clip_0001.mp4	a small red triangle moving left on a noisy background
    train/left/clip_0001.mp4	the red triangle is sliding to the left

The captioned motion dataset (:func:`make_captioned_motion_dataset`) renders objects of
:mod:`deepvideo.data.synthetic` with a chosen shape and motion and describes what is seen and
how it moves: size, colours, shape and motion, in several phrasings, specific ("a small red and
blue triangle moving left on a noisy background", "the red and blue triangle is sliding to the
left") or not ("something moving left").  The object is striped in two colours, named in a fixed
order ("red and blue" whichever is which), or one name when both get the same.  The first
caption of every video is its canonical one, ``a {size} {colours} {shape} moving {direction} on
a noisy background``, with ``direction`` one of
:data:`DIRECTIONS` (right, left, down, up, clockwise, anticlockwise, closer for a growing
object, away for a shrinking one).  Chosen (shape, motion) combinations can be held out of
its train and val splits entirely: its test split then holds only them, which measures
compositional generalisation.  On disk::

    root/meta.json                           config, format version, complete flag
    root/<split>/<motion>/<n>_<shape>.mp4    a folder dataset of the motion classes
    root/captions/<split>.tsv                captions, paths relative to root
    root/annotations.csv                     video,split,shape,motion,colours,size

Every video has its own generator keyed by (seed, split, index); files are encoded under
``root/.partial`` and renamed into place, so an interrupted run resumes exactly.
"""

from __future__ import annotations

import colorsys
import csv
import io
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from deepvideo.data.datasets import VideoDataset
from deepvideo.data.sampling import RandomClipSampler, UniformClipSampler
from deepvideo.data.synthetic import MOTION_CLASSES, SHAPES, RenderedVideo, SyntheticConfig, render_object
from deepvideo.data.transforms import build_transform
from deepvideo.io import write_video
from deepvideo.io.atomic import atomic_write_text
from deepvideo.io.text import read_text
from deepvideo.language.model import ClipSpec

__all__ = ["CAPTION_FORMAT_VERSION", "DIRECTIONS", "CaptionedConfig", "CaptionedVideos", "canonical_caption",
           "describe", "make_captioned_motion_dataset", "parse_captions"]

CAPTION_FORMAT_VERSION = 1
DIRECTIONS = {"right": "right", "left": "left", "down": "down", "up": "up", "rotate_cw": "clockwise",
              "rotate_ccw": "anticlockwise", "grow": "closer", "shrink": "away"}
_MOTION_PHRASES = {
    "right": ("sliding to the right", "going right"), "left": ("sliding to the left", "going left"),
    "down": ("falling", "going down"), "up": ("rising", "going up"),
    "rotate_cw": ("turning clockwise", "spinning clockwise"),
    "rotate_ccw": ("turning anticlockwise", "spinning anticlockwise"),
    "grow": ("growing", "getting bigger"), "shrink": ("shrinking", "getting smaller"),
}
_SHAPE_WORDS = {"ell": "L shape", "pacman": "pacman"}
_TEMPLATES = ("the {colours} {shape} is {motion}", "{motion}: a {size} {colours} {shape}",
              "a video of a {colours} {shape} {motion}", "a {size} {shape} {motion}", "a shape {motion}",
              "something {motion}", "a video of an object {motion}")
_COLOURS = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink", "white", "grey", "black")
_SPLITS = ("train", "val", "test")
_STREAM_TAG = 0x636C6970  # keeps these generators apart from the motion dataset's


def parse_captions(path: str | os.PathLike, root: str | os.PathLike) -> dict[Path, list[str]]:
    """The captions of a ``video<TAB>caption`` file: ``{video path: [captions]}`` in file order,
    paths resolved against ``root``.  ``ValueError`` naming the file (and line) for a line
    without a tab or with an empty video or caption, for a file without captions, and for videos
    that do not exist (how many, and the first few)."""
    path, root = Path(path), Path(root)
    if not path.is_file():
        raise ValueError(f"caption file {path} does not exist")
    captions: dict[Path, list[str]] = {}
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        video, tab, caption = line.partition("\t")
        if not tab or not video.strip() or not caption.strip():
            raise ValueError(f"{path}:{number}: expected 'video<TAB>caption', got {line[:60]!r}")
        captions.setdefault(root / video.strip(), []).append(caption.strip())
    if not captions:
        raise ValueError(f"{path}: no captions (expected 'video<TAB>caption' lines)")
    missing = [video for video in captions if not video.exists()]
    if missing:
        shown = ", ".join(str(video) for video in missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise ValueError(f"{path}: {len(missing)} of the {len(captions)} videos it names are missing under "
                         f"{root} ({shown})")
    return captions


class CaptionedVideos(VideoDataset):
    """(clip, caption tokens, video index) items: clip ``(3, T, H, W)`` float32, tokens ``(L,)``
    int64.  ``tokens[i]`` ``(K_i, L)`` are video ``i``'s captions tokenised; training
    (``train=True``) draws a random clip and one of its captions, evaluation the centre clip
    and the first caption.  Unreadable videos are skipped, replaced and counted as in
    :class:`~deepvideo.data.datasets.VideoDataset`."""

    def __init__(self, paths: Sequence[Path], tokens: Sequence[torch.Tensor], spec: ClipSpec, train: bool,
                 seed: int = 0) -> None:
        sampler = (RandomClipSampler(spec.clip_len, spec.frame_stride) if train
                   else UniformClipSampler(spec.clip_len, 1, spec.frame_stride))
        transform = build_transform(train, spec.size, spec.resize, spec.mean, spec.std, flip=False)
        super().__init__([(path, 0) for path in paths], ["video"], sampler, transform, seed=seed)
        self.tokens, self.train = list(tokens), train

    def make_item(self, clips: list[np.ndarray], target: int, rng: np.random.Generator) -> tuple[Any, Any, int]:
        options = self.tokens[target]
        choice = int(rng.integers(len(options))) if self.train else 0
        return self.transform(clips[0], rng), options[choice], target


# ----------------------------------------------------------------------------- the captioned motion dataset
def colour_name(rgb: Sequence[float]) -> str:
    """A basic colour word for an RGB colour in 0..255: black, grey, white, or a hue."""
    hue, saturation, value = colorsys.rgb_to_hsv(*(np.asarray(rgb, dtype=float) / 255))
    if value < 0.3:
        return "black"
    if saturation < 0.3:
        return "white" if value > 0.8 else "grey"
    degrees = hue * 360
    for limit, name in ((15, "red"), (45, "orange"), (70, "yellow"), (165, "green"), (200, "cyan"),
                        (260, "blue"), (290, "purple"), (340, "pink")):
        if degrees < limit:
            return name
    return "red"


def size_word(diameter: float) -> str:
    """small, medium or large for an object diameter (a fraction of the frame side, 0.22-0.5)."""
    return "small" if diameter < 0.31 else "large" if diameter > 0.41 else "medium"


def describe(video: RenderedVideo, motion: str) -> dict[str, str]:
    """The words of a rendered object: size, colours, shape, motion class, direction."""
    names = sorted({colour_name(colour) for colour in video.colours}, key=_COLOURS.index)
    return {"size": size_word(video.diameter), "colours": " and ".join(names),
            "shape": _SHAPE_WORDS.get(video.shape, video.shape),
            "motion": motion, "direction": DIRECTIONS[motion]}


def canonical_caption(words: dict[str, str]) -> str:
    """``a {size} {colours} {shape} moving {direction} on a noisy background``."""
    return f"a {words['size']} {words['colours']} {words['shape']} moving {words['direction']} on a noisy background"


def captions_of(words: dict[str, str], rng: np.random.Generator, count: int) -> list[str]:
    """The canonical caption, then ``count - 1`` others in distinct phrasings (random)."""
    phrases = (f"moving {words['direction']}", *_MOTION_PHRASES[words["motion"]])
    captions = [canonical_caption(words)]
    for template in rng.permutation(len(_TEMPLATES))[:count - 1]:
        motion = phrases[int(rng.integers(len(phrases)))]
        captions.append(_TEMPLATES[template].format(**{**words, "motion": motion}))
    return captions


@dataclass(frozen=True)
class CaptionedConfig:
    """What :func:`make_captioned_motion_dataset` writes: ``train``, ``val``, ``test`` videos
    in each split (every combination once per round, in a seeded order), ``holdout`` (shape, motion) pairs kept out of
    train and val (the test split then holds only them; without any, every combination),
    ``num_frames`` frames of ``size`` pixels, ``captions`` per video (1 to 8), ``seed``."""

    train: int = 480
    val: int = 48
    test: int = 64
    holdout: tuple[tuple[str, str], ...] = ()
    num_frames: int = 8
    size: int = 32
    captions: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "holdout", tuple(tuple(pair) for pair in self.holdout))
        for shape, motion in self.holdout:
            if shape not in SHAPES or motion not in MOTION_CLASSES:
                raise ValueError(f"holdout: ({shape!r}, {motion!r}) is not a (shape, motion) pair of "
                                 f"{', '.join(SHAPES)} and {', '.join(MOTION_CLASSES)}")
        if len(set(self.holdout)) == len(SHAPES) * len(MOTION_CLASSES):
            raise ValueError("holdout: every combination is held out, nothing is left to train on")
        if not 1 <= self.captions <= len(_TEMPLATES) + 1:
            raise ValueError(f"captions: 1 to {len(_TEMPLATES) + 1} per video, got {self.captions}")
        for name in _SPLITS:
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: videos must be >= 0, got {getattr(self, name)}")
        SyntheticConfig(num_frames=self.num_frames, size=self.size)  # checks frames and size

    def combinations(self, split: str) -> list[tuple[str, str]]:
        """The (shape, motion) pairs of ``split``: the held-out ones for test (all without any)."""
        every = [(shape, motion) for motion in MOTION_CLASSES for shape in SHAPES]
        if split == "test" and self.holdout:
            return [pair for pair in every if pair in self.holdout]
        return [pair for pair in every if pair not in self.holdout]

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))


def _render(config: CaptionedConfig, split: str, index: int) -> tuple[str, RenderedVideo, list[str], dict]:
    """Video ``index`` of ``split``: its relative path, rendering, captions and words."""
    combos = config.combinations(split)
    rounds = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(_STREAM_TAG, index // len(combos))))
    shape, motion = combos[rounds.permutation(len(combos))[index % len(combos)]]  # each combination once a round
    key = (_STREAM_TAG, _SPLITS.index(split), index)
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=key))
    video = render_object(motion, rng, SyntheticConfig(num_frames=config.num_frames, size=config.size), shape=shape)
    words = describe(video, motion)
    return f"{split}/{motion}/{index:05d}_{shape}.mp4", video, captions_of(words, rng, config.captions), words


def make_captioned_motion_dataset(root: str | os.PathLike, config: CaptionedConfig | None = None,
                                  progress: bool = True) -> Path:
    """Write the captioned motion dataset into ``root`` (see the module docstring) and return it.
    Nothing is rewritten when ``root`` already holds it complete; ``ValueError`` when ``root``
    holds another config or is a non-empty folder without ``meta.json``."""
    config = config or CaptionedConfig()
    root = Path(root).expanduser()
    meta_path = root / "meta.json"
    meta = {"format": "deepvideo-captioned-motion", "version": CAPTION_FORMAT_VERSION, "config": config.to_dict()}
    if meta_path.is_file():
        try:
            stored = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{meta_path}: unreadable dataset metadata ({exc}); delete the folder") from None
        if {k: stored.get(k) for k in meta} != meta:
            raise ValueError(f"{meta_path}: the dataset there was made with another config; use another root "
                             f"or delete the folder")
        if stored.get("complete"):
            return root
    elif root.is_dir() and any(root.iterdir()):
        raise ValueError(f"{root}: folder is not empty and has no meta.json; choose an empty or new root")
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(meta_path, json.dumps({**meta, "complete": False}, indent=2))
    partial = root / ".partial"
    partial.mkdir(exist_ok=True)
    captions: dict[str, list[tuple[str, str]]] = {split: [] for split in _SPLITS}
    rows = []
    jobs = [(split, i) for split in _SPLITS for i in range(getattr(config, split))]
    for split, index in tqdm(jobs, desc=f"captioned motion {root.name}", unit="video", disable=not progress):
        rel, video, texts, words = _render(config, split, index)
        if not (root / rel).is_file():
            tmp = write_video(partial / rel.replace("/", "_"), video.frames, 10.0, keyframe_interval=8, crf=8,
                              threads=1)
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, root / rel)
        captions[split] += [(rel, text) for text in texts]
        rows.append((rel, split, words["shape"], words["motion"], words["colours"], words["size"]))
    for split, lines in captions.items():
        atomic_write_text(root / "captions" / f"{split}.tsv", "".join(f"{rel}\t{text}\n" for rel, text in lines))
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(("video", "split", "shape", "motion", "colours", "size"))
    writer.writerows(rows)
    atomic_write_text(root / "annotations.csv", table.getvalue())
    shutil.rmtree(partial, ignore_errors=True)
    atomic_write_text(meta_path, json.dumps({**meta, "complete": True}, indent=2))
    return root
