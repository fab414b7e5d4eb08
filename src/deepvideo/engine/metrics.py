"""Classification metrics over clips and videos, and the interpolated average precision that
the detection evaluators (temporal: ActivityNet; spatio-temporal: AVA) share."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["confusion_matrix", "interpolated_average_precision", "topk_correct", "video_metrics"]


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, k: int = 1) -> int:
    """Number of rows of ``logits`` ``(N, num_classes)`` whose top-k contains the label."""
    k = min(k, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    return int((top == labels.view(-1, 1)).any(dim=1).sum())


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """``(num_classes, num_classes)`` int64 counts; rows are true classes, columns predictions."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def video_metrics(video_probs: np.ndarray, labels: np.ndarray, clip_correct: int, num_clips: int,
                  ) -> dict[str, float | list]:
    """Metrics from per-video class probabilities ``(V, num_classes)`` (mean over clips).

    Returns clip accuracy, video top-1 / top-5 accuracy, mean class accuracy (the mean over
    classes present of per-class recall) and the confusion matrix as nested lists.
    """
    num_classes = video_probs.shape[1]
    predictions = video_probs.argmax(axis=1)
    k = min(5, num_classes)
    top5 = np.argsort(-video_probs, axis=1)[:, :k]
    matrix = confusion_matrix(labels, predictions, num_classes)
    present = matrix.sum(axis=1) > 0
    per_class = matrix.diagonal()[present] / matrix.sum(axis=1)[present]
    return {
        "clip_acc": clip_correct / max(num_clips, 1),
        "video_acc1": float((predictions == labels).mean()),
        "video_acc5": float((top5 == labels[:, None]).any(axis=1).mean()),
        "mean_class_acc": float(per_class.mean()) if per_class.size else 0.0,
        "num_videos": int(len(labels)),
        "num_clips": int(num_clips),
        "confusion": matrix.tolist(),
    }


def interpolated_average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC 2010+ interpolated AP of a precision/recall curve (``(N,)`` each, detections by
    decreasing score): the sum of ``(r[i] - r[i-1]) * p_env[i]`` over the steps of
    ``r = [0, recall, 1]``, ``p_env`` the running maximum from the right of ``[0, precision, 0]``;
    0.0 for an empty curve.  ActivityNet's ``interpolated_prec_rec`` and the TF Object
    Detection API's ``metrics.compute_average_precision`` (AVA's evaluator) compute this."""
    precision = np.asarray(precision, dtype=np.float64)
    recall = np.asarray(recall, dtype=np.float64)
    if precision.shape != recall.shape or precision.ndim != 1:
        raise ValueError(f"precision {precision.shape} and recall {recall.shape} must be two (N,) arrays")
    if not precision.size:
        return 0.0
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mprec = np.maximum.accumulate(np.concatenate([[0.0], precision, [0.0]])[::-1])[::-1]
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[steps] - mrec[steps - 1]) * mprec[steps]))
