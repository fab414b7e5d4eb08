"""The `deepvideo` command: success paths and one-line errors with exit code 2."""

from __future__ import annotations

import csv
import json

import pytest

from deepvideo.cli import main

from conftest import one_line_error


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_lists_registered_models(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0 and "single_frame" in out and "small3d" in out
    code, out, _ = run(capsys, "models", "--json")
    assert "small3d" in json.loads(out)


def test_unknown_model_suggests_close_match(capsys, tiny_motion_root, tmp_path):
    code, _, err = run(capsys, "train", "--model", "smal3d", "--data", str(tiny_motion_root),
                       "--out", str(tmp_path))
    assert code == 2
    one_line_error(err, "smal3d", "did you mean small3d?")


def test_bad_model_option(capsys, tiny_motion_root, tmp_path):
    code, _, err = run(capsys, "train", "--model", "small3d", "--model-opt", "widht=[4]",
                       "--data", str(tiny_motion_root), "--out", str(tmp_path))
    assert code == 2
    one_line_error(err, "widht", "widths")


def test_missing_data_folder(capsys, tmp_path):
    code, _, err = run(capsys, "train", "--model", "small3d", "--data", str(tmp_path / "nope"),
                       "--out", str(tmp_path / "run"))
    assert code == 2
    one_line_error(err, "nope")


def test_invalid_option_values_exit_2(capsys):
    for argv in (["train", "--model", "small3d", "--out", "x", "--epochs", "0"],
                 ["train", "--model", "small3d", "--out", "x", "--lr", "abc"],
                 ["eval", "--checkpoint", "missing.pt", "--data", "x"],
                 ["predict", "missing.mp4", "--checkpoint", "missing.pt"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        capsys.readouterr()


def test_corrupt_checkpoint(capsys, tmp_path, tiny_motion_root):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage")
    code, _, err = run(capsys, "eval", "--checkpoint", str(bad), "--data", str(tiny_motion_root))
    assert code == 2
    one_line_error(err, "bad.pt")


def test_train_eval_predict(capsys, tiny_motion_root, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = run(capsys, "train", "--model", "small3d", "--model-opt", "widths=[4,8]",
                            "--data", str(tiny_motion_root), "--out", str(out), "--epochs", "1",
                            "--clip-len", "6", "--size", "28", "--resize", "32", "--batch-size", "4")
    assert code == 0, err
    assert (out / "best.pt").is_file() and (out / "metrics.csv").is_file()
    code, stdout, err = run(capsys, "eval", "--checkpoint", str(out / "best.pt"), "--data",
                            str(tiny_motion_root), "--json", "--out", str(out / "eval"))
    assert code == 0, err
    metrics = json.loads(stdout)
    confusion = metrics["confusion"]  # 3 test videos a class; video accuracy is the diagonal's share
    assert metrics["num_videos"] == 6 and [sum(row) for row in confusion] == [3, 3]
    assert metrics["video_acc1"] == (confusion[0][0] + confusion[1][1]) / 6
    assert (out / "eval" / "confusion.csv").read_text().startswith("true\\pred,left,right")
    assert (out / "eval" / "confusion.png").is_file()
    # best.pt holds the weights training validated: on the val videos, one clip each as in
    # training, eval gives the loss and accuracy metrics.csv logged for its one epoch
    code, stdout, err = run(capsys, "eval", "--checkpoint", str(out / "best.pt"), "--data", str(tiny_motion_root),
                            "--subset", "val", "--clips", "1", "--json")
    assert code == 0, err
    val, (logged,) = json.loads(stdout), list(csv.DictReader(open(out / "metrics.csv")))
    assert val["num_videos"] == 4 and val["loss"] == pytest.approx(float(logged["val_loss"]), rel=1e-6)
    assert val["video_acc1"] == float(logged["val_video_acc"])
    video = next((tiny_motion_root / "test" / "left").glob("*.mp4"))
    code, stdout, err = run(capsys, "predict", str(video), "--checkpoint", str(out / "best.pt"),
                            "--step", "2", "--top", "2")
    assert code == 0, err
    result = json.loads(stdout)
    assert result["num_frames"] == 8   # at 8 fps: 6-frame windows every 2 frames
    assert [(w["start"], w["end"]) for w in result["windows"]] == [(0.0, 0.75), (0.25, 1.0)]
    assert {entry["label"] for entry in result["top"]} == {"left", "right"}
    assert sum(entry["prob"] for entry in result["top"]) == pytest.approx(1.0, abs=1e-4)
    code, stdout, err = run(capsys, "predict", str(video), "--checkpoint", str(out / "best.pt"),
                            "--output-format", "csv")
    assert code == 0 and stdout.splitlines()[0] == "start,end,rank,label,prob"


def test_predict_on_a_text_file_named_mp4(capsys, tmp_path, tiny_motion_root):
    fake = tmp_path / "fake.mp4"
    fake.write_text("hello")
    ckpt = tmp_path / "run"
    assert main(["train", "--model", "small3d", "--model-opt", "widths=[4]", "--data", str(tiny_motion_root),
                 "--out", str(ckpt), "--epochs", "1", "--clip-len", "4", "--size", "28", "--resize", "32"]) == 0
    capsys.readouterr()
    code, _, err = run(capsys, "predict", str(fake), "--checkpoint", str(ckpt / "best.pt"))
    assert code == 2
    one_line_error(err, "fake.mp4")


def test_summary_reproduces_c3d_table(capsys):
    code, out, err = run(capsys, "summary", "c3d", "--json")
    assert code == 0, err
    layers = {row["name"]: row for row in json.loads(out)["layers"]}
    assert layers["pool1"]["output_shape"] == [64, 16, 56, 56]
    assert round(layers["conv2a"]["macs"] / 1e9, 2) == 11.10
    code, out, _ = run(capsys, "summary", "small3d", "--input", "3x8x32x32", "--num-classes", "5")
    assert code == 0 and "Total params" in out


def test_summary_bad_input(capsys):
    code, _, err = run(capsys, "summary", "c3d", "--input", "3x2x8x8")
    assert code == 2
    one_line_error(err, "c3d", "3x2x8x8")
    code, _, err = run(capsys, "summary", "two_stream")  # two inputs: one stream at a time
    assert code == 2
    one_line_error(err, "two_stream", "spatial_stream")
    with pytest.raises(SystemExit) as exc:
        main(["summary", "c3d", "--input", "3xAx8"])
    assert exc.value.code == 2


def test_flow_and_flow_extract(capsys, tiny_motion_root, tmp_path):
    from deepvideo.flow import load_flow
    from deepvideo.io import VideoReader

    video = next((tiny_motion_root / "train" / "right").glob("*.mp4"))
    code, _, err = run(capsys, "flow", str(video), "--out", str(tmp_path / "viz.mp4"), "--method", "dis")
    assert code == 0, err
    with VideoReader(tmp_path / "viz.mp4") as reader:
        assert (reader.num_frames, reader.width, reader.height) == (7, 64, 32)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "clip.mp4").write_bytes(video.read_bytes())
    (tmp_path / "data" / "broken.mp4").write_text("no video")
    code, out, err = run(capsys, "flow-extract", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "flow"))
    assert code == 0, err
    assert "1 written, 0 already done, 1 skipped" in out and "broken.mp4" in out
    assert load_flow(tmp_path / "flow" / "clip.npz").shape == (7, 2, 32, 32)
    code, out, _ = run(capsys, "flow-extract", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "flow"))
    assert "0 written, 1 already done" in out
    code, _, err = run(capsys, "flow-extract", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "flow"))
    assert code == 2
    one_line_error(err, "none")


def test_device_and_output_path_errors(capsys, tiny_motion_root, tmp_path):
    code, _, err = run(capsys, "train", "--model", "small3d", "--data", str(tiny_motion_root),
                       "--out", str(tmp_path / "r"), "--device", "gpu")
    assert code == 2
    one_line_error(err, "--device 'gpu'")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(capsys, "train", "--model", "small3d", "--model-opt", "widths=[4]", "--data",
                       str(tiny_motion_root), "--out", str(blocker / "run"), "--epochs", "1")
    assert code == 2
    one_line_error(err, "file")


def test_worker_errors_keep_their_cause():
    from deepvideo.cli import _one_line

    wrapped = RuntimeError("Caught VideoDecodeError in DataLoader worker process 0.\n"
                           "Original Traceback (most recent call last):\n  File x\n"
                           "deepvideo.io.decode.VideoDecodeError: none of the 4 videos could be decoded")
    assert _one_line(wrapped).endswith("none of the 4 videos could be decoded")
    assert _one_line(ValueError("first\nsecond")) == "first"


def test_two_stream_training_and_fused_evaluation(capsys, tiny_motion_root, tmp_path):
    """Each stream trains alone through `train`; `eval --fuse` reports both and the fusion."""
    flow = tmp_path / "flow"
    code, _, err = run(capsys, "flow-extract", "--data", str(tiny_motion_root), "--out", str(flow),
                       "--method", "dis")
    assert code == 0, err
    common = ["--data", str(tiny_motion_root), "--size", "24", "--resize", "32", "--batch-size", "4",
              "--no-flip", "--test-clips", "2", "--lr", "3e-3", "--model-opt", "widths=[8,16]"]
    code, _, err = run(capsys, "train", "--model", "temporal_stream", "--modality", "flow", "--flow-dir",
                       str(flow), "--clip-len", "4", "--flow-scale", "1", "--epochs", "6", "--out", str(tmp_path / "t"),
                       *common)
    assert code == 0, err
    code, _, err = run(capsys, "train", "--model", "spatial_stream", "--clip-len", "1", "--epochs", "1",
                       "--out", str(tmp_path / "s"), *common[:-2], "--model-opt", "widths=[8,16]")
    assert code == 0, err
    code, out, err = run(capsys, "eval", "--checkpoint", str(tmp_path / "s" / "best.pt"), "--fuse",
                         str(tmp_path / "t" / "best.pt"), "--fusion-weights", "1", "2", "--data",
                         str(tiny_motion_root), "--flow-dir", str(flow), "--json")
    assert code == 0, err
    report = json.loads(out)
    spatial, temporal, fused = report.values()
    assert list(report)[1].endswith("(temporal_stream, flow)") and list(report)[2] == "fused"
    assert spatial["num_videos"] == temporal["num_videos"] == fused["num_videos"] == 6
    assert temporal["num_clips"] == 12
    assert temporal["video_acc1"] >= 5 / 6                # left vs right is all motion
    assert fused["video_acc1"] >= 5 / 6
    code, _, err = run(capsys, "eval", "--checkpoint", str(tmp_path / "s" / "best.pt"), "--fuse",
                       str(tmp_path / "t" / "best.pt"), "--fusion-weights", "1", "--data", str(tiny_motion_root))
    assert code == 2
    one_line_error(err, "--fusion-weights")
    code, _, err = run(capsys, "train", "--model", "temporal_stream", "--modality", "flow", "--flow-dir",
                       str(tmp_path / "nowhere"), "--data", str(tiny_motion_root), "--out", str(tmp_path / "x"))
    assert code == 2
    one_line_error(err, "--flow-dir", "nowhere")


def test_pack_then_train_and_predict_on_packed_videos(capsys, tiny_motion_root, tmp_path):
    packed = tmp_path / "packed"
    code, out, err = run(capsys, "pack", "--data", str(tiny_motion_root), "--out", str(packed))
    assert code == 0, err
    assert out.startswith(f"{packed}: 22 packed, 0 already done, 0 skipped")
    assert len(list(packed.rglob("*.tar"))) == 22
    code, out, _ = run(capsys, "pack", "--data", str(tiny_motion_root), "--out", str(packed))
    assert "0 packed, 22 already done" in out
    code, _, err = run(capsys, "train", "--model", "small3d", "--model-opt", "widths=[4,8]", "--data", str(packed),
                       "--out", str(tmp_path / "run"), "--epochs", "1", "--clip-len", "4", "--size", "24",
                       "--resize", "32", "--batch-size", "4")
    assert code == 0, err
    tar = next((packed / "test" / "left").glob("*.tar"))
    code, out, err = run(capsys, "predict", str(tar), "--checkpoint", str(tmp_path / "run" / "best.pt"))
    assert code == 0, err
    assert json.loads(out)["num_frames"] == 8
    frames = tmp_path / "frames"
    code, _, err = run(capsys, "pack", "--data", str(tiny_motion_root / "val"), "--out", str(frames),
                       "--format", "folder")
    assert code == 0, err
    from deepvideo.data.datasets import parse_folder
    samples, classes = parse_folder(frames)                # frame folders are videos too
    assert len(samples) == 4 and all(path.is_dir() for path, _ in samples) and classes == ["left", "right"]
