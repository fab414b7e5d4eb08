"""`deepvideo track`: mot, sot, eval, train-sot and train-embedder on real and generated inputs,
and their one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import run

from deepvideo.cli import main
from deepvideo.io import read_video
from deepvideo.track.mot import draw_tracks
from deepvideo.track.motio import read_mot, write_mot
from deepvideo.track.ope import read_boxes, write_boxes
from deepvideo.track.scenes import crossing_scene, noisy_detections

from conftest import entering_scene, moving_square_frames, one_line_error


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny per-frame batches and small training steps: one torch thread is much faster than
    two on a busy 2-core machine (after conftest's two-thread setting, which the next test resets)."""
    torch.set_num_threads(1)


def usage_error(capsys, *argv: str) -> str:
    """The last stderr line of an argparse rejection (exit status 2)."""
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    assert exc.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def evaluate(capsys, gt: Path, pred: Path, *options: str) -> dict:
    code, out, err = run(capsys, "track", "eval", "--gt", str(gt), "--pred", str(pred), "--json", *options)
    assert code == 0, err
    return json.loads(out)


# ----------------------------------------------------------------------------- real MOT data
def test_sort_on_tud_campus_detections_reproduces_the_published_row(shared_data, tmp_path, capsys):
    """abewley/sort's README: TUD-Campus MOTA 62.7, FP 15, FN 113, IDs 6 (max_age 1, min_hits 3,
    IoU 0.3 on its Faster R-CNN detections)."""
    mot = shared_data / "mot"
    out = tmp_path / "TUD-Campus.txt"
    code, stdout, err = run(capsys, "track", "mot", "--dets", str(mot / "sort_frcnn_dets" / "TUD-Campus.det.txt"),
                            "--tracker", "sort", "--max-age", "1", "--min-hits", "3", "--iou-threshold", "0.3",
                            "--out", str(out))
    assert code == 0, err
    assert stdout.strip() == f"{out}: 261 boxes of 15 tracks in 71 frames"
    rows = read_mot(out)
    assert rows.shape == (261, 10) and (rows[:, 6] == 1).all() and len(np.unique(rows[:, 1])) == 15
    result = evaluate(capsys, mot / "TUD-Campus" / "gt.txt", out)["TUD-Campus"]
    assert (result["FP"], result["FN"], result["IDSW"], result["GT"]) == (15, 113, 6, 359)
    assert round(100 * result["MOTA"], 1) == 62.7
    code, table, _ = run(capsys, "track", "eval", "--gt", str(mot / "TUD-Campus" / "gt.txt"), "--pred", str(out))
    header, row = table.strip().splitlines()
    assert header.split()[:5] == ["HOTA", "DetA", "AssA", "LocA", "MOTA"]
    assert row.split()[0] == "TUD-Campus" and row.split()[5] == "62.7%"


def test_eval_of_files_and_of_a_benchmark_folder_agree_with_the_tools(shared_data, capsys):
    """py-motmetrics / TrackEval values of the sample results (tests/track/test_mot_metrics.py)."""
    mot = shared_data / "mot"
    code, out, err = run(capsys, "track", "eval", "--json",
                         "--gt", str(mot / "TUD-Campus" / "gt.txt"), str(mot / "TUD-Stadtmitte" / "gt.txt"),
                         "--pred", str(mot / "TUD-Campus" / "test.txt"), str(mot / "TUD-Stadtmitte" / "test.txt"))
    assert code == 0, err
    files = json.loads(out)
    assert list(files) == ["TUD-Campus", "TUD-Stadtmitte", "COMBINED"]
    assert files["TUD-Campus"]["MOTA"] == pytest.approx(0.526462, abs=1e-6)
    assert files["COMBINED"]["MOTA"] == pytest.approx(0.555116, abs=1e-6)
    assert files["COMBINED"]["HOTA"] == pytest.approx(0.399957, abs=1e-6)
    assert files["COMBINED"]["IDSW"] == 14
    bench = shared_data / "mot" / "mmtracking_demo_MOT15" / "train"
    assert evaluate(capsys, bench, bench / "results") == files


def test_eval_of_box_files_is_mmtracking_one_pass_evaluation(shared_data, capsys):
    """mmtracking's own expected values for its demo LaSOT files: success 67.5238, precision 50,
    normalised precision 70."""
    lasot = shared_data / "sot" / "mmtracking_demo_sot" / "lasot"
    gts = [str(lasot / f"airplane-{i}" / "groundtruth.txt") for i in (1, 2)]
    preds = [str(lasot / f"airplane-{i}" / "track_results.txt") for i in (1, 2)]
    code, out, err = run(capsys, "track", "eval", "--gt", *gts, "--pred", *preds, "--pred-format", "xyxy", "--json")
    assert code == 0, err
    results = json.loads(out)
    assert list(results) == ["airplane-1", "airplane-2", "COMBINED"]
    assert round(results["COMBINED"]["success"], 4) == 67.5238
    assert (results["COMBINED"]["precision"], results["COMBINED"]["norm_precision"]) == (50.0, 70.0)
    assert results["airplane-1"]["precision"] == 100.0 and results["airplane-2"]["precision"] == 0.0
    code, table, _ = run(capsys, "track", "eval", "--gt", *gts, "--pred", *preds, "--pred-format", "xyxy")
    assert table.split("\n")[3].split() == ["COMBINED", "67.52", "50.00", "70.00"]
    code, _, err = run(capsys, "track", "eval", "--gt", gts[0], "--pred", preds[0], "--kind", "mot")
    assert code == 2
    one_line_error(err, "groundtruth.txt:1", "expected 6 to 10 fields")


# ----------------------------------------------------------------------------- generated videos
def test_mot_on_a_video_with_mog2_writes_results_and_an_annotated_video(tmp_path, capsys):
    scene = entering_scene()
    video, gt = scene.write(tmp_path, "enter")
    out, annotated = tmp_path / "enter.txt", tmp_path / "enter_tracked.mp4"
    code, stdout, err = run(capsys, "track", "mot", str(video), "--out", str(out), "--video-out", str(annotated))
    assert code == 0, err
    assert re.fullmatch(rf"{re.escape(str(out))}: \d+ boxes of 2 tracks in \d+ frames; "
                        rf"annotated video {re.escape(str(annotated))}", stdout.strip())
    # measured: MOTA 76.7 %; SORT's min_hits and the background model's first frames cost 10 FN
    result = evaluate(capsys, gt, out)["enter"]
    assert result["MOTA"] > 0.7 and result["IDSW"] == 0 and result["FN"] <= 12
    drawn = read_video(annotated)
    assert drawn.shape == scene.frames.shape
    rows = read_mot(out)
    last = rows[rows[:, 1] == 1][-1]
    frame, (x, y) = int(last[0]) - 1, (int(round(last[2])), int(round(last[3])))
    expected = draw_tracks(scene.frames[frame], last[None, [2, 3, 4, 5, 1]])
    edge = slice(x, x + 10)
    assert np.abs(drawn[frame, y, edge].astype(int) - expected[y, edge]).mean() < 20  # h264: approximately
    assert np.abs(expected[y, edge].astype(int) - scene.frames[frame, y, edge]).mean() > 40


def test_deepsort_with_a_trained_embedder_keeps_identities_through_a_crossing(tmp_path, capsys):
    """Object 2 walks behind object 1: SORT gives it a new id, DeepSORT with the appearance
    network trained by `track train-embedder` matches it back (measured: IDSW 1 vs 0)."""
    embedder = tmp_path / "embedder" / "weights.safetensors"
    code, stdout, err = run(capsys, "track", "train-embedder", "--objects", "4", "--frames", "20", "--data-seed", "3",
                            "--min-visibility", "0.6", "--jitter", "0", "--crop", "32x16", "--width", "8",
                            "--dim", "32", "--epochs", "2", "--crops-per-epoch", "640", "--batch-size", "32",
                            "--out", str(embedder.parent))
    assert code == 0, err
    assert re.fullmatch(rf"{re.escape(str(embedder))}: 32-d embedding trained on \d+ crops of 4 identities, "
                        r"train loss [\d.]+ -> [\d.]+ over 2 epochs", stdout.strip().splitlines()[-1])
    scene = crossing_scene()
    video, gt = scene.write(tmp_path, "cross")
    dets = write_mot(tmp_path / "cross.det.txt", noisy_detections(scene.gt, seed=0, miss_rate=0.0, jitter=0.02))
    switches = {}
    for tracker, extra in (("sort", []), ("deepsort", ["--embedder", str(embedder)])):
        out = tmp_path / f"{tracker}.txt"
        code, _, err = run(capsys, "track", "mot", str(video), "--dets", str(dets), "--tracker", tracker,
                           *extra, "--out", str(out))
        assert code == 0, err
        switches[tracker] = evaluate(capsys, gt, out)["cross"]["IDSW"]
    assert switches["sort"] >= 1 and switches["deepsort"] == 0


def square_boxes(num_frames: int = 24) -> np.ndarray:
    """Ground truth of ``moving_square_frames``: a 12 px square at x = 2t, y = 20."""
    return np.array([[2 * t, 20, 12, 12] for t in range(num_frames)], dtype=np.float64)


def test_sot_follows_a_moving_square_and_scores_it(make_video, tmp_path, capsys):
    video = make_video("square.mp4", moving_square_frames(), crf=10)
    gt = write_boxes(tmp_path / "square.gt.txt", square_boxes())
    out, annotated = tmp_path / "square.txt", tmp_path / "square_tracked.mp4"
    code, stdout, err = run(capsys, "track", "sot", str(video), "--box", "0,20,12,12", "--out", str(out),
                            "--video-out", str(annotated))
    assert code == 0, err
    assert stdout.startswith(f"{out}: 24 boxes, last 46.0,20.")
    boxes = read_boxes(out)
    assert boxes.shape == (24, 4) and (boxes[0] == [0, 20, 12, 12]).all()
    scores = evaluate(capsys, gt, out)["square"]  # a box file: --kind auto picks one-pass evaluation
    # measured with the training-free SiamFC: success 95.04 (95.24 is perfect), precision 100
    assert scores["success"] > 90 and scores["precision"] == 100.0
    assert read_video(annotated).shape == (24, 64, 64, 3)


def test_train_sot_writes_weights_that_the_tracker_loads(make_video, tmp_path, capsys):
    weights = tmp_path / "goturn" / "weights.safetensors"
    code, stdout, err = run(capsys, "track", "train-sot", "--tracker", "goturn", "--config", "input_size=67",
                            "--config", "width=0.125", "--config", "fc_dim=32", "--config", "dropout=0",
                            "--sequences", "4", "--frames", "6", "--size", "48", "--epochs", "2",
                            "--pairs-per-epoch", "12", "--batch-size", "4", "--out", str(weights.parent))
    assert code == 0, err
    assert stdout.splitlines()[-1].startswith(f"{weights}: goturn weights trained on 4 sequences, train loss ")
    assert weights.is_file()
    video = make_video("square.mp4", moving_square_frames(num_frames=5))
    out = tmp_path / "boxes.txt"
    code, _, err = run(capsys, "track", "sot", str(video), "--box", "0,20,12,12", "--tracker", "goturn",
                       "--weights", str(weights), "--out", str(out))
    assert code == 0, err
    boxes = read_boxes(out)
    assert boxes.shape == (5, 4) and np.isfinite(boxes).all() and (boxes[1:, 2:] > 0).all()
    code, _, err = run(capsys, "track", "sot", str(video), "--box", "0,20,12,12", "--tracker", "siamfc",
                       "--weights", str(weights), "--out", str(out))
    assert code == 2
    one_line_error(err, "goturn/weights.safetensors holds a goturn network, not siamfc")
    code, _, err = run(capsys, "track", "train-sot", "--config", "widht=1", "--out", str(tmp_path / "x"))
    assert code == 2
    one_line_error(err, "--config widht", "SiamFCConfig takes", "width")


# ----------------------------------------------------------------------------- errors
@pytest.fixture
def dets(tmp_path) -> Path:
    """A valid detection file of a crossing scene."""
    return write_mot(tmp_path / "cross.det.txt", noisy_detections(crossing_scene(num_frames=6).gt, seed=0))


@pytest.mark.parametrize("with_video", [False, True])
def test_malformed_detection_line_names_file_and_line(make_video, tmp_path, capsys, with_video):
    bad = tmp_path / "bad.det.txt"
    bad.write_text("1,-1,10,10,20,40,0.9\n1,-1,50,10,20,40,0.8\n2,-1,10,x,20,40,0.9\n")
    video = [str(make_video("square.mp4", moving_square_frames(num_frames=3)))] if with_video else []
    code, _, err = run(capsys, "track", "mot", *video, "--dets", str(bad), "--out", str(tmp_path / "r.txt"))
    assert code == 2
    one_line_error(err, "deepvideo track mot: error:", "bad.det.txt:3", "y 'x' is not a number")
    assert not (tmp_path / "r.txt").exists()


@pytest.mark.parametrize("box, message", [("5,5,0,10", "--box: width and height must be positive"),
                                          ("70,5,10,10", "--box: (70,5,10,10) lies outside the 64x64 frame")])
def test_box_the_frame_rejects_is_a_one_line_error(make_video, tmp_path, capsys, box, message):
    video = make_video("square.mp4", moving_square_frames(num_frames=3))
    code, _, err = run(capsys, "track", "sot", str(video), "--box", box, "--out", str(tmp_path / "b.txt"))
    assert code == 2
    one_line_error(err, message)


@pytest.mark.parametrize("box", ["1,2,3", "1,2,3,nan", "a,b,c,d"])
def test_box_that_is_not_four_numbers_is_rejected(make_video, tmp_path, capsys, box):
    video = make_video("square.mp4", moving_square_frames(num_frames=3))
    line = usage_error(capsys, "track", "sot", str(video), "--box", box, "--out", str(tmp_path / "b.txt"))
    assert "argument --box: expected x,y,w,h (4 numbers)" in line and repr(box) in line


def test_missing_and_unreadable_videos(tmp_path, capsys):
    line = usage_error(capsys, "track", "sot", str(tmp_path / "missing.mp4"), "--box", "1,1,4,4",
                       "--out", str(tmp_path / "r.txt"))
    assert "missing.mp4: no such file" in line
    code, _, err = run(capsys, "track", "mot", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "r.txt"))
    assert code == 2  # mot takes stream sources too: the file is looked for when it is opened
    one_line_error(err, "deepvideo track mot: error:", "missing.mp4: no such file")
    fake = tmp_path / "fake.mp4"
    fake.write_text("hello")
    for command in (["mot"], ["sot", "--box", "1,1,4,4"]):
        code, _, err = run(capsys, "track", command[0], str(fake), *command[1:], "--out", str(tmp_path / "r.txt"))
        assert code == 2
        one_line_error(err, f"deepvideo track {command[0]}: error:", "fake.mp4: not a readable video")


def test_unknown_tracker_and_detector_are_rejected(dets, tmp_path, capsys):
    line = usage_error(capsys, "track", "mot", "--dets", str(dets), "--tracker", "kcf", "--out", str(tmp_path / "r"))
    assert "invalid choice: 'kcf'" in line and "'bytetrack'" in line
    line = usage_error(capsys, "track", "sot", str(dets), "--box", "1,1,4,4", "--tracker", "kcf", "--out", "r")
    assert "invalid choice: 'kcf'" in line and "'goturn'" in line
    line = usage_error(capsys, "track", "mot", "--dets", str(dets), "--detector", "yolo", "--out", "r")
    assert "invalid choice: 'yolo'" in line and "'mog2'" in line


@pytest.mark.parametrize("argv, fragments", [
    ([], ("give a VIDEO", "--dets")),
    (["--dets", "{dets}", "--video-out", "v.mp4"], ("--video-out needs VIDEO",)),
    # the library's messages name its parameters (detector, tracker, max_age); main() shows the flags
    (["{video}", "--dets", "{dets}", "--detector", "mog2"],
     ("--detector 'mog2' has no option 'dets'; options: history, var_threshold, min_area",)),
    (["{video}", "--detector", "dets"], ("--detector 'dets' needs a detections file",)),
    (["{video}", "--detector", "torchvision"], ("--detector 'torchvision' needs weights",)),
    (["{video}", "--detector", "mog2", "--weights", "{dets}"], ("--detector 'mog2' has no option 'weights'",)),
    (["--dets", "{dets}", "--tracker-opt", "speed=2"],
     ("--tracker 'sort' has no option 'speed'; options: --max-age, --min-hits, --iou-threshold",)),
    (["--dets", "{dets}", "--tracker", "bytetrack", "--tracker-opt", "max_age=x"],
     ("--max-age must be a non-negative integer, got 'x'",)),
    (["--dets", "{dets}", "--tracker", "bytetrack", "--tracker-opt", "high_threshold=[1]"],
     ("high_threshold: tracker 'bytetrack' takes a number, got [1]",)),
    (["--dets", "{dets}", "--tracker", "deepsort", "--tracker-opt", "nn_budget=x"],
     ("nn_budget: tracker 'deepsort' takes an integer, got 'x'",)),
    (["{video}", "--detector-opt", "area=5"], ("--detector 'mog2' has no option 'area'", "min_area")),
    (["{video}", "--detector-opt", "min_area=2.5"], ("min_area: detector 'mog2' takes an integer, got 2.5",)),
    (["{video}", "--dets", "{dets}", "--embedder", "{dets}"], ("--tracker 'sort' has no option 'embedder'",)),
])
def test_inconsistent_options_are_one_line_errors(make_video, dets, tmp_path, capsys, argv, fragments):
    video = make_video("square.mp4", moving_square_frames(num_frames=3))
    argv = [a.format(video=video, dets=dets) for a in argv]
    code, _, err = run(capsys, "track", "mot", *argv, "--out", str(tmp_path / "r.txt"))
    assert code == 2
    one_line_error(err, "deepvideo track mot: error:", *fragments)


def test_eval_needs_one_result_per_ground_truth(dets, tmp_path, capsys):
    code, _, err = run(capsys, "track", "eval", "--gt", str(dets), str(dets), "--pred", str(dets))
    assert code == 2
    one_line_error(err, "--pred: 1 files for 2 ground-truth files")
    code, _, err = run(capsys, "track", "eval", "--gt", str(tmp_path / "nope.txt"), "--pred", str(dets))
    assert code == 2
    one_line_error(err, "nope.txt: no such file")
