"""Prediction on one video file: sliding-window scores and a video-level answer.

The video is read window by window (a few windows at a time), so memory does not grow
with its length.  Each window of ``clip_len`` frames (at the recipe's frame stride)
gets class probabilities; the video-level answer averages them.  The network is any
callable from a batch of clips ``(B, C, T, H, W)`` float32 to logits ``(B, num_classes)``:
a checkpoint's model, or an exported file run by :mod:`deepvideo.deploy` (same windows,
same transform, one implementation).
"""

from __future__ import annotations

import csv
import io
import os
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from deepvideo.data.sampling import SlidingWindowSampler
from deepvideo.engine.device import autocast, prepare_input
from deepvideo.engine.recipe import Recipe
from deepvideo.io import open_video

__all__ = ["predict_video", "predictions_to_csv", "top_classes"]


def top_classes(probs: np.ndarray, classes: list[str], k: int) -> list[dict[str, Any]]:
    """The ``k`` most probable of ``probs`` ``(num_classes,)`` as ``[{"label", "prob"}]``, best first."""
    order = np.argsort(-probs)[:k]
    return [{"label": classes[i], "prob": round(float(probs[i]), 6)} for i in order]


@torch.no_grad()
def predict_video(model: Callable[[torch.Tensor], torch.Tensor], path: str | os.PathLike, recipe: Recipe,
                  step: int | None = None, topk: int = 5, batch_size: int = 4, device: torch.device | str = "cpu",
                  amp: str = "none", progress: bool = False) -> dict[str, Any]:
    """Sliding-window predictions for one video.

    Args:
        model: clips ``(B, C, T, H, W)`` float32 on ``device`` -> logits ``(B, num_classes)``;
            an ``nn.Module`` is put in eval mode.
        step: frames between window starts (default: one window span, no overlap).
    Raises ``ValueError`` for a recipe of a modality other than rgb.
    Returns ``{"video", "num_frames", "fps", "windows": [{"start", "end", "top"}], "top"}``
    with times in seconds and ``top`` a list of ``{"label", "prob"}``.
    """
    if recipe.modality != "rgb":
        raise ValueError(f"predict reads RGB windows; a {recipe.model} checkpoint of the {recipe.modality} "
                         f"modality is scored with deepvideo eval")
    device = torch.device(device)
    if isinstance(model, nn.Module):
        model.eval()
    transform = recipe.transform(train=False)
    sampler = SlidingWindowSampler(recipe.clip_len, stride=recipe.frame_stride, step=step)
    windows: list[dict[str, Any]] = []
    all_probs = []
    with open_video(path) as reader:
        indices = sampler(reader.num_frames)
        frame_step = 1.0 / reader.fps if reader.fps else 0.0
        rng = np.random.default_rng(0)
        for first in tqdm(range(0, len(indices), batch_size), desc="predict", leave=False,
                          disable=not progress):
            chunk = indices[first:first + batch_size]
            frames = reader.read(chunk.reshape(-1)).reshape(*chunk.shape, reader.height, reader.width, 3)
            clips = torch.stack([transform(clip, rng) for clip in frames])
            with autocast(device, amp):
                logits = model(prepare_input(clips, device, False))
            probs = F.softmax(logits.float(), dim=1).cpu().numpy()
            for window, p in zip(chunk, probs):
                windows.append({"start": round(float(reader.frame_times[window.min()]), 3),
                                "end": round(float(reader.frame_times[window.max()] + frame_step), 3),
                                "top": top_classes(p, recipe.classes, topk)})
                all_probs.append(p)
        info = {"video": str(path), "num_frames": reader.num_frames, "fps": reader.fps}
    info.update(windows=windows, top=top_classes(np.mean(all_probs, axis=0), recipe.classes, topk))
    return info


def predictions_to_csv(result: dict[str, Any]) -> str:
    """One CSV row per window and rank: start, end, rank, label, prob; then the video rows."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["start", "end", "rank", "label", "prob"])
    for window in result["windows"]:
        for rank, entry in enumerate(window["top"], 1):
            writer.writerow([window["start"], window["end"], rank, entry["label"], entry["prob"]])
    for rank, entry in enumerate(result["top"], 1):
        writer.writerow(["video", "video", rank, entry["label"], entry["prob"]])
    return out.getvalue()
