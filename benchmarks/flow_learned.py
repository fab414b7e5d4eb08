"""TinyFlow (a compact PWC-Net trained here on synthetic pairs) against zero flow and OpenCV.

1. Train ``deepvideo.flow.tinyflow`` on the CPU for a fixed number of steps (fresh synthetic
   pairs every step, 64x64, flow up to 10 px; see ``deepvideo.flow.synthetic``), timed.
2. Endpoint error (EPE, px) on held-out synthetic pairs (another seed) for zero flow,
   Farneback, DIS and TinyFlow, all fed the same uint8 frames.
3. EPE / angular error on the two 50x50 FlyingChairs crops in ``shared/data/flow`` (the
   table of ``benchmarks/flow.py``, printed by its helper under its own title, with TinyFlow added).
4. Speed: flow frames/s at 340x256 on the first frames of ``mmaction2__demo.mp4`` (decoded
   beforehand, estimation only), best of ``--rounds``.

Run: ``python benchmarks/flow_learned.py [--steps N] [--threads T] [--weights FILE]``.
With ``--weights`` of a finished run the training is skipped (an unfinished one resumes).
Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

from deepvideo.engine.flowtrain import TINYFLOW_TRAINING, train_tinyflow
from deepvideo.flow import PairConfig, endpoint_error
from deepvideo.flow.synthetic import pair_generator, synthetic_pairs, to_frames
from deepvideo.io import VideoReader
from flow import DATA, accuracy_table, best_time, estimators

from machine import cpu_model

VIDEO, SPEED_FRAMES, HELD_OUT_SEED = "mmaction2__demo.mp4", 21, 12345


def held_out_table(methods: dict, config: PairConfig, count: int) -> None:
    img1, img2, flow = synthetic_pairs(count, config, pair_generator(HELD_OUT_SEED))
    frames1, frames2 = to_frames(img1), to_frames(img2)
    print(f"\nEPE (px) on {count} held-out synthetic pairs {config.size[1]}x{config.size[0]} "
          f"(seed {HELD_OUT_SEED}, mean flow length {flow.norm(dim=1).mean():.2f} px)")
    print(f"{'method':<11}{'EPE':>8}")
    rows = {"zero flow": lambda a, b: np.zeros((2, *a.shape[:2]), np.float32), **methods}
    for name, estimate in rows.items():
        if isinstance(estimate, str):
            print(f"{name:<11}{'unavailable':>12}")
            continue
        predicted = np.stack([estimate(a, b) for a, b in zip(frames1, frames2)])
        print(f"{name:<11}{endpoint_error(predicted, flow):>8.3f}")


def speed_table(methods: dict, rounds: int) -> None:
    with VideoReader(DATA / "videos" / VIDEO) as reader:
        frames = reader.read(np.arange(SPEED_FRAMES))
    height, width = frames.shape[1:3]
    print(f"\nSpeed at {width}x{height}, {len(frames) - 1} frame pairs of {VIDEO} (estimation only)")
    print(f"{'method':<11}{'frames/s':>10}{'ms/frame':>10}")
    for name, estimate in methods.items():
        if isinstance(estimate, str):
            continue
        estimate(frames[0], frames[1])  # warm-up
        seconds = best_time(lambda: [estimate(a, b) for a, b in zip(frames[:-1], frames[1:])], rounds)
        print(f"{name:<11}{(len(frames) - 1) / seconds:>10.1f}{1000 * seconds / (len(frames) - 1):>10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="torch and OpenCV threads (default 2)")
    parser.add_argument("--out", type=Path, help="run folder to train into or resume (default: temporary)")
    parser.add_argument("--held-out", type=int, default=64, help="held-out synthetic pairs")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_model()}, {args.threads} threads, OpenCV {cv2.__version__}, torch {torch.__version__}")
    config = PairConfig(size=(64, 64), max_flow=10.0, objects=3)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        start = time.perf_counter()
        # the engine's epochs: 10 of steps / 10 (the default recipe's warm-up and cosine decay)
        train = replace(TINYFLOW_TRAINING, batch_size=args.batch_size)
        tinyflow = train_tinyflow(out, pairs=config, pairs_per_epoch=args.steps // 10 * args.batch_size,
                                  val_pairs=16, train=train, resume=True)
        seconds = time.perf_counter() - start
    print(f"\nTraining: {args.steps} steps of {args.batch_size} pairs {config.size[1]}x{config.size[0]} "
          f"(flow up to {config.max_flow:g} px), {sum(p.numel() for p in tinyflow.model.parameters()):,} "
          f"parameters: {seconds:.0f} s in this run ({args.steps / seconds:.2f} steps/s if from scratch)")
    methods = {**estimators(), "tinyflow": tinyflow}
    held_out_table(methods, config, args.held_out)
    accuracy_table(methods)
    speed_table(methods, args.rounds)


if __name__ == "__main__":
    main()
