"""The built-in untrimmed benchmark for temporal action detection.

Long videos (30-45 s by default) of a textured background that never stops moving (a slow
pan that turns, over a larger mirrored texture, with fresh pixel noise in every frame), in
which actions -- objects of the motion dataset (:mod:`deepvideo.data.synthetic`) performing
one of its motion classes -- appear at random times for random lengths, and distractors
appear between them, unannotated:

* ``wander`` -- an object rendered exactly like an action's, but its frames are played in a
  random back-and-forth order (a reflected random walk over the frame index): the same
  appearance and the same parameter varying, but no consistent motion;
* ``flicker`` -- the whole frame's brightness oscillates (0.5-2 Hz, 10-25 %).

So neither motion nor an object alone means "action": only a coherent motion of a class
does.  Events (actions and distractors) never overlap and are at least ``min_gap`` seconds
apart.  An action's object is present in exactly the frames of its segment: an action
covering frames ``first .. last`` has the ground-truth segment ``[first / fps, (last + 1) /
fps]`` seconds, and every one of those frames shows the object (at least
``MIN_COVERAGE`` of its box opaque), no other frame shows it.

The action's object is cut out of :func:`~deepvideo.data.synthetic.render_video`'s clip, which
draws it over its own textured background: that background is estimated per pixel from the
frames where the pixel lies outside the object's box (inpainted where it never does), and
the object's opacity is the projection of each pixel's difference from it onto the
object's colour nearby (an estimate: on 64 px clips its opaque part overlaps the true one at
IoU ~0.96, the errors lying on the object's edge; the timing does not depend on it).

On disk (:func:`make_untrimmed_dataset`)::

    root/meta.json                               config, classes, counts, format version, complete flag
    root/annotations.json                        ActivityNet JSON ground truth (all subsets)
    root/videos/<subset>/<subset>_<n>.mp4        subset in training / validation / testing

Every video has its own random generators keyed by (seed, subset, index), so a file does not
depend on which others were written before it, and an interrupted run resumes exactly.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, NamedTuple

import cv2
import numpy as np
from tqdm import tqdm

from deepvideo.data.synthetic import MOTION_CLASSES, NOISE_STD, SyntheticConfig, render_video, textured_background
from deepvideo.detect.annotations import Segment, VideoAnnotation, write_activitynet
from deepvideo.io.atomic import atomic_write
from deepvideo.io.encode import VideoWriter

__all__ = ["DISTRACTORS", "FORMAT_VERSION", "MIN_COVERAGE", "SUBSETS", "Event", "UntrimmedConfig", "VideoPlan",
           "default_root", "make_untrimmed_dataset", "plan_dataset", "plan_video", "render_untrimmed"]

FORMAT_VERSION = 1  # bump when the planner or renderer changes: the default root changes with it
SUBSETS = ("training", "validation", "testing")  # ActivityNet's subset names
_COUNT_FIELDS = {"training": "train", "validation": "validation", "testing": "test"}
DISTRACTORS = ("wander", "flicker")
DEFAULT_CLASSES = ("right", "left", "down", "grow", "rotate_cw")

PAN_SPEED = (0.05, 0.15)     # background pan speed, frame sides per second
PAN_TURN = (0.5, 1.5)        # amplitude of the pan direction's slow swing, radians
PAN_PERIOD = (15.0, 40.0)    # period of that swing, seconds
FLICKER_RATE = (0.5, 2.0)    # flicker frequency, Hz
FLICKER_DEPTH = (0.10, 0.25)  # flicker amplitude, fraction of the brightness
MIN_COVERAGE = 0.15          # opaque (alpha >= 0.5) fraction of its box an object shows in every frame
_MATTE_FLOOR = 25.0          # RGB distance from the background under which a pixel is background
_MATTE_SOLID = 70.0          # RGB distance above which a pixel inside the box is all object
_MIN_CONTRAST = 80.0         # mean RGB distance between an object and the background behind it
_REDRAWS = 8                 # clips drawn before an object falls back to its opaque box
_STREAM_TAG = 0x756E74       # keeps these generators apart from the motion dataset's


@dataclass(frozen=True)
class UntrimmedConfig:
    """What :func:`make_untrimmed_dataset` writes.

    Args:
        classes: action classes, motion classes of :data:`~deepvideo.data.synthetic.MOTION_CLASSES`.
            The default keeps one class of each kind of motion the small 3D CNNs tell apart
            easily -- translations (right, left, down), one size change (grow) and one turn
            (rotate_cw) -- and leaves out the mirror twins (up, shrink, rotate_ccw) whose
            confusion with their twin is the motion dataset's hardest.
        train, validation, test: videos in ActivityNet's "training", "validation", "testing".
        duration: video length range in seconds (uniform).
        action_length: action (and distractor) length range in seconds (uniform).
        actions: range of actions per video (inclusive).
        min_gap: seconds between two events (actions or distractors), at least.
        distractor_prob: chance that each action brings one distractor along (dropped when
            the video has no room left for it).
        fps: frame rate; segment times are multiples of ``1 / fps``.
        size: frame side in pixels (square frames; even, >= 16).
        seed: master seed; equal configs give identical plans and frames.
        keyframe_interval: frames between keyframes of the h264 files.
        crf: libx264 quality (0 lossless .. 51); 8, as in the motion dataset, keeps the fine
            stripes and noise that carry small motions.
    """

    classes: tuple[str, ...] = DEFAULT_CLASSES
    train: int = 20
    validation: int = 5
    test: int = 10
    duration: tuple[float, float] = (30.0, 45.0)
    action_length: tuple[float, float] = (2.0, 6.0)
    actions: tuple[int, int] = (2, 4)
    min_gap: float = 1.0
    distractor_prob: float = 0.5
    fps: float = 10.0
    size: int = 64
    seed: int = 0
    keyframe_interval: int = 8
    crf: int = 8

    def __post_init__(self) -> None:
        for name in ("classes", "duration", "action_length", "actions"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if (not self.classes or len(set(self.classes)) != len(self.classes)
                or any(c not in MOTION_CLASSES for c in self.classes)):
            raise ValueError(f"classes: need distinct names from {', '.join(MOTION_CLASSES)}; got {list(self.classes)}")
        for name in _COUNT_FIELDS.values():
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: videos must be >= 0, got {getattr(self, name)}")
        if not self.fps > 0 or not math.isfinite(self.fps):
            raise ValueError(f"fps: must be a positive number, got {self.fps}")
        if self.size < 16 or self.size % 2:
            raise ValueError(f"size: frame side must be even and >= 16, got {self.size}")
        for name in ("duration", "action_length", "actions"):
            low_high = getattr(self, name)
            if len(low_high) != 2 or not 0 < low_high[0] <= low_high[1]:
                raise ValueError(f"{name}: need a range (low, high) with 0 < low <= high, got {low_high}")
        if round(self.action_length[0] * self.fps) < 2:
            raise ValueError(f"action_length: the shortest action needs >= 2 frames at {self.fps} fps, "
                             f"got {self.action_length[0]} s")
        if not self.min_gap >= 0:
            raise ValueError(f"min_gap: must be >= 0 seconds, got {self.min_gap}")
        most = self.actions[1]
        if self.frames(self.duration[0]) < most * self.frames(self.action_length[1]) + (most - 1) * self.gap_frames:
            raise ValueError(f"duration: {self.duration[0]} s cannot hold {most} actions of "
                             f"{self.action_length[1]} s {self.min_gap} s apart")
        if not 0 <= self.distractor_prob <= 1:
            raise ValueError(f"distractor_prob: must be in [0, 1], got {self.distractor_prob}")
        if self.keyframe_interval < 1:
            raise ValueError(f"keyframe_interval: must be >= 1, got {self.keyframe_interval}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf: must be in 0..51, got {self.crf}")

    def frames(self, seconds: float) -> int:
        """``seconds`` as a whole number of frames (rounded)."""
        return int(round(seconds * self.fps))

    @property
    def gap_frames(self) -> int:
        """``min_gap`` in frames (rounded up)."""
        return int(math.ceil(self.min_gap * self.fps - 1e-9))

    @property
    def counts(self) -> dict[str, int]:
        """Videos in each subset: ``{"training": n, "validation": n, "testing": n}``."""
        return {subset: getattr(self, field) for subset, field in _COUNT_FIELDS.items()}

    def to_dict(self) -> dict:
        """JSON-ready fields (tuples as lists)."""
        return json.loads(json.dumps(asdict(self)))


class Event(NamedTuple):
    """Something happening in frames ``start .. start + length - 1``: ``kind`` is "action"
    (``label`` its class) or a distractor of :data:`DISTRACTORS` (``label`` the class whose
    object wanders, None for a flicker)."""

    start: int
    length: int
    kind: str
    label: str | None


@dataclass(frozen=True)
class VideoPlan:
    """One video's timeline: ``num_frames`` frames, ``events`` in time order, and the
    generator keys (``subset``, ``index``) of its background and events."""

    name: str
    subset: str
    index: int
    num_frames: int
    events: tuple[Event, ...]

    def annotation(self, fps: float) -> VideoAnnotation:
        """Its ground truth: a segment ``[first / fps, (last + 1) / fps]`` seconds per action,
        duration ``num_frames / fps``."""
        segments = [Segment(e.start / fps, (e.start + e.length) / fps, e.label)
                    for e in self.events if e.kind == "action"]
        return VideoAnnotation(self.name, self.num_frames / fps, self.subset, segments)


def default_root(config: UntrimmedConfig | None = None) -> Path:
    """``~/.cache/deepvideo/untrimmed-<hash>``: one folder per (config, format version)."""
    config = config or UntrimmedConfig()
    key = json.dumps({"version": FORMAT_VERSION, "config": config.to_dict()}, sort_keys=True)
    return Path.home() / ".cache" / "deepvideo" / f"untrimmed-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def _rng(config: UntrimmedConfig, subset: str, index: int, *stream: int) -> np.random.Generator:
    """The generator of one stream (plan 0, background 1, noise 2, event 3 + i) of a video."""
    key = (_STREAM_TAG, SUBSETS.index(subset), index, *stream)
    return np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=key))


def plan_video(config: UntrimmedConfig, subset: str, index: int) -> VideoPlan:
    """The timeline of video ``index`` of ``subset`` (one of :data:`SUBSETS`), independent of
    every other video's: its length, and its actions and distractors in random order with
    random gaps of at least ``config.min_gap`` seconds between them."""
    if subset not in SUBSETS:
        raise ValueError(f"subset: one of {', '.join(SUBSETS)}, got {subset!r}")
    rng = _rng(config, subset, index, 0)
    num_frames = config.frames(rng.uniform(*config.duration))
    shortest, longest = config.frames(config.action_length[0]), config.frames(config.action_length[1])
    n_actions = int(rng.integers(config.actions[0], config.actions[1] + 1))
    kinds = [("action", config.classes[rng.integers(len(config.classes))]) for _ in range(n_actions)]
    for _ in range(n_actions):
        if rng.random() < config.distractor_prob:
            kind = DISTRACTORS[rng.integers(len(DISTRACTORS))]
            kinds.append((kind, config.classes[rng.integers(len(config.classes))] if kind == "wander" else None))
    lengths = rng.integers(shortest, longest + 1, len(kinds)).tolist()
    while len(kinds) > n_actions and sum(lengths) + (len(kinds) - 1) * config.gap_frames > num_frames:
        kinds.pop()  # no room for the last distractor
        lengths.pop()
    order = rng.permutation(len(kinds))
    free = num_frames - sum(lengths) - (len(kinds) - 1) * config.gap_frames
    cuts = np.sort(rng.integers(0, free + 1, len(kinds)))
    slack = np.diff(cuts, prepend=0)  # extra frames before each event, beyond the minimum gap
    events, t = [], 0
    for i, j in enumerate(order):
        t += int(slack[i]) + (config.gap_frames if i else 0)
        events.append(Event(t, lengths[j], *kinds[j]))
        t += lengths[j]
    return VideoPlan(f"{subset}_{index:04d}", subset, index, num_frames, tuple(events))


def plan_dataset(config: UntrimmedConfig) -> list[VideoPlan]:
    """Every video's plan, subset by subset."""
    return [plan_video(config, subset, i) for subset, n in config.counts.items() for i in range(n)]


def _box_mask(boxes: np.ndarray, side: int, margin: int = 1) -> np.ndarray:
    """``(T, H, W)`` bool: the pixels touched by each box ``(x, y, w, h)`` (grown by ``margin``)."""
    grid = np.arange(side)
    x0, y0 = boxes[:, 0, None] - margin, boxes[:, 1, None] - margin
    x1, y1 = x0 + boxes[:, 2, None] + 2 * margin, y0 + boxes[:, 3, None] + 2 * margin
    cols = (grid + 1 > x0) & (grid < x1)  # pixel i covers [i, i + 1]
    rows = (grid + 1 > y0) & (grid < y1)
    return rows[:, :, None] & cols[:, None, :]


def _matte(frames: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The object's opacity ``(T, H, W)`` float32 in [0, 1] in a clip ``(T, H, W, 3)`` uint8 of
    ``render_video`` with its ``boxes`` (see the module docstring)."""
    side = frames.shape[1]
    inside = _box_mask(boxes, side)
    pixels = frames.astype(np.float32)
    seen = (~inside).sum(0)
    backdrop = (pixels * ~inside[..., None]).sum(0) / np.maximum(seen, 1)[..., None]
    backdrop = np.clip(np.rint(backdrop), 0, 255).astype(np.uint8)
    if not seen.all():  # pixels inside the box in every frame: fill from around them
        backdrop = cv2.inpaint(backdrop, (seen == 0).astype(np.uint8), 3, cv2.INPAINT_TELEA)
    diff = pixels - backdrop.astype(np.float32)
    distance = np.linalg.norm(diff, axis=-1)
    alpha = np.zeros(distance.shape, np.float32)
    window = np.ones((5, 5), np.float32)
    for t in range(len(frames)):
        solid = ((distance[t] >= _MATTE_SOLID) & inside[t]).astype(np.float32)
        near = cv2.filter2D(solid, -1, window, borderType=cv2.BORDER_CONSTANT)
        colour = cv2.filter2D(diff[t] * solid[..., None], -1, window, borderType=cv2.BORDER_CONSTANT)
        colour /= np.maximum(near, 1e-6)[..., None]  # the object's colour nearby, less the background
        share = (diff[t] * colour).sum(-1) / np.maximum((colour * colour).sum(-1), 1e-6)
        a = np.where(solid > 0, 1.0, np.where(near > 0, np.clip(share, 0, 1), 0.0))
        alpha[t] = np.where((distance[t] >= _MATTE_FLOOR) & inside[t], a, 0.0)
    return alpha


def _object_clip(label: str, rng: np.random.Generator, length: int, backdrop: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """An object of motion class ``label`` over ``length`` frames, cut out of ``render_video``:
    its pixels ``(T, H, W, 3)`` float32 and opacity ``(T, H, W, 1)``.  Clips are drawn until
    the object is visible (``MIN_COVERAGE``) in every frame and stands out from ``backdrop``
    ``(H, W, 3)`` (its colours were chosen against another background)."""
    side = backdrop.shape[0]
    config = SyntheticConfig(num_frames=length, size=side)
    for _ in range(_REDRAWS):
        frames, boxes = render_video(label, rng, config)
        alpha = _matte(frames, boxes)
        opaque = alpha >= 0.5
        visible = bool((opaque.sum(axis=(1, 2)) >= MIN_COVERAGE * np.maximum(boxes[:, 2] * boxes[:, 3], 1)).all())
        ends = (0, length - 1)
        distance = np.linalg.norm(frames[list(ends)].astype(np.float32) - backdrop, axis=-1)
        if visible and min(distance[i][opaque[t]].mean() for i, t in enumerate(ends)) >= _MIN_CONTRAST:
            break
    else:  # keep the last clip; should its object fade somewhere, its box stays opaque there
        if not visible:
            alpha = np.maximum(alpha, _box_mask(boxes, side, margin=0))
    return frames.astype(np.float32), alpha[..., None]


class _Background:
    """The moving background: a window of ``side`` pixels panning over a mirrored texture."""

    def __init__(self, config: UntrimmedConfig, rng: np.random.Generator, num_frames: int) -> None:
        side = config.size
        tile = textured_background(rng, 2 * side)
        self.period = 2 * tile.shape[0]  # mirrored tiling repeats every two tiles
        # offsets lie in [0, period): the window reaches period + side + 1 pixels at most
        self.texture = np.pad(tile, ((0, 3 * side + 2),) * 2 + ((0, 0),), mode="symmetric")
        self.side = side
        t = np.arange(num_frames) / config.fps
        speed = rng.uniform(*PAN_SPEED) * side / config.fps  # pixels per frame
        heading = rng.uniform(0, 2 * np.pi) + rng.uniform(*PAN_TURN) * np.sin(
            2 * np.pi * t / rng.uniform(*PAN_PERIOD) + rng.uniform(0, 2 * np.pi))
        steps = speed * np.stack([np.cos(heading), np.sin(heading)], axis=1)
        self.offsets = np.cumsum(steps, axis=0) + rng.uniform(0, self.period, 2)

    def frame(self, t: int) -> np.ndarray:
        """Frame ``t`` of the background, ``(H, W, 3)`` float32 (no noise)."""
        x, y = np.mod(self.offsets[t], self.period)
        shift = np.float32([[1, 0, -x], [0, 1, -y]])
        return cv2.warpAffine(self.texture, shift, (self.side, self.side), flags=cv2.INTER_LINEAR)


def _wander(rng: np.random.Generator, length: int) -> np.ndarray:
    """Frame indices ``(length,)`` of a reflected random walk over ``0 .. length - 1``."""
    walk = rng.integers(0, length) + np.cumsum(rng.integers(-2, 3, length))
    walk = np.mod(walk, 2 * (length - 1))
    return np.where(walk < length, walk, 2 * (length - 1) - walk)


def render_untrimmed(plan: VideoPlan, config: UntrimmedConfig, actions: bool = True,
                     distractors: bool = True) -> Iterator[np.ndarray]:
    """The frames of ``plan``, one ``(H, W, 3)`` uint8 RGB array at a time; only one event's
    clip is held in memory.  ``actions`` / ``distractors`` False leave those events out
    (the background and its noise stay the same), which shows where each one is."""
    background = _Background(config, _rng(config, plan.subset, plan.index, 1), plan.num_frames)
    noise = _rng(config, plan.subset, plan.index, 2)
    starts = {e.start: (i, e) for i, e in enumerate(plan.events)}
    t = 0
    while t < plan.num_frames:
        i, event = starts.get(t, (None, None))
        shown = event is not None and (actions if event.kind == "action" else distractors)
        length = event.length if event is not None else 1
        pixels = alpha = gain = None
        if shown:
            rng = _rng(config, plan.subset, plan.index, 3 + i)
            if event.kind == "flicker":
                time = np.arange(length) / config.fps
                gain = 1 + rng.uniform(*FLICKER_DEPTH) * np.sin(
                    2 * np.pi * rng.uniform(*FLICKER_RATE) * time + rng.uniform(0, 2 * np.pi))
            else:
                pixels, alpha = _object_clip(event.label, rng, length, background.frame(t))
                if event.kind == "wander":
                    order = _wander(rng, length)
                    pixels, alpha = pixels[order], alpha[order]
        for k in range(length):
            frame = background.frame(t + k)
            frame += NOISE_STD * noise.standard_normal(frame.shape, dtype=np.float32)
            if alpha is not None:
                frame += alpha[k] * (pixels[k] - frame)
            if gain is not None:
                frame *= gain[k]
            yield np.clip(np.rint(frame), 0, 255).astype(np.uint8)
        t += length


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode()))


def _stored_meta(root: Path, config: UntrimmedConfig) -> dict | None:
    """``root/meta.json`` (None when absent); ``ValueError`` when it holds another dataset."""
    path = root / "meta.json"
    if not path.is_file():
        if root.is_dir() and any(root.iterdir()):
            raise ValueError(f"{root}: folder is not empty and has no meta.json; choose an empty or new root "
                             f"for the untrimmed benchmark")
        return None
    try:
        meta = json.loads(path.read_text())
        stored, version = dict(meta["config"]), meta["version"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: unreadable benchmark metadata ({exc}); delete the folder to regenerate it") from None
    wanted = config.to_dict()
    if meta.get("format") != "deepvideo-untrimmed" or version != FORMAT_VERSION or stored != wanted:
        changed = [f"{k} {stored.get(k)!r} != {v!r}" for k, v in wanted.items() if stored.get(k) != v]
        reason = "; ".join(changed) or f"format {meta.get('format')!r} version {version} != {FORMAT_VERSION}"
        raise ValueError(f"{path}: the folder holds a dataset made with another config ({reason}); "
                         f"use another root or delete the folder")
    return meta


def _video_path(root: Path, plan: VideoPlan) -> Path:
    return root / "videos" / plan.subset / f"{plan.name}.mp4"


def _write_video(root: Path, plan: VideoPlan, config: UntrimmedConfig) -> None:
    """Encode one video under ``root/.partial`` frame by frame, then rename it into place."""
    partial = root / ".partial" / f"{plan.name}.mp4"
    # one encoder thread: the same frames rendered and encoded alike on every machine
    with VideoWriter(partial, config.fps, config.size, config.size, config.keyframe_interval, crf=config.crf,
                     threads=1) as writer:
        for frame in render_untrimmed(plan, config):
            writer.write(frame)
    target = _video_path(root, plan)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(partial, target)


def make_untrimmed_dataset(root: str | os.PathLike | None = None, config: UntrimmedConfig | None = None,
                           progress: bool = True, workers: int = 2) -> Path:
    """Write the untrimmed benchmark once and return its root (layout in the module docstring).

    ``root`` defaults to :func:`default_root` (a folder per config).  When ``root/meta.json``
    holds the same config and every file exists, nothing is written.  A root holding another
    config (or a non-empty folder without meta.json) raises ``ValueError``.  Videos are
    encoded under ``root/.partial`` and renamed into place, so an interrupted run leaves no
    corrupt file and the next call writes only what is missing.  ``workers`` threads write
    videos side by side (the frames do not depend on it).
    """
    config = config or UntrimmedConfig()
    root = Path(root).expanduser() if root is not None else default_root(config)
    meta = _stored_meta(root, config)
    plans = plan_dataset(config)
    annotations = root / "annotations.json"
    if (meta is not None and meta.get("complete") and annotations.is_file()
            and all(_video_path(root, plan).is_file() for plan in plans)):
        return root
    meta = {"format": "deepvideo-untrimmed", "version": FORMAT_VERSION, "config": config.to_dict(),
            "classes": list(config.classes), "videos": config.counts, "annotations": "annotations.json",
            "complete": False}
    root.mkdir(parents=True, exist_ok=True)
    _write_text(root / "meta.json", json.dumps(meta, indent=2))
    shutil.rmtree(root / ".partial", ignore_errors=True)  # leftovers of an interrupted run
    todo = [plan for plan in plans if not _video_path(root, plan).is_file()]
    pool = ThreadPoolExecutor(max(1, workers))  # encoding and OpenCV release the GIL
    try:
        done = pool.map(lambda plan: _write_video(root, plan, config), todo)
        for _ in tqdm(done, total=len(todo), desc=f"untrimmed benchmark {root.name}", unit="video",
                      disable=not progress):
            pass
    finally:  # on an error or Ctrl-C, finish only the videos already being written
        pool.shutdown(cancel_futures=True)
    write_activitynet(annotations, {plan.name: plan.annotation(config.fps) for plan in plans},
                      version=f"deepvideo-untrimmed {FORMAT_VERSION}")
    shutil.rmtree(root / ".partial", ignore_errors=True)
    _write_text(root / "meta.json", json.dumps({**meta, "complete": True}, indent=2))
    return root
