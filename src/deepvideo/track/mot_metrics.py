"""Multi-object tracking metrics: CLEAR MOT, the identity measures and HOTA.

* CLEAR MOT -- K. Bernardin, R. Stiefelhagen, "Evaluating Multiple Object Tracking
  Performance: The CLEAR MOT Metrics", EURASIP JIVP 2008 (MOTA, MOTP, IDSW); mostly
  tracked / partially tracked / mostly lost and fragmentations from Y. Li, C. Huang,
  R. Nevatia, "Learning to Associate: HybridBoosted Multi-Target Tracker", CVPR 2009.
* Identity -- E. Ristani, F. Solera, R. Zou, R. Cucchiara, C. Tomasi, "Performance Measures
  and a Data Set for Multi-Target, Multi-Camera Tracking", ECCV Workshops 2016 (IDF1, IDP, IDR).
* HOTA -- J. Luiten, A. Osep, P. Dendorfer, P. Torr, A. Geiger, L. Leal-Taixe, B. Leibe,
  "HOTA: A Higher Order Metric for Evaluating Multi-Object Tracking", IJCV 2021.

The numbers are those of the two reference tools, checked against them in
``tests/track/test_mot_metrics.py``: CLEAR MOT and the identity measures as py-motmetrics 1.4
(``apps/eval_motchallenge.py``) and TrackEval, HOTA as TrackEval (MOTChallenge 2D box).

Inputs are ``(N, >=6)`` arrays as :func:`deepvideo.track.motio.read_mot` returns them
(``frame, id, x, y, w, h, conf, ...``, boxes ``(x, y, w, h)`` in pixels).  Ground-truth rows
with ``conf == 0`` are ignored: they are neither objects to find nor false positives when
found (TrackEval drops such "zero-marked" rows; py-motmetrics reads ground truth with
``min_confidence=1``, the same for MOTChallenge ground truth, whose conf is 0 or 1).  A gt box
and a predicted box may match when their IoU is at least ``iou_threshold``.

Results: rates are fractions in ``[0, 1]``, not percent (MOTA can be negative); counts are
ints.  ``MOTP`` is the mean IoU of the matched pairs (TrackEval's and the MOTChallenge
leaderboard's MOTP); ``MOTP_dist = 1 - MOTP`` is py-motmetrics' ``motp``, the mean ``1 - IoU``
distance.  Empty denominators count as 1, as in TrackEval, so no value is NaN.  A ground-truth
*file* must hold a box to evaluate, though: the functions that read files refuse one that is
empty or wholly zero-marked (:func:`read_ground_truth`), where MOTA and recall are undefined.

The two references agree on the MOT15 sample sequences but not always on CLEAR MOT in crowded
scenes.  By default (``clear_rule="motmetrics"``) CLEAR MOT follows py-motmetrics and the
paper: a correspondence is carried over from the last frame the object was matched in while
its IoU passes, the rest get a maximum-cardinality minimum-distance assignment; MT counts
objects matched in at least 80 % of their boxes; FRAG counts the misses that interrupt an
object's matches.  ``clear_rule="trackeval"`` gives TrackEval's numbers: one assignment per
frame maximising ``1000 * (matched in the previous frame) + IoU``, MT above 80 %, and FRAG
counting every restart of an object's matching after its first (so a frame where the object
is not annotated also splits it).  The identity measures and HOTA do not depend on the rule.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from tqdm import tqdm

from deepvideo.track.motio import frames_of, read_mot
from deepvideo.track.ope import box_file_kind, evaluate_ope_files, format_ope_table, sequence_names

__all__ = ["HOTA_ALPHAS", "CLEAR_RULES", "iou_matrix", "read_ground_truth", "evaluate_mot", "evaluate_files",
           "evaluate_sequences", "evaluate_benchmark", "evaluate_mot_files", "evaluate_tracking", "format_table",
           "format_results"]

_EPS = np.finfo(np.float64).eps
HOTA_ALPHAS = np.arange(0.05, 0.99, 0.05)  # the 19 localisation thresholds 0.05 .. 0.95 HOTA averages over
_MT_RATIO, _ML_RATIO = 0.8, 0.2  # mostly tracked at >= 80 % of its frames, mostly lost below 20 %


def iou_matrix(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU of every ``(x, y, w, h)`` box of ``boxes1`` ``(N, 4)`` with every box of ``boxes2``
    ``(M, 4)``: an ``(N, M)`` float64 array, 0 for a pair where either box has no area."""
    boxes1 = np.asarray(boxes1, dtype=np.float64).reshape(-1, 4)
    boxes2 = np.asarray(boxes2, dtype=np.float64).reshape(-1, 4)
    top_left = np.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    bottom_right = np.minimum(boxes1[:, None, :2] + boxes1[:, None, 2:], boxes2[None, :, :2] + boxes2[None, :, 2:])
    intersection = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area1, area2 = np.prod(boxes1[:, 2:], axis=1), np.prod(boxes2[:, 2:], axis=1)
    union = area1[:, None] + area2[None, :] - intersection
    valid = (area1[:, None] > _EPS) & (area2[None, :] > _EPS)
    return np.where(valid, intersection / np.where(valid, union, 1.0), 0.0)


# ----------------------------------------------------------------------------- the sequence


@dataclass
class _Frame:
    """One frame: gt and predicted track indices (0-based, contiguous over the sequence) and
    the ``(len(gt), len(pred))`` IoU of their boxes."""

    gt: np.ndarray
    pred: np.ndarray
    iou: np.ndarray


@dataclass
class _Sequence:
    frames: list[_Frame]  # every frame with a line in either file (an ignored gt box too), in order
    num_gt_ids: int
    num_pred_ids: int


def _checked_rows(rows: np.ndarray, name: str, columns: int) -> np.ndarray:
    """``rows`` as float64, checked to be ``(N, >=columns)`` with each id once per frame."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] < columns:
        raise ValueError(f"{name}: MOT rows must be an (N, >={columns}) array "
                         f"(frame, id, x, y, w, h{', conf' if columns > 6 else ''}), got shape {rows.shape}")
    keys, counts = np.unique(rows[:, :2], axis=0, return_counts=True)
    if (counts > 1).any():
        frame, track_id = keys[np.argmax(counts > 1)]
        raise ValueError(f"{name}: frame {int(frame)} has id {int(track_id)} more than once")
    return rows


def _prepare(gt: np.ndarray, pred: np.ndarray, gt_name: str, pred_name: str) -> _Sequence:
    """Drop the zero-marked gt rows, number the ids 0.. and compute each frame's IoU matrix."""
    gt = _checked_rows(gt, gt_name, 7)
    pred = _checked_rows(pred, pred_name, 6)
    numbers = sorted(set(gt[:, 0].astype(np.int64).tolist()) | set(pred[:, 0].astype(np.int64).tolist()))
    gt = gt[gt[:, 6] != 0]
    _, gt_index = np.unique(gt[:, 1], return_inverse=True)
    _, pred_index = np.unique(pred[:, 1], return_inverse=True)
    gt_frames = frames_of(np.column_stack([gt[:, 0], gt_index, gt[:, 2:6]]))
    pred_frames = frames_of(np.column_stack([pred[:, 0], pred_index, pred[:, 2:6]]))
    empty = np.empty((0, 6))
    frames = []
    for number in numbers:
        g, p = gt_frames.get(number, empty), pred_frames.get(number, empty)
        frames.append(_Frame(g[:, 1].astype(np.int64), p[:, 1].astype(np.int64), iou_matrix(g[:, 2:6], p[:, 2:6])))
    return _Sequence(frames, int(gt_index.max(initial=-1)) + 1, int(pred_index.max(initial=-1)) + 1)


# ----------------------------------------------------------------------------- CLEAR MOT


def _max_matching(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the maximum-cardinality minimum-cost matching; NaN marks pairs that
    may not match (py-motmetrics' ``lap.add_expensive_edges``: a forbidden pair costs more than
    any matching with one pair fewer)."""
    allowed = np.isfinite(cost)
    if not allowed.any():
        return np.empty(0, np.int64), np.empty(0, np.int64)
    forbidden_cost = 2 * min(cost.shape) * (np.abs(cost[allowed]).max() + 1) + 1
    rows, cols = linear_sum_assignment(np.where(allowed, cost, forbidden_cost))
    keep = allowed[rows, cols]
    return rows[keep], cols[keep]


def _match_motmetrics(frame: _Frame, allowed: np.ndarray, last_match: np.ndarray) -> np.ndarray:
    """The CLEAR MOT rule: keep each object's correspondence from the last frame it was matched
    in while its IoU still passes, then assign the remaining objects and predictions by
    Hungarian matching on the distance ``1 - IoU``.  Returns each gt row's matched column or -1."""
    match = np.full(len(frame.gt), -1)
    column = {int(track): j for j, track in enumerate(frame.pred)}
    taken = np.zeros(len(frame.pred), dtype=bool)
    for i, obj in enumerate(frame.gt):
        j = column.get(int(last_match[obj]), -1)
        if j >= 0 and not taken[j] and allowed[i, j]:
            match[i], taken[j] = j, True
    free = allowed & (match < 0)[:, None] & ~taken[None, :]
    rows, cols = _max_matching(np.where(free, 1.0 - frame.iou, np.nan))
    match[rows] = cols
    return match


def _match_trackeval(frame: _Frame, allowed: np.ndarray, previous_frame: np.ndarray) -> np.ndarray:
    """TrackEval's rule: one Hungarian matching maximising ``1000 * (pair was matched in the
    previous frame) + IoU`` over the allowed pairs.  Returns each gt row's matched column or -1."""
    score = np.where(allowed, 1000.0 * (frame.pred[None, :] == previous_frame[frame.gt][:, None]) + frame.iou, 0.0)
    rows, cols = linear_sum_assignment(-score)
    keep = score[rows, cols] > _EPS
    match = np.full(len(frame.gt), -1)
    match[rows[keep]] = cols[keep]
    return match


CLEAR_RULES = ("motmetrics", "trackeval")


def _clear(seq: _Sequence, iou_threshold: float, rule: str) -> dict:
    """CLEAR MOT counts under ``rule`` (one of :data:`CLEAR_RULES`).  A match of an object to
    another prediction than the one it was last matched to is an identity switch."""
    last_match = np.full(seq.num_gt_ids, -1)  # the prediction each object was last matched to
    previous_frame = np.full(seq.num_gt_ids, -1)  # its match in the previous frame with gt and predictions
    starts = np.zeros(seq.num_gt_ids, np.int64)  # TrackEval: how often each object's matching (re)starts
    tp = fp = fn = switches = 0
    iou_sum = 0.0
    objects, tracked = [], []  # per gt box: its object, whether it was matched
    for frame in seq.frames:
        g, p = frame.gt, frame.pred
        objects.append(g)
        if not (len(g) and len(p)):  # nothing to match (TrackEval keeps its previous-frame state)
            fn, fp = fn + len(g), fp + len(p)
            tracked.append(np.zeros(len(g), dtype=bool))
            continue
        allowed = frame.iou >= iou_threshold - _EPS
        match = (_match_motmetrics(frame, allowed, last_match) if rule == "motmetrics"
                 else _match_trackeval(frame, allowed, previous_frame))
        matched = match >= 0
        hit_g, hit_p = g[matched], p[match[matched]]
        previous = last_match[hit_g]
        switches += int(np.sum((previous >= 0) & (previous != hit_p)))
        starts[hit_g] += previous_frame[hit_g] < 0
        previous_frame[:] = -1
        previous_frame[hit_g] = hit_p
        last_match[hit_g] = hit_p
        tp, fn, fp = tp + len(hit_g), fn + len(g) - len(hit_g), fp + len(p) - len(hit_g)
        iou_sum += float(frame.iou[np.flatnonzero(matched), match[matched]].sum())
        tracked.append(matched)
    objects = np.concatenate(objects or [np.empty(0, np.int64)])
    tracked = np.concatenate(tracked or [np.empty(0, bool)])
    order = np.argsort(objects, kind="stable")
    per_object = np.split(tracked[order], np.flatnonzero(np.diff(objects[order])) + 1)[:seq.num_gt_ids]
    ratios = np.array([states.mean() for states in per_object])  # share of its boxes matched
    mostly_tracked = ratios >= _MT_RATIO if rule == "motmetrics" else ratios > _MT_RATIO
    if rule == "motmetrics":  # count the misses that interrupt an object's matches
        fragmentations = 0
        for states in per_object:
            hits = np.flatnonzero(states)
            if len(hits):
                span = states[hits[0]:hits[-1] + 1]
                fragmentations += int(np.sum(span[:-1] & ~span[1:]))
    else:  # count the restarts of an object's matching after its first start
        fragmentations = int(np.sum(np.maximum(starts - 1, 0)))
    mt, ml = int(mostly_tracked.sum()), int(np.sum(ratios < _ML_RATIO))
    return {"TP": tp, "FP": fp, "FN": fn, "IDSW": switches, "FRAG": fragmentations, "MT": mt,
            "PT": seq.num_gt_ids - mt - ml, "ML": ml, "iou_sum": iou_sum, "num_frames": len(seq.frames)}


# ----------------------------------------------------------------------------- identity


def _id_counts(seq: _Sequence, allowed: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes per gt track, boxes per predicted track, and for each (gt, predicted) pair of tracks
    the number of frames in which their boxes may match (``allowed`` per frame)."""
    gt_count = np.zeros(seq.num_gt_ids)
    pred_count = np.zeros(seq.num_pred_ids)
    pairs = np.zeros((seq.num_gt_ids, seq.num_pred_ids))
    for frame, ok in zip(seq.frames, allowed):
        gt_count[frame.gt] += 1
        pred_count[frame.pred] += 1
        i, j = np.nonzero(ok)
        pairs[frame.gt[i], frame.pred[j]] += ok[i, j]
    return gt_count, pred_count, pairs


def _identity(seq: _Sequence, iou_threshold: float) -> dict:
    """IDTP/IDFP/IDFN of the one-to-one matching of gt tracks to predicted tracks that
    minimises IDFP + IDFN over the whole sequence (a bipartite min-cost problem where each track
    may also stay unmatched, matched to its own dummy)."""
    gt_count, pred_count, tp = _id_counts(seq, [f.iou >= iou_threshold - _EPS for f in seq.frames])
    n_gt, n_pred = seq.num_gt_ids, seq.num_pred_ids
    never = 1e10  # a gt track is never matched to another gt track's dummy, nor a prediction
    fn_cost = np.zeros((n_gt + n_pred, n_gt + n_pred))
    fp_cost = np.zeros_like(fn_cost)
    fn_cost[:n_gt, :n_pred] = gt_count[:, None] - tp
    fn_cost[:n_gt, n_pred:] = never
    fn_cost[np.arange(n_gt), n_pred + np.arange(n_gt)] = gt_count
    fp_cost[:n_gt, :n_pred] = pred_count[None, :] - tp
    fp_cost[n_gt:, :n_pred] = never
    fp_cost[n_gt + np.arange(n_pred), np.arange(n_pred)] = pred_count
    rows, cols = linear_sum_assignment(fn_cost + fp_cost)
    idfn = int(round(fn_cost[rows, cols].sum()))
    idfp = int(round(fp_cost[rows, cols].sum()))
    return {"IDTP": int(gt_count.sum()) - idfn, "IDFP": idfp, "IDFN": idfn}


# ----------------------------------------------------------------------------- HOTA


def _hota(seq: _Sequence) -> dict:
    """HOTA counts per localisation threshold alpha (arrays over :data:`HOTA_ALPHAS`).

    Boxes are matched per frame by Hungarian assignment on ``A(g, p) * IoU`` where ``A`` is the
    soft global alignment of the two tracks (their IoU-weighted co-occurrence over the union of
    their lengths), so that matches favour pairs that stay together; a match counts at alpha
    when its IoU >= alpha.  Association accuracy of a match is the track-level Jaccard index
    ``TPA / (TPA + FNA + FPA)`` of its two tracks, averaged over all matches.
    """
    gt_count, pred_count, soft = _id_counts(seq, [_soft_iou(f.iou) for f in seq.frames])
    alignment = soft / np.maximum(gt_count[:, None] + pred_count[None, :] - soft, _EPS)
    n = len(HOTA_ALPHAS)
    tp, fn, fp, loc_sum = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    pair_g, pair_p, pair_iou = [], [], []
    for frame in seq.frames:
        if len(frame.gt) and len(frame.pred):
            score = alignment[frame.gt[:, None], frame.pred[None, :]] * frame.iou
            rows, cols = linear_sum_assignment(-score)
            iou = frame.iou[rows, cols]
            hit = iou[None, :] >= HOTA_ALPHAS[:, None] - _EPS  # (alpha, match)
            tp += hit.sum(1)
            loc_sum += (hit * iou[None, :]).sum(1)
            pair_g.append(frame.gt[rows])
            pair_p.append(frame.pred[cols])
            pair_iou.append(iou)
            matched = hit.sum(1)
        else:
            matched = 0
        fn += len(frame.gt) - matched
        fp += len(frame.pred) - matched
    pair_g, pair_p, pair_iou = (np.concatenate(x) if x else np.empty(0) for x in (pair_g, pair_p, pair_iou))
    pairs, pair_of_match = np.unique(np.stack([pair_g, pair_p]).astype(np.int64), axis=1, return_inverse=True)
    gts, preds = gt_count[pairs[0]], pred_count[pairs[1]]
    ass_a, ass_re, ass_pr = np.zeros(n), np.zeros(n), np.zeros(n)
    for a, alpha in enumerate(HOTA_ALPHAS):
        tpa = np.bincount(pair_of_match.reshape(-1)[pair_iou >= alpha - _EPS], minlength=pairs.shape[1])
        ass_a[a] = np.sum(tpa * tpa / np.maximum(1, gts + preds - tpa))  # sum over matches of the pair's Jaccard
        ass_re[a] = np.sum(tpa * tpa / np.maximum(1, gts))
        ass_pr[a] = np.sum(tpa * tpa / np.maximum(1, preds))
    return {"HOTA_TP": tp, "HOTA_FN": fn, "HOTA_FP": fp, "loc_sum": loc_sum,
            "ass_a_sum": ass_a, "ass_re_sum": ass_re, "ass_pr_sum": ass_pr}


def _soft_iou(iou: np.ndarray) -> np.ndarray:
    """HOTA's per-frame soft co-occurrence of two tracks: ``S / (row sum + column sum - S)`` of
    the similarity ``S``, so a frame contributes at most 1 to each track's alignment."""
    union = iou.sum(0)[None, :] + iou.sum(1)[:, None] - iou
    return np.where(union > _EPS, iou / np.where(union > _EPS, union, 1.0), 0.0)


# ----------------------------------------------------------------------------- results


def _counts(gt: np.ndarray, pred: np.ndarray, iou_threshold: float, clear_rule: str, gt_name: str,
            pred_name: str) -> dict:
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    if clear_rule not in CLEAR_RULES:
        raise ValueError(f"unknown clear_rule {clear_rule!r} (choose from {', '.join(CLEAR_RULES)})")
    seq = _prepare(gt, pred, gt_name, pred_name)
    return {**_clear(seq, iou_threshold, clear_rule), **_identity(seq, iou_threshold), **_hota(seq)}


def _scores(c: dict) -> dict[str, float]:
    """The metrics from (possibly summed) counts, with TrackEval's ``max(1, denominator)``."""
    gt = c["TP"] + c["FN"]
    tp = c["HOTA_TP"]
    det_a = tp / np.maximum(1, tp + c["HOTA_FN"] + c["HOTA_FP"])
    ass_a = c["ass_a_sum"] / np.maximum(1, tp)
    motp = c["iou_sum"] / max(1, c["TP"])
    scores = {
        "MOTA": (c["TP"] - c["FP"] - c["IDSW"]) / max(1, gt),
        "MOTP": motp,
        "MOTP_dist": 1.0 - motp,
        "IDF1": c["IDTP"] / max(1.0, c["IDTP"] + 0.5 * c["IDFP"] + 0.5 * c["IDFN"]),
        "IDP": c["IDTP"] / max(1, c["IDTP"] + c["IDFP"]),
        "IDR": c["IDTP"] / max(1, c["IDTP"] + c["IDFN"]),
        "Rcll": c["TP"] / max(1, gt),
        "Prcn": c["TP"] / max(1, c["TP"] + c["FP"]),
        "HOTA": np.sqrt(det_a * ass_a).mean(),
        "DetA": det_a.mean(),
        "AssA": ass_a.mean(),
        "LocA": (np.maximum(1e-10, c["loc_sum"]) / np.maximum(1e-10, tp)).mean(),
        "DetRe": (tp / np.maximum(1, tp + c["HOTA_FN"])).mean(),
        "DetPr": (tp / np.maximum(1, tp + c["HOTA_FP"])).mean(),
        "AssRe": (c["ass_re_sum"] / np.maximum(1, tp)).mean(),
        "AssPr": (c["ass_pr_sum"] / np.maximum(1, tp)).mean(),
    }
    out = {key: float(value) for key, value in scores.items()}
    out.update({key: int(c[key]) for key in ("IDSW", "FRAG", "FP", "FN", "TP", "MT", "PT", "ML",
                                              "IDTP", "IDFP", "IDFN", "num_frames")})
    out["GT"] = int(gt)
    return out


def evaluate_mot(gt: np.ndarray, pred: np.ndarray, iou_threshold: float = 0.5, *,
                 clear_rule: str = "motmetrics") -> dict[str, float]:
    """Evaluate one sequence's tracker output ``pred`` against its ground truth ``gt`` (both
    ``(N, >=6)`` MOT rows as ``read_mot`` returns; gt needs the ``conf`` column).

    Returns (rates as fractions, counts as ints; see the module docstring for conventions):
    ``MOTA, MOTP`` (mean IoU of matches), ``MOTP_dist`` (``1 - MOTP``), ``IDF1, IDP, IDR,
    IDTP, IDFP, IDFN, IDSW, FRAG, FP, FN, TP`` (matched boxes), ``GT`` (gt boxes), ``Rcll,
    Prcn, MT, PT, ML, num_frames`` (frames with a line in either input, as py-motmetrics
    counts them: a frame holding only ignored gt boxes counts too), and ``HOTA, DetA, AssA,
    LocA, DetRe, DetPr, AssRe, AssPr`` (each averaged over alpha = 0.05 .. 0.95).
    ``clear_rule="trackeval"`` computes CLEAR MOT (MOTA .. ML) as TrackEval does instead of as
    py-motmetrics does (see the module docstring).  An id used twice in one frame raises
    ``ValueError``.
    """
    return _scores(_counts(gt, pred, iou_threshold, clear_rule, "gt", "pred"))


def read_ground_truth(path: str | os.PathLike) -> np.ndarray:
    """:func:`read_mot` for a ground-truth file, which must hold at least one box to evaluate.

    With no box (an empty file) or only zero-marked ones (``conf == 0``, ignored) every rate
    over the ground truth -- MOTA, recall -- divides by zero, so such a file raises
    ``ValueError("<file>: ...")``.  A tracker's result file may be empty: read it with
    ``read_mot``.
    """
    rows = read_mot(path)
    if len(rows) == 0:
        raise ValueError(f"{path}: ground truth holds no boxes (empty file), so MOTA and recall are undefined")
    if not (rows[:, 6] != 0).any():
        raise ValueError(f"{path}: all {len(rows)} ground-truth boxes have conf 0 (ignored), "
                         "so MOTA and recall are undefined")
    return rows


def evaluate_files(gt_path: str | os.PathLike, pred_path: str | os.PathLike, iou_threshold: float = 0.5, *,
                   clear_rule: str = "motmetrics") -> dict[str, float]:
    """:func:`evaluate_mot` on two MOTChallenge files (errors name the file at fault; ground truth
    is read with :func:`read_ground_truth`, so it may not be empty, while the result may)."""
    return _scores(_counts(read_ground_truth(gt_path), read_mot(pred_path), iou_threshold, clear_rule, str(gt_path),
                           str(pred_path)))


def evaluate_sequences(sequences: Mapping[str, tuple[np.ndarray, np.ndarray]], iou_threshold: float = 0.5, *,
                       clear_rule: str = "motmetrics", progress: bool = False) -> dict[str, dict[str, float]]:
    """Evaluate several sequences ``{name: (gt, pred)}``: one result per name plus
    ``"COMBINED"``, the metrics of all sequences' counts summed (as both reference tools combine
    them: MOTA over all boxes, HOTA's association weighted by matches, ...)."""
    results, total = {}, None
    for name, (gt, pred) in tqdm(sequences.items(), desc="evaluate", unit="seq", disable=not progress):
        counts = _counts(gt, pred, iou_threshold, clear_rule, f"{name} gt", f"{name} pred")
        results[name] = _scores(counts)
        total = counts if total is None else {key: total[key] + value for key, value in counts.items()}
    if total is not None:
        results["COMBINED"] = _scores(total)
    return results


def evaluate_benchmark(gt_root: str | os.PathLike, results_dir: str | os.PathLike, iou_threshold: float = 0.5, *,
                       clear_rule: str = "motmetrics", progress: bool = False) -> dict[str, dict[str, float]]:
    """Evaluate a tracker on a MOTChallenge split: every ``gt_root/<seq>/gt/gt.txt`` against
    ``results_dir/<seq>.txt``.  Returns per-sequence results and ``"COMBINED"``; a missing
    result file raises ``FileNotFoundError`` naming it, a ground-truth file without a box to
    evaluate ``ValueError`` (:func:`read_ground_truth`)."""
    gt_root, results_dir = Path(gt_root), Path(results_dir)
    gt_files = sorted(gt_root.glob("*/gt/gt.txt"))
    if not gt_files:
        raise FileNotFoundError(f"{gt_root}: no <sequence>/gt/gt.txt files")
    sequences = {}
    for gt_file in gt_files:
        name = gt_file.parent.parent.name
        result = results_dir / f"{name}.txt"
        if not result.is_file():
            raise FileNotFoundError(f"{result}: no tracker result for sequence {name}")
        sequences[name] = (read_ground_truth(gt_file), read_mot(result))
    return evaluate_sequences(sequences, iou_threshold, clear_rule=clear_rule, progress=progress)


def _paths(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    return [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]


def evaluate_mot_files(gt: str | os.PathLike | Sequence[str | os.PathLike],
                       pred: str | os.PathLike | Sequence[str | os.PathLike], iou_threshold: float = 0.5, *,
                       clear_rule: str = "motmetrics", progress: bool = False) -> dict[str, dict[str, float]]:
    """Evaluate MOTChallenge files: ``gt`` and ``pred`` are one file each, equal-length lists
    of files (one per sequence, in the same order), or a benchmark folder and a results folder
    (:func:`evaluate_benchmark`).  Results are keyed by sequence name (:func:`deepvideo.track.
    ope.sequence_names` of the ground-truth files, or the benchmark's folders), with
    ``"COMBINED"`` when there are several sequences."""
    gt_paths, pred_paths = _paths(gt), _paths(pred)
    if len(gt_paths) != len(pred_paths):
        raise ValueError(f"pred: {len(pred_paths)} files for {len(gt_paths)} ground-truth files")
    if gt_paths[0].is_dir():
        if len(gt_paths) > 1:
            raise ValueError("gt: one benchmark folder (<seq>/gt/gt.txt) or MOT files, not both")
        return evaluate_benchmark(gt_paths[0], pred_paths[0], iou_threshold, clear_rule=clear_rule, progress=progress)
    names = sequence_names(gt_paths)
    if len(names) == 1:
        return {names[0]: evaluate_files(gt_paths[0], pred_paths[0], iou_threshold, clear_rule=clear_rule)}
    sequences = {name: (read_ground_truth(g), read_mot(p)) for name, g, p in zip(names, gt_paths, pred_paths)}
    return evaluate_sequences(sequences, iou_threshold, clear_rule=clear_rule, progress=progress)


def evaluate_tracking(gt: str | os.PathLike | Sequence[str | os.PathLike],
                      pred: str | os.PathLike | Sequence[str | os.PathLike], kind: str = "auto",
                      iou_threshold: float = 0.5, *, clear_rule: str = "motmetrics", pred_format: str = "xywh",
                      progress: bool = False) -> dict[str, dict[str, float]]:
    """Score tracker result files against their ground truth, ``{sequence: metrics}``.

    ``kind="mot"``: MOTChallenge files or folders, :func:`evaluate_mot_files` with
    ``iou_threshold`` and ``clear_rule`` (fractions).  ``kind="sot"``: single-object box
    files, :func:`deepvideo.track.ope.evaluate_ope_files` with ``pred_format`` (percent).
    ``kind="auto"`` tells them apart by the first ground-truth path
    (:func:`deepvideo.track.ope.box_file_kind`: a first line of 4 numbers is a box file).
    """
    gt_paths, pred_paths = _paths(gt), _paths(pred)
    if not gt_paths:
        raise ValueError("gt: no ground-truth files")
    if len(gt_paths) != len(pred_paths):
        raise ValueError(f"pred: {len(pred_paths)} files for {len(gt_paths)} ground-truth files")
    if kind not in ("auto", "mot", "sot"):
        raise ValueError(f"kind: 'auto', 'mot' or 'sot', got {kind!r}")
    kind = box_file_kind(gt_paths[0]) if kind == "auto" else kind
    if kind == "mot":
        return evaluate_mot_files(gt_paths, pred_paths, iou_threshold, clear_rule=clear_rule, progress=progress)
    if any(path.is_dir() for path in gt_paths):
        raise ValueError("gt: kind 'sot' takes box files, not folders")
    return evaluate_ope_files(gt_paths, pred_paths, pred_format)


_TABLE_COLUMNS = ("HOTA", "DetA", "AssA", "LocA", "MOTA", "MOTP", "IDF1", "IDP", "IDR", "Rcll", "Prcn",
                  "GT", "TP", "FP", "FN", "IDSW", "FRAG", "MT", "PT", "ML")
_PERCENT = {"HOTA", "DetA", "AssA", "LocA", "MOTA", "MOTP", "IDF1", "IDP", "IDR", "Rcll", "Prcn"}


def format_table(results: Mapping[str, Mapping[str, float]]) -> str:
    """A plain-text table with one row per sequence (rates shown in percent)."""
    rows = [["", *_TABLE_COLUMNS]]
    for name, r in results.items():
        rows.append([name, *(f"{100 * r[k]:.1f}%" if k in _PERCENT else str(r[k]) for k in _TABLE_COLUMNS)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(" ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                              enumerate(zip(row, widths))) for row in rows)


def format_results(results: Mapping[str, Mapping[str, float]]) -> str:
    """The table of :func:`evaluate_tracking`'s results: :func:`format_table` of MOT metrics,
    :func:`deepvideo.track.ope.format_ope_table` of OPE scores (results holding ``success``)."""
    ope = any("success" in r for r in results.values())
    return format_ope_table(results) if ope else format_table(results)
