"""Segmenting the moving objects of one video: decode, segment, write masks and an overlay.

:func:`segment_video` reads the whole video (a file, a frame folder or a packed video,
through :func:`deepvideo.io.open_video`) into memory, segments it with a trained network or
the flow-threshold baseline (:func:`deepvideo.segment.train.segmenter`), writes one DAVIS
palette PNG per frame (``00000.png``, ...; 1 = moving) and, with ``video_out``, the video
again with the moving pixels tinted in DAVIS's colour of object 1.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepvideo.io import open_video, write_video
from deepvideo.segment.davis import DAVIS_PALETTE, write_masks
from deepvideo.segment.train import segmenter

__all__ = ["overlay_masks", "segment_video"]


def overlay_masks(frames: np.ndarray, masks: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``frames`` ``(T, H, W, 3)`` uint8 with the pixels of object ``k`` of ``masks``
    ``(T, H, W)`` blended (``alpha``) with DAVIS's colour ``k``: ``(T, H, W, 3)`` uint8."""
    colours = DAVIS_PALETTE[masks].astype(np.float32)
    tinted = (1 - alpha) * frames.astype(np.float32) + alpha * colours
    return np.where(masks[..., None] > 0, np.rint(tinted), frames).astype(np.uint8)


def segment_video(video: str | os.PathLike, source: str | os.PathLike, out_dir: str | os.PathLike,
                  video_out: str | os.PathLike | None = None, threshold: float | None = None,
                  device: torch.device | str = "cpu") -> dict[str, Any]:
    """Moving-object masks of ``video`` by ``source`` (a checkpoint of
    :func:`~deepvideo.segment.train.train_segmenter`, or ``"flow"`` for the baseline with
    ``threshold`` px/frame), written to ``out_dir`` as palette PNGs; with ``video_out`` also
    the overlay video.  Returns ``{"video", "frames", "moving_fraction", "masks", "video_out"}``.
    ``ValueError`` for a video of fewer than 2 frames."""
    with open_video(video) as reader:
        frames = reader.read(np.arange(reader.num_frames))
        fps = reader.fps
    if len(frames) < 2:
        raise ValueError(f"{video}: {len(frames)} frame(s); moving-object segmentation needs at least 2")
    masks = segmenter(source, device, threshold)(frames)
    write_masks(out_dir, masks)
    if video_out is not None:
        write_video(video_out, overlay_masks(frames, masks), fps)
    return {"video": str(video), "frames": len(frames), "moving_fraction": round(float(masks.mean()), 4),
            "masks": str(Path(out_dir)), "video_out": None if video_out is None else str(video_out)}
