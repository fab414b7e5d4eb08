"""AVA frame-mAP: small cases worked out by hand, and random cases against a copy of AVA's
official evaluator (the reference section below)."""

from __future__ import annotations

import csv
import heapq
from collections import defaultdict

import numpy as np
import pytest

from deepvideo.ava import (
    AvaBox,
    box_iou,
    frame_map,
    read_detections,
    read_excluded,
    read_groundtruth,
    read_label_map,
    write_detections,
    write_excluded,
    write_groundtruth,
    write_label_map,
)
from deepvideo.engine.metrics import interpolated_average_precision

# ============================================================================ reference
# AVA's official evaluation, copied for tests only: ``read_csv``, ``read_exclusions``,
# ``read_labelmap`` and ``run_evaluation`` of ``Evaluation/get_ava_performance.py`` of
# https://github.com/activitynet/ActivityNet (commit 1212804ad4bad6cf2e889df182e8ac4f6d40294a),
# and the parts of the TensorFlow Object Detection API it runs, from ``Evaluation/ava/``
# (``per_image_evaluation.PerImageEvaluation._compute_tp_fp_for_single_class`` and
# ``_remove_invalid_boxes``, ``object_detection_evaluation.ObjectDetectionEvaluation``'s adding and
# ``evaluate``, ``np_box_ops.iou``) and ``research/object_detection/utils/metrics.py``
# (``compute_precision_recall``, ``compute_average_precision``).  Copyright 2017 The TensorFlow
# Authors, Apache License 2.0.  Changes, none to the algorithm: Python 3, no logging or timing,
# difficult / group-of / mask branches removed (AVA has none: all its ground truth is neither),
# classes and the evaluator's state held in plain dicts and lists, ``np.NAN`` -> ``np.nan``.


def ref_make_image_key(video_id, timestamp):
    return "%s,%04d" % (video_id, int(timestamp))


def ref_read_csv(csv_file, class_whitelist=None, capacity=0):
    entries = defaultdict(list)
    boxes = defaultdict(list)
    labels = defaultdict(list)
    scores = defaultdict(list)
    reader = csv.reader(csv_file)
    for row in reader:
        assert len(row) in [7, 8], "Wrong number of columns: " + row
        image_key = ref_make_image_key(row[0], row[1])
        x1, y1, x2, y2 = [float(n) for n in row[2:6]]
        action_id = int(row[6])
        if class_whitelist and action_id not in class_whitelist:
            continue
        score = 1.0
        if len(row) == 8:
            score = float(row[7])
        if capacity < 1 or len(entries[image_key]) < capacity:
            heapq.heappush(entries[image_key], (score, action_id, y1, x1, y2, x2))
        elif score > entries[image_key][0][0]:
            heapq.heapreplace(entries[image_key], (score, action_id, y1, x1, y2, x2))
    for image_key in entries:
        entry = sorted(entries[image_key], key=lambda tup: -tup[0])
        for item in entry:
            score, action_id, y1, x1, y2, x2 = item
            boxes[image_key].append([y1, x1, y2, x2])
            labels[image_key].append(action_id)
            scores[image_key].append(score)
    return boxes, labels, scores


def ref_read_exclusions(exclusions_file):
    excluded = set()
    if exclusions_file:
        reader = csv.reader(exclusions_file)
        for row in reader:
            assert len(row) == 2, "Expected only 2 columns, got: " + row
            excluded.add(ref_make_image_key(row[0], row[1]))
    return excluded


def ref_read_labelmap(labelmap_file):
    labelmap = []
    class_ids = set()
    name = ""
    class_id = ""
    for line in labelmap_file:
        if line.startswith("  name:"):
            name = line.split('"')[1]
        elif line.startswith("  id:") or line.startswith("  label_id:"):
            class_id = int(line.strip().split(" ")[-1])
            labelmap.append({"id": class_id, "name": name})
            class_ids.add(class_id)
    return labelmap, class_ids


def ref_iou(boxes1, boxes2):
    def area(boxes):
        return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])

    [y_min1, x_min1, y_max1, x_max1] = np.split(boxes1, 4, axis=1)
    [y_min2, x_min2, y_max2, x_max2] = np.split(boxes2, 4, axis=1)
    all_pairs_min_ymax = np.minimum(y_max1, np.transpose(y_max2))
    all_pairs_max_ymin = np.maximum(y_min1, np.transpose(y_min2))
    intersect_heights = np.maximum(np.zeros(all_pairs_max_ymin.shape), all_pairs_min_ymax - all_pairs_max_ymin)
    all_pairs_min_xmax = np.minimum(x_max1, np.transpose(x_max2))
    all_pairs_max_xmin = np.maximum(x_min1, np.transpose(x_min2))
    intersect_widths = np.maximum(np.zeros(all_pairs_max_xmin.shape), all_pairs_min_xmax - all_pairs_max_xmin)
    intersect = intersect_heights * intersect_widths
    union = np.expand_dims(area(boxes1), axis=1) + np.expand_dims(area(boxes2), axis=0) - intersect
    return intersect / union


def ref_compute_precision_recall(scores, labels, num_gt):
    if num_gt == 0:
        return None, None
    sorted_indices = np.argsort(scores)
    sorted_indices = sorted_indices[::-1]
    true_positive_labels = labels[sorted_indices]
    false_positive_labels = (true_positive_labels <= 0).astype(float)
    cum_true_positives = np.cumsum(true_positive_labels)
    cum_false_positives = np.cumsum(false_positive_labels)
    precision = cum_true_positives.astype(float) / (cum_true_positives + cum_false_positives)
    recall = cum_true_positives.astype(float) / num_gt
    return precision, recall


def ref_compute_average_precision(precision, recall):
    if precision is None:
        return np.nan
    if not precision.size:
        return 0.0
    recall = np.concatenate([[0], recall, [1]])
    precision = np.concatenate([[0], precision, [0]])
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = np.maximum(precision[i], precision[i + 1])
    indices = np.where(recall[1:] != recall[:-1])[0] + 1
    average_precision = np.sum((recall[indices] - recall[indices - 1]) * precision[indices])
    return average_precision


def ref_tp_fp_single_class(detected_boxes, detected_scores, groundtruth_boxes, matching_iou_threshold):
    if detected_boxes.size == 0:
        return np.array([], dtype=float), np.array([], dtype=bool)
    iou = ref_iou(detected_boxes, groundtruth_boxes)
    scores = detected_scores
    num_detected_boxes = detected_boxes.shape[0]
    if groundtruth_boxes.size == 0:
        return scores, np.zeros(num_detected_boxes, dtype=bool)
    tp_fp_labels = np.zeros(num_detected_boxes, dtype=bool)
    if iou.shape[1] > 0:
        max_overlap_gt_ids = np.argmax(iou, axis=1)
        is_gt_box_detected = np.zeros(iou.shape[1], dtype=bool)
        for i in range(num_detected_boxes):
            gt_id = max_overlap_gt_ids[i]
            if iou[i, gt_id] >= matching_iou_threshold:
                if not is_gt_box_detected[gt_id]:
                    tp_fp_labels[i] = True
                    is_gt_box_detected[gt_id] = True
    return scores, tp_fp_labels


def ref_run_evaluation(labelmap, groundtruth, detections, exclusions, matching_iou_threshold=0.5):
    """``run_evaluation`` with ``PascalDetectionEvaluator`` inlined: ``(mAP, {class id: AP})``."""
    categories, class_whitelist = ref_read_labelmap(labelmap)
    excluded_keys = ref_read_exclusions(exclusions)
    num_class = max(cat["id"] for cat in categories)
    gt_boxes, gt_labels = {}, {}
    num_gt_instances_per_class = np.zeros(num_class, dtype=int)
    boxes, labels, _ = ref_read_csv(groundtruth, class_whitelist, 0)
    for image_key in boxes:
        if image_key in excluded_keys:
            continue
        gt_boxes[image_key] = np.array(boxes[image_key], dtype=float)
        gt_labels[image_key] = np.array(labels[image_key], dtype=int) - 1
        for class_index in range(num_class):
            num_gt_instances_per_class[class_index] += np.sum(gt_labels[image_key] == class_index)
    scores_per_class = [[] for _ in range(num_class)]
    tp_fp_labels_per_class = [[] for _ in range(num_class)]
    boxes, labels, scores = ref_read_csv(detections, class_whitelist, 50)
    for image_key in boxes:
        if image_key in excluded_keys:
            continue
        detected_boxes = np.array(boxes[image_key], dtype=float)
        detected_scores = np.array(scores[image_key], dtype=float)
        detected_class_labels = np.array(labels[image_key], dtype=int) - 1
        valid = np.logical_and(detected_boxes[:, 0] < detected_boxes[:, 2], detected_boxes[:, 1] < detected_boxes[:, 3])
        detected_boxes, detected_scores = detected_boxes[valid], detected_scores[valid]
        detected_class_labels = detected_class_labels[valid]
        groundtruth_boxes = gt_boxes.get(image_key, np.empty(shape=[0, 4], dtype=float))
        groundtruth_class_labels = gt_labels.get(image_key, np.array([], dtype=int))
        for i in range(num_class):
            s, tp = ref_tp_fp_single_class(detected_boxes[detected_class_labels == i],
                                           detected_scores[detected_class_labels == i],
                                           groundtruth_boxes[groundtruth_class_labels == i], matching_iou_threshold)
            if s.shape[0] > 0:
                scores_per_class[i].append(s)
                tp_fp_labels_per_class[i].append(tp)
    average_precision_per_class = np.full(num_class, np.nan)
    for class_index in range(num_class):
        if num_gt_instances_per_class[class_index] == 0:
            continue
        if not scores_per_class[class_index]:
            s, tp = np.array([], dtype=float), np.array([], dtype=bool)
        else:
            s = np.concatenate(scores_per_class[class_index])
            tp = np.concatenate(tp_fp_labels_per_class[class_index])
        precision, recall = ref_compute_precision_recall(s, tp, num_gt_instances_per_class[class_index])
        average_precision_per_class[class_index] = ref_compute_average_precision(precision, recall)
    mean_ap = np.nanmean(average_precision_per_class)
    return mean_ap, {cat["id"]: average_precision_per_class[cat["id"] - 1] for cat in categories}

# ============================================================================ end of reference


def box(video, timestamp, coords, action, score=None, person=None) -> AvaBox:
    return AvaBox(video, timestamp, *coords, action, person, score)


LABELS = {1: "stand", 2: "sit", 3: "talk to"}


# ----------------------------------------------------------------------------- IoU and AP


def test_box_iou_by_hand():
    # [0,0,1,.5] and [0,0,1,1]: intersection .5, union 1 + .5 - .5 = 1 -> exactly .5
    # [0,0,.5,.5] and [.25,.25,.75,.75]: intersection .0625, union .4375 -> 1/7; disjoint -> 0
    iou = box_iou([[0, 0, 1, 0.5], [0, 0, 0.5, 0.5]], [[0, 0, 1, 1], [0.25, 0.25, 0.75, 0.75], [0.6, 0.6, 0.9, 0.9]])
    assert iou.shape == (2, 3)
    assert iou[0, 0] == 0.5
    assert iou[1, 1] == pytest.approx(1 / 7)
    assert iou[1, 2] == 0.0
    assert box_iou(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)


def test_compute_average_precision_by_hand():
    # TP FP TP FP of 3 ground truths: precision 1 1/2 2/3 1/2, recall 1/3 1/3 2/3 2/3;
    # envelope 1 at recall 1/3 and 2/3 at 2/3 -> AP = 1/3 * 1 + 1/3 * 2/3 = 5/9 (area, not 11-point)
    precision = np.array([1, 1 / 2, 2 / 3, 1 / 2])
    recall = np.array([1 / 3, 1 / 3, 2 / 3, 2 / 3])
    assert interpolated_average_precision(precision, recall) == pytest.approx(5 / 9)
    assert interpolated_average_precision(np.array([]), np.array([])) == 0.0
    for _ in range(5):
        rng = np.random.default_rng(_)
        hits = rng.random(30) < 0.4
        p = np.cumsum(hits) / np.arange(1, 31)
        r = np.cumsum(hits) / 20.0
        assert interpolated_average_precision(p, r) == ref_compute_average_precision(p.copy(), r.copy())


# ----------------------------------------------------------------------------- frame mAP by hand


def hand_case():
    # keyframe (v, 902): two overlapping ground truths of class 1, G1 [0,0,.5,.5], G2 [.25,0,.75,.5]
    # keyframe (v, 903): G3 [.5,.5,1,1] of class 1, and the same box doing class 3
    groundtruth = [box("v", 902, (0, 0, 0.5, 0.5), 1, person=0), box("v", 902, (0.25, 0, 0.75, 0.5), 1, person=1),
                   box("v", 903, (0.5, 0.5, 1, 1), 1, person=0), box("v", 903, (0.5, 0.5, 1, 1), 3, person=0)]
    detections = [
        box("v", 902, (0, 0, 0.5, 0.5), 1, 0.9),      # G1 exactly: TP
        # IoU .613 with G1 (taken), .587 with G2 (free): its best box is G1, so FP -- no fallback to G2
        box("v", 902, (0.12, 0, 0.62, 0.5), 1, 0.8),
        box("v", 903, (0.5, 0.5, 1, 1), 1, 0.7),      # G3: TP
        box("v", 903, (0, 0, 0.2, 0.2), 1, 0.6),      # nothing there: FP
        box("v", 903, (0, 0, 0.2, 0.2), 2, 0.6),      # class 2 has no ground truth
    ]
    return groundtruth, detections


def test_frame_map_by_hand():
    # class 1 ranks TP FP TP FP of 3 ground truths -> AP 5/9 (see the AP test);
    # class 2: no ground truth -> NaN, left out of the mean; class 3: ground truth, no detection -> 0
    # mAP = (5/9 + 0) / 2 = 5/18
    groundtruth, detections = hand_case()
    result = frame_map(groundtruth, detections, LABELS)
    assert result["per_class"][1]["AP"] == pytest.approx(5 / 9)
    assert np.isnan(result["per_class"][2]["AP"])
    assert result["per_class"][3]["AP"] == 0.0
    assert result["mAP"] == pytest.approx(5 / 18)
    assert result["AP_by_name"]["stand"] == pytest.approx(5 / 9)
    assert result["per_class"][1]["num_groundtruth"] == 3 and result["per_class"][1]["num_detections"] == 4
    assert result["per_class"][2]["num_detections"] == 1
    assert result["num_frames"] == 2
    # class ids alone work too; only the listed classes are evaluated
    assert frame_map(groundtruth, detections, [1])["mAP"] == pytest.approx(5 / 9)


def test_duplicate_detection_is_a_false_positive():
    # G1 in frame 902, G2 in 903.  Detections: G1 (.9) TP, G1 again (.8) FP -- already taken --, G2 (.7) TP
    # precision 1 1/2 2/3, recall 1/2 1/2 1 -> AP = 1/2 * 1 + 1/2 * 2/3 = 5/6
    groundtruth = [box("v", 902, (0.1, 0.1, 0.4, 0.4), 1, person=0), box("v", 903, (0.5, 0.5, 0.9, 0.9), 1, person=0)]
    detections = [box("v", 902, (0.1, 0.1, 0.4, 0.4), 1, 0.9), box("v", 902, (0.1, 0.1, 0.4, 0.4), 1, 0.8),
                  box("v", 903, (0.5, 0.5, 0.9, 0.9), 1, 0.7)]
    assert frame_map(groundtruth, detections, [1])["mAP"] == pytest.approx(5 / 6)


def test_multi_label_ground_truth():
    # one person doing "stand" and "talk to" (same box, two rows): a detection of each class is a TP
    # of its class; a "sit" detection on the same box is an FP of class 2, which has no ground truth
    groundtruth = [box("v", 902, (0.2, 0.2, 0.6, 0.9), 1, person=0), box("v", 902, (0.2, 0.2, 0.6, 0.9), 3, person=0)]
    detections = [box("v", 902, (0.2, 0.2, 0.6, 0.9), 1, 0.5), box("v", 902, (0.2, 0.2, 0.6, 0.9), 3, 0.4),
                  box("v", 902, (0.2, 0.2, 0.6, 0.9), 2, 0.9)]
    result = frame_map(groundtruth, detections, LABELS)
    assert result["per_class"][1]["AP"] == 1.0 and result["per_class"][3]["AP"] == 1.0
    assert np.isnan(result["per_class"][2]["AP"]) and result["mAP"] == 1.0


def test_iou_exactly_at_threshold_is_a_match():
    # IoU of [0,0,1,.5] with [0,0,1,1] is exactly .5: a TP at iou=.5 (>=), an FP above it
    groundtruth = [box("v", 902, (0, 0, 1, 0.5), 1, person=0)]
    detections = [box("v", 902, (0, 0, 1, 1), 1, 0.9)]
    assert frame_map(groundtruth, detections, [1], iou=0.5)["mAP"] == 1.0
    assert frame_map(groundtruth, detections, [1], iou=0.5 + 1e-9)["mAP"] == 0.0


def test_excluded_timestamps_drop_ground_truth_and_detections():
    # frame 903 excluded: its ground truth no longer counts (2 -> 1) and its FP detection is dropped
    groundtruth = [box("v", 902, (0.1, 0.1, 0.4, 0.4), 1, person=0), box("v", 903, (0.5, 0.5, 0.9, 0.9), 1, person=0)]
    detections = [box("v", 903, (0.0, 0.0, 0.1, 0.1), 1, 0.95), box("v", 902, (0.1, 0.1, 0.4, 0.4), 1, 0.9)]
    # without exclusion: FP then TP of 2 ground truths -> precision 0, 1/2; recall 0, 1/2 -> AP 1/4
    assert frame_map(groundtruth, detections, [1])["mAP"] == pytest.approx(0.25)
    result = frame_map(groundtruth, detections, [1], excluded={("v", 903)})
    assert result["mAP"] == 1.0
    assert result["per_class"][1]["num_groundtruth"] == 1 and result["per_class"][1]["num_detections"] == 1


def test_detections_on_frames_without_ground_truth_are_false_positives():
    groundtruth = [box("v", 902, (0.1, 0.1, 0.4, 0.4), 1, person=0)]
    detections = [box("w", 902, (0.1, 0.1, 0.4, 0.4), 1, 0.9), box("v", 902, (0.1, 0.1, 0.4, 0.4), 1, 0.5)]
    assert frame_map(groundtruth, detections, [1])["mAP"] == 0.5  # FP then TP: precision 1/2 at recall 1


def test_at_most_50_detections_per_frame():
    # 50 FPs scored .50..99 and the only TP scored .1: the TP is the 51st of its frame and dropped
    groundtruth = [box("v", 902, (0.1, 0.1, 0.4, 0.4), 1, person=0)]
    far = [box("v", 902, (0.6, 0.6, 0.9, 0.9), 1, 0.5 + i / 100) for i in range(50)]
    detections = far + [box("v", 902, (0.1, 0.1, 0.4, 0.4), 1, 0.1)]
    assert frame_map(groundtruth, detections, [1])["mAP"] == 0.0
    assert frame_map(groundtruth, detections, [1], max_per_frame=0)["mAP"] == pytest.approx(1 / 51)
    # the heap keeps a new detection only when it scores above the lowest kept one: a tie is dropped
    tied = [box("v", 902, (0.6, 0.6, 0.9, 0.9), 1, 0.5) for _ in range(50)]
    assert frame_map(groundtruth, tied + [box("v", 902, (0.1, 0.1, 0.4, 0.4), 1, 0.5)], [1])["mAP"] == 0.0
    # classes outside the label map do not take places
    other = [box("v", 902, (0.6, 0.6, 0.9, 0.9), 7, 0.9) for _ in range(60)]
    assert frame_map(groundtruth, other + [box("v", 902, (0.1, 0.1, 0.4, 0.4), 1, 0.1)], [1])["mAP"] == 1.0


def test_errors():
    groundtruth, detections = hand_case()
    with pytest.raises(ValueError, match="no box of the 1 evaluated classes"):
        frame_map(groundtruth, detections, [2])
    with pytest.raises(ValueError, match="class id 0 is not an integer >= 1"):
        frame_map(groundtruth, detections, [0, 1])
    with pytest.raises(ValueError, match=r"detections: box 0 \(v,0902\) has no score"):
        frame_map(groundtruth, groundtruth, [1])


# ----------------------------------------------------------------------------- against the official code


def random_case(seed: int):
    """Ground truth and detections on a few keyframes: jittered copies of ground-truth boxes (some
    of other classes, some duplicated), random boxes, > 50 detections on one frame, classes
    outside the label map, and distinct random scores (the reference breaks ties arbitrarily)."""
    rng = np.random.default_rng(seed)

    def jitter(b, amount):
        x1, y1, x2, y2 = np.clip(np.array(b) + rng.normal(0, amount, 4), 0, 1).tolist()
        return (x1, y1, x2, y2) if x2 - x1 > 0.01 and y2 - y1 > 0.01 else b

    def random_box():
        x1, y1 = rng.uniform(0, 0.7, 2)
        return (float(x1), float(y1), float(x1 + rng.uniform(0.05, 0.3)), float(y1 + rng.uniform(0.05, 0.3)))

    groundtruth, detections = [], []
    for frame in range(12):
        video, timestamp = f"vid{frame % 3}", 902 + frame
        people: list[tuple] = []
        for person in range(rng.integers(0, 6)):
            # half the people stand close to someone else: overlapping boxes of the same actions
            people.append(jitter(people[-1], 0.04) if people and rng.random() < 0.5 else random_box())
            for action in rng.choice(np.arange(1, 5), size=rng.integers(1, 3), replace=False):
                groundtruth.append(box(video, timestamp, people[-1], int(action), person=person))
                for _ in range(rng.integers(0, 4)):
                    action_seen = int(action) if rng.random() < 0.7 else int(rng.integers(1, 7))
                    detections.append(box(video, timestamp, jitter(people[-1], 0.05), action_seen,
                                          float(rng.random())))
        crowd = 70 if frame == 5 and people else int(rng.integers(0, 6))  # frame 5: more than 50 detections
        for _ in range(crowd):
            b = jitter(people[rng.integers(len(people))], 0.05) if people and rng.random() < 0.6 else random_box()
            detections.append(box(video, timestamp, b, int(rng.integers(1, 5)), float(rng.random())))
    rng.shuffle(detections)
    return groundtruth, detections


@pytest.mark.parametrize("seed", range(6))
def test_matches_the_official_evaluator(tmp_path, seed):
    groundtruth, detections = random_case(seed)
    labels = {1: "a", 2: "b", 3: "c", 5: "e"}  # 4 and 6 are not evaluated
    excluded = {("vid1", 904), ("vid2", 911)}
    paths = {name: tmp_path / name for name in ("gt.csv", "det.csv", "excluded.csv", "labels.pbtxt")}
    write_groundtruth(paths["gt.csv"], groundtruth)
    write_detections(paths["det.csv"], detections)
    write_excluded(paths["excluded.csv"], excluded)
    write_label_map(paths["labels.pbtxt"], labels, style="label" if seed % 2 else "item")
    result = frame_map(read_groundtruth(paths["gt.csv"]), read_detections(paths["det.csv"]),
                       read_label_map(paths["labels.pbtxt"]), read_excluded(paths["excluded.csv"]))
    with open(paths["labels.pbtxt"]) as lf, open(paths["gt.csv"]) as gf, open(paths["det.csv"]) as df, \
            open(paths["excluded.csv"]) as ef:
        ref_map, ref_per_class = ref_run_evaluation(lf, gf, df, ef)
    assert set(ref_per_class) == set(result["per_class"])
    for class_id, ap in ref_per_class.items():
        mine = result["per_class"][class_id]["AP"]
        assert (np.isnan(ap) and np.isnan(mine)) or mine == ap, class_id  # exactly, not approximately
    assert result["mAP"] == ref_map
    assert 0 < result["mAP"] < 1  # a case with both hits and misses
