"""Assignment, SORT (against the published TUD-Campus row) and ByteTrack-style association."""

from __future__ import annotations

import numpy as np
import pytest

from deepvideo.track.deepsort import DeepSort
from deepvideo.track.mot import track_detections
from deepvideo.track.mot_metrics import evaluate_mot
from deepvideo.track.motio import read_mot
from deepvideo.track.sort import ByteTrack, Sort, linear_assignment


def test_assignment_picks_the_cheapest_pairs():
    matches, rows, cols = linear_assignment(np.array([[0.1, 0.9], [0.8, 0.2]]), 0.5)
    assert matches.tolist() == [[0, 0], [1, 1]] and rows.size == 0 and cols.size == 0
    # rectangular: the cheapest column per row, the spare column unmatched
    matches, rows, cols = linear_assignment(np.array([[0.9, 0.1, 0.5], [0.2, 0.9, 0.4]]), 0.5)
    assert matches.tolist() == [[0, 1], [1, 0]] and rows.size == 0 and cols.tolist() == [2]


def test_assignment_rejects_pairs_over_the_threshold():
    matches, rows, cols = linear_assignment(np.array([[0.1, 0.9], [0.8, 0.7]]), 0.5)
    assert matches.tolist() == [[0, 0]] and rows.tolist() == [1] and cols.tolist() == [1]
    # Unclipped, the Hungarian optimum (0.71 + 0.71 < 0.65 + 1) uses two disallowed pairs and
    # would lose the only allowed one; clipped costs keep it.
    matches, rows, cols = linear_assignment(np.array([[0.65, 0.71], [0.71, 1.0]]), 0.7)
    assert matches.tolist() == [[0, 0]] and rows.tolist() == [1] and cols.tolist() == [1]
    matches, rows, cols = linear_assignment(np.full((2, 3), 0.9), 0.5)
    assert matches.shape == (0, 2) and rows.tolist() == [0, 1] and cols.tolist() == [0, 1, 2]


def test_assignment_of_empty_inputs():
    for shape in ((0, 3), (2, 0), (0, 0)):
        matches, rows, cols = linear_assignment(np.empty(shape), 0.5)
        assert matches.shape == (0, 2)
        assert rows.tolist() == list(range(shape[0])) and cols.tolist() == list(range(shape[1]))


def walker(frames: range, missing: tuple[int, ...] = (), score: float = 0.9) -> dict[int, np.ndarray]:
    """MOT detection rows of one box moving 5 px/frame right."""
    return {f: np.array([[f, -1, 10 + 5 * f, 50, 20, 40, score, -1, -1, -1]])
            for f in frames if f not in missing}


def test_sort_reports_by_the_reference_rule():
    """Hand-traced reference rule: reported while the sequence is in its first min_hits
    frames, then only with min_hits consecutive matches after the track's first detection;
    a missed frame (max_age 1 keeps the track) resets the streak."""
    rows = track_detections(walker(range(1, 11), missing=(6,)), Sort(), num_frames=10)
    assert rows[:, 0].tolist() == [1, 2, 3, 4, 5, 9, 10]
    assert set(rows[:, 1]) == {1}
    assert np.allclose(rows[-1, 2:6], [60, 50, 20, 40], atol=0.5)  # filtered box near the detection
    # a gap of two frames exceeds max_age=1: the object comes back under a new id
    rows = track_detections(walker(range(1, 11), missing=(5, 6)), Sort(), num_frames=10)
    assert set(rows[:, 1]) == {1, 2}
    assert track_detections({}, Sort(), num_frames=3).shape == (0, 10)


def test_sort_rejects_bad_detections():
    with pytest.raises(ValueError, match=r"\(N, 5\)"):
        Sort().update(np.zeros((2, 3)))


def test_bytetrack_keeps_a_track_on_low_score_detections():
    dets = walker(range(1, 6))
    dets.update(walker(range(6, 12), score=0.3))  # e.g. the object is partly occluded
    rows = track_detections(dets, ByteTrack(), num_frames=11)
    assert rows[:, 0].tolist() == list(range(1, 12)) and set(rows[:, 1]) == {1}
    # low-score detections alone never start a track
    assert track_detections(walker(range(1, 11), score=0.3), ByteTrack()).shape == (0, 10)
    # detections under low_threshold (0.1) are dropped altogether
    dets.update(walker(range(6, 12), score=0.05))
    assert track_detections(dets, ByteTrack(), num_frames=11)[:, 0].tolist() == [1, 2, 3, 4, 5]


def test_bytetrack_recovers_identity_after_a_gap():
    rows = track_detections(walker(range(1, 21), missing=(8, 9, 10, 11)), ByteTrack())
    assert set(rows[:, 1]) == {1} and 9 not in rows[:, 0]


def tud(shared_data, name: str) -> tuple[np.ndarray, np.ndarray]:
    mot = shared_data / "mot"
    return read_mot(mot / name / "gt.txt"), read_mot(mot / "sort_frcnn_dets" / f"{name}.det.txt")


def test_sort_reproduces_the_published_tud_campus_row(shared_data):
    """abewley/sort README, "Main Results" (MOT challenge devkit): TUD-Campus FP 15, FN 113,
    IDs 6, MOTA 62.7 with max_age 1, min_hits 3, IoU 0.3 on its Faster R-CNN detections."""
    gt, dets = tud(shared_data, "TUD-Campus")
    result = evaluate_mot(gt, track_detections(dets, Sort(max_age=1, min_hits=3, iou_threshold=0.3)))
    assert (result["FP"], result["FN"], result["IDSW"]) == (15, 113, 6)
    assert round(100 * result["MOTA"], 1) == 62.7


def test_bytetrack_beats_sort_on_both_tud_sequences(shared_data):
    for name in ("TUD-Campus", "TUD-Stadtmitte"):
        gt, dets = tud(shared_data, name)
        sort = evaluate_mot(gt, track_detections(dets, "sort"))
        byte = evaluate_mot(gt, track_detections(dets, "bytetrack"))
        assert byte["MOTA"] > sort["MOTA"] and byte["IDF1"] > sort["IDF1"], name


@pytest.mark.parametrize("tracker", [Sort, ByteTrack, DeepSort])
def test_boxes_without_area_are_dropped_not_tracked(tracker):
    """A zero-width or zero-height detection (e.g. clipped to nothing at the image border)
    used to start a track whose box was NaN (SORT's aspect w / h) and was reported in the
    first frames, which crashed draw_tracks and counted as a false positive."""
    t = tracker()
    dets = np.array([[10, 10, 0, 40, 0.9], [50, 10, 20, 0, 0.9], [80, 10, 20, 40, 0.9]])
    for _ in range(4):
        out = t.update(dets)
        assert np.isfinite(out).all()
    assert len(t.tracks) == 1 and out[:, 4].tolist() in ([], [1])
    rows = track_detections({1: np.array([[1, -1, 10, 10, 0, 20, 0.9, -1, -1, -1]])}, tracker(), num_frames=2)
    assert rows.shape == (0, 10)


def test_non_finite_detections_are_an_error():
    with pytest.raises(ValueError, match=r"dets: 1 of 2 rows hold NaN"):
        Sort().update(np.array([[0, 0, 5, 5, 0.9], [0, np.nan, 5, 5, 0.9]]))
    with pytest.raises(ValueError, match=r"^dets must be an \(N, 5\) array"):
        DeepSort().update(np.zeros(5))
