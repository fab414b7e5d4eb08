"""The flow-threshold baseline of moving-object segmentation: no learning.

Per frame, the dense optical flow to the next frame (OpenCV's Farneback by default, through
:func:`deepvideo.flow.clip_flow`; the last frame takes the reversed flow to the one before),
minus the dominant motion -- the per-frame median flow, which is the camera's when the
background covers most of the frame -- leaves the objects' own motion; a pixel whose
residual speed exceeds ``threshold`` pixels per frame is moving.  The threshold is a
parameter; :func:`fit_flow_threshold` chooses it on training sequences by J&F, and
:data:`FLOW_THRESHOLD` is that choice on the built-in set's training split (64 px frames).
Frames are ``(T, H, W, 3)`` uint8 RGB, flows ``(T, 2, H, W)`` float32, masks ``(T, H, W)``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from deepvideo.flow import clip_flow, estimate_flow
from deepvideo.segment.metrics import evaluate_sequences

__all__ = ["FLOW_THRESHOLD", "fit_flow_threshold", "flow_threshold_masks", "frame_flows", "residual_flows",
           "residual_speed"]

FLOW_THRESHOLD = 1.0  # px/frame: fit_flow_threshold on the built-in set's train split (benchmarks/segment.py)


def frame_flows(frames: np.ndarray, method: str = "farneback") -> np.ndarray:
    """One flow field per frame ``(T, 2, H, W)`` float32 of ``frames`` ``(T, H, W, 3)`` uint8
    (``T >= 2``): frame ``t``'s flow to frame ``t + 1``, and for the last frame the negated
    flow to the frame before (an estimate of its forward motion, on its own pixels)."""
    flows = clip_flow(frames, method)
    last = -estimate_flow(frames[-1], frames[-2], method)
    return np.concatenate([flows, last[None]])


def residual_flows(flows: np.ndarray) -> np.ndarray:
    """``flows`` ``(T, 2, H, W)`` less each frame's median flow (the dominant, camera motion):
    the objects' own motion, float32."""
    camera = np.median(flows.reshape(*flows.shape[:2], -1), axis=2)
    return (flows - camera[..., None, None]).astype(np.float32)


def residual_speed(flows: np.ndarray) -> np.ndarray:
    """Speed ``(T, H, W)`` float32 of ``flows`` ``(T, 2, H, W)`` after subtracting each
    frame's median flow (:func:`residual_flows`)."""
    return np.sqrt((residual_flows(flows) ** 2).sum(axis=1)).astype(np.float32)


def flow_threshold_masks(frames: np.ndarray, threshold: float = FLOW_THRESHOLD, method: str = "farneback",
                         flows: np.ndarray | None = None) -> np.ndarray:
    """Moving-object masks ``(T, H, W)`` uint8 (1 = moving) of ``frames`` ``(T, H, W, 3)``
    uint8: residual speed above ``threshold`` px/frame.  ``flows`` (from :func:`frame_flows`)
    skips the flow computation."""
    if threshold < 0:
        raise ValueError(f"threshold: a speed >= 0 in px/frame, got {threshold}")
    flows = frame_flows(frames, method) if flows is None else flows
    return (residual_speed(flows) > threshold).astype(np.uint8)


def fit_flow_threshold(sequences: Mapping[str, tuple[np.ndarray, np.ndarray]],
                       candidates: Sequence[float] = tuple(np.round(np.arange(0.1, 1.51, 0.05), 2)),
                       method: str = "farneback") -> tuple[float, float]:
    """The threshold of ``candidates`` with the best DAVIS J&F on ``sequences`` (``{name:
    (frames (T, H, W, 3) uint8, masks (T, H, W))}``, training sequences) and that J&F."""
    if not sequences:
        raise ValueError("fit_flow_threshold: no sequences")
    speeds = {name: residual_speed(frame_flows(frames, method)) for name, (frames, _) in sequences.items()}
    truth = {name: masks for name, (_, masks) in sequences.items()}
    scores = [evaluate_sequences(truth, {name: speed > threshold for name, speed in speeds.items()},
                                     task="unsupervised")
              .global_table()["J&F-Mean"] for threshold in candidates]
    best = int(np.argmax(scores))
    return float(candidates[best]), float(scores[best])
