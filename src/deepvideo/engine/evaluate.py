"""Evaluation: clip accuracy and video accuracy by averaging softmax over K clips per video.

The test-time protocol of the course (and of C3D, I3D, SlowFast): sample K uniformly
spaced clips from every test video, average the K softmax vectors, and take the argmax
as the video's prediction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from deepvideo.engine.device import autocast, prepare_input
from deepvideo.engine.metrics import video_metrics

__all__ = ["evaluate"]


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, batch_size: int = 8,
             device: torch.device | str = "cpu", amp: str = "none", channels_last: bool = False,
             workers: int = 0, progress: bool = False) -> dict[str, Any]:
    """Evaluate ``model`` on a dataset yielding ``(clips, label, video_index)``.

    ``clips`` is ``(C, T, H, W)`` (one clip per video) or ``(K, C, T, H, W)`` (K clips or
    views).  Returns the metrics of :func:`deepvideo.engine.metrics.video_metrics` plus
    ``loss`` (mean clip cross-entropy), ``bad_videos`` and ``video_probs`` ``(V, classes)``.
    A video that could not be decoded is reported in ``bad_videos`` and left out.
    """
    device = torch.device(device)
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
    probs: dict[int, np.ndarray] = {}
    labels: dict[int, int] = {}
    loss_sum, clip_correct, clip_count = 0.0, 0, 0
    position = 0
    for clips, target, index in tqdm(loader, desc="evaluate", leave=False, disable=not progress):
        views = clips.shape[1] if clips.dim() == 6 else 1
        flat = clips.flatten(0, 1) if clips.dim() == 6 else clips
        with autocast(device, amp):
            logits = model(prepare_input(flat, device, channels_last))
        logits = logits.float().cpu().view(len(target), views, -1)
        # a replacement for an unreadable video comes back under its own index: count it once
        own = index == torch.arange(position, position + len(index))
        position += len(index)
        clip_logits, clip_target = logits[own].flatten(0, 1), target[own].repeat_interleave(views)
        loss_sum += F.cross_entropy(clip_logits, clip_target, reduction="sum").item()
        clip_correct += int((clip_logits.argmax(1) == clip_target).sum())
        clip_count += len(clip_target)
        video_probs = F.softmax(logits[own], dim=2).mean(dim=1)
        for i, p, y in zip(index[own].tolist(), video_probs.numpy(), target[own].tolist()):
            probs[i], labels[i] = p, y
    order = sorted(probs)
    matrix = np.stack([probs[i] for i in order])
    result = video_metrics(matrix, np.array([labels[i] for i in order]), clip_correct, clip_count)
    bad = dataset.bad_videos() if hasattr(dataset, "bad_videos") else []
    result.update(loss=loss_sum / max(clip_count, 1), bad_videos=[str(p) for p in bad],
                  video_probs=matrix, video_indices=order)
    return result
