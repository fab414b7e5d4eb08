"""Single-object tracking: SiamFC and GOTURN trained briefly on synthetic sequences.

Trains SiamFC (AlexNet embedding at ``--siamfc-width``, the paper's 127/255 crops) and
GOTURN (CaffeNet towers at ``--goturn-width``, 227 px crops, ``--goturn-fc`` units) on
``--train`` in-memory sequences of the built-in motion dataset, then runs one-pass
evaluation (success AUC, precision at 20 px, normalised precision at 0.2; percentages,
mmtracking's definition) on ``--test`` held-out sequences, side by side with references
in the same process: OpenCV's MIL tracker (``cv2.TrackerMIL``, classical online
boosting), the static first-frame box, and the training-free pixel SiamFC (template
matching).  Frames/s count tracking only (first-frame init included), on the CPU with
``--threads`` torch/OpenCV threads.

Run: ``python benchmarks/track_sot.py [--siamfc-steps 200 --goturn-steps 300]``.  Prints
tables; asserts nothing.
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

from deepvideo.track.goturn import GOTURNConfig, GOTURNTracker
from deepvideo.track.ope import evaluate_ope
from deepvideo.track.siamfc import SiamFCConfig, SiamFCTracker
from deepvideo.track.sot import TRACKERS, TrackSequence, make_tracker, synthetic_sequences, track_frames, train_sot

from machine import cpu_model  # benchmarks/machine.py


class StaticBox:
    """The no-motion baseline: the first box forever."""

    def init(self, frame: np.ndarray, box: np.ndarray) -> None:
        self.box = np.asarray(box, np.float64)

    def update(self, frame: np.ndarray) -> np.ndarray:
        return self.box


class OpenCVMIL:
    """``cv2.TrackerMIL`` behind the ``init`` / ``update`` interface (integer boxes, BGR)."""

    def init(self, frame: np.ndarray, box: np.ndarray) -> None:
        self.tracker = cv2.TrackerMIL_create()
        self.tracker.init(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), tuple(int(round(v)) for v in box))
        self.box = np.asarray(box, np.float64)

    def update(self, frame: np.ndarray) -> np.ndarray:
        ok, box = self.tracker.update(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        if ok:
            self.box = np.asarray(box, np.float64)
        return self.box


def run(tracker, sequences: list[TrackSequence]) -> tuple[dict[str, float], float]:
    """OPE scores over ``sequences`` and frames/s."""
    preds, start = [], time.perf_counter()
    for seq in sequences:
        preds.append(track_frames(tracker, seq.frames, seq.boxes[0]))
    seconds = time.perf_counter() - start
    scores = evaluate_ope([s.boxes for s in sequences], preds)
    return scores, sum(len(s.frames) for s in sequences) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=64, help="training sequences")
    parser.add_argument("--test", type=int, default=16, help="held-out test sequences")
    parser.add_argument("--frames", type=int, default=32, help="frames per sequence")
    parser.add_argument("--size", type=int, default=64, help="frame side, pixels")
    parser.add_argument("--siamfc-steps", type=int, default=200)
    parser.add_argument("--siamfc-width", type=float, default=0.25)
    parser.add_argument("--goturn-steps", type=int, default=300)
    parser.add_argument("--goturn-width", type=float, default=0.25)
    parser.add_argument("--goturn-fc", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    print(f"CPU: {cpu_model()}, torch {torch.__version__}, OpenCV {cv2.__version__}, "
          f"{args.threads} threads")
    train = synthetic_sequences(args.train, args.frames, args.size, "train", args.seed)
    test = synthetic_sequences(args.test, args.frames, args.size, "test", args.seed)
    print(f"data: {args.train} train / {args.test} test synthetic sequences, {args.frames} frames "
          f"of {args.size}x{args.size}")

    siamfc_config = SiamFCConfig(width=args.siamfc_width)
    goturn_config = GOTURNConfig(width=args.goturn_width, fc_dim=args.goturn_fc, dropout=0.0)
    nets = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, config, steps, batch in (("siamfc", siamfc_config, args.siamfc_steps, 8),
                                           ("goturn", goturn_config, args.goturn_steps, 16)):
            # the engine's epochs: 10 of steps / 10, the default recipe otherwise
            train_config = replace(TRACKERS.info(name)["training"], epochs=10, seed=args.seed, progress=False)
            start = time.perf_counter()
            nets[name], result = train_sot(name, train, Path(tmp) / name, config,
                                           pairs_per_epoch=steps // 10 * batch, train=train_config)
            losses = [row["train_loss"] for row in result["history"]]
            print(f"{name}: {steps} steps x {batch} pairs in {time.perf_counter() - start:.0f} s, "
                  f"loss (first -> last epoch) {losses[0]:.3f} -> {losses[-1]:.3f}")
    siamfc, goturn = nets["siamfc"], nets["goturn"]

    trackers = {"static first box": StaticBox(), "OpenCV MIL (reference)": OpenCVMIL(),
                "SiamFC pixels, no training": make_tracker("siamfc"),
                "SiamFC trained (ours)": SiamFCTracker(siamfc),
                "GOTURN trained (ours)": GOTURNTracker(goturn)}
    results = {name: run(tracker, test) for name, tracker in trackers.items()}
    reference, ref_fps = results["OpenCV MIL (reference)"]
    print(f"\nOne-pass evaluation on {args.test} held-out sequences (%, mmtracking's definition; "
          f"perfect success = 95.24)")
    print(f"{'tracker':<28}{'success':>9}{'prec@20':>9}{'nprec@.2':>10}{'frames/s':>10}"
          f"{'success/MIL':>13}{'speed/MIL':>11}")
    for name, (scores, fps) in results.items():
        print(f"{name:<28}{scores['success']:>9.2f}{scores['precision']:>9.2f}"
              f"{scores['norm_precision']:>10.2f}{fps:>10.1f}"
              f"{scores['success'] / reference['success']:>13.2f}{fps / ref_fps:>11.2f}")


if __name__ == "__main__":
    main()
