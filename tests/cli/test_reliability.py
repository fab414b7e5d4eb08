"""What a user feeds deepvideo never destroys data: an output that would overwrite an input is
refused, every command that writes a file is killed (SIGKILL) with its output complete but
not renamed into place and leaves no half file under the final name, the same command
then completes; training stops when its loss diverges, refuses a resume with other
settings, and checks its folder before any work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import run

from deepvideo.engine import TrainConfig, load_checkpoint, train
from deepvideo.engine.device import resolve_device
from deepvideo.engine.recipe import DataSpec, Recipe
from deepvideo.engine.train import DivergedError
from deepvideo.io import read_video
from deepvideo.io.atomic import KILL_BEFORE_RENAME

from conftest import moving_square_frames, one_line_error


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    from deepvideo.io import write_video

    return write_video(tmp_path_factory.mktemp("in") / "clip.mp4", moving_square_frames(12, 48), fps=8)


@pytest.fixture(scope="module")
def data(video) -> Path:
    """A test split with the classes of ``small3d_checkpoint``."""
    root = video.parent / "data"
    for name in ("down", "left", "up"):
        (root / "test" / name).mkdir(parents=True)
        (root / "test" / name / "clip.mp4").write_bytes(video.read_bytes())
    return root


def killed(args: list[str], name: str) -> subprocess.CompletedProcess:
    """``deepvideo ARGS`` in a process that kills itself before its output ``name`` is renamed."""
    env = dict(os.environ, OMP_NUM_THREADS="1", **{KILL_BEFORE_RENAME: name})
    return subprocess.run([sys.executable, "-m", "deepvideo.cli", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def temporaries(folder: Path, name: str) -> list[Path]:
    return sorted(folder.glob(f".{name}.*.tmp*"))


COMMANDS = {  # what is run (VIDEO, CKPT, DATA, OUT filled in), the output killed at (under OUT)
    "flow": (["flow", "VIDEO", "--method", "farneback", "--out", "OUT/flow.mp4"], "flow.mp4"),
    "track mot video": (["track", "mot", "VIDEO", "--out", "OUT/tracks.txt", "--video-out", "OUT/tracks.mp4"],
                        "tracks.mp4"),
    "track mot file": (["track", "mot", "VIDEO", "--out", "OUT/tracks.txt"], "tracks.txt"),
    "track sot": (["track", "sot", "VIDEO", "--box", "8,8,16,16", "--out", "OUT/box.txt", "--video-out",
                   "OUT/box.mp4"], "box.mp4"),
    "predict": (["predict", "--checkpoint", "CKPT", "VIDEO", "--out", "OUT/pred.json"], "pred.json"),
    "eval": (["eval", "--checkpoint", "CKPT", "--data", "DATA", "--subset", "test", "--clips", "1", "--out",
              "OUT/report"], "report/metrics.json"),
    "sr upscale": (["sr", "upscale", "--checkpoint", "bicubic", "--scale", "2", "VIDEO", "--out", "OUT/up.mp4"],
                   "up.mp4"),
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_command_killed_before_its_output_is_complete_leaves_no_half_file_and_reruns(
        name, video, small3d_checkpoint, data, tmp_path, capsys):
    template, output = COMMANDS[name]
    fill = {"VIDEO": str(video), "CKPT": str(small3d_checkpoint), "DATA": str(data)}
    args = [fill.get(arg, arg.replace("OUT", str(tmp_path))) for arg in template]
    target = tmp_path / output
    output = target.name
    died = killed(args, output)
    assert died.returncode == -signal.SIGKILL, died.stderr
    assert not target.exists()  # the complete output lies under its temporary name only
    assert len(temporaries(target.parent, output)) == 1
    code, _, err = run(capsys, *args)  # the same command again, in this process
    assert code == 0, err
    assert target.is_file() and temporaries(target.parent, output) == []
    if output.endswith(".mp4"):  # a whole video: a frame per input frame (flow: per pair)
        assert len(read_video(target)) == len(read_video(video)) - (name == "flow")


def test_training_killed_while_writing_its_report_resumes_and_cleans_up(tiny_motion_root, tmp_path):
    args = ["train", "--data", str(tiny_motion_root), "--model", "small3d", "--model-opt", "widths=[4,8]",
            "--clip-len", "4", "--size", "24", "--resize", "24", "--batch-size", "8", "--epochs", "2",
            "--test-clips", "1", "--out", str(tmp_path)]
    died = killed(args, "metrics.csv")
    assert died.returncode == -signal.SIGKILL, died.stderr
    assert not (tmp_path / "metrics.csv").exists() and len(temporaries(tmp_path, "metrics.csv")) == 1
    assert load_checkpoint(tmp_path / "last.pt", required=("epoch",))["epoch"] == 1
    done = subprocess.run([sys.executable, "-m", "deepvideo.cli", *args, "--resume"], capture_output=True,
                          text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "metrics.csv").read_text().count("\n") == 3  # header + 2 epochs
    assert temporaries(tmp_path, "metrics.csv") == []


@pytest.mark.parametrize("argv", [
    ["track", "mot", "VIDEO", "--out", "VIDEO"],
    ["track", "sot", "VIDEO", "--box", "8,8,16,16", "--out", "OUT/box.txt", "--video-out", "VIDEO"],
    ["predict", "--checkpoint", "CKPT", "VIDEO", "--out", "VIDEO"],
    ["flow", "VIDEO", "--out", "LINK"],  # a symbolic link to the input is the input
    ["track", "sot", "VIDEO", "--box", "8,8,16,16", "--out", "OUT/x.mp4", "--video-out", "OUT/x.mp4"],
])
def test_an_output_that_is_an_input_is_refused_and_the_input_kept(argv, video, small3d_checkpoint, tmp_path,
                                                                   capsys):
    copy = tmp_path / "clip.mp4"
    copy.write_bytes(video.read_bytes())
    (tmp_path / "link.mp4").symlink_to(copy)
    fill = {"VIDEO": str(copy), "CKPT": str(small3d_checkpoint), "LINK": str(tmp_path / "link.mp4")}
    code, _, err = run(capsys, *[fill.get(arg, arg.replace("OUT", str(tmp_path))) for arg in argv])
    assert code == 2
    one_line_error(err, "are the same file" if "OUT/x.mp4" in argv else "would destroy the input")
    assert copy.read_bytes() == video.read_bytes()
    assert not (tmp_path / "box.txt").exists()


def test_a_diverging_run_stops_naming_the_batch_and_keeps_its_last_checkpoint(tiny_motion_root, tmp_path,
                                                                             capsys):
    recipe = Recipe(model="small3d", classes=["left", "right"], model_kwargs={"widths": [4, 8]}, clip_len=4,
                    size=24, resize=24)
    data = DataSpec(root=str(tiny_motion_root))
    calls = []

    def poison(module, inputs, output):  # the loss turns NaN in the third batch of the second epoch
        if type(module).__name__ != "Small3DCNN" or not module.training:
            return output
        calls.append(1)
        return output * float("nan") if len(calls) == 6 else output  # 3 batches per epoch

    handle = torch.nn.modules.module.register_module_forward_hook(poison)
    try:
        with pytest.raises(DivergedError, match=r"epoch 2: the training loss became nan at batch 3: .*last.pt keeps"):
            train(recipe, data, TrainConfig(epochs=2, batch_size=4, lr=1e-3, warmup_epochs=0, progress=False),
                  tmp_path)
    finally:
        handle.remove()
    kept = load_checkpoint(tmp_path / "last.pt")
    assert kept["epoch"] == 1 and len(kept["history"]) == 1
    assert all(torch.isfinite(value).all() for value in kept["model"].values())


def test_resume_refuses_changed_settings_listing_them(tiny_motion_root, tmp_path, capsys):
    common = ["train", "--data", str(tiny_motion_root), "--model", "small3d", "--model-opt", "widths=[4,8]",
              "--clip-len", "4", "--size", "24", "--resize", "24", "--batch-size", "8", "--test-clips", "1",
              "--out", str(tmp_path)]
    assert run(capsys, *common, "--epochs", "1", "--lr", "0.01")[0] == 0
    stale = tmp_path / ".last.pt.0a1b2c3d.tmp"  # what a kill during a checkpoint write leaves
    stale.write_bytes(b"half a checkpoint")
    code, _, err = run(capsys, *common, "--epochs", "2", "--lr", "0.02", "--resume")
    assert code == 2
    one_line_error(err, "resuming needs the settings it was trained with", "epochs 1 -> 2", "lr 0.01 -> 0.02")
    assert not stale.exists()
    assert run(capsys, *common, "--epochs", "1", "--lr", "0.01", "--workers", "0", "--resume")[0] == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_fails_before_any_work(tiny_motion_root, tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        code, out, err = run(capsys, "train", "--data", str(tiny_motion_root), "--model", "small3d",
                             "--out", str(folder), "--epochs", "1")
    finally:
        folder.chmod(0o700)
    assert code == 2 and "epoch" not in out
    one_line_error(err, str(folder), "cannot write there")


def test_infinite_or_nan_options_are_refused(capsys, tiny_motion_root, tmp_path):
    for flag, value in (("--lr", "inf"), ("--weight-decay", "nan"), ("--warmup-epochs", "-1")):
        with pytest.raises(SystemExit):
            run(capsys, "train", "--data", str(tiny_motion_root), "--model", "small3d", "--out", str(tmp_path),
                flag, value)
        assert flag in capsys.readouterr().err
    with pytest.raises(ValueError, match="lr must be a finite number"):
        TrainConfig(lr=float("inf"))
    if not torch.backends.mps.is_available():
        with pytest.raises(ValueError, match="device 'mps': this PyTorch has no MPS device"):
            resolve_device("mps")
    with pytest.raises(ValueError, match="deepvideo runs on cpu, cuda"):
        resolve_device("meta")


def test_one_pixel_crops_of_a_flipped_clip_convert(tmp_path):
    from deepvideo.data.transforms import HorizontalFlip, ToTensor

    frames = np.arange(2 * 1 * 1 * 3, dtype=np.uint8).reshape(2, 1, 1, 3)
    flipped = HorizontalFlip(p=1.0)(frames)
    assert torch.equal(ToTensor()(flipped), ToTensor()(frames.copy()))
