"""Temporal action detectors over a sequence of clip features.

Both detectors read the features of one untrimmed video, rows at a fixed stride, as
``(B, T, D)`` with a mask ``(B, T)`` of valid rows (videos of a batch are padded to the
longest), and work in *step units*: row ``i`` covers ``[i, i + 1)``; :mod:`deepvideo.detect.apply`
turns steps into seconds.  Ground truth enters as ``(B, G, 3)`` float rows ``start, end,
class`` in step units (class ``-1`` pads), detections leave as ``(K, 4)`` arrays ``start,
end, class, score`` per video.

* ``rnn`` -- Montes et al., "Temporal Activity Detection in Untrimmed Videos with Recurrent
  Neural Networks" (NIPS workshop 2016), the lecture's model: per-step features, an LSTM
  (or GRU), a class per step with background as class 0; at test time the probabilities are
  smoothed over a few steps, each step takes its most probable class, and runs of one
  action class become segments scored by the mean probability of that class over the run.
* ``anchor_free`` -- in the style of ActionFormer (Zhang et al., "ActionFormer: Localizing
  Moments of Actions with Transformers", ECCV 2022): a temporal feature pyramid (strided 1D
  convolutions), and at every position of every level a score per class (sigmoid focal loss)
  and the distances to the action's start and end (IoU loss); positives are the positions
  near a segment's centre whose level's regression range holds the segment's extent.
  Candidates are merged by 1D non-maximum suppression (greedy, or Gaussian Soft-NMS, Bodla
  et al. ICCV 2017) written here in PyTorch: nothing to compile.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from deepvideo.registry import Registry

__all__ = ["DETECTORS", "AnchorFreeDetector", "RNNDetector", "TemporalDetector", "build_detector", "nms_1d",
           "segments_iou"]

DETECTORS: Registry = Registry("detector")


def segments_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Temporal IoU of segments ``a`` ``(N, 2)`` and ``b`` ``(M, 2)`` (start, end) -> ``(N, M)``."""
    inter = (torch.minimum(a[:, None, 1], b[None, :, 1]) - torch.maximum(a[:, None, 0], b[None, :, 0])).clamp(min=0)
    union = (a[:, 1] - a[:, 0])[:, None] + (b[:, 1] - b[:, 0])[None, :] - inter
    return inter / union.clamp(min=1e-8)


def nms_1d(segments: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou_threshold: float = 0.5,
           soft: bool = False, sigma: float = 0.5, min_score: float = 1e-3, max_keep: int = 100
           ) -> torch.Tensor:
    """Per-class 1D non-maximum suppression of ``segments`` ``(K, 2)`` with ``scores`` and
    ``labels`` ``(K,)``; returns ``(N, 4)`` rows ``start, end, label, score``, best first.

    Greedy NMS drops a segment whose IoU with a kept one of its class exceeds
    ``iou_threshold``; ``soft`` (Gaussian Soft-NMS) instead multiplies its score by
    ``exp(-iou^2 / sigma)`` and drops it once below ``min_score``.
    """
    kept: list[torch.Tensor] = []
    for label in labels.unique():
        chosen = labels == label
        seg, score = segments[chosen], scores[chosen].clone()
        iou = segments_iou(seg, seg)
        alive = torch.ones(len(seg), dtype=torch.bool, device=seg.device)
        while alive.any():
            best = int(torch.where(alive, score, torch.full_like(score, -1.0)).argmax())
            kept.append(torch.cat([seg[best], label.view(1).to(seg), score[best].view(1)]))
            alive[best] = False
            if soft:
                score = torch.where(alive, score * torch.exp(-iou[best] ** 2 / sigma), score)
                alive &= score >= min_score
            else:
                alive &= iou[best] <= iou_threshold
    if not kept:
        return segments.new_zeros((0, 4))
    out = torch.stack(kept)
    return out[out[:, 3].argsort(descending=True)][:max_keep]


class TemporalDetector(nn.Module):
    """A detector over features ``(B, T, D)``: ``forward(features, mask)`` gives its raw
    outputs, :meth:`loss` their loss against ground truth ``(B, G, 3)`` and :meth:`detect`
    the segments per video.  ``stride`` is the number of steps the input length must be a
    multiple of (1 for most, ``2 ** (levels - 1)`` for a pyramid)."""

    stride: int = 1

    def loss(self, outputs: Any, ground_truth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def detect(self, outputs: Any, mask: torch.Tensor) -> list[np.ndarray]:
        raise NotImplementedError


def step_labels(ground_truth: torch.Tensor, length: int) -> torch.Tensor:
    """Per-step class ``(B, T)`` long: 1 + the class of the segment covering the step's
    centre ``i + 0.5``, 0 (background) where none does (the shortest wins an overlap)."""
    centre = torch.arange(length, device=ground_truth.device, dtype=ground_truth.dtype) + 0.5  # (T,)
    start, end, cls = ground_truth[..., 0:1], ground_truth[..., 1:2], ground_truth[..., 2:3]  # (B, G, 1)
    inside = (cls >= 0) & (start <= centre) & (centre < end)  # (B, G, T)
    extent = torch.where(inside, end - start, torch.full_like(inside, math.inf, dtype=ground_truth.dtype))
    shortest = extent.argmin(dim=1)  # (B, T)
    label = cls[..., 0].long().gather(1, shortest) + 1
    return torch.where(inside.any(dim=1), label, torch.zeros_like(label))


@DETECTORS.register("rnn", description="Montes et al. 2016: LSTM over clip features, a class per step")
class RNNDetector(TemporalDetector):
    """Per-step classification by a recurrent network (see the module docstring).

    Args:
        in_dim: feature size D; num_classes: action classes (background is added).
        hidden, layers, cell (``lstm`` or ``gru``), dropout: the network.
        smooth: steps of the moving average over the probabilities at test time.
        background_weight: weight of the background class in the cross-entropy (the other
            classes weigh 1); below 1 counters background's majority of the steps.
    """

    def __init__(self, in_dim: int, num_classes: int, hidden: int = 128, layers: int = 1, cell: str = "lstm",
                 dropout: float = 0.3, smooth: int = 3, background_weight: float = 1.0) -> None:
        super().__init__()
        if cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be lstm or gru, got {cell!r}")
        if smooth < 1:
            raise ValueError(f"smooth must be at least 1, got {smooth}")
        self.num_classes, self.smooth = num_classes, smooth
        self.register_buffer("class_weight", torch.tensor([background_weight] + [1.0] * num_classes),
                             persistent=False)
        self.embed = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.ReLU(inplace=True))
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(hidden, hidden, layers, batch_first=True)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, num_classes + 1))

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, T, num_classes + 1)``, class 0 the background."""
        hidden, _ = self.rnn(self.embed(features))
        return self.classifier(hidden)

    def loss(self, outputs: torch.Tensor, ground_truth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        target = step_labels(ground_truth, outputs.shape[1])
        return F.cross_entropy(outputs[mask].float(), target[mask], weight=self.class_weight)

    def detect(self, outputs: torch.Tensor, mask: torch.Tensor) -> list[np.ndarray]:
        probs = outputs.float().softmax(-1)
        result = []
        for p, valid in zip(probs, mask):
            p = p[valid].t()[None]  # (1, C + 1, T)
            if self.smooth > 1:
                p = F.avg_pool1d(F.pad(p, ((self.smooth - 1) // 2, self.smooth // 2), mode="replicate"),
                                 self.smooth, stride=1)
            p = p[0].t().cpu().numpy()  # (T, C + 1)
            labels = p.argmax(1)
            rows = []
            edges = np.flatnonzero(np.diff(np.r_[-1, labels, -1]))  # run starts, then the end
            for begin, end in zip(edges[:-1], edges[1:]):
                if labels[begin]:
                    rows.append((begin, end, labels[begin] - 1, p[begin:end, labels[begin]].mean()))
            result.append(np.array(rows, np.float64).reshape(-1, 4))
        return result


class Scale(nn.Module):
    """A learned scalar factor (one per pyramid level, as FCOS and ActionFormer)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def conv_block(channels: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Conv1d (``stride``), GroupNorm, ReLU on ``(B, C, T)``."""
    return nn.Sequential(nn.Conv1d(channels, channels, kernel, stride, kernel // 2, bias=False),
                         nn.GroupNorm(min(16, channels), channels), nn.ReLU(inplace=True))


@DETECTORS.register("anchor_free", description="ActionFormer-style: feature pyramid, class + start/end per step")
class AnchorFreeDetector(TemporalDetector):
    """A single-stage anchor-free detector over a temporal feature pyramid (see the module
    docstring).

    Args:
        in_dim: feature size D; num_classes: action classes.
        width: channels of the pyramid and heads; levels: pyramid levels (strides 1, 2, 4, ...).
        kernel: temporal kernel size.
        centre_radius: a position is a positive of a segment when within this many of its
            level's strides from the segment's centre (and inside the segment).
        soft_nms: Gaussian Soft-NMS instead of greedy NMS at ``iou_threshold``.
        score_threshold, pre_nms, max_segments: candidates kept before and after NMS.
    """

    def __init__(self, in_dim: int, num_classes: int, width: int = 128, levels: int = 4, kernel: int = 3,
                 centre_radius: float = 1.5, soft_nms: bool = False, iou_threshold: float = 0.5,
                 score_threshold: float = 0.01, pre_nms: int = 1000, max_segments: int = 100) -> None:
        super().__init__()
        if levels < 1:
            raise ValueError(f"levels must be at least 1, got {levels}")
        self.num_classes, self.levels, self.stride = num_classes, levels, 2 ** (levels - 1)
        self.centre_radius, self.soft_nms, self.iou_threshold = centre_radius, soft_nms, iou_threshold
        self.score_threshold, self.pre_nms, self.max_segments = score_threshold, pre_nms, max_segments
        self.embed = nn.Sequential(nn.Conv1d(in_dim, width, kernel, padding=kernel // 2), nn.ReLU(inplace=True),
                                   conv_block(width, kernel))
        self.down = nn.ModuleList(conv_block(width, kernel, stride=2) for _ in range(levels - 1))
        self.cls_head = nn.Sequential(conv_block(width, kernel), nn.Conv1d(width, num_classes, kernel,
                                                                           padding=kernel // 2))
        self.reg_head = nn.Sequential(conv_block(width, kernel), nn.Conv1d(width, 2, kernel, padding=kernel // 2))
        self.scales = nn.ModuleList(Scale() for _ in range(levels))
        nn.init.constant_(self.cls_head[-1].bias, -math.log((1 - 0.01) / 0.01))  # prior 0.01 (RetinaNet)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per level ``l``: class logits ``(B, T_l, C)`` and distances to start and end
        ``(B, T_l, 2)`` in steps, ``T_l = T / 2 ** l`` (T a multiple of :attr:`stride`)."""
        x = self.embed((features * mask[..., None]).transpose(1, 2))
        outputs = []
        for level in range(self.levels):
            if level:
                x = self.down[level - 1](x)
            logits = self.cls_head(x).transpose(1, 2)
            distance = F.relu(self.scales[level](self.reg_head(x))).transpose(1, 2) * 2 ** level
            outputs.append((logits, distance))
        return outputs

    def points(self, level: int, length: int, device: torch.device) -> torch.Tensor:
        """Centres ``(T_l,)`` of level ``level``'s positions, in steps."""
        return (torch.arange(length, device=device, dtype=torch.float32) + 0.5) * 2 ** level

    def regression_range(self, level: int) -> tuple[float, float]:
        """The extents ``max(centre - start, end - centre)`` (steps) that level ``level`` regresses."""
        low = 0.0 if level == 0 else 2.0 ** (level + 1)
        return low, (2.0 ** (level + 2) if level < self.levels - 1 else math.inf)

    def targets(self, ground_truth: torch.Tensor, level: int, length: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Class index ``(B, T_l)`` (-1: negative) and segment ``(B, T_l, 2)`` of each position."""
        point = self.points(level, length, ground_truth.device)[None, None]  # (1, 1, T_l)
        start, end, cls = (ground_truth[..., k:k + 1].float() for k in range(3))  # (B, G, 1)
        extent = torch.maximum(point - start, end - point)
        low, high = self.regression_range(level)
        near = (point - (start + end) / 2).abs() <= self.centre_radius * 2 ** level
        fits = (cls >= 0) & (start <= point) & (point <= end) & near & (extent >= low) & (extent < high)
        length_of = torch.where(fits, end - start, torch.full_like(fits, math.inf, dtype=torch.float32))
        best = length_of.argmin(dim=1)  # (B, T_l): the shortest segment that fits
        segment = torch.gather(ground_truth[..., :2].float(), 1, best[..., None].expand(-1, -1, 2))
        label = torch.gather(cls[..., 0], 1, best).long()
        return torch.where(fits.any(dim=1), label, torch.full_like(label, -1)), segment

    def loss(self, outputs: list[tuple[torch.Tensor, torch.Tensor]], ground_truth: torch.Tensor,
             mask: torch.Tensor) -> torch.Tensor:
        cls_loss = reg_loss = 0.0
        positives = 0
        for level, (logits, distance) in enumerate(outputs):
            length = logits.shape[1]
            valid = mask[:, ::2 ** level][:, :length]
            label, segment = self.targets(ground_truth, level, length)
            onehot = F.one_hot(label.clamp(min=0), self.num_classes).float() * (label >= 0)[..., None]
            cls_loss = cls_loss + sigmoid_focal_loss(logits[valid].float(), onehot[valid], reduction="sum")
            positive = (label >= 0) & valid
            positives += int(positive.sum())
            if positive.any():
                point = self.points(level, length, logits.device)[None].expand_as(label)[positive]
                predicted = torch.stack([point - distance[positive][:, 0], point + distance[positive][:, 1]], 1)
                iou = segments_iou(predicted.float(), segment[positive]).diagonal()
                reg_loss = reg_loss + (1 - iou).sum()
        return (cls_loss + reg_loss) / max(positives, 1)

    def detect(self, outputs: list[tuple[torch.Tensor, torch.Tensor]], mask: torch.Tensor) -> list[np.ndarray]:
        result = []
        for b in range(mask.shape[0]):
            length = float(mask[b].sum())
            segments, scores, labels = [], [], []
            for level, (logits, distance) in enumerate(outputs):
                count = logits.shape[1]
                valid = mask[b, ::2 ** level][:count]
                prob = logits[b].float().sigmoid() * valid[:, None]  # (T_l, C)
                point = self.points(level, count, logits.device)
                flat = prob.flatten()
                keep = flat > self.score_threshold
                index = keep.nonzero()[:, 0]
                index = index[flat[index].argsort(descending=True)[:self.pre_nms]]
                position, label = index // self.num_classes, index % self.num_classes
                d = distance[b].float()[position]
                segments.append(torch.stack([point[position] - d[:, 0], point[position] + d[:, 1]], 1).clamp(0, length))
                scores.append(flat[index])
                labels.append(label)
            segments, scores, labels = torch.cat(segments), torch.cat(scores), torch.cat(labels)
            long_enough = segments[:, 1] - segments[:, 0] > 1e-3
            kept = nms_1d(segments[long_enough], scores[long_enough], labels[long_enough], self.iou_threshold,
                          soft=self.soft_nms, max_keep=self.max_segments)
            result.append(kept.detach().cpu().double().numpy())
        return result


def build_detector(name: str, in_dim: int, num_classes: int, **options: Any) -> TemporalDetector:
    """The registered detector ``name`` (``rnn``, ``anchor_free``) for features of size
    ``in_dim`` and ``num_classes`` action classes."""
    return DETECTORS.build(name, in_dim=in_dim, num_classes=num_classes, **options)
