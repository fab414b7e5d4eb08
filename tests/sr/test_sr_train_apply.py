"""Training through the engine, checkpoints, evaluation against the bicubic row, streaming
upscaling, and the bad inputs (unreadable or small videos, wrong checkpoints)."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest
import torch

from deepvideo.engine import load_checkpoint
from deepvideo.engine.checkpoint import CheckpointError, save_checkpoint
from deepvideo.engine.train import TrainConfig
from deepvideo.io import VideoReader, read_video
from deepvideo.sr import (
    FRVSR,
    Bicubic,
    FrameSR,
    degrade_frames,
    evaluate_sr,
    load_sr,
    psnr,
    ssim,
    tof,
    train_sr,
    upscale_video,
)
from deepvideo.sr.degrade import frames_to_tensor, tensor_to_frames

from conftest import moving_square_frames

TINY = {"patch": 32, "frames": 3, "clips_per_epoch": 8, "val_frames": 4,
        "model_options": {"channels": 8, "blocks": 1, "fnet_width": 4, "fnet_levels": 2}}
TWO_EPOCHS = TrainConfig(epochs=2, batch_size=4, lr=1e-3, optimizer="adam", weight_decay=0.0, progress=False)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A two-epoch FRVSR x2 run on two generated videos, validated on a third."""
    from deepvideo.io import write_video

    root = tmp_path_factory.mktemp("sr_videos")
    for seed, name in enumerate(("a.mp4", "b.mp4", "held_out.mp4")):
        write_video(root / name, moving_square_frames(16, 64, seed=seed), fps=12)
    out = root / "run"
    result = train_sr(out, [root / "a.mp4", root / "b.mp4"], val_videos=[root / "held_out.mp4"], model="frvsr",
                      scale=2, degradation="bd", train=TWO_EPOCHS, **TINY)
    return root, out, result


def test_training_writes_a_run_folder_whose_best_checkpoint_loads(tiny_run):
    root, out, result = tiny_run
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert all(20 < float(row["val_psnr"]) < 60 for row in rows)
    assert result["monitor"] == "val_psnr" and (out / "curves.png").is_file()
    state = load_checkpoint(out / "best.pt", required=("task",))
    assert state["task"]["videos"] == ["a.mp4", "b.mp4"] and state["task"]["val_videos"] == ["held_out.mp4"]
    model, info = load_sr(out / "best.pt")
    assert isinstance(model, FRVSR) and info == {"name": "frvsr", "model": "frvsr", "scale": 2, "degradation": "bd"}
    assert not model.training


def test_evaluation_scores_every_model_and_the_bicubic_row_by_hand(tiny_run, tmp_path):
    root, out, _ = tiny_run
    result = evaluate_sr([out / "best.pt"], [root / "held_out.mp4"], frames=6, samples=tmp_path / "samples.png",
                         progress=False)
    assert result["scale"] == 2 and result["degradation"] == "bd" and result["videos"] == ["held_out.mp4"]
    assert list(result["rows"]) == ["bicubic", "frvsr"]
    # the bicubic row, recomputed from the definitions
    hr, lr = degrade_frames(read_video(root / "held_out.mp4")[:6], 2, "bd")
    with torch.no_grad():
        sr = tensor_to_frames(Bicubic(2)(frames_to_tensor(lr)[None])[0])
    row = result["rows"]["bicubic"]["held_out.mp4"]
    assert row["psnr"] == pytest.approx(psnr(sr, hr, crop_border=2))
    assert row["ssim"] == pytest.approx(ssim(sr, hr, crop_border=2))
    assert row["tof"] == pytest.approx(tof(sr, hr))
    assert result["rows"]["frvsr"]["mean"] == result["rows"]["frvsr"]["held_out.mp4"]
    # samples: LR | bicubic | frvsr | HR, each a labelled tile
    png = cv2.imread(str(tmp_path / "samples.png"))
    assert png.shape == (24 + 2 * 128, 4 * (2 * 128 + 4), 3)  # 128 px crops zoomed x2, 4 tiles


def test_upscaling_streams_every_frame_at_the_same_rate(tiny_run, tmp_path):
    root, out, _ = tiny_run
    source = root / "held_out.mp4"
    info = upscale_video(source, out / "best.pt", tmp_path / "up.mp4", progress=False)
    assert info["frames"] == 16 and info["size"] == (128, 128)
    with VideoReader(tmp_path / "up.mp4") as reader, VideoReader(source) as original:
        assert (len(reader), reader.width, reader.height) == (16, 128, 128)
        assert reader.fps == pytest.approx(original.fps)
    # what was encoded is the model's stream (up to h264's loss)
    model, _ = load_sr(out / "best.pt")
    expected = tensor_to_frames(torch.stack(list(model.stream(frames_to_tensor(read_video(source))))))
    assert psnr(read_video(tmp_path / "up.mp4"), expected) > 35  # luma: not subsampled by yuv420p
    info = upscale_video(source, "bicubic", tmp_path / "both.mkv", side_by_side=True, scale=2, progress=False)
    assert info["size"] == (256, 128)
    with VideoReader(tmp_path / "both.mkv") as reader:
        assert (reader.width, reader.height) == (256, 128)


def test_srnet_learns_to_beat_bicubic_on_a_real_frame(shared_data):
    torch.manual_seed(0)
    frames = VideoReader(shared_data / "videos" / "mmaction2__test.mp4").read([40, 41])[:, 64:128, 96:160]
    hr, lr = degrade_frames(frames, 2, "bd")
    lr_t, hr_t = frames_to_tensor(lr)[None], frames_to_tensor(hr)[None]
    model = FrameSR(2, channels=16, blocks=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(60):
        loss = torch.nn.functional.mse_loss(model(lr_t), hr_t)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        ours, baseline = model(lr_t)[0], Bicubic(2)(lr_t)[0]
    assert psnr(tensor_to_frames(ours), hr, 2) > psnr(tensor_to_frames(baseline), hr, 2) + 1.0


def test_unreadable_and_small_training_videos_are_skipped_and_counted(tmp_path, make_video):
    good = make_video("good.mp4", moving_square_frames(8, 64))
    small = make_video("small.mp4", moving_square_frames(8, 16))
    short = make_video("short.mp4", moving_square_frames(2, 64))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00not a video" * 50)
    config = TrainConfig(epochs=1, batch_size=4, progress=False)
    with pytest.warns(UserWarning, match=r"skipped 3 of 4 videos: .*broken\.mp4 \(.*short\.mp4 \(2 frames.*"
                                         r"small\.mp4 \(16x16 is smaller than 32"):
        result = train_sr(tmp_path / "run", [tmp_path], model="srnet", scale=2, train=config,
                          **{**TINY, "model_options": {"channels": 4, "blocks": 1}})
    assert len(result["history"]) == 1 and good.is_file()
    with pytest.raises(ValueError, match="none of the 3 training videos is usable"), pytest.warns(UserWarning):
        train_sr(tmp_path / "run2", [small, short, broken], model="srnet", scale=2, train=config,
                 **{**TINY, "model_options": {}})


def test_wrong_checkpoints_and_options_are_one_line_errors(tiny_run, tmp_path):
    root, out, _ = tiny_run
    save_checkpoint(tmp_path / "classifier.pt", {"model": {}, "task": {"task": "classification"}})
    with pytest.raises(CheckpointError, match="a classification checkpoint, not a super-resolution one"):
        load_sr(tmp_path / "classifier.pt")
    with pytest.raises(ValueError, match="trained for x2, not x4"):
        load_sr(out / "best.pt", scale=4)
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_sr(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="has no weights to train"):
        train_sr(tmp_path / "r", [root / "a.mp4"], model="bicubic")
    with pytest.raises(ValueError, match="patch 36 must be a multiple of 16"):
        train_sr(tmp_path / "r", [root / "a.mp4"], model="frvsr", scale=2, patch=36)
    with pytest.raises(ValueError, match="no such file or folder"):
        train_sr(tmp_path / "r", [tmp_path / "nowhere"], model="srnet")
    with pytest.raises(ValueError, match=r"out: .* should end in one of \.mp4"):
        upscale_video(root / "a.mp4", "bicubic", tmp_path / "x.gif")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"garbage" * 10)
    result = evaluate_sr(["bicubic"], [broken, root / "a.mp4"], scale=2, frames=3, progress=False)
    assert result["videos"] == ["a.mp4"] and result["skipped"][0][0] == str(broken)
    with pytest.raises(ValueError, match="none of the 1 videos could be scored"):
        evaluate_sr(["bicubic"], [broken], scale=2, progress=False)
    assert np.isfinite(result["rows"]["bicubic"]["mean"]["psnr"])
