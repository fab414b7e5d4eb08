"""Synthetic multi-object tracking scenes with exact ground truth.

A scene is ``N`` textured, person-shaped rectangles moving over a textured background
(:func:`deepvideo.data.synthetic` backgrounds), each with its own constant velocity plus a
small random walk, bouncing off the edges of the world.  Every object has a depth: nearer
objects are painted over farther ones, so paths that cross occlude each other.  The camera
may pan across a world wider than the frame.  Every object has its own appearance (two
body colours and stripes of a third), which is what a re-identification embedding learns.

Ground truth comes in MOTChallenge rows (``frame, id, x, y, w, h, conf, class, visibility,
-1``, MOT16 gt columns, frames and ids from 1): one row per object and frame where some of
it is seen, its box clipped to the frame, ``visibility`` the fraction of its box that is
seen (in the frame and not hidden by nearer objects).  :func:`noisy_detections` turns that
into a detector's output (misses, jitter, false positives, scores that fall with
visibility), the input the trackers run on; :func:`crossing_scene` is the classic
identity-switch case of two objects walking through each other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepvideo.data.synthetic import textured_background
from deepvideo.io import write_video
from deepvideo.track.motio import write_mot

__all__ = ["Scene", "crossing_scene", "jitter_boxes", "make_scene", "noisy_detections", "render_scene"]


@dataclass
class Scene:
    """Frames ``(T, H, W, 3)`` uint8 RGB (``None`` when not rendered) and ground truth
    ``gt`` ``(N, 10)`` MOT rows; ``fps`` for writing the video."""

    frames: np.ndarray | None
    gt: np.ndarray
    fps: float = 10.0

    def write(self, folder: str | os.PathLike, name: str = "scene") -> tuple[Path, Path]:
        """Write ``folder/<name>.mp4`` (h264 at crf 0, yuv420p) and ``folder/<name>.gt.txt``;
        returns both paths."""
        if self.frames is None:
            raise ValueError(f"{name}: the scene was made with render=False; no frames to write")
        folder = Path(folder)
        video = write_video(folder / f"{name}.mp4", self.frames, self.fps, crf=0)
        return video, write_mot(folder / f"{name}.gt.txt", self.gt)


def _texture(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A person-like pattern ``(h, w, 3)`` float32: upper and lower body colours, stripes of a
    third colour at a random period and orientation over the upper body."""
    upper, lower, stripe = rng.uniform(20, 235, (3, 3))
    tex = np.empty((h, w, 3), np.float32)
    split = int(h * rng.uniform(0.4, 0.6))
    tex[:split], tex[split:] = upper, lower
    period = rng.uniform(3, 8)
    yy, xx = np.mgrid[0:split, 0:w]
    axis = yy if rng.random() < 0.5 else xx
    tex[:split][(axis // (period / 2)) % 2 == 0] = stripe
    return tex


def render_scene(boxes: np.ndarray, depth: np.ndarray, size: tuple[int, int], seed: int = 0,
                 pan: float = 0.0, noise: float = 2.0, render: bool = True, fps: float = 10.0
                 ) -> Scene:
    """Render objects moving along given world boxes.

    Args:
        boxes: ``(T, N, 4)`` world boxes ``(x, y, w, h)`` of ``N`` objects (integers are
            used; ``w, h`` constant per object).  The world is as high as the frame and as
            wide as ``W + pan * (T - 1)``.
        depth: ``(N,)`` smaller is nearer: nearer objects hide farther ones.
        size: frame ``(H, W)``.
        pan: camera speed in pixels/frame to the right (the view starts at world x = 0).
        noise: standard deviation of the per-frame pixel noise.
        render: paint frames (``False``: ground truth only, much faster).
    """
    boxes = np.asarray(boxes, np.float64)
    if boxes.ndim != 3 or boxes.shape[2] != 4 or not np.isfinite(boxes).all():
        raise ValueError(f"boxes must be a finite (T, N, 4) array x, y, w, h, got shape {boxes.shape}")
    if np.shape(depth) != boxes.shape[1:2]:
        raise ValueError(f"depth must be ({boxes.shape[1]},): one per object, got shape {np.shape(depth)}")
    if pan < 0:
        raise ValueError(f"pan must be >= 0 (the camera moves right), got {pan}")
    rng = np.random.default_rng(seed)
    boxes = np.rint(boxes).astype(np.int64)
    num_frames, num_objects = boxes.shape[:2]
    height, width = size
    world_width = width + int(np.ceil(pan * (num_frames - 1)))
    background = textured_background(rng, max(height, world_width))[:height] if render else None
    textures = [_texture(rng, int(boxes[0, k, 2]), int(boxes[0, k, 3])) for k in range(num_objects)]
    order = np.argsort(-np.asarray(depth), kind="stable")  # far to near
    frames = np.empty((num_frames, height, width, 3), np.uint8) if render else None
    rows = []
    for t in range(num_frames):
        offset = int(round(pan * t))
        owner = np.full((height, width), -1, np.int64)
        canvas = background[:, offset:offset + width].copy() if render else None
        for k in order:
            x, y, w, h = boxes[t, k]
            x -= offset
            x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
            if x1 <= x0 or y1 <= y0:
                continue
            owner[y0:y1, x0:x1] = k
            if render:
                canvas[y0:y1, x0:x1] = textures[k][y0 - y:y1 - y, x0 - x:x1 - x]
        seen = np.bincount(owner.ravel() + 1, minlength=num_objects + 1)[1:]
        for k in range(num_objects):
            x, y, w, h = boxes[t, k]
            x -= offset
            x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
            if seen[k] and x1 > x0 and y1 > y0:
                rows.append([t + 1, k + 1, x0, y0, x1 - x0, y1 - y0, 1, 1, seen[k] / (w * h), -1])
        if render:
            canvas += noise * rng.standard_normal(canvas.shape, dtype=np.float32)
            frames[t] = np.clip(canvas, 0, 255).astype(np.uint8)
    return Scene(frames, np.array(rows, np.float64).reshape(-1, 10), fps)


def make_scene(num_objects: int = 8, num_frames: int = 60, size: tuple[int, int] = (240, 320),
               pan: float = 0.0, speed: float = 3.0, seed: int = 0, render: bool = True,
               fps: float = 10.0, heights: tuple[float, float] = (1 / 6, 1 / 3)) -> Scene:
    """A random scene: ``num_objects`` objects of 1:2 to 1:3 aspect, heights between
    ``heights`` times the frame height, random depths, starting anywhere in the world and
    moving at up to ``speed`` pixels/frame (mostly sideways, as pedestrians in a street scene)
    with a random walk on the velocity, bouncing off the world's edges; ``pan`` moves the
    camera."""
    rng = np.random.default_rng(seed)
    height, width = size
    world_width = width + pan * (num_frames - 1)
    h = rng.uniform(heights[0] * height, heights[1] * height, num_objects)
    w = h / rng.uniform(2, 3, num_objects)
    position = np.stack([rng.uniform(0, world_width - w), rng.uniform(0, height - h)], axis=1)
    velocity = rng.uniform(-1, 1, (num_objects, 2)) * [speed, speed / 3]
    low, high = np.zeros((num_objects, 2)), np.stack([world_width - w, height - h], axis=1)
    boxes = np.empty((num_frames, num_objects, 4))
    for t in range(num_frames):
        boxes[t] = np.concatenate([position, np.stack([w, h], axis=1)], axis=1)
        velocity += rng.normal(0, speed / 20, velocity.shape)
        position = position + velocity
        bounce = (position < low) | (position > high)
        velocity[bounce] *= -1
        position = np.clip(position, low, high)
    return render_scene(boxes, rng.permutation(num_objects), size, seed=seed + 1, pan=pan,
                        render=render, fps=fps)


def crossing_scene(num_frames: int = 40, size: tuple[int, int] = (120, 200), speed: float = 3.0,
                   seed: int = 0) -> Scene:
    """Two objects of the same size walk towards each other on the same line, and the nearer
    one (id 1, from the left) hides the farther one (id 2) while they pass."""
    height, width = size
    h, w = height // 2, height // 5
    t = np.arange(num_frames)
    x1 = (width - w) / 2 - speed * (num_frames - 1) / 2 + speed * t
    x2 = (width - w) / 2 + speed * (num_frames - 1) / 2 - speed * t
    y = (height - h) / 2
    boxes = np.stack([np.stack([x1, np.full_like(x1, y), np.full_like(x1, w), np.full_like(x1, h)], 1),
                      np.stack([x2, np.full_like(x2, y), np.full_like(x2, w), np.full_like(x2, h)], 1)],
                     axis=1)
    return render_scene(boxes, np.array([0, 1]), size, seed=seed)


def jitter_boxes(boxes: np.ndarray, jitter: float, rng: np.random.Generator) -> np.ndarray:
    """Boxes ``(N, 4)`` ``(x, y, w, h)`` with each corner moved by Gaussian noise of std
    ``jitter`` times the box size (at least 1 px wide and high)."""
    boxes = np.asarray(boxes, np.float64)
    corners = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
    corners += rng.normal(0, jitter, corners.shape) * boxes[:, [2, 3, 2, 3]]
    return np.concatenate([corners[:, :2], np.maximum(corners[:, 2:] - corners[:, :2], 1)], axis=1)


def noisy_detections(gt: np.ndarray, seed: int = 0, min_visibility: float = 0.5,
                     miss_rate: float = 0.05, jitter: float = 0.05, false_per_frame: float = 0.0,
                     size: tuple[int, int] | None = None, keep_ids: bool = False) -> np.ndarray:
    """A simulated detector's output from scene ground truth ``gt`` (rows of
    :func:`render_scene`): MOT detection rows ``frame, -1, x, y, w, h, score, -1, -1, -1``.

    Objects less visible than ``min_visibility`` are missed, the others with probability
    ``miss_rate``; box corners move by ``jitter`` times the box size (Gaussian std); scores
    are ``0.5 + 0.5 * visibility`` plus noise, clipped to ``[0.05, 1]``.  With ``size``
    ``(H, W)`` each frame also gets Poisson(``false_per_frame``) false boxes scoring 0.1-0.5.
    ``keep_ids`` keeps the true object id in column 1 (false boxes: 0) instead of -1, for
    oracle experiments.
    """
    rng = np.random.default_rng(seed)
    gt = np.asarray(gt, np.float64)
    keep = (gt[:, 8] >= min_visibility) & (rng.random(len(gt)) >= miss_rate)
    rows = gt[keep].copy()
    rows[:, 2:6] = jitter_boxes(rows[:, 2:6], jitter, rng)
    rows[:, 6] = np.clip(0.5 + 0.5 * rows[:, 8] + rng.normal(0, 0.05, len(rows)), 0.05, 1)
    rows[:, 7:] = -1
    if not keep_ids:
        rows[:, 1] = -1
    if size is not None and false_per_frame > 0 and len(gt):
        height, width = size
        frames = np.arange(1, int(gt[:, 0].max()) + 1)
        counts = rng.poisson(false_per_frame, len(frames))
        n = int(counts.sum())
        h = rng.uniform(height / 8, height / 3, n)
        w = h / rng.uniform(2, 3, n)
        fake = np.column_stack([np.repeat(frames, counts), np.full(n, 0 if keep_ids else -1),
                                rng.uniform(0, width - w),
                                rng.uniform(0, height - h), w, h, rng.uniform(0.1, 0.5, n),
                                -np.ones((n, 3))])
        rows = np.concatenate([rows, fake])
    return rows[np.argsort(rows[:, 0], kind="stable")]
