"""AVA frame-mAP, as AVA's official evaluator computes it.

The numbers are those of ``Evaluation/get_ava_performance.py`` of
https://github.com/activitynet/ActivityNet and the TensorFlow Object Detection API modules it
runs (``object_detection_evaluation.PascalDetectionEvaluator``,
``per_image_evaluation.PerImageEvaluation``, ``np_box_ops.iou``, ``metrics.compute_precision_recall``
and ``compute_average_precision``), checked against a copy of that code in
``tests/ava/test_ava_metrics.py``:

* Each keyframe ``(video_id, timestamp)`` is one "image".  Only the classes of the label map
  are read (ground truth and detections of other classes are dropped, as the evaluator's
  class whitelist does); keyframes of the excluded-timestamps list are dropped from both.
* Per keyframe at most the 50 best-scored detections are kept (the evaluator's heap of
  capacity 50, which drops a detection whose score is not above the lowest kept one), then
  ordered by decreasing score.
* Per keyframe and class, each detection in that order takes the ground-truth box of its class
  with the highest IoU (the first such box on ties); it is a true positive when that IoU is
  ``>= 0.5`` and no earlier detection took that box, a false positive otherwise -- it does not
  fall back to the next-best box.  Detections on keyframes without ground truth are false
  positives.  IoU is ``intersection / (area + area' - intersection)``, no +1 pixel.
* Per class: the detections of all keyframes by decreasing score, ``precision = TP / (TP + FP)``,
  ``recall = TP / (ground-truth boxes of the class)``; AP is the VOC area under the precision
  envelope (precision made non-increasing from the right) over the recall steps -- not the
  11-point VOC07 AP.  A class with ground truth but no detection has AP 0; a class without
  ground truth has AP NaN and is left out of the mean.
* mAP is the mean AP of the label map's classes that have ground truth.

Ties are ordered deterministically where the evaluator leaves them to numpy's unstable
``np.argsort(scores)[::-1]``: detections of equal score keep the order in which the evaluator
collects them (keyframe by keyframe, in order of first appearance among the detections; within a
keyframe, in the order its read_csv leaves them).  Within a keyframe the order of detections and
of ground-truth boxes (which decides argmax ties) is reproduced exactly, including read_csv's
use of a ground-truth row's ``person_id`` as its sort score.  Where the reader differs by design
(a detection box with ``x2 <= x1``, which the evaluator drops silently, is a bad line here) see
:mod:`deepvideo.ava.annotations`.
"""

from __future__ import annotations

import heapq
from typing import Any, Collection, Iterable, Mapping

import numpy as np
from tqdm import tqdm

from deepvideo.ava.annotations import ActionLabel, AvaBox, format_timestamp
from deepvideo.engine.metrics import interpolated_average_precision

__all__ = ["box_iou", "frame_map"]


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU of every box of ``boxes1`` ``(N, 4)`` with every box of ``boxes2`` ``(M, 4)``, rows
    ``[x1, y1, x2, y2]``: an ``(N, M)`` float64 array, with the floating-point operations of the
    TF Object Detection API's ``np_box_ops.iou`` (NaN where both boxes have zero area)."""
    a = np.asarray(boxes1, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes2, dtype=np.float64).reshape(-1, 4)
    return _pair_iou(a[:, None, :], b[None, :, :])


def _pair_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise IoU of boxes ``a`` and ``b`` (``[..., 4]``, broadcast)."""
    heights = np.maximum(0.0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]))
    widths = np.maximum(0.0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]))
    intersection = heights * widths
    area_a = (a[..., 3] - a[..., 1]) * (a[..., 2] - a[..., 0])
    area_b = (b[..., 3] - b[..., 1]) * (b[..., 2] - b[..., 0])
    with np.errstate(invalid="ignore", divide="ignore"):
        return intersection / (area_a + area_b - intersection)


def _class_names(labels: Mapping[int, ActionLabel | str] | Collection[int]) -> dict[int, str]:
    if isinstance(labels, Mapping):
        names = {key: value.name if isinstance(value, ActionLabel) else str(value) for key, value in labels.items()}
    else:
        names = {key: str(key) for key in labels}
    if not names:
        raise ValueError("labels: no class to evaluate")
    bad = [key for key in names if not isinstance(key, (int, np.integer)) or isinstance(key, bool) or key < 1]
    if bad:
        raise ValueError(f"labels: class id {bad[0]!r} is not an integer >= 1 (AVA's classes are 1-indexed)")
    return {int(key): name for key, name in names.items()}


def _frames(boxes: Iterable[AvaBox], wanted: set[int], capacity: int, detections: bool, progress: bool,
            ) -> dict[tuple[str, int], list[tuple]]:
    """``{keyframe: [(score, action_id, y1, x1, y2, x2), ...]}`` in order of first appearance,
    each list in the order AVA's read_csv leaves it: pushed on a heap in file order (of at
    most ``capacity`` entries, 0 for no limit), then stably sorted by decreasing score."""
    entries: dict[tuple[str, int], list[tuple]] = {}
    what = "detections" if detections else "ground truth"
    for index, box in enumerate(tqdm(boxes, desc=f"AVA {what}", unit="box", disable=not progress)):
        if not isinstance(box, AvaBox):
            raise ValueError(f"{what}: item {index} is a {type(box).__name__}, not an AvaBox")
        if box.action_id not in wanted:
            continue
        if detections:
            if box.score is None:
                raise ValueError(f"{what}: box {index} ({box.video_id},{format_timestamp(box.timestamp)}) has no "
                                 "score")
            score = float(box.score)
        else:
            score = 1.0 if box.person_id is None else float(box.person_id)
        entry = (score, box.action_id, box.y1, box.x1, box.y2, box.x2)
        heap = entries.setdefault(box.key, [])
        if capacity < 1 or len(heap) < capacity:
            heapq.heappush(heap, entry)
        elif score > heap[0][0]:
            heapq.heapreplace(heap, entry)
    return {key: sorted(heap, key=lambda item: -item[0]) for key, heap in entries.items()}


def _arrays(frames: dict[tuple[str, int], list[tuple]], index: dict[tuple[str, int], int]):
    """``(frame index, class, score, [x1, y1, x2, y2])`` arrays of the entries of ``frames``,
    frame by frame; keyframes not yet in ``index`` are added to it."""
    rows = [(index.setdefault(key, len(index)), *entry) for key, entries in frames.items() for entry in entries]
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros((0, 4))
    table = np.array(rows, dtype=np.float64)
    return (table[:, 0].astype(np.int64), table[:, 2].astype(np.int64), table[:, 1],
            table[:, [4, 3, 6, 5]])


def _true_positives(det_frame, det_class, det_box, gt_frame, gt_class, gt_box, threshold: float) -> np.ndarray:
    """Whether each detection (in the evaluator's processing order) is a true positive."""
    num_classes = int(max(det_class.max(initial=0), gt_class.max(initial=0))) + 1
    gt_group = gt_frame * num_classes + gt_class
    gt_order = np.argsort(gt_group, kind="stable")  # boxes of one (frame, class) together, in frame order
    sorted_groups = gt_group[gt_order]
    det_group = det_frame * num_classes + det_class
    start = np.searchsorted(sorted_groups, det_group, side="left")
    counts = np.searchsorted(sorted_groups, det_group, side="right") - start
    total = int(counts.sum())
    tp = np.zeros(len(det_class), dtype=bool)
    if total == 0:
        return tp
    first_pair = np.cumsum(counts) - counts
    pair_det = np.repeat(np.arange(len(det_class)), counts)
    pair_gt = gt_order[np.repeat(start, counts) + np.arange(total) - np.repeat(first_pair, counts)]
    iou = _pair_iou(det_box[pair_det], gt_box[pair_gt])
    has_gt = counts > 0
    best = np.full(len(det_class), -np.inf)
    best[has_gt] = np.maximum.reduceat(iou, first_pair[has_gt])
    is_best = iou == best[pair_det]
    dets_with_best, first_best = np.unique(pair_det[is_best], return_index=True)  # argmax: the first maximum
    best_gt = np.full(len(det_class), -1, dtype=np.int64)
    best_gt[dets_with_best] = pair_gt[is_best][first_best]
    candidates = np.nonzero(has_gt & (best >= threshold))[0]
    _, first_taker = np.unique(best_gt[candidates], return_index=True)  # the earliest detection takes the box
    tp[candidates[first_taker]] = True
    return tp


def frame_map(groundtruth: Iterable[AvaBox], detections: Iterable[AvaBox],
              labels: Mapping[int, ActionLabel | str] | Collection[int],
              excluded: Collection[tuple[str, int]] | None = None, iou: float = 0.5, *,
              max_per_frame: int = 50, progress: bool = False) -> dict[str, Any]:
    """AVA frame-mAP of ``detections`` against ``groundtruth`` (:class:`AvaBox` iterables, as the
    readers of :mod:`deepvideo.ava.annotations` return them, in file order: the order decides
    ties as in the evaluator) over the classes of ``labels`` (a label map ``{id: ActionLabel or
    name}`` or class ids), without the keyframes ``(video_id, timestamp)`` of ``excluded``; a
    detection is a true positive at ``IoU >= iou``.  ``max_per_frame`` is the evaluator's
    capacity of 50 detections per keyframe (0 keeps all); ``progress`` shows bars over the boxes.
    See the module docstring for the rules.

    Returns ``{"mAP": float, "iou": iou, "per_class": {id: {"name", "AP", "num_groundtruth",
    "num_detections"}}, "AP_by_name": {name: AP}, "num_frames": keyframes with ground truth}``
    with AP fractions (NaN for a class without ground truth), classes in the order of
    ``labels``.  ``ValueError`` for class ids below 1, a detection without a score, or when no
    class of ``labels`` has ground truth (the mean is undefined).
    """
    names = _class_names(labels)
    wanted = set(names)
    excluded = set(excluded or ())
    capacity = int(max_per_frame or 0)
    gt_frames = {key: entries for key, entries in _frames(groundtruth, wanted, 0, False, progress).items()
                 if key not in excluded}
    det_frames = {key: entries for key, entries in _frames(detections, wanted, capacity, True, progress).items()
                  if key not in excluded}
    index: dict[tuple[str, int], int] = {}
    gt_frame, gt_class, _, gt_box = _arrays(gt_frames, index)
    det_frame, det_class, det_score, det_box = _arrays(det_frames, index)
    tp = _true_positives(det_frame, det_class, det_box, gt_frame, gt_class, gt_box, float(iou))

    max_id = max(names)
    ap = np.full(max_id, np.nan)  # the evaluator's per-class array, 0-based, NaN where no ground truth
    per_class = {}
    for class_id, name in names.items():
        num_gt = int(np.count_nonzero(gt_class == class_id))
        mine = det_class == class_id
        if num_gt:
            order = np.argsort(-det_score[mine], kind="stable")
            hits = tp[mine][order]
            cum_tp = np.cumsum(hits)
            cum_fp = np.cumsum(~hits)
            precision = cum_tp.astype(float) / (cum_tp + cum_fp)
            recall = cum_tp.astype(float) / num_gt
            ap[class_id - 1] = interpolated_average_precision(precision, recall)
        per_class[class_id] = {"name": name, "AP": float(ap[class_id - 1]), "num_groundtruth": num_gt,
                               "num_detections": int(np.count_nonzero(mine))}
    if np.isnan(ap).all():
        raise ValueError(f"groundtruth: no box of the {len(names)} evaluated classes outside the excluded keyframes, "
                         "nothing to evaluate")
    return {"mAP": float(np.nanmean(ap)), "iou": float(iou), "per_class": per_class,
            "AP_by_name": {entry["name"]: entry["AP"] for entry in per_class.values()},
            "num_frames": len(gt_frames)}
