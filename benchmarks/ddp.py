"""Data-parallel scaling on the CPU: ``deepvideo train`` under torchrun with 1 and 2 processes.

    python benchmarks/ddp.py [--epochs 3] [--batch 16] [--model small3d]

Trains the same model on the built-in motion dataset (frames resized to 32 px, 16-frame
clips, GroupNorm so that per-process batches compute what one batch would) through
``torchrun --standalone --nproc_per_node=N -m deepvideo train`` with N = 1 and 2; the
global batch is the same (``--batch`` split over the processes) and every process gets
``cores / N`` threads.  Reads training clips/s of the last epoch (the first warms up)
from each run's ``metrics.csv``; prints them, the speed-up and the scaling efficiency
(speed-up / N), and checks that both runs end with the same validation accuracy.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from deepvideo.data.synthetic import SyntheticConfig, make_motion_dataset

from machine import cpu_model  # benchmarks/machine.py


def run(processes: int, root: Path, out: Path, args) -> dict[str, float]:
    threads = max(1, (os.cpu_count() or 1) // processes)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", "deepvideo", "train", "--model", args.model, "--model-opt", "widths=[16,32,64,128]",
               "--model-opt", "norm=group", "--data", str(root), "--out", str(out), "--epochs", str(args.epochs),
               "--clip-len", "16", "--resize", "32", "--size", "32", "--no-flip", "--test-clips", "1",
               "--batch-size", str(args.batch // processes), "--lr", "3e-3", "--weight-decay", "1e-4"]
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(out / "metrics.csv") as fh:
        last = list(csv.DictReader(fh))[-1]
    return {"clips_per_s": float(last["samples_per_s"]), "val_video_acc": float(last["val_video_acc"]),
            "threads": threads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16, help="global batch (split over processes)")
    parser.add_argument("--model", default="small3d")
    args = parser.parse_args()
    root = make_motion_dataset(None, SyntheticConfig(), progress=True)
    with tempfile.TemporaryDirectory() as tmp:
        results = {n: run(n, root, Path(tmp) / f"p{n}", args) for n in (1, 2)}
    base = results[1]["samples_per_s"]
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; {args.model}, global batch {args.batch}, "
          f"{args.epochs} epochs, gloo")
    print("| processes x threads | train clips/s (last epoch) | speed-up | efficiency | val video acc |")
    print("|---|---|---|---|---|")
    for n, r in results.items():
        speedup = r["samples_per_s"] / base
        print(f"| {n} x {r['threads']} | {r['clips_per_s']:.1f} | {speedup:.2f} | {speedup / n:.2f} | "
              f"{r['val_video_acc']:.3f} |")


if __name__ == "__main__":
    main()
