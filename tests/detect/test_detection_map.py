"""ActivityNet detection mAP: small cases worked out by hand, and random cases against a copy of
ActivityNet's own evaluator (``anet_reference.py``, from ``Evaluation/eval_detection.py``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from anet_reference import anet_evaluate, compute_average_precision_detection, interpolated_prec_rec
from anet_reference import segment_iou as reference_segment_iou

from deepvideo.detect import (
    ANET_THRESHOLDS,
    THUMOS_THRESHOLDS,
    Segment,
    VideoAnnotation,
    average_precision_detection,
    detection_map,
    read_activitynet,
    read_results,
    segment_iou,
    segment_iou_matrix,
    write_activitynet,
    write_results,
)
from deepvideo.engine.metrics import interpolated_average_precision


def gt(*videos: tuple[str, list[tuple[float, float, str]]]) -> dict[str, VideoAnnotation]:
    return {name: VideoAnnotation(name, 100.0, "validation", [Segment(s, e, label) for s, e, label in segments])
            for name, segments in videos}


def preds(**videos: list[tuple[float, float, str, float]]) -> dict[str, list[Segment]]:
    return {name: [Segment(s, e, label, score) for s, e, label, score in rows] for name, rows in videos.items()}


# ----------------------------------------------------------------------------- tIoU


def test_segment_iou_is_the_reference_formula():
    target = np.array([0.0, 10.0])
    candidates = np.array([[2.0, 12.0], [10.0, 20.0], [0.0, 10.0], [-5.0, 5.0], [3.0, 4.0], [20.0, 30.0]])
    np.testing.assert_allclose(segment_iou(target, candidates), [8 / 12, 0, 1, 5 / 15, 1 / 10, 0], rtol=0, atol=1e-15)
    rng = np.random.default_rng(0)
    a = np.sort(rng.uniform(0, 50, (7, 2)), axis=1)
    b = np.sort(rng.uniform(0, 50, (9, 2)), axis=1)
    matrix = segment_iou_matrix(a, b)
    assert matrix.shape == (7, 9)
    for i in range(7):  # bit for bit the evaluator's floating-point operations
        np.testing.assert_array_equal(matrix[i], reference_segment_iou(a[i], b))
        np.testing.assert_array_equal(segment_iou(a[i], b), matrix[i])


def test_interpolated_average_precision_matches_the_reference():
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = int(rng.integers(1, 30))
        tp = (rng.random(n) < 0.5).astype(float)
        precision = np.cumsum(tp) / np.arange(1, n + 1)
        recall = np.cumsum(tp) / (tp.sum() + rng.integers(0, 3))
        assert interpolated_average_precision(precision, recall) == interpolated_prec_rec(precision, recall)


def test_thresholds():
    np.testing.assert_array_equal(ANET_THRESHOLDS, np.linspace(0.5, 0.95, 10))
    assert len(ANET_THRESHOLDS) == 10
    np.testing.assert_array_equal(THUMOS_THRESHOLDS, [0.3, 0.4, 0.5, 0.6, 0.7])


# ----------------------------------------------------------------------------- worked out by hand


def test_perfect_predictions_score_one_everywhere():
    truth = gt(("v1", [(0, 10, "a"), (20, 30, "b")]), ("v2", [(5, 8, "a")]))
    result = detection_map(truth, preds(v1=[(0, 10, "a", 0.9), (20, 30, "b", 0.8)], v2=[(5, 8, "a", 0.7)]))
    np.testing.assert_array_equal(result.map, np.ones(10))
    assert result.average == 1.0
    assert result.num_ground_truth == {"a": 2, "b": 1} and result.num_predictions == {"a": 2, "b": 1}


def test_shifted_segment_counts_up_to_its_tiou():
    # gt [0, 10], prediction [2, 12]: tIoU = 8 / 12 = 0.667 -> TP at 0.5 .. 0.65, FP from 0.7
    result = detection_map(gt(("v", [(0, 10, "a")])), preds(v=[(2, 12, "a", 0.5)]))
    np.testing.assert_array_equal(result.map, [1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    assert result.average == pytest.approx(0.4, abs=1e-15)
    thumos = detection_map(gt(("v", [(0, 10, "a")])), preds(v=[(2, 12, "a", 0.5)]), THUMOS_THRESHOLDS)
    np.testing.assert_array_equal(thumos.map, [1, 1, 1, 1, 0])


def test_duplicates_are_false_positives():
    one = {"v": [Segment(0, 10, "a")]}
    # the higher-scored duplicate takes the gt: precision 1 then 1/2 at recall 1 -> AP 1
    assert average_precision_detection(one, {"v": [Segment(0, 10, "a", 0.8), Segment(0, 10, "a", 0.9)]},
                                       [0.5]).tolist() == [1.0]
    # two gts, a duplicate ranked between their matches: TP, FP, TP -> recall .5 .5 1, precision 1 .5 2/3
    # AP = 0.5 * 1 + 0.5 * 2/3
    two = {"v": [Segment(0, 10, "a"), Segment(20, 30, "a")]}
    ap = average_precision_detection(two, {"v": [Segment(0, 10, "a", 0.9), Segment(0.5, 10, "a", 0.8),
                                                 Segment(20, 30, "a", 0.7)]}, [0.5])
    assert ap[0] == pytest.approx(0.5 + 0.5 * 2 / 3, abs=1e-15)


def test_class_without_predictions_has_ap_zero_and_pulls_the_mean_down():
    truth = gt(("v1", [(0, 10, "a"), (20, 30, "b")]))
    result = detection_map(truth, preds(v1=[(0, 10, "a", 0.9)]))
    np.testing.assert_array_equal(result.per_class["b"], np.zeros(10))
    np.testing.assert_array_equal(result.per_class["a"], np.ones(10))
    np.testing.assert_array_equal(result.map, np.full(10, 0.5))
    assert result.num_predictions == {"a": 1, "b": 0}


def test_ranking_by_score_and_stable_ties():
    truth = {"v": [Segment(0, 10, "a")]}
    # a false positive ranked first: precision 0 then 1/2 at recall 1 -> AP 0.5
    fp_first = [Segment(50, 60, "a", 0.9), Segment(0, 10, "a", 0.4)]
    assert average_precision_detection(truth, {"v": fp_first}, [0.5])[0] == 0.5
    assert average_precision_detection(truth, {"v": fp_first[::-1]}, [0.5])[0] == 0.5  # input order is no rank
    # equal scores keep their input order
    tied = [Segment(50, 60, "a", 0.5), Segment(0, 10, "a", 0.5)]
    assert average_precision_detection(truth, {"v": tied}, [0.5])[0] == 0.5
    assert average_precision_detection(truth, {"v": tied[::-1]}, [0.5])[0] == 1.0
    # ... also across videos: video by video as in the results mapping
    truth2 = {"v": [Segment(0, 10, "a")], "w": [Segment(0, 10, "a")]}
    across = {"w": [Segment(50, 60, "a", 0.5)], "v": [Segment(0, 10, "a", 0.5)]}
    assert average_precision_detection(truth2, across, [0.5])[0] == 0.25  # FP then TP, recall 1/2 at precision 1/2


def test_ground_truths_of_equal_tiou_are_taken_in_annotation_order():
    # [5, 15] overlaps g1 = [0, 10] and g2 = [10, 20] by 1/3 each and takes g1, the first; the
    # next detection, [0, 10], then finds g1 taken: TP, FP -> AP = 0.5 * 1
    truth = {"v": [Segment(0, 10, "a"), Segment(10, 20, "a")]}
    detections = {"v": [Segment(5, 15, "a", 0.9), Segment(0, 10, "a", 0.8)]}
    assert average_precision_detection(truth, detections, [0.3])[0] == 0.5
    swapped = {"v": truth["v"][::-1]}  # g2 first: [5, 15] takes it and [0, 10] finds g1 -> AP 1
    assert average_precision_detection(swapped, detections, [0.3])[0] == 1.0


def test_best_free_ground_truth_is_taken():
    # the second detection's best gt is taken, so it takes the next one above the threshold
    truth = {"v": [Segment(0, 10, "a"), Segment(1, 11, "a")]}
    detections = {"v": [Segment(0, 10, "a", 0.9), Segment(0, 10, "a", 0.8)]}  # tIoU 1 with g1, 9/11 with g2
    np.testing.assert_array_equal(average_precision_detection(truth, detections, [0.5, 0.8, 0.85]), [1, 1, 0.5])


def test_predictions_in_videos_without_ground_truth_are_false_positives():
    truth = gt(("v1", [(0, 10, "a")]))
    # "elsewhere" is in no ground truth: ranked first, it is a FP as in the evaluator -> AP 0.5
    result = detection_map(truth, preds(elsewhere=[(0, 10, "a", 0.9)], v1=[(0, 10, "a", 0.8)]))
    np.testing.assert_array_equal(result.map, np.full(10, 0.5))
    # a video of the ground truth without this class: the same
    truth = gt(("v1", [(0, 10, "a")]), ("v2", [(0, 10, "b")]))
    result = detection_map(truth, preds(v2=[(0, 10, "a", 0.9), (0, 10, "b", 0.1)], v1=[(0, 10, "a", 0.8)]))
    np.testing.assert_array_equal(result.per_class["a"], np.full(10, 0.5))
    np.testing.assert_array_equal(result.per_class["b"], np.ones(10))


def test_several_videos_and_classes():
    truth = gt(("v1", [(0, 10, "a"), (30, 40, "a"), (50, 60, "b")]), ("v2", [(0, 20, "a")]))
    predictions = preds(v1=[(0, 10, "a", 0.9), (31, 41, "a", 0.6), (100, 110, "b", 0.95), (50, 60, "b", 0.3)],
                        v2=[(0, 20, "a", 0.8), (0, 20, "a", 0.7)])
    result = detection_map(truth, predictions, [0.5, 0.9])
    # a: TP(0.9) TP(0.8) FP(0.7, duplicate) then [31, 41] (tIoU 9/11 = 0.82): TP at 0.5, FP at 0.9
    #    0.5: recall 1/3 2/3 2/3 1, precision 1 1 2/3 3/4 -> 1/3 + 1/3 + 1/3 * 3/4
    #    0.9: recall 1/3 2/3 2/3 2/3 -> 2/3
    np.testing.assert_allclose(result.per_class["a"], [2 / 3 + 0.25, 2 / 3], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(result.per_class["b"], [0.5, 0.5])  # FP then TP
    np.testing.assert_allclose(result.map, [(2 / 3 + 0.25 + 0.5) / 2, (2 / 3 + 0.5) / 2], rtol=0, atol=1e-15)
    assert result.average == pytest.approx(np.mean(result.map), abs=1e-15)
    assert result.num_ground_truth == {"a": 3, "b": 1} and result.num_predictions == {"a": 4, "b": 2}


def test_report_table_and_dict():
    truth = gt(("v1", [(0, 10, "Long jump"), (20, 30, "b")]))
    result = detection_map(truth, preds(v1=[(0, 10, "Long jump", 0.9)]), THUMOS_THRESHOLDS)
    table = result.format()
    lines = table.splitlines()
    assert lines[0].split() == ["tIoU", "0.30", "0.40", "0.50", "0.60", "0.70", "avg", "GT", "pred"]
    assert lines[1].split() == ["mAP", *["50.00"] * 6, "2", "1"]
    assert lines[2].startswith("Long jump") and lines[2].split()[-2:] == ["1", "1"]
    assert len(lines) == 4 and len(result.format(per_class=False).splitlines()) == 2
    document = json.loads(json.dumps(result.to_dict()))
    assert document["average_mAP"] == 0.5 and document["mAP"] == [0.5] * 5
    assert document["classes"]["b"] == {"AP": [0.0] * 5, "average_AP": 0.0, "num_ground_truth": 1,
                                        "num_predictions": 0}


def test_errors():
    truth = gt(("v1", [(0, 10, "a")]))
    with pytest.raises(ValueError, match="video 'v9': label 'c' is no class of the ground truth") as err:
        detection_map(truth, preds(v9=[(0, 10, "c", 0.5)]))
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="ground truth: no segment"):
        detection_map(gt(("v1", [])), {})
    with pytest.raises(ValueError, match="video 'v1': segment \\[3, 3\\] does not end after it starts"):
        detection_map(truth, preds(v1=[(3, 3, "a", 0.5)]))
    with pytest.raises(ValueError, match="no ground-truth segment"):
        average_precision_detection({}, {"v": [Segment(0, 1, "a")]})
    np.testing.assert_array_equal(average_precision_detection({"v": [Segment(0, 1, "a")]}, {}), np.zeros(10))


# ----------------------------------------------------------------------------- against ActivityNet's code


def random_case(seed: int, many: bool = False) -> tuple[dict, dict]:
    """An ActivityNet ground-truth document and a result document: a few classes and videos, two
    subsets, exact and zero-length duplicate gts, detections near the gts (some of another class,
    some duplicated with another score), random ones, and some in a video no ground truth has."""
    rng = np.random.default_rng(seed)
    labels = [f"class {i}" for i in range(int(rng.integers(2, 6)))]
    database = {}
    for number in range(int(rng.integers(3, 12 if not many else 40))):
        duration = float(rng.uniform(20, 150))
        annotations = []
        for _ in range(int(rng.integers(0, 6))):
            start = float(rng.uniform(0, duration - 1))
            end = min(duration, start + float(rng.uniform(0.5, 40)))
            annotations.append({"segment": [start, end], "label": str(rng.choice(labels))})
            if rng.random() < 0.1:
                annotations.append(dict(annotations[-1]))  # an exact duplicate
        if rng.random() < 0.05:
            annotations.append({"segment": [0.0, 0.0], "label": str(rng.choice(labels))})  # as in v1.3
        database[f"video{number:03d}"] = {"subset": "validation" if rng.random() < 0.8 else "training",
                                          "duration": duration, "annotations": annotations}
    database["video000"]["subset"] = "validation"
    database["video000"]["annotations"].append({"segment": [1.0, 9.0], "label": labels[0]})
    known = sorted({a["label"] for v in database.values() if v["subset"] == "validation" for a in v["annotations"]})
    results = {}
    for name in [*database, "not_in_ground_truth"]:
        detections = []
        annotations = database.get(name, {"annotations": [{"segment": [5.0, 25.0], "label": known[0]}]})["annotations"]
        for annotation in annotations:
            for _ in range(int(rng.integers(0, 4 if not many else 12))):
                start, end = annotation["segment"]
                jitter = rng.normal(0, 0.15 * max(end - start, 1), 2)
                start, end = sorted((max(0.0, start + jitter[0]), end + jitter[1]))
                label = annotation["label"] if annotation["label"] in known and rng.random() < 0.8 else \
                    str(rng.choice(known))
                detections.append({"label": label, "score": float(rng.random()), "segment": [start, end + 0.01]})
        for _ in range(int(rng.integers(0, 5 if not many else 30))):
            start = float(rng.uniform(0, 100))
            detections.append({"label": str(rng.choice(known)), "score": float(rng.random()),
                               "segment": [start, start + float(rng.uniform(0.1, 30))]})
        for detection in list(detections):
            if rng.random() < 0.15:
                detections.append({**detection, "score": float(rng.random())})
        rng.shuffle(detections)
        results[name] = detections
    return ({"version": "VERSION 1.3", "taxonomy": [], "database": database},
            {"version": "VERSION 1.3", "results": results, "external_data": {}})


@pytest.mark.parametrize("seed, many", [(0, False), (1, False), (2, False), (3, False), (4, False), (5, False),
                                        (6, True), (7, True)])
def test_matches_activitynet_evaluator(tmp_path, seed, many):
    ground_truth_doc, results_doc = random_case(seed, many)
    (tmp_path / "gt.json").write_text(json.dumps(ground_truth_doc))
    (tmp_path / "results.json").write_text(json.dumps(results_doc))
    for thresholds in (ANET_THRESHOLDS, THUMOS_THRESHOLDS, np.array([0.1, 0.25])):
        index, ap, mean_ap, average = anet_evaluate(ground_truth_doc, results_doc, "validation", thresholds)
        ours = detection_map(read_activitynet(tmp_path / "gt.json", "validation"),
                             read_results(tmp_path / "results.json"), thresholds)
        assert sorted(ours.per_class) == sorted(index)
        for label, column in index.items():
            np.testing.assert_allclose(ours.per_class[label], ap[:, column], rtol=0, atol=1e-12)
        np.testing.assert_allclose(ours.map, mean_ap, rtol=0, atol=1e-12)
        assert ours.average == pytest.approx(average, rel=0, abs=1e-12)
        assert 0 < ours.average < 1  # a case that exercises both hits and misses
    # the files our writers make give the same numbers
    ours = detection_map(read_activitynet(write_activitynet(tmp_path / "gt2.json",
                                                            read_activitynet(tmp_path / "gt.json")), "validation"),
                         read_results(write_results(tmp_path / "r2.json", read_results(tmp_path / "results.json"))))
    assert ours.average == pytest.approx(anet_evaluate(ground_truth_doc, results_doc)[3], rel=0, abs=1e-12)


def test_single_class_ap_matches_activitynet_with_many_predictions():
    rng = np.random.default_rng(11)
    truth: dict[str, list[Segment]] = {}
    for video in range(30):
        starts = rng.uniform(0, 200, int(rng.integers(1, 6)))
        truth[f"v{video}"] = [Segment(float(s), float(s + rng.uniform(1, 30)), "a") for s in starts]
    detections: dict[str, list[Segment]] = {}
    for video in range(34):  # four videos without ground truth
        rows = [(float(s), float(s + rng.uniform(1, 30))) for s in rng.uniform(0, 200, int(rng.integers(0, 40)))]
        rows += [(s.start + float(rng.normal(0, 2)), s.end + float(rng.normal(0, 2)))
                 for s in truth.get(f"v{video}", []) for _ in range(3)]
        detections[f"v{video}"] = [Segment(s, max(e, s + 0.1), "a", float(rng.random())) for s, e in rows]
    frame_gt = {"video-id": np.array([v for v, segs in truth.items() for _ in segs]),
                "t-start": np.array([s.start for segs in truth.values() for s in segs]),
                "t-end": np.array([s.end for segs in truth.values() for s in segs])}
    frame_pred = {"video-id": np.array([v for v, segs in detections.items() for _ in segs]),
                  "t-start": np.array([s.start for segs in detections.values() for s in segs]),
                  "t-end": np.array([s.end for segs in detections.values() for s in segs]),
                  "score": np.array([s.score for segs in detections.values() for s in segs])}
    assert len(frame_pred["score"]) > 500
    thresholds = np.linspace(0.05, 0.95, 19)
    ours = average_precision_detection(truth, detections, thresholds)
    np.testing.assert_allclose(ours, compute_average_precision_detection(frame_gt, frame_pred, thresholds),
                               rtol=0, atol=1e-12)
    assert ours[0] > ours[-1] > 0
