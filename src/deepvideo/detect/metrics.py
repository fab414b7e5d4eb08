"""Temporal action detection mAP, as ActivityNet's evaluator computes it.

The numbers are those of ``Evaluation/eval_detection.py`` (``ANETdetection``,
``compute_average_precision_detection``) and ``Evaluation/utils.py`` (``segment_iou``,
``interpolated_prec_rec``) of https://github.com/activitynet/ActivityNet, checked against a copy
of that code in ``tests/detect/test_detection_map.py``:

* tIoU of two segments: ``intersection / union``, ``union = (end - start) + (end' - start') -
  intersection``, in seconds, no frame offsets.
* Per class and tIoU threshold: the class's detections by decreasing score; each is a true
  positive when a ground-truth segment of its class in its video that no better-scored
  detection has taken overlaps it by ``tIoU >= threshold`` (of those, the one with the highest
  tIoU), a false positive otherwise -- also when its video has no ground truth, or is absent
  from the ground truth altogether (the evaluator keeps every detection of its result file).
* ``precision = TP / (TP + FP)`` and ``recall = TP / (ground truths of the class)`` after each
  detection; AP is VOC 2011's interpolated AP: the area under the precision envelope
  (precision made non-increasing from the right) over the recall steps.
* mAP at a threshold is the mean AP over the classes of the ground truth (a class without
  detections has AP 0); the ActivityNet score is the mean mAP over tIoU 0.5:0.05:0.95.

Ties are ordered deterministically here where the evaluator leaves them to numpy's unstable
``argsort()[::-1]`` (whose order of equal values depends on numpy's version and CPU): detections
of equal score in their input order (video by video, as in the result file), ground truths of
equal tIoU in their annotation order.  Where the evaluator differs by design: a detection
labelled with a class the ground truth lacks is refused here with a ``ValueError`` (the
evaluator stops with a ``KeyError``), and no list of blocked videos is fetched from its server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from deepvideo.detect.annotations import Segment, VideoAnnotation, labels_of
from deepvideo.engine.metrics import interpolated_average_precision

__all__ = ["ANET_THRESHOLDS", "THUMOS_THRESHOLDS", "DetectionMap", "average_precision_detection", "detection_map",
           "segment_iou", "segment_iou_matrix"]

ANET_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # ActivityNet's, exactly as its evaluator builds them
THUMOS_THRESHOLDS = np.array([0.3, 0.4, 0.5, 0.6, 0.7])  # THUMOS14's usual tIoU thresholds


def segment_iou(target: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """tIoU of the segment ``target`` ``(2,)`` ``[start, end]`` with each of ``candidates``
    ``(N, 2)``: an ``(N,)`` float64 array (NaN where both have zero length)."""
    target = np.asarray(target, dtype=np.float64)
    return segment_iou_matrix(target.reshape(1, 2), candidates)[0]


def segment_iou_matrix(segments: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """tIoU of every segment of ``segments`` ``(N, 2)`` with every one of ``candidates`` ``(M, 2)``
    (``[start, end]`` rows): an ``(N, M)`` float64 array whose row ``i`` is
    ``segment_iou(segments[i], candidates)``, the same floating-point operations as ActivityNet's."""
    segments = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    candidates = np.asarray(candidates, dtype=np.float64).reshape(-1, 2)
    start = np.maximum(segments[:, None, 0], candidates[None, :, 0])
    end = np.minimum(segments[:, None, 1], candidates[None, :, 1])
    intersection = (end - start).clip(0)
    union = ((candidates[None, :, 1] - candidates[None, :, 0]) + (segments[:, None, 1] - segments[:, None, 0])
             - intersection)
    return intersection / union


def average_precision_detection(ground_truth: Mapping[str, Sequence[Segment]],
                                predictions: Mapping[str, Sequence[Segment]],
                                thresholds: Sequence[float] | np.ndarray = ANET_THRESHOLDS) -> np.ndarray:
    """AP of one class at each tIoU threshold: a ``(len(thresholds),)`` float64 array.

    ``ground_truth`` and ``predictions`` are ``{video: segments}`` of that class (labels are not
    looked at; a prediction's ``score`` ranks it).  See the module docstring for the rules; all
    zeros without predictions.  ``ValueError`` when there is no ground-truth segment (recall is
    undefined) or a prediction has ``end <= start``.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    num_positives = sum(len(segments) for segments in ground_truth.values())
    if num_positives == 0:
        raise ValueError("average_precision_detection: no ground-truth segment, recall is undefined")
    spans, rows, scores = {}, [], []
    for video, segments in predictions.items():
        spans[video] = (len(rows), len(rows) + len(segments))
        for s in segments:
            if s.end <= s.start:
                raise ValueError(f"prediction in video {video!r}: segment [{s.start:g}, {s.end:g}] does not "
                                 "end after it starts")
            rows.append((s.start, s.end))
            scores.append(s.score)
    ap = np.zeros(len(thresholds))
    if not rows:
        return ap
    segments_array = np.array(rows, dtype=np.float64)
    rank = np.empty(len(rows), dtype=np.int64)
    rank[np.argsort(-np.array(scores, dtype=np.float64), kind="stable")] = np.arange(len(rows))
    tp = np.zeros((len(thresholds), len(rows)))
    for video, truth in ground_truth.items():
        if video not in spans or not len(truth):
            continue
        begin, end = spans[video]
        members = np.arange(begin, end)[np.argsort(rank[begin:end], kind="stable")]  # this video's, best first
        iou = segment_iou_matrix(segments_array[members], np.array([(s.start, s.end) for s in truth]))
        taken = np.zeros((len(thresholds), len(truth)), dtype=bool)
        for row in np.nonzero(iou.max(axis=1) >= thresholds.min())[0]:
            by_iou = np.argsort(-iou[row], kind="stable")
            free = (iou[row, by_iou][None, :] >= thresholds[:, None]) & ~taken[:, by_iou]
            hit = np.nonzero(free.any(axis=1))[0]
            taken[hit, by_iou[free[hit].argmax(axis=1)]] = True
            tp[hit, rank[members[row]]] = 1.0
    tp_cumsum = np.cumsum(tp, axis=1)
    fp_cumsum = np.cumsum(1.0 - tp, axis=1)
    recall = tp_cumsum / float(num_positives)
    precision = tp_cumsum / (tp_cumsum + fp_cumsum)
    for index in range(len(thresholds)):
        ap[index] = interpolated_average_precision(precision[index], recall[index])
    return ap


@dataclass
class DetectionMap:
    """mAP of a set of detections: ``map`` ``(T,)`` at each of ``thresholds`` ``(T,)``, ``average``
    their mean, ``per_class`` ``{label: AP (T,)}`` over the ground truth's classes (sorted), and
    ``num_ground_truth`` / ``num_predictions`` ``{label: count}``.  Values are fractions."""

    thresholds: np.ndarray
    map: np.ndarray
    average: float
    per_class: dict[str, np.ndarray]
    num_ground_truth: dict[str, int]
    num_predictions: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"thresholds", "mAP", "average_mAP", "classes": {label: {"AP",
        "average_AP", "num_ground_truth", "num_predictions"}}}``."""
        return {"thresholds": self.thresholds.tolist(), "mAP": self.map.tolist(), "average_mAP": self.average,
                "classes": {label: {"AP": ap.tolist(), "average_AP": float(ap.mean()),
                                    "num_ground_truth": self.num_ground_truth[label],
                                    "num_predictions": self.num_predictions[label]}
                            for label, ap in self.per_class.items()}}

    def format(self, per_class: bool = True) -> str:
        """A plain-text table in percent: a column per tIoU threshold and their average, the
        mAP row, then (with ``per_class``) a row of AP per class with its counts."""
        header = ["tIoU", *(f"{t:.2f}" for t in self.thresholds), "avg", "GT", "pred"]
        rows = [header, ["mAP", *(f"{100 * v:.2f}" for v in self.map), f"{100 * self.average:.2f}",
                         str(sum(self.num_ground_truth.values())), str(sum(self.num_predictions.values()))]]
        if per_class:
            rows += [[label, *(f"{100 * v:.2f}" for v in ap), f"{100 * ap.mean():.2f}",
                      str(self.num_ground_truth[label]), str(self.num_predictions[label])]
                     for label, ap in self.per_class.items()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        return "\n".join(" ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                                  enumerate(zip(row, widths))) for row in rows)


def detection_map(ground_truth: Mapping[str, VideoAnnotation], predictions: Mapping[str, Sequence[Segment]],
                  thresholds: Sequence[float] | np.ndarray = ANET_THRESHOLDS, *,
                  progress: bool = False) -> DetectionMap:
    """ActivityNet's mAP of ``predictions`` (``{video: detections}``, as :func:`read_results`
    returns) against ``ground_truth`` (``{video: VideoAnnotation}``, already restricted to the
    subset evaluated) at each tIoU threshold (:data:`ANET_THRESHOLDS`, or
    :data:`THUMOS_THRESHOLDS` for THUMOS14); ``progress`` shows a bar over the classes.

    ``ValueError`` for ground truth without any segment, a prediction whose label no ground
    truth has, or a prediction with ``end <= start``, naming the video.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    classes = labels_of(ground_truth)
    if not classes:
        raise ValueError("ground truth: no segment, nothing to evaluate")
    truth: dict[str, dict[str, list[Segment]]] = {label: {} for label in classes}
    for name, video in ground_truth.items():
        for segment in video.segments:
            truth[segment.label].setdefault(name, []).append(segment)
    detected: dict[str, dict[str, list[Segment]]] = {label: {} for label in classes}
    for name, segments in predictions.items():
        for segment in segments:
            if segment.label not in detected:
                raise ValueError(f"predictions: video {name!r}: label {segment.label!r} is no class of the ground "
                                 f"truth ({len(classes)} classes)")
            detected[segment.label].setdefault(name, []).append(segment)
    per_class = {label: average_precision_detection(truth[label], detected[label], thresholds)
                 for label in tqdm(classes, desc="mAP", unit="class", disable=not progress)}
    ap = np.stack(list(per_class.values()), axis=1)  # (T, classes)
    mean_ap = ap.mean(axis=1)
    return DetectionMap(thresholds=thresholds, map=mean_ap, average=float(mean_ap.mean()), per_class=per_class,
                        num_ground_truth={label: sum(map(len, truth[label].values())) for label in classes},
                        num_predictions={label: sum(map(len, detected[label].values())) for label in classes})
