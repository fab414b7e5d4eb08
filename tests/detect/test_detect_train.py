"""deepvideo detect train|eval on cached features: the engine's loop, mAP of the checkpoint,
the result file scored again, and one-line errors for bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deepvideo.cli import main
from deepvideo.data.features import save_features
from deepvideo.detect import Segment, VideoAnnotation, read_results, write_activitynet
from deepvideo.detect.train import FeatureVideos, Timeline, feature_files

from conftest import one_line_error

CLASSES = ["left", "right", "up"]


@pytest.fixture(scope="module")
def features_and_annotations(tmp_path_factory):
    """24 videos of 32-48 feature rows (0.5 s apart, from 0.25 s): a class's action lifts that
    class's feature channel; noise elsewhere.  16 training, 4 validation, 4 testing."""
    root = tmp_path_factory.mktemp("detect")
    rng = np.random.default_rng(0)
    videos = {}
    for i in range(24):
        subset = "training" if i < 16 else "validation" if i < 20 else "testing"
        rows = int(rng.integers(32, 49))
        features = rng.normal(0, 0.3, (rows, 8)).astype(np.float32)
        times = 0.25 + 0.5 * np.arange(rows)
        segments, step = [], int(rng.integers(1, 5))
        while step + 4 < rows:
            length = int(rng.integers(3, 9))
            end = min(step + length, rows)
            cls = int(rng.integers(3))
            features[step:end, cls] += 2.0
            segments.append(Segment(float(times[step]), float(times[end - 1] + 0.5), CLASSES[cls]))
            step = end + int(rng.integers(2, 6))
        name = f"video_{i:02d}"
        save_features(root / "features" / f"{name}.npz", features, times, "toy backbone")
        videos[name] = VideoAnnotation(name, float(times[-1] + 0.5), subset, segments)
    write_activitynet(root / "annotations.json", videos)
    return root


def test_timeline_maps_seconds_to_rows():
    timeline = Timeline.of(np.array([0.25, 0.75, 1.25]))
    np.testing.assert_allclose(timeline.to_steps([0.25, 1.0]), [0.0, 1.5])
    np.testing.assert_allclose(timeline.to_seconds([2.0]), [1.25])


def test_feature_videos_window_and_ground_truth(features_and_annotations):
    from deepvideo.detect import read_activitynet

    videos = read_activitynet(features_and_annotations / "annotations.json", "training")
    data = FeatureVideos(videos, feature_files(features_and_annotations / "features"), CLASSES, "toy backbone",
                         steps=16)
    assert len(data) == 16 and not data.missing
    features, mask, truth = data[0]
    assert features.shape == (16, 8) and mask.all() and truth.shape == (data.most, 3)
    real = truth[truth[:, 2] >= 0]
    assert (real[:, 0] >= 0).all() and (real[:, 1] <= 16).all() and (real[:, 1] > real[:, 0]).all()
    with pytest.raises(ValueError, match="holds features of 'toy backbone', not of 'other'"):
        FeatureVideos(videos, feature_files(features_and_annotations / "features"), CLASSES, "other")


@pytest.mark.parametrize("model, options", [("anchor_free", ["width=32", "levels=3"]),
                                            ("rnn", ["hidden=32"])])
def test_train_then_eval_and_score_the_result_file(capsys, features_and_annotations, tmp_path, model, options):
    root = features_and_annotations
    run = tmp_path / "run"
    argv = ["detect", "train", "--features", str(root / "features"), "--annotations", str(root / "annotations.json"),
            "--model", model, "--out", str(run), "--epochs", "15", "--steps", "32", "--lr", "3e-3",
            "--batch-size", "4"]
    for option in options:
        argv += ["--model-opt", option]
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("detect: ") and out[0].endswith("parameters train (100.0%)")
    assert out[1].startswith("epoch 1: train loss ") and "| val map " in out[1]
    assert out[-1].startswith(f"{run / 'best.pt'}: best val_map ")
    assert (run / "metrics.csv").read_text().splitlines()[0].count("val_map") == 1
    results = tmp_path / "results.json"
    assert main(["detect", "eval", "--checkpoint", str(run / "best.pt"), "--features", str(root / "features"),
                 "--annotations", str(root / "annotations.json"), "--out", str(results), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["average_mAP"] > 0.5  # measured: anchor_free 0.9+, rnn 0.8+ on this toy set
    assert set(read_results(results)) == {"video_20", "video_21", "video_22", "video_23"}
    assert main(["detect", "eval", "--pred", str(results), "--annotations", str(root / "annotations.json"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["average_mAP"] == pytest.approx(scored["average_mAP"], abs=1e-12)


def test_bad_inputs_are_one_line_errors(capsys, features_and_annotations, tmp_path):
    root = features_and_annotations
    empty = tmp_path / "empty.json"
    empty.write_text("")
    cases = [(["eval", "--annotations", str(root / "annotations.json")], "--checkpoint"),
             (["eval", "--pred", str(empty), "--annotations", str(root / "annotations.json")], "empty.json"),
             (["eval", "--pred", str(empty), "--annotations", str(root / "annotations.json"), "--subset", "nope"],
              "nope"),
             (["train", "--features", str(tmp_path / "none"), "--annotations", str(root / "annotations.json"),
               "--out", str(tmp_path / "r")], "no such feature folder"),
             (["train", "--features", str(root / "features"), "--annotations", str(root / "annotations.json"),
               "--out", str(tmp_path / "r"), "--steps", "30"], "steps 30 must be a multiple of 8")]
    for argv, message in cases:
        code = main(["detect", *argv])
        _, err = capsys.readouterr()
        assert code == 2, (argv, err)
        one_line_error(err, message)


def test_videos_without_features_are_skipped_and_counted(features_and_annotations, tmp_path):
    from deepvideo.detect import DetectTask, read_activitynet

    videos = read_activitynet(features_and_annotations / "annotations.json")
    videos["unextracted"] = VideoAnnotation("unextracted", 10.0, "training", [Segment(1.0, 2.0, "left")])
    write_activitynet(tmp_path / "more.json", videos)
    with pytest.warns(UserWarning, match=r"more\.json: skipped 1 videos without a feature file .*unextracted"):
        task = DetectTask(features_and_annotations / "features", tmp_path / "more.json", "rnn")
    assert len(task.train_set(0)) == 16 and task.train_set(0).missing == ["unextracted"]
