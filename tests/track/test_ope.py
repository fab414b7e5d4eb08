"""One-pass evaluation against mmtracking's definition, on its own demo box files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepvideo.track.ope import (
    IOU_THRESHOLDS,
    box_file_kind,
    check_box,
    evaluate_files,
    evaluate_ope,
    evaluate_ope_files,
    format_ope_table,
    read_boxes,
    sequence_names,
    success_curve,
    write_boxes,
)


def mmtracking_ope(gts_xywh: list[np.ndarray], preds_xyxy: list[np.ndarray], legacy: bool = False) -> dict:
    """mmtracking's ``eval_sot_ope`` (mmtrack/core/evaluation/eval_sot_ope.py, v0.14 / v1.0)
    re-implemented operation by operation, with mmdet's ``bbox_overlaps`` (float32, union
    clamped at 1e-6; ``legacy`` adds mmdet v1's +1 pixel, which mmtracking does not use)."""
    extra = 1.0 if legacy else 0.0

    def bbox_overlaps(b1, b2):
        b1, b2 = b1.astype(np.float32), b2.astype(np.float32)
        ious = np.zeros((len(b1), len(b2)), np.float32)
        area1 = (b1[:, 2] - b1[:, 0] + extra) * (b1[:, 3] - b1[:, 1] + extra)
        area2 = (b2[:, 2] - b2[:, 0] + extra) * (b2[:, 3] - b2[:, 1] + extra)
        for i in range(len(b1)):
            w = np.maximum(np.minimum(b1[i, 2], b2[:, 2]) - np.maximum(b1[i, 0], b2[:, 0]) + extra, 0)
            h = np.maximum(np.minimum(b1[i, 3], b2[:, 3]) - np.maximum(b1[i, 1], b2[:, 1]) + extra, 0)
            ious[i] = w * h / np.maximum(area1[i] + area2 - w * h, 1e-6)
        return ious

    def success_error(gc, pc, ths, n):
        dist = np.ones(len(gc)) * -1
        valid = (gc[:, 0] > 0) & (gc[:, 1] > 0)
        dist[valid] = np.sqrt(np.sum((gc[valid] - pc[valid]) ** 2, axis=1))
        return np.array([np.sum(dist <= t) / float(n) for t in ths])

    succ, prec, norm = [], [], []
    for gt, pred in zip(gts_xywh, preds_xyxy):
        gt = gt.copy()
        gt[:, 2:] += gt[:, :2]  # mmtracking's annotation loading: x,y,w,h -> x1,y1,x2,y2
        n = len(pred)
        iou = np.ones(len(gt)) * -1
        valid = (gt[:, 2] > gt[:, 0]) & (gt[:, 3] > gt[:, 1])
        iou[valid] = np.diag(bbox_overlaps(gt[valid], pred[valid]))
        succ.append([np.sum(iou > t) / float(n) for t in np.arange(0, 1.05, 0.05)])
        gc = np.array((0.5 * (gt[:, 2] + gt[:, 0]), 0.5 * (gt[:, 3] + gt[:, 1]))).T
        pc = np.array((0.5 * (pred[:, 2] + pred[:, 0]), 0.5 * (pred[:, 3] + pred[:, 1]))).T
        ths = np.arange(0, 51, 1)
        prec.append(success_error(gc, pc, ths, n))
        wh = np.array((gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1])).T
        norm.append(success_error(gc / (wh + 1e-16), pc / (wh + 1e-16), ths / 100.0, n))
    return {"success": np.mean(succ) * 100, "precision": np.mean(prec, axis=0)[20] * 100,
            "norm_precision": np.mean(norm, axis=0)[20] * 100}


SEQUENCES = {"trackingnet": [(f"trackingnet/TRAIN_0/video-{i}/gt_for_eval.txt",
                              f"trackingnet/TRAIN_0/video-{i}/track_results.txt") for i in (1, 2)],
             "lasot": [(f"lasot/airplane-{i}/groundtruth.txt", f"lasot/airplane-{i}/track_results.txt")
                       for i in (1, 2)]}


@pytest.mark.parametrize("dataset", SEQUENCES)
def test_real_box_files_equal_mmtracking(shared_data: Path, dataset: str) -> None:
    root = shared_data / "sot" / "mmtracking_demo_sot"
    gt_paths = [root / g for g, _ in SEQUENCES[dataset]]
    pred_paths = [root / p for _, p in SEQUENCES[dataset]]
    ours = evaluate_files(gt_paths, pred_paths, pred_format="xyxy")
    # 1. mmtracking's own expected values for exactly these files and this pairing:
    #    tests/test_data/test_datasets/test_sot_dataset.py::test_sot_ope_evaluation (v0.14,
    #    "assert eval_results['success'] == 67.524", norm_precision 70.0, precision 50.0) and
    #    tests/test_evaluation/test_metrics/test_sot_metric.py (v1.0, success 67.5238).
    assert round(ours["success"], 4) == 67.5238
    assert ours["precision"] == 50.0 and ours["norm_precision"] == 70.0
    # 2. the literal re-implementation agrees to the last bit, sequence by sequence too
    gts = [np.loadtxt(p, delimiter=",") for p in gt_paths]
    preds = [np.loadtxt(p, delimiter=",") for p in pred_paths]
    assert ours == pytest.approx(mmtracking_ope(gts, preds), abs=1e-12)
    for g, p, gp, pp in zip(gts, preds, gt_paths, pred_paths):
        single = evaluate_files(gp, pp, pred_format="xyxy")
        assert single == pytest.approx(mmtracking_ope([g], [p]), abs=1e-12)
    # 3. the +1-pixel (mmdet v1 "legacy") IoU would give another success score (67.81)
    assert abs(mmtracking_ope(gts, preds, legacy=True)["success"] - ours["success"]) > 0.2


def test_perfect_and_shifted_predictions() -> None:
    rng = np.random.default_rng(0)
    gt = np.column_stack([rng.integers(50, 100, (30, 2)), rng.integers(20, 40, (30, 2))]).astype(float)
    perfect = evaluate_ope(gt, gt)
    # IoU 1 is not > the last threshold 1.0: 20 of 21 thresholds pass
    assert perfect["success"] == pytest.approx(100 * 20 / 21)
    assert perfect["precision"] == 100.0 and perfect["norm_precision"] == 100.0
    near = evaluate_ope(gt, gt + [12, 16, 0, 0])     # centre error exactly 20 px: still a hit
    assert near["precision"] == 100.0
    far = evaluate_ope(gt, gt + [30, 0, 0, 0])       # 30 px right, boxes 20..40 px wide
    assert far["precision"] == 0.0
    overlap = np.maximum(gt[:, 2] - 30, 0) * gt[:, 3]
    iou = overlap / (2 * gt[:, 2] * gt[:, 3] - overlap)
    expected = np.mean(iou[:, None] > IOU_THRESHOLDS) * 100
    assert far["success"] == pytest.approx(expected)
    # two sequences: each curve is averaged with equal weight per sequence
    both = evaluate_ope([gt, gt[:5]], [gt, gt[:5] + [30, 0, 0, 0]])
    assert both["precision"] == pytest.approx(50.0)


def test_invalid_ground_truth_and_visibility_follow_mmtracking() -> None:
    gt = np.array([[10, 10, 20, 20], [0, 0, 0, 0], [30, 30, 10, 10], [40, 40, 10, 10.]])
    pred = np.array([[10, 10, 20, 20], [5, 5, 10, 10], [30, 30, 10, 10], [100, 100, 10, 10.]])
    scores = evaluate_ope(gt, pred)
    # the absent target (0,0,0,0) fails every IoU threshold but its centre (0,0) counts as a hit
    assert scores["success"] == pytest.approx(100 * (2 * 20 / 21) / 4)
    assert scores["precision"] == pytest.approx(75.0)
    pred_xyxy = np.column_stack([pred[:, :2], pred[:, :2] + pred[:, 2:]])
    assert scores == pytest.approx(mmtracking_ope([gt], [pred_xyxy]))
    # invisible frames leave the numerator, not the frame count
    curve = success_curve(gt, pred, visible=[True, False, True, False])
    assert curve[0] == pytest.approx(0.5)


def test_read_boxes_separators_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "boxes.txt"
    path.write_text("1,2,3,4\n5 6 7 8\n\n9\t10\t11.5\t12\n 13, 14 ,15,16 \n")
    expected = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11.5, 12], [13, 14, 15, 16]]
    np.testing.assert_array_equal(read_boxes(path), expected)
    assert read_boxes(path).dtype == np.float64
    path.write_text("1,2,5,8\n")
    np.testing.assert_array_equal(read_boxes(path, "xyxy"), [[1, 2, 4, 6]])
    path.write_text("1,2,3,4\n1,2,3\n")
    with pytest.raises(ValueError, match=r"boxes\.txt:2: expected 4 numbers"):
        read_boxes(path)
    path.write_text("1,2,3,4\n1,2,x,4\n")
    with pytest.raises(ValueError, match=r"boxes\.txt:2:") as err:
        read_boxes(path)
    assert "\n" not in str(err.value)
    with pytest.raises(FileNotFoundError, match="nothere.txt"):
        read_boxes(tmp_path / "nothere.txt")
    out = write_boxes(tmp_path / "out" / "pred.txt", np.array([[1.5, 2, 3, 4]]))
    np.testing.assert_array_equal(read_boxes(out), [[1.5, 2, 3, 4]])


def test_mismatched_lengths_name_the_files(tmp_path: Path) -> None:
    (tmp_path / "gt.txt").write_text("1,2,3,4\n1,2,3,4\n")
    (tmp_path / "pred.txt").write_text("1,2,3,4\n")
    with pytest.raises(ValueError, match=r"pred\.txt: 1 boxes but .*gt\.txt has 2"):
        evaluate_files(tmp_path / "gt.txt", tmp_path / "pred.txt")


def test_empty_ground_truth_is_an_error_not_nan(tmp_path: Path) -> None:
    (tmp_path / "gt.txt").write_text("\n")
    (tmp_path / "pred.txt").write_text("")
    with pytest.raises(ValueError, match=r"gt\.txt: ground truth holds no boxes \(empty file\)"):
        evaluate_files(tmp_path / "gt.txt", tmp_path / "pred.txt")


def test_check_box() -> None:
    np.testing.assert_array_equal(check_box((1, 2, 3, 4), 10, 10), [1, 2, 3, 4])
    for box, message in [((1, 2, 0, 4), "positive"), ((1, 2, 3, -1), "positive"),
                         ((20, 2, 3, 4), "outside"), ((-9, 2, 3, 4), "outside"), ((1, 2, 3), "4 finite")]:
        with pytest.raises(ValueError, match=message):
            check_box(box, 10, 10)
    with pytest.raises(ValueError, match=r"^box: width and height must be positive, got w=0, h=4$"):
        check_box((1, 2, 0, 4), 10, 10)


def test_sequence_names_say_more_than_gt(tmp_path: Path) -> None:
    assert sequence_names(["mot/TUD-Campus/gt.txt", "mot/TUD-Stadtmitte/gt.txt"]) == ["TUD-Campus", "TUD-Stadtmitte"]
    assert sequence_names([Path("x/scene.gt.txt"), "lasot/airplane-1/groundtruth.txt"]) == ["scene", "airplane-1"]
    assert sequence_names(["a/TUD-Campus/gt/gt.txt", "seq.det.txt"]) == ["TUD-Campus", "seq"]
    assert sequence_names(["a/s/gt.txt", "b/s/gt.txt"]) == ["a/s/gt.txt", "b/s/gt.txt"]  # coinciding: paths


def test_box_file_kind(tmp_path: Path) -> None:
    files = {"box": "\n1.5\t2 3,4\n", "mot": "1,1,10,20,40,80,1,-1,-1,-1\n", "det": "1,-1,10,20,40,80\n", "empty": ""}
    for name, text in files.items():
        (tmp_path / f"{name}.txt").write_text(text)
    assert [box_file_kind(tmp_path / f"{name}.txt") for name in files] == ["sot", "mot", "mot", "mot"]
    assert box_file_kind(tmp_path) == "mot"  # a folder: a benchmark split
    with pytest.raises(FileNotFoundError, match=r"nope\.txt: no such file"):
        box_file_kind(tmp_path / "nope.txt")


def test_evaluate_ope_files_per_sequence_and_combined(tmp_path: Path) -> None:
    gt = np.array([[10, 10, 20, 20], [12, 10, 20, 20], [14, 10, 20, 20]], dtype=float)
    for name, pred in (("a", gt), ("b", gt + [10, 0, 0, 0])):  # b: IoU 1/3, centre 10 px (0.5 widths) off
        write_boxes(tmp_path / name / "groundtruth.txt", gt)
        write_boxes(tmp_path / name / "track_results.txt", pred)
    gts = [tmp_path / n / "groundtruth.txt" for n in "ab"]
    preds = [tmp_path / n / "track_results.txt" for n in "ab"]
    results = evaluate_ope_files(gts, preds)
    assert list(results) == ["a", "b", "COMBINED"]
    assert results["a"] == {"success": pytest.approx(100 * 20 / 21), "precision": 100.0, "norm_precision": 100.0}
    assert results["b"] == {"success": pytest.approx(100 * 7 / 21), "precision": 100.0, "norm_precision": 0.0}
    assert results["COMBINED"] == evaluate_files(gts, preds)
    assert results["COMBINED"]["norm_precision"] == 50.0
    assert list(evaluate_ope_files(gts[0], preds[0])) == ["a"]  # one sequence: no COMBINED row
    with pytest.raises(ValueError, match="pred: 1 prediction files for 2 ground-truth files"):
        evaluate_ope_files(gts, preds[:1])
    assert format_ope_table(results) == (
        "         success precision norm_precision\n"
        "a          95.24    100.00         100.00\n"
        "b          33.33    100.00           0.00\n"
        "COMBINED   64.29    100.00          50.00")
