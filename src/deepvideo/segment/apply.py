"""Segmenting the moving objects of one video: decode, segment, write masks and an overlay.

:func:`segment_video` reads the video (a file, a frame folder or a packed video, through
:func:`deepvideo.io.open_video`) a chunk at a time, segments it with a trained network or
the flow-threshold baseline (:func:`deepvideo.segment.train.segmenter`), writes one DAVIS
palette PNG per frame (``00000.png``, ...; 1 = moving) and, with ``video_out``, the video
again with the moving pixels tinted in DAVIS's colour of object 1.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from deepvideo.io import open_video
from deepvideo.io.encode import VideoWriter
from deepvideo.segment.davis import DAVIS_PALETTE, write_masks
from deepvideo.segment.train import segmenter

__all__ = ["CHUNK", "CONTEXT", "overlay_masks", "segment_video"]

CHUNK = 64  # frames segmented at a time
CONTEXT = 8  # frames of the neighbouring chunks each chunk also sees (a network's clip, the flow to the next frame)


def overlay_masks(frames: np.ndarray, masks: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``frames`` ``(T, H, W, 3)`` uint8 with the pixels of object ``k`` of ``masks``
    ``(T, H, W)`` blended (``alpha``) with DAVIS's colour ``k``: ``(T, H, W, 3)`` uint8."""
    colours = DAVIS_PALETTE[masks].astype(np.float32)
    tinted = (1 - alpha) * frames.astype(np.float32) + alpha * colours
    return np.where(masks[..., None] > 0, np.rint(tinted), frames).astype(np.uint8)


def segment_video(video: str | os.PathLike, source: str | os.PathLike, out_dir: str | os.PathLike,
                  video_out: str | os.PathLike | None = None, threshold: float | None = None,
                  device: torch.device | str = "cpu", chunk: int = CHUNK, progress: bool = False) -> dict[str, Any]:
    """Moving-object masks of ``video`` by ``source`` (a checkpoint of
    :func:`~deepvideo.segment.train.train_segmenter`, or ``"flow"`` for the baseline with
    ``threshold`` px/frame), written to ``out_dir`` as palette PNGs; with ``video_out`` also
    the overlay video.  The video is read ``chunk`` frames at a time, each with ``CONTEXT``
    frames of the chunks around it (their masks are not kept), so memory does not grow with
    its length.  Returns ``{"video", "frames", "moving_fraction", "masks", "video_out"}``.
    ``ValueError`` for a video of fewer than 2 frames, a non-empty ``out_dir`` (masks of
    another video would mix with these) or a ``threshold`` given with a checkpoint."""
    if chunk < 2:
        raise ValueError(f"chunk: at least 2 frames, got {chunk}")
    if Path(out_dir).is_dir() and any(Path(out_dir).iterdir()):
        raise ValueError(f"{out_dir}: not empty; give a new folder (masks of another video would mix with these)")
    segment = segmenter(source, device, threshold)
    moving = 0.0
    with open_video(video) as reader, ExitStack() as stack:
        count, height, width = reader.num_frames, reader.height, reader.width
        if count < 2:
            raise ValueError(f"{video}: {count} frame(s); moving-object segmentation needs at least 2")
        writer = stack.enter_context(VideoWriter(video_out, reader.fps, width, height)) if video_out else None
        for start in tqdm(range(0, count, chunk), desc=f"segment {Path(video).name}", unit="chunk",
                          disable=not progress):
            end = min(start + chunk, count)
            first, last = max(0, start - CONTEXT), min(count, end + CONTEXT)
            frames = reader.read(np.arange(first, last))
            masks = segment(frames)[start - first:end - first]
            write_masks(out_dir, masks, [f"{i:05d}" for i in range(start, end)])
            moving += float(masks.sum())
            if writer is not None:
                for frame in overlay_masks(frames[start - first:end - first], masks):
                    writer.write(frame)
    return {"video": str(video), "frames": count, "moving_fraction": round(moving / (count * height * width), 4),
            "masks": str(Path(out_dir)), "video_out": None if video_out is None else str(video_out)}
