"""DAVIS J and F: small cases worked out by hand, and random masks against a copy of DAVIS's
official evaluation code (the reference section below)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from deepvideo.segment import (
    boundary_f,
    boundary_radius,
    db_statistics,
    disk,
    evaluate_sequences,
    region_similarity,
    seg2bmap,
)

# ============================================================================ reference
# DAVIS's official evaluation, copied for tests only: ``db_eval_iou``, ``f_measure`` and
# ``_seg2bmap`` of ``davis2017/metrics.py``, ``db_statistics`` of ``davis2017/utils.py``, and the
# semi-supervised and unsupervised loops of ``DAVISEvaluation`` (``davis2017/evaluation.py``),
# https://github.com/davisvideochallenge/davis2017-evaluation (commit ac7c43f, BSD 3-Clause
# License, Copyright (c) 2020, DAVIS: Densely Annotated VIdeo Segmentation).  Changes, none to
# the algorithm: ``np.bool`` -> ``bool``; ``_seg2bmap``'s rescaling branch (never taken: width
# and height are the mask's) removed; ``skimage.morphology.disk`` imported where the test runs;
# the evaluation loops take arrays instead of reading folders (the readers' object masks are
# built as in ``DAVIS.get_all_masks`` and ``Results.read_masks``).


def ref_db_eval_iou(annotation, segmentation, void_pixels=None):
    annotation = annotation.astype(bool)
    segmentation = segmentation.astype(bool)
    if void_pixels is not None:
        void_pixels = void_pixels.astype(bool)
    else:
        void_pixels = np.zeros_like(segmentation)
    inters = np.sum((segmentation & annotation) & np.logical_not(void_pixels), axis=(-2, -1))
    union = np.sum((segmentation | annotation) & np.logical_not(void_pixels), axis=(-2, -1))
    j = inters / union
    if j.ndim == 0:
        j = 1 if np.isclose(union, 0) else j
    else:
        j[np.isclose(union, 0)] = 1
    return j


def ref_seg2bmap(seg):
    seg = seg.astype(bool)
    seg[seg > 0] = 1
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = seg ^ e | seg ^ s | seg ^ se
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = 0
    return b


def ref_f_measure(foreground_mask, gt_mask, void_pixels=None, bound_th=0.008):
    from skimage.morphology import disk as skimage_disk

    assert np.atleast_3d(foreground_mask).shape[2] == 1
    if void_pixels is not None:
        void_pixels = void_pixels.astype(bool)
    else:
        void_pixels = np.zeros_like(foreground_mask).astype(bool)
    bound_pix = bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(foreground_mask.shape))
    fg_boundary = ref_seg2bmap(foreground_mask * np.logical_not(void_pixels))
    gt_boundary = ref_seg2bmap(gt_mask * np.logical_not(void_pixels))
    fg_dil = cv2.dilate(fg_boundary.astype(np.uint8), skimage_disk(bound_pix).astype(np.uint8))
    gt_dil = cv2.dilate(gt_boundary.astype(np.uint8), skimage_disk(bound_pix).astype(np.uint8))
    gt_match = gt_boundary * fg_dil
    fg_match = fg_boundary * gt_dil
    n_fg = np.sum(fg_boundary)
    n_gt = np.sum(gt_boundary)
    if n_fg == 0 and n_gt > 0:
        precision = 1
        recall = 0
    elif n_fg > 0 and n_gt == 0:
        precision = 0
        recall = 1
    elif n_fg == 0 and n_gt == 0:
        precision = 1
        recall = 1
    else:
        precision = np.sum(fg_match) / float(n_fg)
        recall = np.sum(gt_match) / float(n_gt)
    if precision + recall == 0:
        F = 0
    else:
        F = 2 * precision * recall / (precision + recall)
    return F


def ref_db_statistics(per_frame_values):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        M = np.nanmean(per_frame_values)
        O = np.nanmean(per_frame_values > 0.5)  # noqa: E741
    N_bins = 4
    ids = np.round(np.linspace(1, len(per_frame_values), N_bins + 1) + 1e-10) - 1
    ids = ids.astype(np.uint8)
    D_bins = [per_frame_values[ids[i]:ids[i + 1] + 1] for i in range(0, 4)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        D = np.nanmean(D_bins[0]) - np.nanmean(D_bins[3])
    return M, O, D


def ref_object_masks(masks, num_objects):
    tmp = np.ones((num_objects, *masks.shape))
    tmp = tmp * np.arange(1, num_objects + 1)[:, None, None, None]
    return tmp == masks[None, ...]


def ref_db_eval_boundary(annotation, segmentation):
    return np.array([ref_f_measure(segmentation[t], annotation[t]) for t in range(annotation.shape[0])])


def ref_evaluate(sequences, task):
    """``DAVISEvaluation.evaluate`` + ``evaluation_method.py``'s global table, on
    ``{name: (gt ids, pred ids)}``: ``(J&F-Mean, J-Mean, J-Recall, J-Decay, F-Mean, F-Recall,
    F-Decay)`` and the per-object J and F means."""
    JM, JR, JD, FM, FR, FD, per_object = [], [], [], [], [], [], {}
    for seq, (gt_ids, pred_ids) in sequences.items():
        gt_ids = gt_ids.astype(float)
        gt_ids[gt_ids == 255] = 0
        all_gt_masks = ref_object_masks(gt_ids, int(np.max(gt_ids[0])))
        res = pred_ids.astype(float)
        if task == "semi-supervised":
            all_gt_masks, res = all_gt_masks[:, 1:-1], res[1:-1]
        all_res_masks = ref_object_masks(res, int(np.max(res)))
        if task == "semi-supervised":
            assert all_res_masks.shape[0] == all_gt_masks.shape[0]
            j_res, f_res = np.zeros(all_gt_masks.shape[:2]), np.zeros(all_gt_masks.shape[:2])
            for ii in range(all_gt_masks.shape[0]):
                j_res[ii, :] = ref_db_eval_iou(all_gt_masks[ii], all_res_masks[ii])
                f_res[ii, :] = ref_db_eval_boundary(all_gt_masks[ii], all_res_masks[ii])
        else:
            assert all_res_masks.shape[0] <= 20
            if all_res_masks.shape[0] < all_gt_masks.shape[0]:
                zero_padding = np.zeros((all_gt_masks.shape[0] - all_res_masks.shape[0], *all_res_masks.shape[1:]))
                all_res_masks = np.concatenate([all_res_masks, zero_padding], axis=0)
            j_all = np.zeros((all_res_masks.shape[0], all_gt_masks.shape[0], all_gt_masks.shape[1]))
            f_all = np.zeros_like(j_all)
            for ii in range(all_gt_masks.shape[0]):
                for jj in range(all_res_masks.shape[0]):
                    j_all[jj, ii, :] = ref_db_eval_iou(all_gt_masks[ii], all_res_masks[jj])
                    f_all[jj, ii, :] = ref_db_eval_boundary(all_gt_masks[ii], all_res_masks[jj])
            all_metrics = (np.mean(j_all, axis=2) + np.mean(f_all, axis=2)) / 2
            row_ind, col_ind = linear_sum_assignment(-all_metrics)
            j_res, f_res = j_all[row_ind, col_ind, :], f_all[row_ind, col_ind, :]
        for ii in range(all_gt_masks.shape[0]):
            m, r, d = ref_db_statistics(j_res[ii])
            JM.append(m), JR.append(r), JD.append(d)
            per_object[f"{seq}_{ii + 1}"] = [m]
            m, r, d = ref_db_statistics(f_res[ii])
            FM.append(m), FR.append(r), FD.append(d)
            per_object[f"{seq}_{ii + 1}"].append(m)
    final_mean = (np.mean(JM) + np.mean(FM)) / 2.0
    return ([final_mean, np.mean(JM), np.mean(JR), np.mean(JD), np.mean(FM), np.mean(FR), np.mean(FD)],
            per_object)

# ============================================================================ end of reference


def square(h, w, rows, cols):
    mask = np.zeros((h, w), dtype=bool)
    mask[rows[0]:rows[1], cols[0]:cols[1]] = True
    return mask


# ----------------------------------------------------------------------------- J


def test_region_similarity_by_hand():
    gt = square(4, 4, (0, 2), (0, 2))           # 4 pixels
    pred = square(4, 4, (0, 2), (1, 4))         # 6 pixels, 2 of them shared
    assert region_similarity(gt, pred) == pytest.approx(2 / 8)  # union 4 + 6 - 2 = 8
    assert region_similarity(gt, gt) == 1.0
    empty = np.zeros((4, 4), bool)
    assert region_similarity(empty, empty) == 1.0  # both empty: 1, as db_eval_iou
    assert region_similarity(gt, empty) == 0.0 and region_similarity(empty, pred) == 0.0
    void = np.zeros((4, 4), bool)
    void[:, 2:] = True                          # leaves pred's 4 pixels outside out: 2 / 4
    assert region_similarity(gt, pred, void) == pytest.approx(2 / 4)
    per_frame = region_similarity(np.stack([gt, empty]), np.stack([pred, empty]))
    assert per_frame.tolist() == [0.25, 1.0]
    with pytest.raises(ValueError, match="masks of shapes"):
        region_similarity(gt, pred[:3])


# ----------------------------------------------------------------------------- F


def test_seg2bmap_of_a_square():
    # a square's boundary map is the outline of the square grown by one pixel up and left:
    # rows 2..5, cols 2..5 -> the 16-pixel outline of rows 1..5, cols 1..5
    outline = np.zeros((10, 10), bool)
    outline[1:6, 1:6] = True
    outline[2:5, 2:5] = False
    assert np.array_equal(seg2bmap(square(10, 10, (2, 6), (2, 6))), outline)
    # on the last row only the right neighbour counts, on the last column only the lower one
    corner = np.zeros((3, 3), bool)
    corner[1:, 1:] = True
    assert seg2bmap(corner).astype(int).tolist() == [[1, 1, 1], [1, 0, 0], [1, 0, 0]]


def test_boundary_f_of_a_square_shifted_by_one_and_two_pixels():
    # 10x10 image: tolerance ceil(0.008 * sqrt(200)) = ceil(0.113) = 1 pixel, a 3x3 cross
    assert boundary_radius((10, 10)) == 1.0
    assert boundary_radius((480, 854)) == 8.0
    gt = square(10, 10, (2, 6), (2, 6))        # boundary: outline of rows 1..5, cols 1..5 (16 px)
    # shifted right by 1: outline of rows 1..5, cols 2..6; every pixel of either outline has a
    # pixel of the other at most 1 step (up/down/left/right) away -> P = R = 1, F = 1
    assert boundary_f(gt, square(10, 10, (2, 6), (3, 7))) == 1.0
    # shifted right by 2: outline of rows 1..5, cols 3..7.  Its pixels within 1 step of gt's outline:
    # top row (1, 3..6) 4 of 5, bottom row 4 of 5, left column (2..4, 3): (2,3) and (4,3), next to
    # gt's top and bottom rows, 2 of 3, right column (2..4, 7) 0 of 3 -> P = 10/16; by symmetry R = 10/16
    # F = 2PR / (P + R) = 10/16
    assert boundary_f(gt, square(10, 10, (2, 6), (4, 8))) == pytest.approx(10 / 16)
    assert region_similarity(gt, square(10, 10, (2, 6), (4, 8))) == pytest.approx(8 / 24)


def test_boundary_f_empty_masks():
    gt = square(10, 10, (2, 6), (2, 6))
    empty = np.zeros((10, 10), bool)
    assert boundary_f(empty, empty) == 1.0      # no boundary in either: P = R = 1
    assert boundary_f(gt, empty) == 0.0         # nothing predicted: P = 1, R = 0
    assert boundary_f(empty, gt) == 0.0         # nothing to find: P = 0, R = 1
    assert boundary_f(np.stack([gt, empty]), np.stack([gt, empty])).tolist() == [1.0, 1.0]


def test_disk():
    assert disk(1).tolist() == [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    assert disk(2).sum() == 13 and disk(2).dtype == np.uint8
    morphology = pytest.importorskip("skimage.morphology")
    for radius in (1, 2, 3, 4, 5, 8, 5.0, 1.5, 2.5):
        assert np.array_equal(disk(radius), morphology.disk(radius)), radius


def random_masks(rng, n, h, w):
    """``n`` masks of blobs: a few random ellipses and rectangles, some noise pixels, some empty."""
    masks = np.zeros((n, h, w), bool)
    yy, xx = np.mgrid[:h, :w]
    for i in range(n):
        if rng.random() < 0.1:
            continue
        for _ in range(rng.integers(1, 4)):
            cy, cx, ry, rx = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(2, h / 2), rng.uniform(2, w / 2)
            if rng.random() < 0.5:
                masks[i] |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
            else:
                masks[i] |= (abs(yy - cy) <= ry / 2) & (abs(xx - cx) <= rx / 2)
        masks[i] ^= rng.random((h, w)) < 0.01
    return masks


@pytest.mark.parametrize("h, w", [(24, 40), (61, 97), (130, 90)])  # boundary radii 1, 1 and 2
def test_matches_the_official_measures(h, w):
    pytest.importorskip("skimage.morphology")
    rng = np.random.default_rng(h)
    gt, pred = random_masks(rng, 12, h, w), random_masks(rng, 12, h, w)
    pred[:4] = gt[:4] ^ (rng.random((4, h, w)) < 0.05)  # near misses as well as unrelated masks
    void = rng.random((h, w)) < 0.05
    for t in range(len(gt)):
        assert boundary_f(gt[t], pred[t]) == ref_f_measure(pred[t], gt[t])
        assert boundary_f(gt[t], pred[t], void) == ref_f_measure(pred[t], gt[t], void)
        assert boundary_f(gt[t], pred[t], bound_th=3) == ref_f_measure(pred[t], gt[t], bound_th=3)
        assert np.array_equal(seg2bmap(pred[t]), ref_seg2bmap(pred[t]))
        assert region_similarity(gt[t], pred[t], void) == ref_db_eval_iou(gt[t], pred[t], void)
    assert np.array_equal(region_similarity(gt, pred), ref_db_eval_iou(gt, pred))


# ----------------------------------------------------------------------------- statistics and sequences


def test_db_statistics_by_hand():
    # T = 8: bins from round(linspace(1, 8, 5) + 1e-10) - 1 = [0, 2, 4, 5, 7]: the first bin is
    # frames 0..2, the last 5..7 -> decay = mean(1, 1, 1) - mean(0, 0, 0) = 1; recall 4/8
    mean, recall, decay = db_statistics(np.array([1, 1, 1, 1, 0, 0, 0, 0], float))
    assert (mean, recall, decay) == (0.5, 0.5, 1.0)
    rng = np.random.default_rng(1)
    for length in (1, 2, 5, 40, 104):
        values = rng.random(length)
        values[rng.random(length) < 0.1] = np.nan
        assert np.allclose(db_statistics(values), ref_db_statistics(values), equal_nan=True, rtol=0, atol=0)


def test_evaluate_sequences_by_hand():
    # 4 frames, one object; the prediction is right on frames 1 and 2 and empty on frames 0 and 3
    gt = np.zeros((4, 10, 10), np.uint8)
    gt[:, 2:6, 2:6] = 1
    pred = gt.copy()
    pred[[0, 3]] = 0
    result = evaluate_sequences({"bear": gt}, {"bear": pred})
    assert result.frames == "inner"              # semi-supervised: the first and last are not scored
    assert result.global_table()["J&F-Mean"] == 1.0
    assert result.per_object() == {"bear_1": {"J-Mean": 1.0, "F-Mean": 1.0, "J&F-Mean": 1.0}}
    all_frames = evaluate_sequences({"bear": gt}, {"bear": pred}, skip_first_last=False)
    assert all_frames.global_table()["J-Mean"] == 0.5 and all_frames.global_table()["F-Mean"] == 0.5
    assert all_frames.objects[0].j.tolist() == [0.0, 1.0, 1.0, 0.0]
    # bool masks and void (255) in the ground truth, which counts as background
    gt[:, 0, 0] = 255
    assert evaluate_sequences({"bear": gt}, {"bear": pred > 0}).global_table()["J-Mean"] == 1.0
    assert evaluate_sequences({"bear": gt}, {"bear": pred}).per_sequence()["bear"]["objects"] == 1


def test_evaluate_sequences_errors():
    gt = np.zeros((4, 10, 10), np.uint8)
    gt[:, 2:6, 2:6] = 1
    pred = gt.copy()
    pred[1, 0, 0] = 2
    with pytest.raises(ValueError, match=r"sequence 'bear': predicted object id 2, the ground truth has 1 objects"):
        evaluate_sequences({"bear": gt}, {"bear": pred})
    with pytest.raises(ValueError, match="pred: no masks for sequence 'bear'"):
        evaluate_sequences({"bear": gt}, {})
    with pytest.raises(ValueError, match=r"sequence 'bear': ground truth \(4, 10, 10\) and prediction \(3, 10, 10\)"):
        evaluate_sequences({"bear": gt}, {"bear": gt[:3]})
    with pytest.raises(ValueError, match="at least 3 are needed"):
        evaluate_sequences({"bear": gt[:2]}, {"bear": gt[:2]})
    with pytest.raises(ValueError, match="task 'weakly': expected"):
        evaluate_sequences({"bear": gt}, {"bear": gt}, task="weakly")


def random_sequence(rng, t, h, w, objects, predicted):
    gt = np.zeros((t, h, w), np.uint8)
    pred = np.zeros((t, h, w), np.uint8)
    for k in range(1, objects + 1):
        blobs = random_masks(rng, t, h, w)
        blobs[0] |= square(h, w, (k, k + 3), (k, k + 3))  # every object is in the first frame
        gt[blobs] = k
    for k in range(1, predicted + 1):
        source = gt == (k if k <= objects else 1)
        pred[source ^ (rng.random((t, h, w)) < 0.03)] = k
    return gt, pred


@pytest.mark.parametrize("task", ["semi-supervised", "unsupervised"])
def test_evaluate_sequences_matches_the_official_evaluation(task):
    pytest.importorskip("skimage.morphology")
    rng = np.random.default_rng(7)
    sequences = {"a": random_sequence(rng, 6, 30, 40, 2, 2), "b": random_sequence(rng, 5, 33, 41, 3, 3),
                 "c": random_sequence(rng, 7, 20, 20, 1, 1)}
    if task == "unsupervised":  # proposals in another order, and one more than the objects
        gt, pred = sequences["a"]
        swapped = np.select([pred == 1, pred == 2], [2, 1], 0).astype(np.uint8)
        swapped[random_masks(rng, 6, 30, 40) & (swapped == 0)] = 3
        sequences["a"] = (gt, swapped)
    result = evaluate_sequences({k: v[0] for k, v in sequences.items()}, {k: v[1] for k, v in sequences.items()},
                                task=task)
    reference, per_object = ref_evaluate(sequences, task)
    table = result.global_table()
    names = ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
    for name, value in zip(names, reference):
        assert table[name] == value, name  # exactly
    if task == "semi-supervised":  # the unsupervised rows follow the proposals' order in the official code
        assert list(result.per_object()) == list(per_object)
        for name, (jm, fm) in per_object.items():
            assert result.per_object()[name]["J-Mean"] == jm and result.per_object()[name]["F-Mean"] == fm
    else:
        assert [o.matched_id for o in result.objects if o.sequence == "a"] == [2, 1]
    assert 0.3 < table["J&F-Mean"] < 1
