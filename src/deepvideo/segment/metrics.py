"""DAVIS video object segmentation metrics: region similarity J, boundary F, J&F.

The numbers are those of DAVIS's official evaluation, https://github.com/davisvideochallenge/
davis2017-evaluation (``davis2017/metrics.py``: ``db_eval_iou``, ``db_eval_boundary``,
``f_measure``, ``_seg2bmap``; ``davis2017/utils.py``: ``db_statistics``;
``davis2017/evaluation.py``: ``DAVISEvaluation``; ``evaluation_method.py``: the global table),
checked against a copy of that code in ``tests/segment/test_davis_metrics.py``:

* J of a frame: ``|gt & pred| / |gt | pred|`` (void pixels left out of both), 1 when both masks
  are empty.
* F of a frame: the 1-pixel boundary maps of both masks (:func:`seg2bmap`), each dilated with a
  disk of radius ``ceil(0.008 * image diagonal)`` (:func:`disk`, equal to
  ``skimage.morphology.disk``, applied with ``cv2.dilate`` as the official code does; 8 px at
  854x480); precision = predicted boundary pixels within reach of the ground truth's boundary /
  predicted boundary pixels, recall the other way round; ``F = 2PR / (P + R)``, 0 when
  ``P + R = 0``.  Empty boundaries: none in the prediction -> P = 1, R = 0; none in the ground
  truth -> P = 0, R = 1; none in either -> P = R = 1 (F = 1).
* Per object of a sequence: mean (``nanmean``), recall (fraction of frames above 0.5) and decay
  (mean of the first quarter of the frames minus mean of the last quarter) of its per-frame J
  and F.  The objects of a sequence are ids ``1..max(first ground-truth frame)``; ground-truth
  void pixels (255) count as background, as the official reader makes them.
* Semi-supervised task: every frame but the first and the last is scored (the first is the
  given one; the official code drops the last too).  Unsupervised task: every frame is scored,
  and the predicted ids (at most 20) are matched one-to-one to the ground-truth objects by the
  Hungarian algorithm on their mean ``(J + F) / 2`` over the frames.
* Global: J-Mean, F-Mean (and recall, decay) are the means over all objects of all sequences;
  ``J&F-Mean = (J-Mean + F-Mean) / 2``.  DAVIS reports these in percent; here they are fractions.

Where this differs from the official code by design: a semi-supervised prediction in which an
object id of the ground truth appears in no scored frame is scored with that object empty (the
official evaluator stops with "there is an index higher than the number of objects"); decay
bins are computed in int64 where the official code casts them to uint8 (equal for sequences
up to 256 frames, which all DAVIS sequences are); unsupervised per-object results are listed by
ground-truth object (the official ``<sequence>_<i>`` rows follow the proposal order, the global
numbers are the same).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment
from tqdm import tqdm

from deepvideo.segment.davis import object_ids

__all__ = ["BOUNDARY_THRESHOLD", "MAX_PROPOSALS", "DavisResult", "ObjectScore", "boundary_f", "boundary_radius",
           "db_statistics", "disk", "evaluate_sequences", "region_similarity", "seg2bmap"]

BOUNDARY_THRESHOLD = 0.008  # DAVIS's bound_th: the boundary tolerance as a fraction of the image diagonal
MAX_PROPOSALS = 20  # the most object ids the official unsupervised evaluation accepts in a prediction
_VOID = 255


def region_similarity(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None) -> float | np.ndarray:
    """J, the Jaccard index (IoU) of binary masks ``gt`` and ``pred`` (``(H, W)``, or ``(T, H, W)``
    for one value per frame), leaving out ``void`` pixels: a float, or a ``(T,)`` float64 array;
    1 where both are empty.  ``ValueError`` for shapes that differ."""
    gt, pred = np.asarray(gt).astype(bool), np.asarray(pred).astype(bool)
    if gt.shape != pred.shape or gt.ndim < 2:
        raise ValueError(f"region_similarity: masks of shapes {gt.shape} and {pred.shape}, expected equal (H, W) or "
                         "(T, H, W)")
    keep = np.ones_like(gt) if void is None else ~_same_shape(void, gt, "void")
    intersection = np.sum(gt & pred & keep, axis=(-2, -1))
    union = np.sum((gt | pred) & keep, axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        j = intersection / union
    j = np.where(union == 0, 1.0, j)
    return float(j) if j.ndim == 0 else j


def _same_shape(mask: np.ndarray, like: np.ndarray, name: str) -> np.ndarray:
    mask = np.asarray(mask).astype(bool)
    if mask.shape != like.shape:
        raise ValueError(f"{name} mask of shape {mask.shape}, the masks are {like.shape}")
    return mask


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """The boundary map of a binary mask ``(H, W)``: ``(H, W)`` bool, true at each pixel that
    differs from its right, lower or lower-right neighbour (on the last row only the right one
    counts, on the last column only the lower one, the corner never) -- DAVIS's ``_seg2bmap``
    (D. Martin's), boundaries offset half a pixel towards the origin."""
    seg = np.asarray(seg).astype(bool)
    if seg.ndim != 2:
        raise ValueError(f"seg2bmap: a mask is (H, W), got shape {seg.shape}")
    east, south, south_east = (np.zeros_like(seg) for _ in range(3))
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    boundary = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    boundary[-1, :] = seg[-1, :] ^ east[-1, :]
    boundary[:, -1] = seg[:, -1] ^ south[:, -1]
    boundary[-1, -1] = False
    return boundary


def disk(radius: float) -> np.ndarray:
    """A disk structuring element, uint8 ones where ``x**2 + y**2 <= radius**2`` on the grid
    ``arange(-radius, radius + 1)`` -- ``skimage.morphology.disk(radius)`` exactly, also for a
    radius that is not whole (the grid then does not hold 0)."""
    grid = np.arange(-radius, radius + 1)
    x, y = np.meshgrid(grid, grid)
    return np.array(x ** 2 + y ** 2 <= radius ** 2, dtype=np.uint8)


def boundary_radius(shape: tuple[int, ...], bound_th: float = BOUNDARY_THRESHOLD) -> float:
    """The boundary tolerance in pixels for masks of ``shape`` ``(H, W)``: ``bound_th`` itself
    when it is >= 1, else ``ceil(bound_th * sqrt(H**2 + W**2))`` (8 for 854x480)."""
    return float(bound_th) if bound_th >= 1 else float(np.ceil(bound_th * np.linalg.norm(shape)))


def _f_measure(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None, bound_th: float) -> float:
    if void is not None:
        pred, gt = pred & ~void, gt & ~void
    kernel = disk(boundary_radius(pred.shape, bound_th))
    pred_boundary, gt_boundary = seg2bmap(pred), seg2bmap(gt)
    n_pred, n_gt = int(pred_boundary.sum()), int(gt_boundary.sum())
    if n_pred == 0 and n_gt > 0:
        precision, recall = 1.0, 0.0
    elif n_pred > 0 and n_gt == 0:
        precision, recall = 0.0, 1.0
    elif n_pred == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    else:
        pred_dilated = cv2.dilate(pred_boundary.astype(np.uint8), kernel).astype(bool)
        gt_dilated = cv2.dilate(gt_boundary.astype(np.uint8), kernel).astype(bool)
        precision = int(np.count_nonzero(pred_boundary & gt_dilated)) / float(n_pred)
        recall = int(np.count_nonzero(gt_boundary & pred_dilated)) / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def boundary_f(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None,
               bound_th: float = BOUNDARY_THRESHOLD) -> float | np.ndarray:
    """F, DAVIS's boundary F-measure of binary masks ``gt`` and ``pred`` (``(H, W)``, or
    ``(T, H, W)`` for one value per frame), ``void`` pixels left out; ``bound_th`` is the boundary
    tolerance (a fraction of the image diagonal, or pixels when >= 1).  A float, or a ``(T,)``
    float64 array.  See the module docstring for the rules.  ``ValueError`` for shapes that
    differ."""
    gt, pred = np.asarray(gt).astype(bool), np.asarray(pred).astype(bool)
    if gt.shape != pred.shape or gt.ndim not in (2, 3):
        raise ValueError(f"boundary_f: masks of shapes {gt.shape} and {pred.shape}, expected equal (H, W) or "
                         "(T, H, W)")
    void = None if void is None else _same_shape(void, gt, "void")
    if gt.ndim == 2:
        return _f_measure(pred, gt, void, bound_th)
    return np.array([_f_measure(pred[t], gt[t], None if void is None else void[t], bound_th)
                     for t in range(len(gt))], dtype=np.float64)


def db_statistics(values: np.ndarray) -> tuple[float, float, float]:
    """``(mean, recall, decay)`` of per-frame values ``(T,)``, as DAVIS's ``db_statistics``:
    ``nanmean``, the fraction of frames above 0.5, and the mean of the first quarter minus the
    mean of the last (four overlapping bins of ``round(linspace(1, T, 5)) - 1``)."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if not values.size:
        return math.nan, math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = float(np.nanmean(values))
        recall = float(np.nanmean(values > 0.5))
        ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(np.int64)
        bins = [values[ids[i]:ids[i + 1] + 1] for i in range(4)]
        decay = float(np.nanmean(bins[0]) - np.nanmean(bins[3]))
    return mean, recall, decay


@dataclass
class ObjectScore:
    """The scores of one object of one sequence: per-frame ``j`` and ``f`` ``(T',)`` over the
    scored frames, and their mean, recall and decay.  For the unsupervised task ``matched_id``
    is the predicted id matched to it (0: none)."""

    sequence: str
    object_id: int
    j: np.ndarray
    f: np.ndarray
    matched_id: int

    @property
    def j_stats(self) -> tuple[float, float, float]:
        return db_statistics(self.j)

    @property
    def f_stats(self) -> tuple[float, float, float]:
        return db_statistics(self.f)

    @property
    def name(self) -> str:
        """``<sequence>_<object id>``, the row name of the official per-sequence table."""
        return f"{self.sequence}_{self.object_id}"


@dataclass
class DavisResult:
    """J and F of a set of sequences: ``objects`` (one :class:`ObjectScore` per object of each
    sequence, in sequence then object order), ``task`` and ``frames`` ("inner" when the first and
    last frames were not scored, "all")."""

    objects: list[ObjectScore]
    task: str
    frames: str

    def global_table(self) -> dict[str, float]:
        """The official global table, fractions: ``J&F-Mean``, ``J-Mean``, ``J-Recall``,
        ``J-Decay``, ``F-Mean``, ``F-Recall``, ``F-Decay`` (means over all objects)."""
        if not self.objects:
            return dict.fromkeys(["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"],
                                 math.nan)
        # one contiguous array per statistic, averaged as the official np.mean(list) does
        j = [np.array(column, dtype=np.float64) for column in zip(*(o.j_stats for o in self.objects))]
        f = [np.array(column, dtype=np.float64) for column in zip(*(o.f_stats for o in self.objects))]
        jm, jr, jd = (float(np.mean(column)) for column in j)
        fm, fr, fd = (float(np.mean(column)) for column in f)
        return {"J&F-Mean": (jm + fm) / 2.0, "J-Mean": jm, "J-Recall": jr, "J-Decay": jd,
                "F-Mean": fm, "F-Recall": fr, "F-Decay": fd}

    def per_object(self) -> dict[str, dict[str, float]]:
        """``{"<sequence>_<id>": {"J-Mean", "F-Mean", "J&F-Mean"}}``: the official per-sequence
        table (one row per object), plus each row's J&F."""
        rows = {}
        for o in self.objects:
            jm, fm = o.j_stats[0], o.f_stats[0]
            rows[o.name] = {"J-Mean": jm, "F-Mean": fm, "J&F-Mean": (jm + fm) / 2.0}
        return rows

    def per_sequence(self) -> dict[str, dict[str, float]]:
        """``{sequence: {"J-Mean", "F-Mean", "J&F-Mean", "objects"}}``: the means over each
        sequence's objects (not an official table; DAVIS 2016's single-object results are these)."""
        grouped: dict[str, list[ObjectScore]] = {}
        for o in self.objects:
            grouped.setdefault(o.sequence, []).append(o)
        rows = {}
        for sequence, objects in grouped.items():
            jm = float(np.mean([o.j_stats[0] for o in objects]))
            fm = float(np.mean([o.f_stats[0] for o in objects]))
            rows[sequence] = {"J-Mean": jm, "F-Mean": fm, "J&F-Mean": (jm + fm) / 2.0, "objects": len(objects)}
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"task", "frames", "global", "per_sequence", "per_object"}``."""
        return {"task": self.task, "frames": self.frames, "global": self.global_table(),
                "per_sequence": self.per_sequence(), "per_object": self.per_object()}


def _scores(gt: np.ndarray, pred: np.ndarray, bound_th: float) -> tuple[np.ndarray, np.ndarray]:
    return region_similarity(gt, pred), boundary_f(gt, pred, bound_th=bound_th)


def evaluate_sequences(gt: Mapping[str, np.ndarray], pred: Mapping[str, np.ndarray], *,
                       task: str = "semi-supervised", skip_first_last: bool | None = None,
                       bound_th: float = BOUNDARY_THRESHOLD, progress: bool = False) -> DavisResult:
    """DAVIS J and F of the predicted masks ``pred`` against the ground truth ``gt``, both
    ``{sequence: (T, H, W) object ids}`` (uint8 as :func:`deepvideo.segment.davis.read_masks`
    returns them, any integer type 0..255, or bool for object 1), the same frames in both;
    ``progress`` shows a bar over the sequences.

    ``task`` is ``"semi-supervised"`` (object ids correspond) or ``"unsupervised"`` (predicted
    ids are matched to the ground-truth objects, see the module docstring).  ``skip_first_last``
    leaves the first and last frames unscored; None follows the official code: True for the
    semi-supervised task, False for the unsupervised one.  For binary moving-object masks
    (id 1 = moving) both tasks give the same numbers on the same frames.

    ``ValueError`` naming the sequence for an unknown task, a sequence of ``gt`` missing from
    ``pred``, masks of other shapes or not ids 0..255, a predicted id above the ground truth's
    number of objects (semi-supervised) or above :data:`MAX_PROPOSALS` (unsupervised), or too
    few frames to score.
    """
    if task not in ("semi-supervised", "unsupervised"):
        raise ValueError(f"task {task!r}: expected 'semi-supervised' or 'unsupervised'")
    if skip_first_last is None:
        skip_first_last = task == "semi-supervised"
    objects = []
    for name in tqdm(list(gt), desc="DAVIS J&F", unit="seq", disable=not progress):
        if name not in pred:
            raise ValueError(f"pred: no masks for sequence {name!r}")
        truth, guess = object_ids(gt[name], f"gt {name!r}"), object_ids(pred[name], f"pred {name!r}")
        if truth.ndim != 3 or truth.shape != guess.shape:
            raise ValueError(f"sequence {name!r}: ground truth {truth.shape} and prediction {guess.shape}, expected "
                             "equal (T, H, W)")
        truth = np.where(truth == _VOID, 0, truth).astype(np.uint8)  # the official reader's void -> background
        num_objects = int(truth[0].max())
        if skip_first_last:
            if len(truth) < 3:
                raise ValueError(f"sequence {name!r}: {len(truth)} frames; with the first and last not scored, at "
                                 "least 3 are needed")
            truth, guess = truth[1:-1], guess[1:-1]
        num_predicted = int(guess.max(initial=0))
        if task == "semi-supervised":
            if num_predicted > num_objects:
                raise ValueError(f"sequence {name!r}: predicted object id {num_predicted}, the ground truth has "
                                 f"{num_objects} objects (ids 1..{num_objects} of its first frame)")
            for k in range(1, num_objects + 1):
                j, f = _scores(truth == k, guess == k, bound_th)
                objects.append(ObjectScore(name, k, j, f, k))
            continue
        if num_predicted > MAX_PROPOSALS:
            raise ValueError(f"sequence {name!r}: predicted object id {num_predicted}, at most {MAX_PROPOSALS} "
                             "proposals are evaluated")
        num_proposals = max(num_predicted, num_objects)  # the official pads missing proposals with empty masks
        j = np.zeros((num_proposals, num_objects, len(truth)))
        f = np.zeros_like(j)
        for p in range(num_proposals):
            proposal = guess == p + 1
            for k in range(num_objects):
                j[p, k], f[p, k] = _scores(truth == k + 1, proposal, bound_th)
        rows, cols = linear_sum_assignment(-((j.mean(axis=2) + f.mean(axis=2)) / 2))
        for p, k in sorted(zip(rows.tolist(), cols.tolist()), key=lambda pair: pair[1]):
            objects.append(ObjectScore(name, k + 1, j[p, k], f[p, k], p + 1 if p < num_predicted else 0))
    return DavisResult(objects, task, "inner" if skip_first_last else "all")
