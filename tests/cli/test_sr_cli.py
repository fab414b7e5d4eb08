"""``deepvideo sr train|eval|upscale`` end to end on generated videos, and their one-line errors."""

from __future__ import annotations

import json
import re

import pytest
import torch
from test_cli import run

from deepvideo.io import VideoReader

from conftest import one_line_error


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


TINY = ["--scale", "2", "--patch", "16", "--frames", "3", "--clips-per-epoch", "8", "--val-frames", "4",
        "--batch-size", "4", "--epochs", "1", "--model-opt", "channels=4", "--model-opt", "blocks=1",
        "--model-opt", "fnet_width=4", "--model-opt", "fnet_levels=1"]


def test_train_eval_and_upscale_from_the_command_line(capsys, tiny_motion_root, tmp_path):
    val = tiny_motion_root / "val"
    code, out, err = run(capsys, "sr", "train", "--data", str(tiny_motion_root / "train"), "--val-videos", str(val),
                         "--out", str(tmp_path / "run"), *TINY)
    assert code == 0, err
    assert re.fullmatch(r".*best\.pt: best val_psnr \d+\.\d{3} \(use with `deepvideo sr eval\|upscale "
                        r"--checkpoint`\)", out.splitlines()[-1])
    best = tmp_path / "run" / "best.pt"

    code, out, err = run(capsys, "sr", "eval", "--checkpoint", str(best), "--data", str(val), "--frames", "4",
                         "--out", str(tmp_path / "eval"))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "x2 BD, 2 px cropped at each border"
    assert lines[1].split() == ["video", "model", "Y-PSNR", "Y-SSIM", "tOF"]
    assert re.fullmatch(r"\w+_\d\.mp4 +bicubic +\d+\.\d\d  [01]\.\d{4}  \d\.\d{3}", lines[2]), lines[2]
    assert re.fullmatch(r" +frvsr +\d+\.\d\d  [01]\.\d{4}  \d\.\d{3}", lines[3]), lines[3]
    assert lines[-3].split()[:2] == ["mean", "bicubic"] and len(lines) == 2 + 2 * 5 + 1
    assert lines[-1] == f"{tmp_path / 'eval' / 'samples.png'}: LR | bicubic | models | HR crops"
    assert (tmp_path / "eval" / "samples.png").stat().st_size > 1000

    code, out, err = run(capsys, "sr", "eval", "--checkpoint", str(best), "bicubic", "--data", str(val), "--frames",
                         "4", "--json")
    table = json.loads(out)
    assert code == 0 and list(table["rows"]) == ["bicubic", "frvsr"] and len(table["videos"]) == 4
    assert table["rows"]["bicubic"]["mean"]["psnr"] == pytest.approx(
        sum(table["rows"]["bicubic"][v]["psnr"] for v in table["videos"]) / 4)

    video = next(val.rglob("*.mp4"))
    code, out, err = run(capsys, "sr", "upscale", str(video), "--checkpoint", str(best), "--out",
                         str(tmp_path / "up.mp4"), "--side-by-side")
    assert code == 0, err
    assert out == f"{tmp_path / 'up.mp4'}: 8 frames, 128x64, 8 fps\n"
    with VideoReader(tmp_path / "up.mp4") as reader:
        assert (len(reader), reader.width, reader.height) == (8, 128, 64)


def test_bad_requests_are_one_line_errors(capsys, tiny_motion_root, tmp_path):
    video = next(tiny_motion_root.rglob("*.mp4"))
    code, _, err = run(capsys, "sr", "eval", "--checkpoint", str(tmp_path / "none.pt"), "--data", str(video))
    assert code == 2
    one_line_error(err, "none.pt: no such checkpoint file", command="sr eval")
    code, _, err = run(capsys, "sr", "upscale", str(video), "--checkpoint", "bicubic", "--out", str(tmp_path / "a.gif"))
    assert code == 2
    one_line_error(err, "should end in one of .mp4", command="sr upscale")
    code, _, err = run(capsys, "sr", "train", "--data", str(video), "--model", "bicubic", "--out", str(tmp_path))
    assert code == 2
    one_line_error(err, "model 'bicubic' has no weights to train; trainable: srnet, frvsr", command="sr train")
    code, _, err = run(capsys, "sr", "train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path))
    assert code == 2
    one_line_error(err, "nowhere: no such file or folder", command="sr train")
    code, _, err = run(capsys, "sr", "train", "--data", str(video), "--model", "frvsr", "--patch", "20",
                       "--out", str(tmp_path))
    assert code == 2
    one_line_error(err, "patch 20 must be a multiple of 32", command="sr train")
