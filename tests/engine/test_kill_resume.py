"""Every trainer runs on the engine's one loop: killed with SIGKILL after its first
checkpoint, ``--resume`` ends with the same weights as an uninterrupted run.

The kill is deterministic: ``DEEPVIDEO_KILL_AT_STEP=N`` makes the process kill itself right
after optimiser step N (in the second epoch, so ``last.pt`` of epoch 1 exists).
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys

import pytest
import torch

from deepvideo.engine import load_checkpoint

# (command, steps per epoch); 3 epochs each, killed after the first step of epoch 2
TRAINERS = {
    "classification": (["train", "--model", "small3d", "--model-opt", "widths=[4,8]", "--clip-len", "6",
                        "--size", "28", "--resize", "32", "--batch-size", "4", "--lr", "0.01", "--test-clips", "2"],
                       3),
    "siamfc": (["track", "train-sot", "--sequences", "4", "--frames", "8", "--size", "48", "--config", "width=0.125",
                "--config", "exemplar_size=95", "--config", "search_size=159", "--pairs-per-epoch", "8",
                "--batch-size", "4"], 2),
    "embedder": (["track", "train-embedder", "--objects", "3", "--frames", "12", "--crop", "32x16", "--width", "8",
                  "--dim", "16", "--crops-per-epoch", "32", "--batch-size", "16"], 2),
    "tinyflow": (["flow-train", "--size", "16x16", "--max-flow", "2", "--objects", "0", "--pairs-per-epoch", "8",
                  "--val-pairs", "4", "--batch-size", "4", "--model-opt", "channels=[8,8]", "--model-opt",
                  "widths=[8]", "--model-opt", "max_displacement=1"], 2),
    "sr": (["sr", "train", "--scale", "2", "--patch", "16", "--frames", "3", "--clips-per-epoch", "8",
            "--val-frames", "3", "--batch-size", "4", "--model-opt", "channels=4", "--model-opt", "blocks=1",
            "--model-opt", "fnet_width=4", "--model-opt", "fnet_levels=1"], 2),
    "pretext": (["pretrain", "--task", "order", "--task-opt", "clip_len=2", "--task-opt", "gap=0", "--model", "small3d",
                 "--model-opt", "widths=[4,8]", "--size", "24", "--resize", "24", "--batch-size", "8"], 3),
}
EPOCHS = 3


def _run(args, out, kill_at=None, resume=False):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("DEEPVIDEO_KILL_AT_STEP", None)
    if kill_at is not None:
        env["DEEPVIDEO_KILL_AT_STEP"] = str(kill_at)
    cmd = [sys.executable, "-m", "deepvideo.cli", *args, "--out", str(out), "--epochs", str(EPOCHS)]
    return subprocess.run(cmd + (["--resume"] if resume else []), env=env, capture_output=True, text=True)


@pytest.mark.parametrize("name", list(TRAINERS))
def test_killed_run_resumes_to_the_uninterrupted_weights(name, tiny_motion_root, tmp_path):
    args, steps_per_epoch = TRAINERS[name]
    if name in ("classification", "pretext"):
        args = [*args, "--data", str(tiny_motion_root)]
    if name == "sr":
        args = [*args, "--data", str(tiny_motion_root / "train"), "--val-videos", str(tiny_motion_root / "val")]
    full = _run(args, tmp_path / "full")
    assert full.returncode == 0, full.stderr
    killed = _run(args, tmp_path / "killed", kill_at=steps_per_epoch + 1)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    last = tmp_path / "killed" / "last.pt"
    assert load_checkpoint(last, required=("epoch",))["epoch"] == 1
    done = _run(args, tmp_path / "killed", resume=True)
    assert done.returncode == 0, done.stderr
    assert f"resuming {last} after epoch 1/{EPOCHS}" in done.stdout
    reference, resumed = (load_checkpoint(tmp_path / run / "last.pt") for run in ("full", "killed"))
    assert resumed["epoch"] == reference["epoch"] == EPOCHS
    assert reference["model"].keys() == resumed["model"].keys()
    for key, value in reference["model"].items():
        torch.testing.assert_close(resumed["model"][key], value, atol=1e-6, rtol=1e-6, msg=key)
    # the run folder holds what every trainer writes
    rows = list(csv.DictReader(open(tmp_path / "killed" / "metrics.csv")))
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    assert [float(r["train_loss"]) for r in rows] == pytest.approx([r["train_loss"] for r in resumed["history"]])
    assert (tmp_path / "killed" / "curves.png").stat().st_size > 1000
    if name not in ("classification", "sr", "pretext"):
        assert (tmp_path / "killed" / "weights.safetensors").is_file()
