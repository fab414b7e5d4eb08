"""Data-parallel training and evaluation through torchrun: 2 CPU processes with gloo."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from deepvideo.cli import main

MODEL = ["--model", "small3d", "--model-opt", "widths=[4,8]", "--model-opt", "norm=group"]
CLIPS = ["--clip-len", "4", "--size", "24", "--resize", "32", "--no-flip", "--test-clips", "2", "--epochs", "2"]


def torchrun(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "deepvideo", *argv], capture_output=True, text=True, env=env, timeout=300)


def test_two_processes_with_batch_b_match_one_process_with_batch_2b(tiny_motion_root, tmp_path):
    data = ["--data", str(tiny_motion_root)]
    assert main(["train", *MODEL, *CLIPS, *data, "--batch-size", "4", "--out", str(tmp_path / "one")]) == 0
    run = torchrun("train", *MODEL, *CLIPS, *data, "--batch-size", "2", "--out", str(tmp_path / "two"))
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("best validation video accuracy") == 1       # rank 0 alone reports
    one = torch.load(tmp_path / "one" / "last.pt", weights_only=True)
    two = torch.load(tmp_path / "two" / "last.pt", weights_only=True)
    assert not any(key.startswith("module.") for key in two["model"])    # DDP's wrapper is not saved
    for key, value in one["model"].items():
        torch.testing.assert_close(two["model"][key], value, atol=1e-5, rtol=1e-4)
    for row_one, row_two in zip(one["history"], two["history"]):          # metrics over both processes
        assert abs(row_one["train_loss"] - row_two["train_loss"]) < 1e-5
        assert row_one["val_video_acc"] == row_two["val_video_acc"]


def test_sharded_evaluation_scores_every_video_once(tiny_motion_root, tmp_path):
    assert main(["train", *MODEL, *CLIPS, "--data", str(tiny_motion_root), "--batch-size", "4",
                 "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    videos = sorted((tiny_motion_root / "test").rglob("*.mp4"))[:5]     # odd: the shards differ in size
    listing = tmp_path / "test.txt"
    listing.write_text("".join(f"{v} {int(v.parent.name == 'right')}\n" for v in videos))
    argv = ["eval", "--checkpoint", str(tmp_path / "run" / "best.pt"), "--format", "list", "--test-list",
            str(listing), "--clips", "3", "--json"]
    run = torchrun(*argv)
    assert run.returncode == 0, run.stderr[-3000:]
    sharded = json.loads(run.stdout)                                     # printed by rank 0 only
    assert sharded["num_videos"] == 5 and sharded["num_clips"] == 15
    assert sum(map(sum, sharded["confusion"])) == 5
    single = subprocess.run([sys.executable, "-m", "deepvideo", *argv], capture_output=True, text=True)
    expected = json.loads(single.stdout)
    assert sharded["video_acc1"] == expected["video_acc1"] and sharded["confusion"] == expected["confusion"]
    assert abs(sharded["loss"] - expected["loss"]) < 1e-5


def test_rank_zero_buffers_reach_every_process_and_only_rank_zero_warns(tmp_path):
    """BatchNorm statistics differ per process after training; every process then validates
    rank 0's.  A bad video's warning comes once (the engine gathers and reports all of them)."""
    script = tmp_path / "buffers.py"
    script.write_text(
        "import warnings\n"
        "import torch\n"
        "from deepvideo.data.datasets import BadVideoWarning\n"
        "from deepvideo.engine.distributed import broadcast_buffers, process_group, rank\n"
        "with process_group(torch.device('cpu')):\n"
        "    warnings.warn('sentinel', BadVideoWarning)\n"
        "    norm = torch.nn.BatchNorm3d(2)\n"
        "    norm.running_mean.fill_(rank() + 1.0)\n"
        "    norm.num_batches_tracked.fill_(10 * (rank() + 1))\n"
        "    broadcast_buffers(norm)\n"
        f"    with open(f'{tmp_path}/rank{{rank()}}.txt', 'w') as fh:\n"  # the two stdouts may interleave
        "        print(norm.running_mean.tolist(), int(norm.num_batches_tracked), file=fh)\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)] == ["[1.0, 1.0] 10\n"] * 2
    assert run.stderr.count("BadVideoWarning: sentinel") == 1
