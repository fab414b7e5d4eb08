"""Single-object tracking boxes and one-pass evaluation (OPE).

OPE (Wu et al., "Online Object Tracking: A Benchmark", CVPR 2013) runs a tracker once
over a sequence from the ground-truth box of its first frame and scores every frame
(the first included) with

* the **success** curve: fraction of frames whose IoU with the ground truth exceeds a
  threshold, for the 21 thresholds 0, 0.05, ..., 1; its area under the curve (AUC) is
  the mean of those 21 values;
* the **precision** at 20 px: fraction of frames whose box centre lies within 20 pixels
  of the ground-truth centre;
* the **normalised precision** at 0.2 (Mueller et al., TrackingNet, ECCV 2018): the same
  with centres divided by the ground-truth width and height.

The numbers equal mmtracking's ``eval_sot_ope`` (mmtrack/core/evaluation/eval_sot_ope.py,
with mmdet's ``bbox_overlaps``), conventions and quirks included:

* a box ``(x, y, w, h)`` covers ``[x, x + w] x [y, y + h]``: IoU and centres use no
  "+1 pixel"; IoU is computed in float32 with the union clamped at 1e-6, as mmdet does;
* a frame passes a success threshold when ``IoU > t`` (strictly), so a perfect tracker
  scores AUC 20/21 = 95.24%, not 100%; centre errors pass when ``error <= t``;
* a frame whose ground truth has ``w <= 0`` or ``h <= 0`` (LaSOT's absent target is
  ``0,0,0,0``) fails every success threshold, while a ground-truth centre with ``cx <= 0``
  or ``cy <= 0`` counts as a *hit* for (normalised) precision at every threshold;
* frames marked invisible are dropped from the numerators but not from the frame count;
* over several sequences each curve is averaged with equal weight per sequence.

Results are percentages, as mmtracking reports them.  Box files hold one box per line,
``x,y,w,h`` (OTB, LaSOT, GOT-10k, TrackingNet), separated by commas, spaces or tabs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from deepvideo.io.atomic import atomic_write_text
from deepvideo.io.text import read_text

__all__ = ["IOU_THRESHOLDS", "PIXEL_THRESHOLDS", "NORM_THRESHOLDS", "box_file_kind", "check_box", "evaluate_files",
           "evaluate_ope", "evaluate_ope_files", "format_ope_table", "precision_curve", "read_boxes",
           "sequence_names", "success_curve", "write_boxes"]

IOU_THRESHOLDS = np.arange(0, 1.05, 0.05)     # 21 success thresholds (mmtracking's array)
PIXEL_THRESHOLDS = np.arange(0, 51, 1)        # centre error, pixels; precision reads index 20
NORM_THRESHOLDS = PIXEL_THRESHOLDS / 100.0    # normalised centre error; index 20 is 0.2
_AT = 20                                      # the reported index: 20 px and 0.2
_SEPARATORS = re.compile(r"[,\s]+")


def read_boxes(path: str | os.PathLike, box_format: str = "xywh") -> np.ndarray:
    """Read a box file: ``(N, 4)`` float64 ``(x, y, w, h)``, one row per non-empty line.

    ``box_format="xyxy"`` reads ``x1, y1, x2, y2`` lines (mmtracking's result files) and
    converts them.  Raises ``FileNotFoundError`` for a missing file and ``ValueError``
    naming ``file:line`` for a line without exactly four numbers.
    """
    if box_format not in ("xywh", "xyxy"):
        raise ValueError(f"box_format: 'xywh' or 'xyxy', got {box_format!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such box file")
    rows = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        fields = _SEPARATORS.split(line.strip())
        try:
            row = [float(f) for f in fields]
        except ValueError:
            row = []
        if len(row) != 4:
            raise ValueError(f"{path}:{number}: expected 4 numbers x,y,w,h, got {line.strip()[:60]!r}")
        rows.append(row)
    boxes = np.array(rows, dtype=np.float64).reshape(-1, 4)
    if box_format == "xyxy":
        boxes[:, 2:] -= boxes[:, :2]
    return boxes


def write_boxes(path: str | os.PathLike, boxes: np.ndarray) -> Path:
    """Write ``(N, 4)`` ``(x, y, w, h)`` boxes as ``x,y,w,h`` lines (atomically)."""
    text = "".join(",".join(f"{v:.2f}" for v in box) + "\n" for box in np.asarray(boxes, np.float64))
    return atomic_write_text(path, text)


def check_box(box: Sequence[float] | np.ndarray, width: int, height: int, name: str = "box") -> np.ndarray:
    """``box`` as float64 ``(x, y, w, h)`` after checking it against a ``width x height``
    frame: ``ValueError`` naming ``name`` when it is not 4 finite numbers, has ``w <= 0``
    or ``h <= 0``, or lies wholly outside the frame."""
    values = np.asarray(box, dtype=np.float64).reshape(-1)
    if values.size != 4 or not np.isfinite(values).all():
        raise ValueError(f"{name}: expected 4 finite numbers x,y,w,h, got {list(values)}")
    x, y, w, h = values
    if w <= 0 or h <= 0:
        raise ValueError(f"{name}: width and height must be positive, got w={w:g}, h={h:g}")
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise ValueError(f"{name}: ({x:g},{y:g},{w:g},{h:g}) lies outside the {width}x{height} frame")
    return values


def _corners(boxes: np.ndarray) -> np.ndarray:
    """``(N, 4)`` ``(x, y, w, h)`` -> ``(x1, y1, x2, y2)``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def _paired_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of row ``i`` of ``a`` with row ``i`` of ``b`` (corners), computed as mmdet's
    ``bbox_overlaps`` does: float32, no +1, union clamped at 1e-6."""
    a, b = a.astype(np.float32), b.astype(np.float32)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    width = np.maximum(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0)
    height = np.maximum(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0)
    overlap = width * height
    return overlap / np.maximum(area_a + area_b - overlap, np.float32(1e-6))


def _check_pair(gt: np.ndarray, pred: np.ndarray, visible: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gt, pred = np.asarray(gt, np.float64).reshape(-1, 4), np.asarray(pred, np.float64).reshape(-1, 4)
    if len(gt) != len(pred):
        raise ValueError(f"pred: {len(pred)} boxes for {len(gt)} ground-truth frames")
    visible = np.ones(len(gt), bool) if visible is None else np.asarray(visible, bool).reshape(-1)
    if len(visible) != len(gt):
        raise ValueError(f"visible: {len(visible)} flags for {len(gt)} ground-truth frames")
    return gt, pred, visible


def success_curve(gt: np.ndarray, pred: np.ndarray, visible: np.ndarray | None = None) -> np.ndarray:
    """Fraction of frames with ``IoU > t`` for each of the 21 ``IOU_THRESHOLDS``: ``(21,)``.

    ``gt`` and ``pred`` are ``(N, 4)`` ``(x, y, w, h)``; ``visible`` ``(N,)`` bool drops
    frames from the numerator only.
    """
    gt, pred, visible = _check_pair(gt, pred, visible)
    gt, pred, n = _corners(gt[visible]), _corners(pred[visible]), len(visible)
    iou = np.full(len(gt), -1.0)
    valid = (gt[:, 2] > gt[:, 0]) & (gt[:, 3] > gt[:, 1])
    iou[valid] = _paired_iou(gt[valid], pred[valid])
    return np.array([np.sum(iou > t) / float(n) for t in IOU_THRESHOLDS])


def _centre_curve(gt_centre: np.ndarray, pred_centre: np.ndarray, thresholds: np.ndarray,
                  n: int) -> np.ndarray:
    """Fraction of ``n`` frames with centre error ``<= t``; a ground-truth centre with a
    coordinate ``<= 0`` counts as error -1 (a hit), as in mmtracking's ``success_error``."""
    error = np.full(len(gt_centre), -1.0)
    valid = (gt_centre[:, 0] > 0) & (gt_centre[:, 1] > 0)
    error[valid] = np.sqrt(np.sum((gt_centre[valid] - pred_centre[valid]) ** 2, axis=1))
    return np.array([np.sum(error <= t) / float(n) for t in thresholds])


def precision_curve(gt: np.ndarray, pred: np.ndarray, visible: np.ndarray | None = None,
                    normalized: bool = False) -> np.ndarray:
    """Fraction of frames whose centre error is ``<= t``: ``(51,)`` over ``PIXEL_THRESHOLDS``
    (pixels), or over ``NORM_THRESHOLDS`` with centres divided by the ground-truth size
    when ``normalized``."""
    gt, pred, visible = _check_pair(gt, pred, visible)
    gt, pred, n = _corners(gt[visible]), _corners(pred[visible]), len(visible)
    gt_centre = np.array((0.5 * (gt[:, 2] + gt[:, 0]), 0.5 * (gt[:, 3] + gt[:, 1]))).T
    pred_centre = np.array((0.5 * (pred[:, 2] + pred[:, 0]), 0.5 * (pred[:, 3] + pred[:, 1]))).T
    if not normalized:
        return _centre_curve(gt_centre, pred_centre, PIXEL_THRESHOLDS, n)
    gt_size = np.array((gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1])).T
    return _centre_curve(gt_centre / (gt_size + 1e-16), pred_centre / (gt_size + 1e-16),
                         NORM_THRESHOLDS, n)


def evaluate_ope(gt: np.ndarray | Sequence[np.ndarray], pred: np.ndarray | Sequence[np.ndarray],
                 visible: np.ndarray | Sequence[np.ndarray] | None = None) -> dict[str, float]:
    """OPE scores of one sequence (``(N, 4)`` arrays) or of several (lists of arrays).

    Boxes are ``(x, y, w, h)``; the first frame counts like every other.  Returns
    percentages: ``success`` (AUC of the 21-threshold success curve), ``precision``
    (at 20 px) and ``norm_precision`` (at 0.2), each curve averaged over sequences.
    """
    single = isinstance(gt, np.ndarray) and gt.ndim == 2
    gts, preds = ([gt], [pred]) if single else (list(gt), list(pred))
    visibles = [None] * len(gts) if visible is None else ([visible] if single else list(visible))
    if not gts or len(preds) != len(gts) or len(visibles) != len(gts):
        raise ValueError(f"pred: need one prediction per ground-truth sequence, got {len(preds)} "
                         f"for {len(gts)}")
    success = [success_curve(g, p, v) for g, p, v in zip(gts, preds, visibles)]
    precision = [precision_curve(g, p, v) for g, p, v in zip(gts, preds, visibles)]
    norm = [precision_curve(g, p, v, normalized=True) for g, p, v in zip(gts, preds, visibles)]
    return {"success": float(np.mean(success) * 100),
            "precision": float(np.mean(precision, axis=0)[_AT] * 100),
            "norm_precision": float(np.mean(norm, axis=0)[_AT] * 100)}


def _paths(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """One path, or a sequence of them, as a list of paths."""
    return [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]


def _read_pairs(gt_paths: list[Path], pred_paths: list[Path], pred_format: str
                ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The ground-truth and predicted boxes of each pair of files, their counts checked."""
    if len(gt_paths) != len(pred_paths):
        raise ValueError(f"pred: {len(pred_paths)} prediction files for {len(gt_paths)} ground-truth files")
    gts, preds = [], []
    for g, p in zip(gt_paths, pred_paths):
        gts.append(read_boxes(g))
        if len(gts[-1]) == 0:
            raise ValueError(f"{g}: ground truth holds no boxes (empty file), so there is no frame to score")
        preds.append(read_boxes(p, pred_format))
        if len(gts[-1]) != len(preds[-1]):
            raise ValueError(f"{p}: {len(preds[-1])} boxes but {g} has {len(gts[-1])}")
    return gts, preds


def evaluate_files(gt_path: str | os.PathLike | Sequence[str | os.PathLike],
                   pred_path: str | os.PathLike | Sequence[str | os.PathLike],
                   pred_format: str = "xywh") -> dict[str, float]:
    """``evaluate_ope`` over box files: one ground-truth and one prediction file per
    sequence (a path or equal-length lists of paths).  Ground truth is ``x,y,w,h``;
    ``pred_format="xyxy"`` reads mmtracking-style ``x1,y1,x2,y2`` results.  A count
    mismatch raises ``ValueError`` naming both files, a ground-truth file without a box
    (no frame to score) ``ValueError`` naming it."""
    return evaluate_ope(*_read_pairs(_paths(gt_path), _paths(pred_path), pred_format))


# file names that say what a file holds, not which sequence (MOTChallenge, OTB/LaSOT, mmtracking)
_GENERIC_STEMS = {"gt", "groundtruth", "gt_for_eval", "det", "test", "track_results"}


def sequence_names(paths: Sequence[str | os.PathLike]) -> list[str]:
    """One name per file: the nearest of its stem and folder names that says more than
    ``gt`` or ``groundtruth`` (``TUD-Campus/gt.txt`` -> ``TUD-Campus``, ``scene.gt.txt`` ->
    ``scene``); the full paths as given where two names would coincide."""
    def stem(path: Path) -> str:
        while path.suffix[1:].lower() in _GENERIC_STEMS:
            path = path.with_suffix("")
        return path.stem

    given = [Path(p) for p in paths]
    names = [next((part for part in (stem(p.with_suffix("")), *reversed(p.absolute().parent.parts))
                   if part.lower() not in _GENERIC_STEMS), p.stem) for p in given]
    return names if len(set(names)) == len(names) else [str(p) for p in given]


def box_file_kind(path: str | os.PathLike) -> str:
    """``"sot"`` when the first non-empty line of ``path`` holds 4 numbers (``x,y,w,h``, a
    single-object box file), else ``"mot"`` (a MOTChallenge file: 6 to 10 fields; a folder:
    a benchmark split).  ``FileNotFoundError`` for a missing path."""
    path = Path(path)
    if path.is_dir():
        return "mot"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    first = next((line for line in read_text(path).splitlines() if line.strip()), "")
    return "sot" if len(_SEPARATORS.split(first.strip())) == 4 else "mot"


def evaluate_ope_files(gt: str | os.PathLike | Sequence[str | os.PathLike],
                       pred: str | os.PathLike | Sequence[str | os.PathLike],
                       pred_format: str = "xywh") -> dict[str, dict[str, float]]:
    """OPE scores of each sequence's box files, named by :func:`sequence_names` of the
    ground-truth files, plus ``"COMBINED"`` (the curves averaged over sequences, as
    :func:`evaluate_ope` of them all) when there are several.  ``gt`` and ``pred`` are a
    path or equal-length lists of paths; errors as :func:`evaluate_files`."""
    gt_paths, pred_paths = _paths(gt), _paths(pred)
    gts, preds = _read_pairs(gt_paths, pred_paths, pred_format)
    results = {name: evaluate_ope(g, p) for name, g, p in zip(sequence_names(gt_paths), gts, preds)}
    if len(results) > 1:
        results["COMBINED"] = evaluate_ope(gts, preds)
    return results


def format_ope_table(results: Mapping[str, Mapping[str, float]]) -> str:
    """OPE scores (percent, as :func:`evaluate_ope` returns them) as a plain-text table:
    a header, then one row per sequence with success, precision and norm_precision to two
    decimals."""
    keys = ("success", "precision", "norm_precision")
    rows = [["", *keys], *([name, *(f"{r[k]:.2f}" for k in keys)] for name, r in results.items())]
    widths = [max(len(row[i]) for row in rows) for i in range(len(keys) + 1)]
    return "\n".join(" ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                              enumerate(zip(row, widths))) for row in rows)
