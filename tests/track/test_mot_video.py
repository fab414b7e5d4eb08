"""Synthetic scenes, detectors on real (generated) video files, and track_video end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

from deepvideo.io import read_video
from deepvideo.track.deepsort import DeepSort
from deepvideo.track.detect import FileDetections, MOG2Detector, TorchvisionDetector, make_detector
from deepvideo.track.mot import draw_tracks, make_tracker, track_detections, track_video
from deepvideo.track.mot_metrics import evaluate_mot, iou_matrix
from deepvideo.track.motio import read_mot
from deepvideo.track.scenes import crossing_scene, make_scene, noisy_detections, render_scene
from deepvideo.track.sort import ByteTrack, Sort

from conftest import entering_scene


def test_scene_ground_truth_has_occlusion_and_pan():
    scene = crossing_scene()
    assert scene.frames.shape == (40, 120, 200, 3) and scene.gt.shape == (80, 10)
    front, back = scene.gt[scene.gt[:, 1] == 1], scene.gt[scene.gt[:, 1] == 2]
    assert (front[:, 8] == 1).all() and back[:, 8].min() < 0.2  # id 2 passes behind id 1
    panned = make_scene(num_objects=3, num_frames=10, speed=0.0, pan=2.0, seed=5, render=False)
    assert panned.frames is None
    for k in (1, 2, 3):
        x = panned.gt[(panned.gt[:, 1] == k) & (panned.gt[:, 8] == 1), 2]
        if len(x) > 1:  # a static object drifts left as the camera pans right
            assert np.allclose(np.diff(x), -2)


def test_scene_write_round_trip(tmp_path):
    scene = make_scene(num_objects=3, num_frames=12, size=(64, 96), seed=1)
    video, gt = scene.write(tmp_path)
    assert read_video(video).shape == (12, 64, 96, 3)
    np.testing.assert_allclose(read_mot(gt)[:, :7], scene.gt[:, :7])


def test_noisy_detections_follow_visibility():
    scene = crossing_scene()
    dets = noisy_detections(scene.gt, seed=0, min_visibility=0.5, miss_rate=0.0, jitter=0.0,
                            false_per_frame=1.0, size=(120, 200))
    true = dets[dets[:, 6] >= 0.7]
    assert len(true) == int((scene.gt[:, 8] >= 0.5).sum())
    assert (dets[:, 1] == -1).all() and (np.diff(dets[:, 0]) >= 0).all()
    assert ((dets[:, 6] > 0.05) & (dets[:, 6] <= 1)).all() and len(dets) > len(true)


def test_mog2_finds_the_moving_objects():
    scene = entering_scene()
    detector = MOG2Detector()
    found = []
    for number, frame in enumerate(scene.frames, start=1):
        dets = detector(frame, number)
        gt = scene.gt[scene.gt[:, 0] == number]
        if number > 15:  # the background model has settled
            assert len(dets) == 2 and (dets[:, 4] > 0.5).all()
            found.append(iou_matrix(gt[:, 2:6], dets[:, :4]).max(axis=1))
    assert np.min(found) > 0.8


def test_track_video_with_mog2_writes_an_annotated_video(make_video, tmp_path):
    scene = entering_scene()
    video = make_video("scene.mp4", scene.frames, crf=0)
    out = tmp_path / "tracked.mp4"
    rows = track_video(video, tracker="sort", detector="mog2", video_out=out, progress=False)
    result = evaluate_mot(scene.gt, rows)
    # of 60 boxes SORT misses each object's first 3 frames (min_hits) and the background
    # model's first, too small boxes; the rest is found, with 2 ids throughout
    assert result["MOTA"] > 0.7 and result["FN"] <= 12 and result["IDSW"] == 0
    assert len(set(rows[:, 1])) == 2
    annotated = read_video(out)
    assert annotated.shape == scene.frames.shape
    # the box outline of track 1 in its last frame is drawn in its colour (h264: approximately)
    last = rows[(rows[:, 1] == 1)][-1]
    x, y = int(round(last[2])), int(round(last[3]))
    drawn = draw_tracks(scene.frames[int(last[0]) - 1], last[None, [2, 3, 4, 5, 1]])
    assert np.abs(annotated[int(last[0]) - 1, y, x:x + 10].astype(int) - drawn[y, x:x + 10]).mean() < 20
    assert np.abs(drawn[y, x:x + 10].astype(int) - scene.frames[int(last[0]) - 1, y, x:x + 10]).mean() > 40


def test_track_video_from_a_detection_file_matches_track_detections(make_video, tmp_path):
    scene = make_scene(num_objects=3, num_frames=15, size=(64, 96), seed=2)
    video = make_video("scene.mp4", scene.frames)
    dets = noisy_detections(scene.gt, seed=1)
    for name in ("sort", "bytetrack", "deepsort"):
        rows = track_video(video, tracker=name, detector="dets", dets=dets, progress=False)
        np.testing.assert_allclose(rows, track_detections(dets, name, num_frames=15))


@pytest.fixture(scope="module")
def detector_weights(tmp_path_factory):
    torch.manual_seed(0)
    model = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=91)
    path = tmp_path_factory.mktemp("weights") / "frcnn.pth"
    torch.save(model.state_dict(), path)
    return path


def test_torchvision_detector_loads_a_local_state_dict(detector_weights, make_video):
    torch.set_num_threads(1)  # one small frame at a time: faster on one thread of a busy machine
    detector = TorchvisionDetector(detector_weights, score_threshold=0.0, labels=None)
    frame = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    dets = detector(frame, 1)
    assert dets.ndim == 2 and dets.shape[1] == 5 and (dets[:, 2:4] >= 0).all()
    assert ((dets[:, 4] >= 0) & (dets[:, 4] <= 1)).all()
    video = make_video("clip.mp4", np.repeat(frame[None], 2, axis=0))
    rows = track_video(video, tracker="sort", detector="torchvision", weights=detector_weights,
                       progress=False)
    assert rows.shape[1] == 10


def test_detector_and_tracker_errors_are_one_line(detector_weights, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        TorchvisionDetector(tmp_path / "missing.pth")
    state = torch.load(detector_weights, weights_only=True)
    state.pop(next(iter(state)))
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"bad\.pth: key .* is missing"):
        TorchvisionDetector(tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="unknown detector"):
        make_detector("yolo")
    with pytest.raises(ValueError, match="needs a detections file"):
        make_detector("dets")
    with pytest.raises(ValueError, match="unknown tracker"):
        make_tracker("kcf")


def test_mog2_gives_nothing_on_its_first_frame():
    """The first frame only starts the background model; a black one (a fade-in) used to
    come out all foreground: one detection over the whole frame."""
    detector = MOG2Detector()
    black = np.zeros((60, 80, 3), np.uint8)
    assert detector(black, 1).shape == (0, 5) and detector(black, 2).shape == (0, 5)
    with pytest.raises(ValueError, match=r"^frame must be an \(H, W, 3\) uint8"):
        detector(black.astype(np.float32), 3)


def test_detection_rows_and_drawing_errors():
    with pytest.raises(ValueError, match=r"^dets must be MOT detection rows \(N, >=7\)"):
        FileDetections(np.zeros((3, 6)))
    assert FileDetections(np.empty((0, 10)))(None, 1).shape == (0, 5)
    frame = np.zeros((30, 40, 3), np.uint8)
    drawn = draw_tracks(frame, np.array([[5.0, 5.0, 10.0, 10.0, 1.0], [np.nan, 0.0, 5.0, 5.0, 2.0]]))
    assert np.array_equal(drawn, draw_tracks(frame, np.array([[5.0, 5.0, 10.0, 10.0, 1.0]])))
    assert np.array_equal(draw_tracks(frame, np.empty((0, 5))), frame)
    with pytest.raises(ValueError, match=r"^tracks must be a \(K, 5\) array"):
        draw_tracks(frame, np.zeros((2, 4)))


def test_render_scene_checks_its_arguments():
    with pytest.raises(ValueError, match=r"^boxes must be a finite \(T, N, 4\) array"):
        render_scene(np.zeros((3, 4)), np.zeros(3), (20, 30))
    with pytest.raises(ValueError, match=r"^depth must be \(2,\)"):
        render_scene(np.zeros((3, 2, 4)), np.zeros(3), (20, 30))
    with pytest.raises(ValueError, match="pan must be >= 0"):
        render_scene(np.zeros((3, 2, 4)), np.zeros(2), (20, 30), pan=-1.0)


def _error(call, *args, **kwargs) -> str:
    with pytest.raises(ValueError) as info:
        call(*args, **kwargs)
    return str(info.value)


def test_make_tracker_translates_the_common_settings():
    sort = make_tracker("sort", max_age=2, min_hits=0, iou_threshold=0.4)
    assert type(sort) is Sort and (sort.max_age, sort.min_hits, sort.iou_threshold) == (2, 0, 0.4)
    byte = make_tracker("bytetrack", max_age=np.int64(5), options={"high_threshold": 0.5, "min_hits": 2})
    assert type(byte) is ByteTrack and (byte.max_age, byte.min_hits, byte.high_threshold) == (5, 2, 0.5)
    # DeepSORT's own names: min_hits is n_init, iou_threshold is 1 - max_iou_distance
    deep = make_tracker("deepsort", max_age=4, min_hits=2, iou_threshold=0.25, options={"nn_budget": None})
    assert type(deep) is DeepSort and deep.encoder is None and deep.gallery.budget is None
    assert (deep.max_age, deep.n_init, deep.max_iou_distance) == (4, 2, 0.75)
    assert make_tracker("deepsort", options={"min_hits": 5}).n_init == 5
    # options come last and win; the defaults stay where nothing is given
    assert make_tracker("sort", min_hits=3, options={"min_hits": 1}).min_hits == 1
    assert make_tracker("deepsort", min_hits=3, options={"n_init": 1}).n_init == 1
    assert (make_tracker("sort").max_age, make_tracker("deepsort").n_init) == (1, 3)


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="sort", max_age=-1), "max_age must be a non-negative integer, got -1"),
    (dict(name="sort", min_hits=1.5), "min_hits must be a non-negative integer, got 1.5"),
    (dict(name="sort", min_hits=True), "min_hits must be a non-negative integer, got True"),
    (dict(name="deepsort", iou_threshold=1.5), "iou_threshold must be a number in [0, 1], got 1.5"),
    (dict(name="bytetrack", options={"max_age": "x"}), "max_age must be a non-negative integer, got 'x'"),
    (dict(name="bytetrack", options={"high_threshold": "x"}),
     "high_threshold: tracker 'bytetrack' takes a number, got 'x'"),
    (dict(name="deepsort", options={"nn_budget": 1.5}), "nn_budget: tracker 'deepsort' takes an integer, got 1.5"),
    (dict(name="deepsort", options={"speed": 2}),
     "tracker 'deepsort' has no option 'speed'; options: embedder, device, max_cosine_distance, nn_budget, "
     "max_iou_distance, max_age, n_init, motion_weight, min_confidence"),
    (dict(name="sort", options={"device": "cpu"}),
     "tracker 'sort' has no option 'device'; options: max_age, min_hits, iou_threshold"),
    (dict(name="kcf", max_age=-1), "unknown tracker 'kcf'; one of sort, bytetrack, deepsort"),
])
def test_make_tracker_errors_name_the_parameter(kwargs, message):
    assert _error(make_tracker, kwargs.pop("name"), **kwargs) == message


def test_make_detector_picks_the_detector_and_checks_its_options(detector_weights):
    rows = [[1, -1, 2, 3, 4, 5, 0.9], [1, -1, 0, 0, 1, 1, 0.1]]
    assert type(make_detector(dets=rows)) is FileDetections  # no name: dets when given, else mog2
    assert type(make_detector()) is MOG2Detector
    assert make_detector(dets=rows, options={"min_score": 0.5})(None, 1).tolist() == [[2, 3, 4, 5, 0.9]]
    assert make_detector("mog2", device="cuda", options={"min_area": 7}).min_area == 7  # mog2 runs no network
    detector = make_detector("torchvision", weights=detector_weights, device="cpu", options={"score_threshold": 0.9})
    assert (detector.device, detector.score_threshold, detector.labels) == ("cpu", 0.9, (1,))
    assert _error(make_detector, "mog2", options={"min_area": 2.5}) == (
        "min_area: detector 'mog2' takes an integer, got 2.5")
    assert _error(make_detector, dets=rows, options={"min_score": "high"}) == (
        "min_score: detector 'dets' takes a number, got 'high'")
    assert _error(make_detector, "mog2", weights="w.pth") == (
        "detector 'mog2' has no option 'weights'; options: history, var_threshold, min_area, kernel, detect_shadows")
    assert _error(make_detector, "dets", weights="w.pth").startswith("detector 'dets' has no option 'weights'")
