"""Evaluation: clip accuracy and video accuracy by averaging softmax over K clips per video.

The test-time protocol of the course (and of C3D, I3D, SlowFast): sample K uniformly
spaced clips from every test video, average the K softmax vectors, and take the argmax
as the video's prediction.  A two-stream model's clip probabilities are its fused ones
(:class:`~deepvideo.models.two_stream.TwoStreamOutput`), averaged the same way.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from deepvideo.engine.batch import class_probs, class_scores, flatten_views, forward, map_output, output_loss
from deepvideo.engine.device import autocast, prepare_input
from deepvideo.engine.distributed import all_gather_objects, all_sum, is_main, rank, world_size
from deepvideo.engine.metrics import video_metrics

__all__ = ["evaluate", "fuse_results"]


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, batch_size: int = 8,
             device: torch.device | str = "cpu", amp: str = "none", channels_last: bool = False,
             workers: int = 0, progress: bool = False) -> dict[str, Any]:
    """Evaluate ``model`` on a dataset yielding ``(clips, label, video_index)``.

    ``clips`` is ``(C, T, H, W)`` (one clip per video) or ``(K, C, T, H, W)`` (K clips or
    views), or for a two-stream model (modality ``rgb+flow``) a pair ``(rgb, flow)`` of such
    tensors with the same ``K``.  Returns the metrics of
    :func:`deepvideo.engine.metrics.video_metrics` plus ``loss`` (mean clip loss, see
    :func:`~deepvideo.engine.batch.output_loss`), ``bad_videos``, ``video_probs``
    ``(V, classes)`` and, per row, ``video_indices`` (dataset indices) and ``video_labels``.
    For a two-stream model the metrics are the fused prediction's, and
    ``spatial_clip_acc``, ``spatial_video_acc1``, ``temporal_clip_acc``,
    ``temporal_video_acc1`` give each stream's.
    A video that could not be decoded is reported in ``bad_videos`` and left out.

    Under ``torch.distributed`` (see :mod:`deepvideo.engine.distributed`) the processes
    share the videos and every process returns the metrics of all of them.
    """
    device = torch.device(device)
    model.eval()
    # Under torch.distributed each process scores the videos rank, rank + world, ...: no
    # DistributedSampler padding, so every video is scored exactly once, then gathered.
    requested = list(range(rank(), len(dataset), world_size()))
    loader = DataLoader(dataset, batch_size=batch_size, sampler=requested, num_workers=workers,
                        pin_memory=device.type == "cuda")
    # per prediction ("" the model's, or "spatial"/"temporal" of a two-stream one)
    probs: dict[str, dict[int, np.ndarray]] = defaultdict(dict)
    correct: dict[str, int] = defaultdict(int)
    labels: dict[int, int] = {}
    loss_sum, clip_count = 0.0, 0
    position = 0
    for clips, target, index in tqdm(loader, desc="evaluate", leave=False, disable=not progress or not is_main()):
        flat, views = flatten_views(clips)
        with autocast(device, amp):
            output = forward(model, prepare_input(flat, device, channels_last))
        # a replacement for an unreadable video comes back under its own index: count it once
        own = index == torch.tensor(requested[position:position + len(index)])
        position += len(index)
        output = map_output(lambda t: t.float().cpu().view(len(target), views, -1)[own], output)  # (n, V, K)
        clip_target = target[own].repeat_interleave(views)
        loss_sum += output_loss(map_output(lambda t: t.flatten(0, 1), output), clip_target, "sum").item()
        clip_count += len(clip_target)
        for name, scores in class_scores(output).items():  # clip accuracy: argmax of logits, as in training
            correct[name] += int((scores.argmax(2) == target[own, None]).sum())
        for name, p in class_probs(output).items():
            probs[name].update(zip(index[own].tolist(), p.mean(dim=1).numpy()))
        labels.update(zip(index[own].tolist(), target[own].tolist()))
    bad = dataset.bad_videos() if hasattr(dataset, "bad_videos") else []
    if world_size() > 1:
        totals: dict[str, int] = defaultdict(int)
        for part_probs, part_correct, part_labels, part_bad in all_gather_objects((probs, correct, labels, bad)):
            for name, rows in part_probs.items():
                probs[name].update(rows)
            for name, count in part_correct.items():
                totals[name] += count
            labels.update(part_labels)
            bad = sorted(set(bad) | set(part_bad))
        correct = totals
        loss_sum, clip_count = all_sum([loss_sum, clip_count])
        clip_count = int(clip_count)
    order = sorted(labels)
    truth = np.array([labels[i] for i in order])
    matrix = np.stack([probs[""][i] for i in order])
    result = video_metrics(matrix, truth, correct[""], clip_count)
    for name in sorted(set(probs) - {""}):
        stream = video_metrics(np.stack([probs[name][i] for i in order]), truth, correct[name], clip_count)
        result.update({f"{name}_clip_acc": stream["clip_acc"], f"{name}_video_acc1": stream["video_acc1"]})
    result.update(loss=loss_sum / max(clip_count, 1), bad_videos=[str(p) for p in bad],
                  video_probs=matrix, video_indices=order, video_labels=[labels[i] for i in order])
    return result


def fuse_results(results: Sequence[dict[str, Any]], weights: Sequence[float] | None = None
                 ) -> dict[str, Any]:
    """Late fusion of several models' evaluations of the same videos (two-stream fusion).

    Each result is :func:`evaluate`'s (its ``video_probs`` ``(V, classes)``, the mean softmax
    over a video's clips); the fused probabilities are their ``weights``-weighted average
    (equal weights by default), over the videos every model could read.  Returns the video
    metrics of :func:`~deepvideo.engine.metrics.video_metrics` (no clip accuracy: fusion
    works per video) with ``video_probs``, ``video_indices`` and ``video_labels``.
    """
    weights = [1.0] * len(results) if weights is None else [float(w) for w in weights]
    if len(weights) != len(results) or min(weights) <= 0:
        raise ValueError(f"need one positive fusion weight per model, got {weights} for {len(results)}")
    common = sorted(set.intersection(*(set(r["video_indices"]) for r in results)))
    if not common:
        raise ValueError("the evaluations share no video: nothing to fuse")
    fused = np.zeros((len(common), results[0]["video_probs"].shape[1]))
    labels = None
    for result, weight in zip(results, weights):
        rows = [result["video_indices"].index(i) for i in common]
        fused += weight * result["video_probs"][rows]
        these = np.asarray(result["video_labels"])[rows]
        if labels is not None and not np.array_equal(labels, these):
            raise ValueError("the evaluations label the same videos differently: not the same dataset")
        labels = these
    fused /= sum(weights)
    metrics = video_metrics(fused, labels, 0, 0)
    del metrics["clip_acc"], metrics["num_clips"]
    metrics.update(video_probs=fused, video_indices=common, video_labels=labels.tolist())
    return metrics
