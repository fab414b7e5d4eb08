"""The built-in motion dataset: real video files whose classes differ only in motion.

Each video shows one object (a random shape, size and pair of colours, striped in its own
frame so that its turning and scaling show inside it too) over a random textured
background, with fresh pixel noise in every frame.  The class is how the object moves:
translate right / left / down / up, rotate clockwise / anticlockwise (as seen on screen),
grow or shrink.  Nothing else depends on the class, so a single frame says nothing about
it, while a model that sees motion can classify it almost perfectly.

No appearance leak, by construction: every nuisance parameter of a frame (centre x,
centre y, log-size, angle) follows its own "clock".  The parameter the class moves runs
on the frame index; every other one stays frozen at a random frame's value of a trajectory
drawn from the same law.  Trajectories are centred (a translation starts at ``centre -
travel / 2``), so the joint distribution of (x, y, size, angle, colour, background) in any
one frame is exactly the same for every class.  What remains is second order: a model
that pools many frames of one video could notice *which* parameter varies (not in which
direction); with oracle per-frame (x, y, size) histograms that is worth ~22% accuracy
against 12.5% chance for the 8 classes, and a single-frame CNN gets far less.

On disk (``make_motion_dataset``)::

    root/meta.json                          config, classes, counts, format version
    root/<split>/<class>/<class>_<n>.mp4    split in train / val / test (a folder dataset)
    root/annotations/<split>.csv            video,label,frame,x,y,w,h (object box per frame)

Boxes are axis-aligned ``(x, y, w, h)`` in pixels, with ``(x, y)`` the top-left corner in
a frame that spans ``[0, size]`` (pixel ``i`` covers ``[i, i + 1]``).  Every video has its
own random generator keyed by (seed, split, class, index), so a file's content does not
depend on which others were written before it and an interrupted run resumes exactly.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from tqdm import tqdm

from deepvideo.io import write_video
from deepvideo.io.atomic import atomic_write

__all__ = ["FORMAT_VERSION", "MOTION_CLASSES", "SCENE_ACTIONS", "SHAPES", "SPLITS", "RenderedVideo", "Scene",
           "SceneConfig", "SyntheticConfig", "render_scene",
           "default_root", "make_motion_dataset", "render_object", "render_video", "textured_background", "video_rng"]

FORMAT_VERSION = 1  # bump when the renderer changes: the default root changes with it
SPLITS = ("train", "val", "test")

# class -> (moving parameter, direction); parameters: 0 centre x, 1 centre y (down in the
# image), 2 log-size, 3 angle (positive turns +x toward +y: clockwise on screen).
_MOTIONS = {"right": (0, 1), "left": (0, -1), "down": (1, 1), "up": (1, -1),
            "rotate_cw": (3, 1), "rotate_ccw": (3, -1), "grow": (2, 1), "shrink": (2, -1)}
MOTION_CLASSES = tuple(_MOTIONS)

SIZE_RANGE = (0.22, 0.5)     # object diameter (circumscribed circle), fraction of the frame side
TRAVEL_RANGE = (0.3, 0.45)   # translation over the whole clip, fraction of the frame side
SCALE_RANGE = (1.6, 2.2)     # size ratio between the last and the first frame of grow
SPIN_RANGE = (12.0, 24.0)    # rotation speed, degrees per frame (shapes repeat at >= 72 degrees)
NOISE_STD = 6.0              # per-frame Gaussian pixel noise, grey levels
TEXTURE_AMPLITUDE = 25.0     # background texture, grey levels per unit of its random pattern
MIN_CONTRAST = 80.0          # wanted RGB distance between the object and every background pixel
_SUPERSAMPLE = 4             # the object is drawn at 4x resolution, then area-averaged
_SUBPIXEL = 4                # cv2.fillPoly fractional bits: vertices at 1/16 pixel
_EXTENSIONS = {"libx264": ".mp4", "mpeg4": ".avi"}


def _polygon(points: list[tuple[float, float]]) -> np.ndarray:
    """Vertices ``(V, 2)`` moved to their area centroid and scaled to circumradius 1."""
    p = np.asarray(points, dtype=np.float64)
    q = np.roll(p, -1, axis=0)
    cross = p[:, 0] * q[:, 1] - q[:, 0] * p[:, 1]
    centroid = ((p + q) * cross[:, None]).sum(0) / (3 * cross.sum())
    p = p - centroid
    return p / np.linalg.norm(p, axis=1).max()


def _regular(n: int, radii: tuple[float, ...] = (1.0,), start: float = 90.0) -> list:
    """``n`` vertices on a circle (or alternating between ``radii``), from ``start`` degrees."""
    angles = np.deg2rad(start + 360.0 * np.arange(n) / n)
    r = np.resize(radii, n)
    return list(zip(r * np.cos(angles), r * np.sin(angles)))


# Unit shapes; none is invariant under the <= 24 degree turn of one frame, and the arrow,
# ell and pacman have no rotational symmetry at all (a circle would hide rotation).
_SHAPES = {
    "square": _polygon(_regular(4, start=45.0)),
    "triangle": _polygon(_regular(3)),
    "cross": _polygon([(0.3, 1), (-0.3, 1), (-0.3, 0.3), (-1, 0.3), (-1, -0.3), (-0.3, -0.3),
                       (-0.3, -1), (0.3, -1), (0.3, -0.3), (1, -0.3), (1, 0.3), (0.3, 0.3)]),
    "arrow": _polygon([(1, 0), (0.2, 0.7), (0.2, 0.3), (-0.9, 0.3), (-0.9, -0.3), (0.2, -0.3),
                       (0.2, -0.7)]),
    "ell": _polygon([(-0.7, -0.9), (-0.2, -0.9), (-0.2, 0.4), (0.7, 0.4), (0.7, 0.9),
                     (-0.7, 0.9)]),
    "pacman": _polygon([(0.0, 0.0)] + [(np.cos(a), np.sin(a))
                                        for a in np.deg2rad(np.linspace(35, 325, 25))]),
    "star": _polygon(_regular(10, radii=(1.0, 0.45))),
}
SHAPES = tuple(_SHAPES)


@dataclass(frozen=True)
class SyntheticConfig:
    """What ``make_motion_dataset`` writes.

    Args:
        classes: motion classes, a subset of ``MOTION_CLASSES`` (their order gives labels).
        train, val, test: videos per class in each split.
        num_frames: frames per video (>= 2); translations and size changes span the whole
            clip, so they are slower per frame in longer clips.
        size: frame side in pixels (square frames; even, >= 16).
        fps: frame rate stored in the files.
        seed: master seed; equal configs give byte-identical frames.
        codec: ``libx264`` (.mp4) or ``mpeg4`` (.avi).
        keyframe_interval: frames between keyframes; short GOPs make random clip reads cheap.
        crf: libx264 quality (0 lossless .. 51).  The default 8 keeps the fine stripes and
            pixel noise that carry rotation and small motions: with x264's default 23 a
            small 3D CNN reached only 34-64% test accuracy on the demo recipe, with 8 it
            reached 93-95% (measured on 64x64, 16-frame videos shrunk to 32 px).
    """

    classes: tuple[str, ...] = MOTION_CLASSES
    train: int = 40
    val: int = 8
    test: int = 16
    num_frames: int = 16
    size: int = 64
    fps: float = 10.0
    seed: int = 0
    codec: str = "libx264"
    keyframe_interval: int = 8
    crf: int = 8

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        unknown = [c for c in self.classes if c not in _MOTIONS]
        if unknown or not self.classes or len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes: need distinct names from {', '.join(MOTION_CLASSES)}; "
                             f"got {list(self.classes)}")
        for name in SPLITS:
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: videos per class must be >= 0, got {getattr(self, name)}")
        if self.num_frames < 2:
            raise ValueError(f"num_frames: need at least 2 frames to show motion, got {self.num_frames}")
        if self.size < 16 or self.size % 2:
            raise ValueError(f"size: frame side must be even and >= 16, got {self.size}")
        if self.fps <= 0:
            raise ValueError(f"fps: must be positive, got {self.fps}")
        if self.codec not in _EXTENSIONS:
            raise ValueError(f"codec: one of {', '.join(_EXTENSIONS)}, got {self.codec!r}")
        if self.keyframe_interval < 1:
            raise ValueError(f"keyframe_interval: must be >= 1, got {self.keyframe_interval}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf: must be in 0..51, got {self.crf}")

    @property
    def counts(self) -> dict[str, int]:
        """Videos per class in each split: ``{"train": n, "val": n, "test": n}``."""
        return {split: getattr(self, split) for split in SPLITS}

    def to_dict(self) -> dict:
        """JSON-ready fields (``classes`` as a list)."""
        return json.loads(json.dumps(asdict(self)))


def default_root(config: SyntheticConfig | None = None) -> Path:
    """``~/.cache/deepvideo/motion-<hash>``: one folder per (config, format version)."""
    config = config or SyntheticConfig()
    key = json.dumps({"version": FORMAT_VERSION, "config": config.to_dict()}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return Path.home() / ".cache" / "deepvideo" / f"motion-{digest}"


def _clocks(cls: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """One clock per parameter (x, y, log-size, angle), ``(4, T)`` in ``[-(T-1)/2, (T-1)/2]``:
    the frame index for the one the class moves, a random frozen frame for the others;
    both are uniform over frames."""
    moving, direction = _MOTIONS[cls]
    half = (n - 1) / 2
    clocks = np.repeat(rng.integers(0, n, 4)[:, None] - half, n, axis=1)
    clocks[moving] = direction * (np.arange(n) - half)
    return clocks


class _Pose(NamedTuple):
    """The object in every frame: unit outline ``(V, 2)``, centre ``(T, 2)`` (x, y),
    radius ``(T,)`` and angle ``(T,)`` in pixels and radians."""

    shape: np.ndarray
    centre: np.ndarray
    radius: np.ndarray
    angle: np.ndarray

    def outlines(self) -> np.ndarray:
        """Vertices ``(T, V, 2)`` as (x, y) pixels."""
        cos, sin, r = np.cos(self.angle)[:, None], np.sin(self.angle)[:, None], self.radius[:, None]
        x, y = self.shape[:, 0], self.shape[:, 1]
        return np.stack([self.centre[:, :1] + r * (x * cos - y * sin),
                         self.centre[:, 1:] + r * (x * sin + y * cos)], axis=-1)

    def boxes(self) -> np.ndarray:
        """Axis-aligned boxes ``(T, 4)`` float32 ``(x, y, w, h)``."""
        outlines = self.outlines()
        low, high = outlines.min(axis=1), outlines.max(axis=1)
        return np.concatenate([low, high - low], axis=1).astype(np.float32)


def _pose(cls: str, rng: np.random.Generator, config: SyntheticConfig, shape: str | None = None) -> _Pose:
    """Draw the object's shape (``shape`` replaces the drawn one, the generator advancing
    the same) and its trajectory for motion class ``cls``."""
    n, side = config.num_frames, config.size
    half = (n - 1) / 2
    clocks = _clocks(cls, rng, n)
    drawn = SHAPES[rng.integers(len(SHAPES))]
    shape = _SHAPES[drawn if shape is None else shape]
    rate = np.log(rng.uniform(*SCALE_RANGE)) / (n - 1)  # log-size change per frame
    low, high = np.log(np.multiply(SIZE_RANGE, side))
    log_size = rng.uniform(low + rate * half, high - rate * half)
    margin = np.exp(log_size + rate * half) / 2  # the largest radius on this trajectory
    travel = rng.uniform(*TRAVEL_RANGE, 2) * side
    centre = rng.uniform(margin + travel / 2, side - margin - travel / 2)
    spin = np.deg2rad(rng.uniform(*SPIN_RANGE))
    return _Pose(shape, (centre[:, None] + travel[:, None] / (n - 1) * clocks[:2]).T,
                 np.exp(log_size + rate * clocks[2]) / 2,
                 rng.uniform(0, 2 * np.pi) + spin * clocks[3])


def _coverage(pose: _Pose, side: int) -> np.ndarray:
    """The fraction of every pixel that the object covers, ``(T, H, W)`` float32 in [0, 1]."""
    fine = np.zeros((len(pose.centre), side * _SUPERSAMPLE, side * _SUPERSAMPLE), np.uint8)
    vertices = np.rint((pose.outlines() * _SUPERSAMPLE - 0.5) * (1 << _SUBPIXEL)).astype(np.int32)
    for mask, points in zip(fine, vertices):
        cv2.fillPoly(mask, [points], 255, shift=_SUBPIXEL)
    return np.stack([cv2.resize(mask, (side, side), interpolation=cv2.INTER_AREA)
                     for mask in fine]) / np.float32(255)


def textured_background(rng: np.random.Generator, side: int) -> np.ndarray:
    """A random textured background ``(H, W, 3)`` float32: smooth blobs plus stripes."""
    base = rng.uniform(50, 205, 3)
    cells = int(rng.integers(2, 9))
    blobs = cv2.resize(rng.standard_normal((cells, cells, 3)).astype(np.float32), (side, side),
                       interpolation=cv2.INTER_CUBIC)
    theta, phase, cycles = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi), rng.uniform(2, 8)
    y, x = np.mgrid[0:side, 0:side] / side
    stripes = np.sin(2 * np.pi * cycles * (x * np.cos(theta) + y * np.sin(theta)) + phase)
    w_blobs, w_stripes = rng.uniform(0, 1, 2)
    texture = w_blobs * blobs + w_stripes * stripes[..., None] * rng.standard_normal(3)
    return np.clip(base + TEXTURE_AMPLITUDE * texture, 0, 255).astype(np.float32)


def _object_colours(rng: np.random.Generator, background: np.ndarray, tries: int = 16
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Two object colours (for its stripes) out of ``tries`` random ones: the first that is
    at least ``MIN_CONTRAST`` from every background pixel (else the farthest from its nearest
    background pixel), and the one of those as far as possible from it."""
    candidates = rng.uniform(0, 255, (tries, 3)).astype(np.float32)
    pixels = background.reshape(-1, 3)
    squared = (candidates ** 2).sum(1)[:, None] - 2 * candidates @ pixels.T + (pixels ** 2).sum(1)
    nearest = np.sqrt(np.maximum(squared.min(axis=1), 0))
    good = np.flatnonzero(nearest >= MIN_CONTRAST)
    pool = candidates[good] if len(good) else candidates[[nearest.argmax()]]
    first = pool[0]
    return first, pool[((pool - first) ** 2).sum(1).argmax()]


def _stripes(rng: np.random.Generator, pose: _Pose, side: int) -> np.ndarray:
    """Smooth stripes fixed to the object (they turn, scale and move with it): ``(T, H, W, 1)``
    float32 in [0, 1], 1 to 2.5 cycles across the object at a random angle and phase."""
    direction = pose.angle + rng.uniform(0, np.pi)
    cycles, phase = rng.uniform(1, 2.5), rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) + 0.5
    u = ((x - pose.centre[:, 0, None, None]) * np.cos(direction)[:, None, None]
         + (y - pose.centre[:, 1, None, None]) * np.sin(direction)[:, None, None])
    u /= pose.radius[:, None, None]  # -1 .. 1 across the object
    return (0.5 + 0.5 * np.sin(np.pi * cycles * u + phase))[..., None].astype(np.float32)


class RenderedVideo(NamedTuple):
    """One rendered video and what it shows: ``frames`` ``(T, H, W, 3)`` uint8 RGB, ``boxes``
    ``(T, 4)`` float32 ``(x, y, w, h)`` pixels, the ``shape`` name (one of ``SHAPES``), the
    object's two stripe ``colours`` ``(2, 3)`` float32 RGB and its mean ``diameter`` as a
    fraction of the frame side."""

    frames: np.ndarray
    boxes: np.ndarray
    shape: str
    colours: np.ndarray
    diameter: float


def render_video(cls: str, rng: np.random.Generator, config: SyntheticConfig | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Render one video of motion class ``cls`` in memory.

    Returns ``frames`` ``(T, H, W, 3)`` uint8 RGB and ``boxes`` ``(T, 4)`` float32 object
    boxes ``(x, y, w, h)`` in pixels.  The same generator state gives identical output.
    """
    rendered = render_object(cls, rng, config)
    return rendered.frames, rendered.boxes


def render_object(cls: str, rng: np.random.Generator, config: SyntheticConfig | None = None,
                  shape: str | None = None) -> RenderedVideo:
    """:func:`render_video` with what it drew (:class:`RenderedVideo`); ``shape`` (one of
    ``SHAPES``) forces the object's shape, every other draw staying the same."""
    config = config or SyntheticConfig()
    if cls not in _MOTIONS:
        raise ValueError(f"cls: unknown motion class {cls!r}; one of {', '.join(MOTION_CLASSES)}")
    if shape is not None and shape not in _SHAPES:
        raise ValueError(f"shape: unknown shape {shape!r}; one of {', '.join(SHAPES)}")
    pose = _pose(cls, rng, config, shape)
    side = config.size
    background = textured_background(rng, side)
    colour, stripe_colour = _object_colours(rng, background)
    paint = colour + _stripes(rng, pose, side) * (stripe_colour - colour)
    # coverage by supersampling (cv2's LINE_AA fill is about half a pixel too fat);
    # cv2 puts pixel j's centre at j, so x maps to x * _SUPERSAMPLE - 0.5
    alpha = _coverage(pose, side)[..., None]
    frames = background + alpha * (paint - background)
    frames += NOISE_STD * rng.standard_normal(frames.shape, dtype=np.float32)
    drawn = next(name for name, outline in _SHAPES.items() if outline is pose.shape)
    return RenderedVideo(np.clip(np.rint(frames), 0, 255).astype(np.uint8), pose.boxes(), drawn,
                         np.stack([colour, stripe_colour]).astype(np.float32),
                         float(2 * pose.radius.mean() / side))


def video_rng(config: SyntheticConfig, split: str, cls: str, index: int) -> np.random.Generator:
    """The generator of video ``index`` of ``cls`` in ``split``, independent of every other
    video's: ``render_video(cls, video_rng(...), config)`` gives that file's frames and boxes."""
    if split not in SPLITS or cls not in _MOTIONS:
        raise ValueError(f"split/cls: need one of {SPLITS} and of {MOTION_CLASSES}, "
                         f"got {split!r}, {cls!r}")
    key = (SPLITS.index(split), MOTION_CLASSES.index(cls), index)
    return np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=key))


def _videos(config: SyntheticConfig) -> list[tuple[str, str, int, str]]:
    """Every video as ``(split, class, index, relative path)``."""
    ext = _EXTENSIONS[config.codec]
    return [(split, cls, i, f"{split}/{cls}/{cls}_{i:04d}{ext}")
            for split in SPLITS for cls in config.classes for i in range(getattr(config, split))]


def _write_atomic(path: Path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode()))


def _check_meta(root: Path, meta_path: Path, config: SyntheticConfig) -> dict | None:
    """The stored meta.json (None when absent); ValueError when it is not this config's."""
    if not meta_path.is_file():
        if root.is_dir() and any(root.iterdir()):
            raise ValueError(f"{root}: folder is not empty and has no meta.json; "
                             f"choose an empty or new --root for the motion dataset")
        return None
    try:
        meta = json.loads(meta_path.read_text())
        stored = dict(meta["config"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{meta_path}: unreadable dataset metadata ({exc}); delete the folder "
                         f"to regenerate it") from None
    wanted = config.to_dict()
    if meta.get("version") != FORMAT_VERSION or stored != wanted:
        diff = [f"{k} {stored.get(k)!r} != {wanted[k]!r}" for k in wanted
                if stored.get(k) != wanted[k]] or [f"version {meta.get('version')} != {FORMAT_VERSION}"]
        raise ValueError(f"{meta_path}: the dataset there was made with another config "
                         f"({'; '.join(diff)}); use another --root or delete the folder")
    return meta


def _ensure_video(root: Path, partial: Path, config: SyntheticConfig, split: str, cls: str,
                  index: int, rel: str) -> np.ndarray:
    """Write one video unless it exists (encode under ``partial``, then rename); its boxes."""
    rng, path = video_rng(config, split, cls, index), root / rel
    if path.is_file():
        return _pose(cls, rng, config).boxes()
    frames, boxes = render_video(cls, rng, config)
    tmp = write_video(partial / rel.replace("/", "_"), frames, config.fps, codec=config.codec,
                      keyframe_interval=config.keyframe_interval,
                      crf=config.crf if config.codec == "libx264" else None,
                      threads=1)  # one encoder thread: resuming rewrites the same frames
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, path)
    return boxes


def make_motion_dataset(root: str | os.PathLike | None = None, config: SyntheticConfig | None = None,
                        progress: bool = True, workers: int = 2) -> Path:
    """Write the motion dataset once and return its root.

    ``root`` defaults to ``default_root(config)`` (a folder per config).  When
    ``root/meta.json`` holds the same config and every file exists, nothing is written.  A
    ``root`` holding another config (or a non-empty folder without meta.json) raises
    ``ValueError``.  Videos are encoded under ``root/.partial`` and renamed into place, so
    an interrupted run leaves no corrupt file and the next call writes only what is missing.
    ``workers`` threads render and encode videos side by side (the files do not depend on it).
    """
    config = config or SyntheticConfig()
    root = Path(root).expanduser() if root is not None else default_root(config)
    meta_path = root / "meta.json"
    videos = _videos(config)
    meta = _check_meta(root, meta_path, config)
    annotations = {split: root / "annotations" / f"{split}.csv" for split in SPLITS}
    if meta is not None and meta.get("complete") and all(p.is_file() for p in annotations.values()) \
            and all((root / rel).is_file() for *_, rel in videos):
        return root

    meta = {"format": "deepvideo-motion", "version": FORMAT_VERSION, "config": config.to_dict(),
            "classes": list(config.classes), "videos_per_class": config.counts,
            "annotations": {split: f"annotations/{split}.csv" for split in SPLITS},
            "box_format": "x,y,w,h pixels, top-left corner; frame spans [0, size]",
            "complete": False}
    root.mkdir(parents=True, exist_ok=True)
    _write_atomic(meta_path, json.dumps(meta, indent=2))
    partial = root / ".partial"
    rows: dict[str, list] = {split: [] for split in SPLITS}
    pool = ThreadPoolExecutor(max(1, workers))  # encoding releases the GIL
    try:
        boxes = pool.map(lambda video: _ensure_video(root, partial, config, *video), videos)
        for (split, cls, _, rel), video_boxes in tqdm(zip(videos, boxes), total=len(videos),
                                                      desc=f"motion dataset {root.name}",
                                                      unit="video", disable=not progress):
            rows[split] += [(rel, cls, t, *np.round(box, 3).tolist())
                            for t, box in enumerate(video_boxes)]
    finally:  # on an error or Ctrl-C, finish only the videos already being written
        pool.shutdown(cancel_futures=True)
    annotations["train"].parent.mkdir(exist_ok=True)
    for split, path in annotations.items():
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(("video", "label", "frame", "x", "y", "w", "h"))
        writer.writerows(rows[split])
        _write_atomic(path, text.getvalue())
    shutil.rmtree(partial, ignore_errors=True)
    _write_atomic(meta_path, json.dumps({**meta, "complete": True}, indent=2))
    return root


# Scenes: several objects, each doing its own actions, a panning camera ------------------
#
# An object translates (one of four directions) or stands; it may also rotate, grow or
# pulse (at most one of the three).  ``stand`` alone is the only action that leaves an
# object still in the world: such objects are the static distractors of moving-object
# segmentation.  The camera pans at a constant velocity, so still objects move in the image
# with the background and only motion *relative to the background* tells the actors apart.
SCENE_ACTIONS = ("move_right", "move_left", "move_down", "move_up", "stand", "rotate", "grow", "pulse")
_TRANSLATIONS = {"move_right": (1, 0), "move_left": (-1, 0), "move_down": (0, 1), "move_up": (0, -1), "stand": (0, 0)}
_CHANGES = ("rotate", "grow", "pulse")


@dataclass(frozen=True)
class SceneConfig:
    """What :func:`render_scene` draws.

    Args:
        size: frame side in pixels (square, even, >= 32).
        num_frames: frames per scene (>= 2).
        objects: the least and most objects in a scene.
        still: the probability that an object only stands (a static distractor).
        change: the probability that an object also rotates, grows or pulses.
        object_size: object diameter range, fraction of the frame side.
        speed: translation speed range, fraction of the frame side per frame.
        camera: the largest camera pan speed per axis, fraction of the frame side per frame.
    """

    size: int = 64
    num_frames: int = 32
    objects: tuple[int, int] = (2, 3)
    still: float = 0.3
    change: float = 0.5
    object_size: tuple[float, float] = (0.18, 0.3)
    speed: tuple[float, float] = (0.006, 0.012)
    camera: float = 0.006

    def __post_init__(self) -> None:
        if self.size < 32 or self.size % 2:
            raise ValueError(f"size: frame side must be even and >= 32, got {self.size}")
        if self.num_frames < 2:
            raise ValueError(f"num_frames: need at least 2 frames, got {self.num_frames}")
        if not 1 <= self.objects[0] <= self.objects[1]:
            raise ValueError(f"objects: need 1 <= least <= most, got {self.objects}")
        if not (0 <= self.still <= 1 and 0 <= self.change <= 1):
            raise ValueError(f"still, change: probabilities in [0, 1], got {self.still}, {self.change}")
        if not 0 < self.object_size[0] <= self.object_size[1] <= 1:
            raise ValueError(f"object_size: need 0 < least <= most <= 1 (fraction of the side), got {self.object_size}")
        if not 0 <= self.speed[0] <= self.speed[1] < 1:
            raise ValueError(f"speed: need 0 <= least <= most < 1 (fraction of the side per frame), got {self.speed}")
        if not 0 <= self.camera < 1:
            raise ValueError(f"camera: need 0 <= camera < 1 (fraction of the side per frame), got {self.camera}")


class Scene(NamedTuple):
    """One rendered scene: ``frames`` ``(T, H, W, 3)`` uint8 RGB; ``boxes`` ``(T, K, 4)``
    float32 ``(x1, y1, x2, y2)`` pixels of each object's visible outline clipped to the frame
    (NaN where it is out of view); ``masks`` ``(T, H, W)`` uint8 object ids (0 background,
    ``k + 1`` object ``k``, the front one where they overlap, a pixel belonging to an object
    when it covers at least half of it); ``actions``: each object's action names (of
    ``SCENE_ACTIONS``); ``moving`` ``(K,)`` bool: the objects that move in the world."""

    frames: np.ndarray
    boxes: np.ndarray
    masks: np.ndarray
    actions: tuple[tuple[str, ...], ...]
    moving: np.ndarray


def _scene_actions(rng: np.random.Generator, config: SceneConfig) -> tuple[str, ...]:
    if rng.random() < config.still:
        return ("stand",)
    translation = tuple(_TRANSLATIONS)[rng.integers(len(_TRANSLATIONS))]
    if translation == "stand" or rng.random() < config.change:
        return (translation, _CHANGES[rng.integers(len(_CHANGES))])
    return (translation,)


def _scene_pose(rng: np.random.Generator, actions: tuple[str, ...], config: SceneConfig,
                camera: np.ndarray) -> _Pose:
    """The pose of one object in image pixels: world trajectory minus the camera's."""
    n, side = config.num_frames, config.size
    t = np.arange(n, dtype=np.float64)
    radius = np.full(n, rng.uniform(*config.object_size) * side / 2)
    if "grow" in actions:
        radius = radius * np.exp(np.log(rng.uniform(*SCALE_RANGE)) * (t / (n - 1) - 0.5))
    if "pulse" in actions:
        period, phase = rng.uniform(6, 10), rng.uniform(0, 2 * np.pi)
        radius = radius * (1 + 0.3 * np.sin(2 * np.pi * t / period + phase))
    spin = np.deg2rad(rng.uniform(*SPIN_RANGE)) * rng.choice([-1, 1]) if "rotate" in actions else 0.0
    velocity = np.multiply(_TRANSLATIONS[actions[0]], rng.uniform(*config.speed) * side)
    travel = velocity[None] * (t[:, None] - (n - 1) / 2) - camera  # centred trajectory, in the image
    margin = radius.max()
    low = margin - travel.min(axis=0)
    high = side - margin - travel.max(axis=0)
    start = rng.uniform(np.minimum(low, high), np.maximum(low, high))  # in view all along when it fits
    return _Pose(_SHAPES[SHAPES[rng.integers(len(SHAPES))]], start[None] + travel, radius,
                 rng.uniform(0, 2 * np.pi) + spin * t)


def render_scene(rng: np.random.Generator, config: SceneConfig | None = None) -> Scene:
    """Render one scene of :class:`SceneConfig` (see :class:`Scene` for what comes back).

    Objects are drawn back to front in the order of their index; every object's pose,
    colours and actions come from ``rng``, so the same generator state gives the same scene.
    """
    config = config or SceneConfig()
    n, side = config.num_frames, config.size
    camera_speed = rng.uniform(-config.camera, config.camera, 2) * side
    camera = camera_speed[None] * (np.arange(n)[:, None] - (n - 1) / 2)  # (T, 2) pan offset
    pad = int(np.ceil(np.abs(camera).max())) + 1
    world = textured_background(rng, side + 2 * pad)
    frames = np.stack([cv2.warpAffine(world, np.float32([[1, 0, -pad - cx], [0, 1, -pad - cy]]), (side, side),
                                      flags=cv2.INTER_LINEAR) for cx, cy in camera])
    count = int(rng.integers(config.objects[0], config.objects[1] + 1))
    actions, masks = [], np.zeros((n, side, side), np.uint8)
    boxes = np.full((n, count, 4), np.nan, np.float32)
    for k in range(count):
        actions.append(_scene_actions(rng, config))
        pose = _scene_pose(rng, actions[-1], config, camera)
        colour, stripe_colour = _object_colours(rng, frames[0])
        alpha = _coverage(pose, side)
        frames += alpha[..., None] * (colour + _stripes(rng, pose, side) * (stripe_colour - colour) - frames)
        masks[alpha >= 0.5] = k + 1
    for k in range(count):
        for t in range(n):
            ys, xs = np.nonzero(masks[t] == k + 1)
            if len(xs):
                boxes[t, k] = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    frames += NOISE_STD * rng.standard_normal(frames.shape, dtype=np.float32)
    moving = np.array([a != ("stand",) for a in actions])
    return Scene(np.clip(np.rint(frames), 0, 255).astype(np.uint8), boxes, masks, tuple(actions), moving)
