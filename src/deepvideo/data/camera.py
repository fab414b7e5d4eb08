"""A labelled real-footage dataset of camera motions: real content, synthetic camera.

Each clip is a square window cropped from ``num_frames`` consecutive frames (every
``stride``-th) of a real source video, the window moving over the clip as a virtual camera
would; the class is that motion.  Classes, in label order:

* ``pan_left`` / ``pan_right``: the camera pans left / right, i.e. the window's centre
  moves left / right in the source frame, so the content appears to move right / left.
* ``pan_up`` / ``pan_down``: the window's centre moves up / down (content moves down / up).
* ``zoom_in`` / ``zoom_out``: the window shrinks / grows about a fixed centre, so the
  content grows / shrinks.

Clips do not straddle a shot cut (with ``avoid_cuts``): a first pass decodes each source
once into 32x32 grey thumbnails and marks a jump between consecutive frames whose mean
absolute difference exceeds both ``CUT_MIN_DIFF`` grey levels and ``CUT_MEDIAN_FACTOR``
times the source's median; clips start only where their span holds no jump.  Besides cuts
this catches whip pans and the edges of corrupt stretches, not a frozen stretch inside one:
mmaction2__demo.mp4's frames 229-267 are a corrupt, nearly still image in the file itself,
so clips there show the right camera motion over a smeared picture.

Geometry, in source pixels (pixel ``i`` covers ``[i, i + 1]``; ``S`` is the source's short
side): at mid-clip the window side ``s`` is log-uniform in ``side_range * S``; a pan moves
the centre by ``travel_range * s`` over the clip at constant speed; a zoom changes the side
by a ratio in ``zoom_range`` at a constant log-rate.  Every window is cut with sub-pixel
centres (``cv2.getRectSubPix``) and shrunk to ``size x size`` with ``cv2.INTER_AREA``.  With
the defaults (64 px output) a pan moves the content 14 to 39 output pixels over the clip
(1 to 2.6 px per frame) and a zoom changes its scale by 1.4 to 1.8 times.  Windows stay
inside the frame.

No appearance leak, by construction (the scheme of :mod:`deepvideo.data.synthetic`): the
trajectory's midpoint (centre, log-side and source start frame) follows one law for every
class, and every parameter (centre x, centre y, log-side) runs on its own "clock": the one
the class moves runs on the frame index, each other one stays frozen at a random frame's
value of a trajectory drawn from the same law.  So the window of a frame drawn at random
from a clip has exactly the same distribution (position, size, source frame) whatever the
class.  What remains: (1) at a *known* frame index the laws differ at the margins, e.g. the
first window of ``pan_left`` lies exactly half a travel right of its midpoint while other
classes' lie anywhere within half a travel; as windows' positions show only through their
content, this is worth little; (2) a model pooling several frames can tell *which*
parameter varies (pan axis or zoom) without seeing its direction, which is motion anyway;
(3) the sources' own motion (a hand-held camera, moving objects) is added to every class
alike: noise, not a cue.

On disk (``make_camera_dataset``), the layout the ``folder`` data format reads::

    root/meta.json                              config, classes, sources per split, counts,
                                                skipped sources with reasons
    root/<split>/<class>/<source stem>_<n>.mp4  h264 clips (T, size, size), n = 000, 001, ...

Every clip has its own random generator keyed by (seed, split, source file name, class,
index), so a file's content does not depend on which others were written, and an
interrupted run resumes exactly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, NamedTuple, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from deepvideo.data.datasets import BadVideoWarning
from deepvideo.io import VideoDecodeError, open_video, write_video
from deepvideo.io.atomic import atomic_write

__all__ = ["CAMERA_CLASSES", "CAMERA_FORMAT_VERSION", "CUT_MEDIAN_FACTOR", "CUT_MIN_DIFF", "CameraClip",
           "CameraConfig", "DEFAULT_CAMERA_SPLITS", "SPLITS", "camera_splits", "clip_rng", "cut_free_starts",
           "draw_clip", "frame_jumps", "make_camera_dataset", "render_clip"]

CAMERA_FORMAT_VERSION = 1  # bump when the clip geometry or rendering changes
SPLITS = ("train", "val", "test")

# class -> (moving parameter, direction); parameters: 0 centre x, 1 centre y (down in the
# image), 2 log-side of the window.
_MOTIONS = {"pan_left": (0, -1), "pan_right": (0, 1), "pan_up": (1, -1), "pan_down": (1, 1),
            "zoom_in": (2, -1), "zoom_out": (2, 1)}
CAMERA_CLASSES = tuple(_MOTIONS)

CUT_MIN_DIFF = 20.0      # a jump: mean |difference| of consecutive 32x32 grey thumbnails above this
CUT_MEDIAN_FACTOR = 5.0  # ... and above this many times the source's median difference
_THUMB = 32

# The sample videos of ../shared/data/videos, held out by footage, not only by file name
# (with the default config: 360 train, 48 val and 96 test clips).  Left out:
# mmaction2__rawvideo_dataset_part_0.mp4 is the first 32 frames of mmaction2__test.mp4
# (pixel-identical); mmaction2__demo_spatiotemporal_det.mp4 is every 4th frame of
# mmaction2__demo.mp4 with detection boxes drawn on it; mmflow__demo_gt_flowviz.mp4 is a flow
# visualisation, not footage; mmtracking__demo.mp4 has 8 frames; mmflow__demo_sintel.mp4's
# own camera moves ~120 output pixels per clip (median), swamping the synthetic motion
# (14-39 px).  mmaction2__test.avi is other footage than mmaction2__test.mp4 (and its
# clips in val/ share the stem mmaction2__test with test.mp4's in test/: meta.json tells).
DEFAULT_CAMERA_SPLITS: dict[str, list[str]] = {
    "train": ["mmaction2__demo.mp4",               # 280 f, 340x256, 28 fps, arm wrestling (hand-held)
              "opencvtut__vtest.avi",              # 795 f, 480x360, 10 fps, pedestrians (fixed camera)
              "opencvtut__car_traffic_small.mp4"],  # 917 f, 640x360, 30 fps, traffic on a bridge
    "val": ["mmaction2__test.avi"],                # 164 f, 320x240, 25 fps, make-up tutorial
    "test": ["opencvtut__Megamind_as_test.avi",    # 270 f, 720x528, 24 fps, Megamind (animation)
             "mmaction2__test.mp4"],               # 300 f, 340x256, 30 fps, pool cleaning (hand-held)
}


@dataclass(frozen=True)
class CameraConfig:
    """What ``make_camera_dataset`` writes.

    Args:
        classes: camera motions, a subset of ``CAMERA_CLASSES`` (their order gives labels).
        clips_per_video: clips per class drawn from each source video: one number for
            every split, or a mapping with a number for each of train, val and test
            (stored as the mapping).
        num_frames: frames per clip (>= 2).
        size: output side in pixels (square clips; even, >= 16).
        stride: step between the source frames of a clip (1: consecutive frames).
        fps: frame rate stored in the files; ``None``: the source's rate over ``stride``
            (real-time playback; 25 when the source states none).
        seed: master seed; equal configs and sources give identical frames.
        avoid_cuts: start clips only where their frames hold no shot cut (see the module
            docstring); costs one decoding pass over each source.
        side_range: window side at mid-clip, as fractions of the source's short side
            (log-uniform).
        travel_range: a pan's travel over the whole clip, as fractions of the window side.
        zoom_range: a zoom's ratio between the largest and the smallest window side.
        keyframe_interval: frames between keyframes of the written clips.
        crf: libx264 quality (0 lossless .. 51); 8 keeps the fine texture motion shows in.

    ``side_range[1] * (sqrt(zoom_range[1]) + travel_range[1])`` must be at most 1: the
    largest window, moved by the largest travel, must fit in the short side.
    """

    classes: tuple[str, ...] = CAMERA_CLASSES
    clips_per_video: int | Mapping[str, int] = field(
        default_factory=lambda: {"train": 20, "val": 8, "test": 8})
    num_frames: int = 16
    size: int = 64
    stride: int = 1
    fps: float | None = None
    seed: int = 0
    avoid_cuts: bool = True
    side_range: tuple[float, float] = (0.3, 0.55)
    travel_range: tuple[float, float] = (0.3, 0.45)
    zoom_range: tuple[float, float] = (1.4, 1.8)
    keyframe_interval: int = 8
    crf: int = 8

    def __post_init__(self) -> None:
        for name in ("classes", "side_range", "travel_range", "zoom_range"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        unknown = [c for c in self.classes if c not in _MOTIONS]
        if unknown or not self.classes or len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes: need distinct names from {', '.join(CAMERA_CLASSES)}; "
                             f"got {list(self.classes)}")
        counts = self.clips_per_video
        if isinstance(counts, Mapping):
            if set(counts) != set(SPLITS):
                raise ValueError(f"clips_per_video: need a count for each of {', '.join(SPLITS)}, "
                                 f"got {dict(counts)}")
            counts = {split: counts[split] for split in SPLITS}
        else:
            counts = dict.fromkeys(SPLITS, counts)
        if any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 for n in counts.values()):
            raise ValueError(f"clips_per_video: counts must be integers >= 1, got {self.clips_per_video}")
        object.__setattr__(self, "clips_per_video", {split: int(n) for split, n in counts.items()})
        if self.num_frames < 2:
            raise ValueError(f"num_frames: need at least 2 frames to show motion, got {self.num_frames}")
        if self.size < 16 or self.size % 2:
            raise ValueError(f"size: clip side must be even and >= 16, got {self.size}")
        if self.stride < 1:
            raise ValueError(f"stride: must be >= 1, got {self.stride}")
        if self.fps is not None and not (self.fps > 0 and np.isfinite(self.fps)):
            raise ValueError(f"fps: must be positive (or None for the source's), got {self.fps}")
        for name, low, high in (("side_range", 0.0, 1.0), ("travel_range", 0.0, 1.0),
                                ("zoom_range", 1.0, np.inf)):
            value = getattr(self, name)
            if len(value) != 2 or not low < value[0] <= value[1] <= high:
                raise ValueError(f"{name}: need (low, high) with {low:g} < low <= high <= {high:g}, "
                                 f"got {value}")
        reach = self.side_range[1] * (np.sqrt(self.zoom_range[1]) + self.travel_range[1])
        if reach > 1:
            raise ValueError(f"side_range: the largest window moved by the largest travel spans "
                             f"{reach:.3g} of the short side (> 1); lower side_range, travel_range "
                             f"or zoom_range")
        if self.keyframe_interval < 1:
            raise ValueError(f"keyframe_interval: must be >= 1, got {self.keyframe_interval}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf: must be in 0..51, got {self.crf}")

    @property
    def span(self) -> int:
        """Source frames one clip spans: ``(num_frames - 1) * stride + 1``."""
        return (self.num_frames - 1) * self.stride + 1

    def to_dict(self) -> dict:
        """JSON-ready fields (tuples as lists)."""
        return json.loads(json.dumps(asdict(self)))


class CameraClip(NamedTuple):
    """One clip's camera: source frame ``indices`` ``(T,)`` int64, window ``centres``
    ``(T, 2)`` float64 (x, y) and ``sides`` ``(T,)`` float64, in source pixels (pixel ``i``
    covers ``[i, i + 1]``)."""

    indices: np.ndarray
    centres: np.ndarray
    sides: np.ndarray

    def boxes(self) -> np.ndarray:
        """Windows as ``(T, 4)`` float64 boxes ``(x, y, w, h)``, ``(x, y)`` the top-left corner."""
        corner = self.centres - self.sides[:, None] / 2
        return np.concatenate([corner, self.sides[:, None], self.sides[:, None]], axis=1)


def _name_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")


def clip_rng(config: CameraConfig, split: str, source: str, cls: str, index: int) -> np.random.Generator:
    """The generator of clip ``index`` of ``cls`` cut from the source file named ``source``
    (its file name, e.g. ``"vtest.avi"``) in ``split``, independent of every other clip's."""
    if split not in SPLITS or cls not in _MOTIONS:
        raise ValueError(f"split/cls: need one of {SPLITS} and of {CAMERA_CLASSES}, got {split!r}, {cls!r}")
    key = (SPLITS.index(split), _name_key(source), CAMERA_CLASSES.index(cls), index)
    return np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=key))


def draw_clip(cls: str, rng: np.random.Generator, config: CameraConfig, num_frames: int, width: int,
              height: int, starts: Sequence[int] | np.ndarray | None = None) -> CameraClip:
    """Draw the camera of one clip of class ``cls`` in a source of ``num_frames`` frames of
    ``width x height`` pixels (which must hold ``config.span`` frames).

    ``starts``: the first source frames a clip may start at (e.g. ``cut_free_starts``'s),
    one drawn uniformly; ``None``: every start that fits.  The generator is used the same
    way for every class: only the clocks differ (see the module docstring), so the
    midpoint and any random frame's window follow one law.
    """
    if cls not in _MOTIONS:
        raise ValueError(f"cls: unknown camera motion {cls!r}; one of {', '.join(CAMERA_CLASSES)}")
    if num_frames < config.span:
        raise ValueError(f"num_frames: the source has {num_frames} frames, a clip needs {config.span}")
    starts = np.arange(num_frames - config.span + 1) if starts is None else np.asarray(starts, np.int64)
    if starts.size == 0 or starts.min() < 0 or starts.max() > num_frames - config.span:
        raise ValueError(f"starts: need clip starts in 0..{num_frames - config.span}, got {starts.size} "
                         f"from {starts.min(initial=0)} to {starts.max(initial=0)}")
    n = config.num_frames
    half = (n - 1) / 2
    start = int(starts[rng.integers(0, len(starts))])
    short = min(width, height)
    side = short * np.exp(rng.uniform(*np.log(config.side_range)))
    # room for the largest window the law allows, moved by the largest travel: the
    # centre's law depends neither on the class nor on this clip's travel and zoom
    margin = side / 2 * (np.sqrt(config.zoom_range[1]) + config.travel_range[1])
    centre = rng.uniform([margin, margin], [width - margin, height - margin])
    travel = rng.uniform(*config.travel_range) * side
    log_zoom = np.log(rng.uniform(*config.zoom_range))
    moving, direction = _MOTIONS[cls]
    clocks = np.repeat(rng.integers(0, n, 3)[:, None] - half, n, axis=1)
    clocks[moving] = direction * (np.arange(n) - half)
    centres = centre[:, None] + travel / (n - 1) * clocks[:2]
    sides = side * np.exp(log_zoom / (n - 1) * clocks[2])
    return CameraClip(start + config.stride * np.arange(n, dtype=np.int64), centres.T, sides)


def render_clip(frames: np.ndarray, clip: CameraClip, size: int) -> np.ndarray:
    """Cut ``clip``'s windows out of its source frames ``(T, H, W, 3)`` uint8 (those at
    ``clip.indices``) and shrink each to ``(size, size)``: ``(T, size, size, 3)`` uint8.

    Centres are sub-pixel (bilinear ``cv2.getRectSubPix``); sides are rounded to whole
    pixels before the ``cv2.INTER_AREA`` resize (at most half a source pixel of error)."""
    out = np.empty((len(frames), size, size, 3), np.uint8)
    for t, (frame, (x, y), side) in enumerate(zip(frames, clip.centres, clip.sides)):
        n = max(1, int(round(side)))
        # cv2 puts pixel j's centre at j; here it is at j + 0.5
        patch = cv2.getRectSubPix(np.ascontiguousarray(frame), (n, n), (float(x) - 0.5, float(y) - 0.5))
        out[t] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return out


def frame_jumps(frames: Iterable[np.ndarray], num_frames: int) -> np.ndarray:
    """Which transitions between consecutive frames ``(H, W, 3)`` uint8 are jumps (shot
    cuts, whip pans, corrupt frames): ``(num_frames - 1,)`` bool, True for frame ``i`` to
    ``i + 1``.  A jump's 32x32 grey thumbnails differ by more than ``CUT_MIN_DIFF`` and
    ``CUT_MEDIAN_FACTOR`` times the median (mean absolute difference); transitions past the
    last frame that ``frames`` yields (fewer than ``num_frames``) are jumps too.  Relative to
    the median, so a video that cuts at (nearly) every frame shows no jump."""
    thumbs = np.stack([cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (_THUMB, _THUMB),
                                  interpolation=cv2.INTER_AREA) for f in frames]).astype(np.float32)
    jumps = np.ones(max(num_frames - 1, 0), bool)
    if len(thumbs) > 1:
        diff = np.abs(np.diff(thumbs, axis=0)).mean(axis=(1, 2))
        found = diff > max(CUT_MIN_DIFF, CUT_MEDIAN_FACTOR * float(np.median(diff)))
        jumps[:len(found)] = found[:len(jumps)]
    return jumps


def cut_free_starts(jumps: np.ndarray, span: int) -> np.ndarray:
    """First frames ``(K,)`` int64 of the ``span``-frame stretches that hold no jump (see
    ``frame_jumps``), in a video of ``len(jumps) + 1`` frames."""
    num_frames = len(jumps) + 1
    if num_frames < span:
        return np.zeros(0, np.int64)
    bad = np.concatenate([[0], np.cumsum(jumps, dtype=np.int64)])  # jumps before frame i
    starts = np.arange(num_frames - span + 1)
    return starts[bad[starts + span - 1] == bad[starts]]


def camera_splits(videos_dir: str | os.PathLike,
                  names: Mapping[str, Sequence[str]] = DEFAULT_CAMERA_SPLITS) -> dict[str, list[Path]]:
    """``names`` (split -> file names) resolved in ``videos_dir``; ``ValueError`` naming
    the first missing file."""
    folder = Path(videos_dir).expanduser()
    out: dict[str, list[Path]] = {}
    for split, files in names.items():
        out[split] = []
        for name in files:
            path = folder / name
            if not path.is_file():
                raise ValueError(f"{path}: no such file (a {split} source of the camera dataset)")
            out[split].append(path)
    return out


def _check_splits(splits: Mapping[str, Sequence[str | os.PathLike]]) -> dict[str, list[Path]]:
    """Validated ``splits``: known split names, existing files, each file name in one place,
    distinct stems within a split (they name the clips)."""
    if not splits:
        raise ValueError("splits: need at least one of train, val, test with its source videos")
    seen: dict[str, str] = {}
    out: dict[str, list[Path]] = {}
    for split, paths in splits.items():
        if split not in SPLITS:
            raise ValueError(f"splits: unknown split {split!r}; one of {', '.join(SPLITS)}")
        if isinstance(paths, (str, os.PathLike)):
            raise ValueError(f"splits: {split} must be a list of video paths, got one path {str(paths)!r}")
        out[split] = [Path(p).expanduser() for p in paths]
        stems: dict[str, str] = {}
        for path in out[split]:
            if path.name in seen:
                where = "twice in" if seen[path.name] == split else f"in both {seen[path.name]} and"
                raise ValueError(f"{path.name}: source is {where} {split}; splits hold sources out by name")
            seen[path.name] = split
            if path.stem in stems:
                raise ValueError(f"{path}: same stem as {stems[path.stem]} in {split}; "
                                 f"the clips would get the same names")
            stems[path.stem] = path.name
            if not path.exists():
                raise ValueError(f"{path}: no such file (a {split} source)")
    return out


def _clip_path(split: str, cls: str, source: Path, index: int) -> str:
    return f"{split}/{cls}/{source.stem}_{index:03d}.mp4"


def _check_meta(root: Path, meta_path: Path, config: CameraConfig, names: dict[str, list[str]]
                ) -> dict | None:
    """The stored meta.json (None when absent); ValueError when it is another dataset's."""
    if not meta_path.is_file():
        if root.is_dir() and any(root.iterdir()):
            raise ValueError(f"{root}: folder is not empty and has no meta.json; choose an empty or "
                             f"new root for the camera dataset")
        return None
    try:
        meta = json.loads(meta_path.read_text())
        stored, stored_splits = dict(meta["config"]), dict(meta["splits"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{meta_path}: unreadable dataset metadata ({exc}); delete the folder to "
                         f"regenerate it") from None
    wanted = config.to_dict()
    if meta.get("format") != "deepvideo-camera" or meta.get("version") != CAMERA_FORMAT_VERSION \
            or stored != wanted:
        diff = [f"{k} {stored.get(k)!r} != {wanted[k]!r}" for k in wanted if stored.get(k) != wanted[k]] \
            or [f"format {meta.get('format')} version {meta.get('version')} != deepvideo-camera "
                f"{CAMERA_FORMAT_VERSION}"]
        raise ValueError(f"{meta_path}: the dataset there was made with another config "
                         f"({'; '.join(diff)}); use another root or delete the folder")
    if {k: sorted(v) for k, v in stored_splits.items()} != {k: sorted(v) for k, v in names.items()}:
        split = next(s for s in sorted(set(stored_splits) | set(names))
                     if sorted(stored_splits.get(s, [])) != sorted(names.get(s, [])))
        raise ValueError(f"{meta_path}: the dataset there has other {split} sources "
                         f"({', '.join(stored_splits.get(split, [])) or 'none'}); use another root "
                         f"or delete the folder")
    return meta


class _Source(NamedTuple):
    split: str
    path: Path
    num_frames: int
    width: int
    height: int
    fps: float
    todo: list[tuple[str, int, str]]  # missing clips: (class, index, path under root)
    starts: np.ndarray | None         # where clips may start (None when nothing is missing)


def _reason(exc: VideoDecodeError, path: Path) -> str:
    return f"cannot be decoded: {str(exc).removeprefix(f'{path}: ')}"


def _probe(root: Path, config: CameraConfig, split: str, path: Path) -> _Source | str:
    """The source's geometry, its missing clips and where they may start; or why it is
    skipped.  Decodes the whole source (for cuts) only when a clip is missing."""
    todo = [(cls, i, rel) for cls in config.classes for i in range(config.clips_per_video[split])
            if not (root / (rel := _clip_path(split, cls, path, i))).is_file()]
    try:
        with open_video(path) as reader:
            frames, width, height, fps = reader.num_frames, reader.width, reader.height, reader.fps
            if frames < config.span:
                return (f"too short: {frames} frames, a clip needs {config.span} "
                        f"({config.num_frames} frames at stride {config.stride})")
            starts = None
            if todo:
                starts = (cut_free_starts(frame_jumps(reader, frames), config.span) if config.avoid_cuts
                          else np.arange(frames - config.span + 1))
    except VideoDecodeError as exc:
        return _reason(exc, path)
    if starts is not None and not len(starts):
        return f"no stretch of {config.span} frames without a shot cut or jump (avoid_cuts)"
    return _Source(split, path, frames, width, height, fps, todo, starts)


def _write_clips(root: Path, partial: Path, config: CameraConfig, source: _Source,
                 done: Callable[[], None]) -> str | None:
    """Write ``source``'s missing clips, reading only each clip's frames (encode under
    ``partial``, then rename); the reason it failed, or None.  ``done()`` is called once
    per clip written."""
    if not source.todo:
        return None
    fps = config.fps or (source.fps / config.stride if source.fps > 0 else 25.0)
    try:
        with open_video(source.path) as reader:
            for cls, i, rel in source.todo:
                rng = clip_rng(config, source.split, source.path.name, cls, i)
                clip = draw_clip(cls, rng, config, source.num_frames, source.width, source.height,
                                 source.starts)
                frames = render_clip(reader.read(clip.indices), clip, config.size)
                tmp = write_video(partial / rel.replace("/", "_"), frames, fps, codec="libx264",
                                  keyframe_interval=config.keyframe_interval, crf=config.crf,
                                  threads=1)  # one encoder thread, as every dataset writer
                path = root / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, path)
                done()
    except VideoDecodeError as exc:
        return _reason(exc, source.path)
    return None


def _skip(path: Path, split: str, reason: str) -> None:
    warnings.warn(f"{path}: skipped from the camera dataset's {split} split ({reason})",
                  BadVideoWarning, stacklevel=3)


def _require_clips(paths: dict[str, list[Path]], sources: list[_Source]) -> None:
    for split, ps in paths.items():
        if not any(s.split == split for s in sources):
            raise ValueError(f"{split}: no clips, every source was skipped or none given "
                             f"({', '.join(p.name for p in ps) or 'no sources'})")


def make_camera_dataset(splits: Mapping[str, Sequence[str | os.PathLike]], root: str | os.PathLike,
                        config: CameraConfig | None = None, progress: bool = False,
                        workers: int = 2) -> Path:
    """Write the camera-motion dataset of ``splits`` under ``root`` once and return ``root``.

    Args:
        splits: split (``train``, ``val``, ``test``) -> source video paths.  Sources are held
            out by file name: a name in two splits (or twice in one) is a ``ValueError``,
            as is a missing file.  ``camera_splits`` resolves ``DEFAULT_CAMERA_SPLITS``.
        root: output folder (see the module docstring for its layout).
        config: what to write (``CameraConfig()`` by default).
        progress: show a progress bar over clips.
        workers: threads reading, cutting and encoding sources side by side (the files do
            not depend on it).

    A source that cannot be decoded, holds fewer than ``config.span`` frames (or, with
    ``avoid_cuts``, no such stretch without a cut) is skipped with a
    :class:`~deepvideo.data.datasets.BadVideoWarning` naming it and listed in meta.json
    with the reason; a split left without clips is a ``ValueError`` naming it and its
    sources.  When ``root/meta.json`` holds the same config and sources and every clip
    exists, nothing is read or written; clips already on disk are never rewritten, so an
    interrupted run resumes where it stopped (clips are encoded under ``root/.partial`` and
    renamed into place).  A root holding another config or other sources (or a non-empty
    folder without meta.json) is a ``ValueError``.
    """
    config = config or CameraConfig()
    paths = _check_splits(splits)
    names = {split: [p.name for p in ps] for split, ps in paths.items()}
    root = Path(root).expanduser()
    meta_path = root / "meta.json"
    meta = _check_meta(root, meta_path, config, names)
    if meta is not None and meta.get("complete"):
        skipped = {(s["split"], s["source"]) for s in meta.get("skipped", [])}
        if all((root / _clip_path(split, cls, path, i)).is_file()
               for split, ps in paths.items() for path in ps if (split, path.name) not in skipped
               for cls in config.classes for i in range(config.clips_per_video[split])):
            return root

    jobs = [(split, path) for split, ps in paths.items() for path in ps]
    pool = ThreadPoolExecutor(max(1, workers))  # decoding and encoding release the GIL
    try:
        found = list(tqdm(pool.map(lambda job: _probe(root, config, *job), jobs), total=len(jobs),
                          desc=f"camera dataset {root.name}: sources", unit="video", disable=not progress))
        sources = [s for s in found if not isinstance(s, str)]
        skipped = [{"split": split, "source": path.name, "reason": reason}
                   for (split, path), reason in zip(jobs, found) if isinstance(reason, str)]
        for (split, path), reason in zip(jobs, found):
            if isinstance(reason, str):
                _skip(path, split, reason)
        _require_clips(paths, sources)

        meta = {"format": "deepvideo-camera", "version": CAMERA_FORMAT_VERSION, "config": config.to_dict(),
                "classes": list(config.classes), "splits": names, "complete": False}
        root.mkdir(parents=True, exist_ok=True)
        atomic_write(meta_path, lambda fh: fh.write(json.dumps(meta, indent=2).encode()))
        partial = root / ".partial"
        lock = threading.Lock()
        with tqdm(total=sum(len(s.todo) for s in sources), desc=f"camera dataset {root.name}: clips", unit="clip",
                  disable=not progress) as bar:
            def done() -> None:
                with lock:
                    bar.update()

            failures = list(pool.map(lambda s: _write_clips(root, partial, config, s, done), sources))
    finally:  # on an error or Ctrl-C, finish only the sources already being written
        pool.shutdown(cancel_futures=True)
    for source, reason in zip(list(sources), failures):
        if reason is not None:  # opened, but a frame it needs cannot be decoded: drop its clips
            for cls in config.classes:
                for i in range(config.clips_per_video[source.split]):
                    (root / _clip_path(source.split, cls, source.path, i)).unlink(missing_ok=True)
            _skip(source.path, source.split, reason)
            skipped.append({"split": source.split, "source": source.path.name, "reason": reason})
            sources.remove(source)
    _require_clips(paths, sources)
    shutil.rmtree(partial, ignore_errors=True)

    per_source = {split: len(config.classes) * config.clips_per_video[split] for split in SPLITS}
    meta.update({
        "sources": {split: {s.path.name: {"frames": s.num_frames, "width": s.width, "height": s.height,
                                          "fps": round(s.fps, 4), "clips": per_source[split]}
                            for s in sources if s.split == split} for split in paths},
        "clips": {split: per_source[split] * sum(s.split == split for s in sources) for split in paths},
        "skipped": skipped,
        "complete": True,
    })
    atomic_write(meta_path, lambda fh: fh.write(json.dumps(meta, indent=2).encode()))
    return root
