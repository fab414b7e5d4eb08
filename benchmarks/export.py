"""Clips per second on the CPU: eager PyTorch against ONNX Runtime, same process, side by side.

    python benchmarks/export.py [--models small3d,r2plus1d_18,c3d,timesformer_tiny] [--batches 1,8]
                                [--threads 2] [--seconds 5] [--rounds 2] [--frames T] [--size S]

For each model (fresh weights, eval mode; its usual clip: 3 x 16 x 112 x 112, timesformer_tiny
3 x 8 x 112 x 112; ``--frames``/``--size`` shrink it for a quick check), ``deepvideo.deploy``
exports it to ONNX (opset 18, dynamic batch, the clip length fixed as the model is usually
run) in a temporary folder.  Then, per batch size, one batch through both (the warm-up, and
the largest difference of their logits), and ``--rounds`` rounds alternating eager
``model(clips)`` under ``torch.inference_mode`` and the ONNX Runtime CPU session
(``deepvideo.deploy.load_exported``, as many intra-op threads as torch), each timed for
``--seconds``, so that both see the same machine load; the best round of each counts.
Prints the CPU, then per model and batch: clips/s of each, the ratio ONNX Runtime / eager,
and the logits' largest difference.  Asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from deepvideo.deploy import export_program, load_exported, load_source

from machine import cpu_model  # benchmarks/machine.py

CLIPS = {"timesformer_tiny": (3, 8, 112, 112)}
DEFAULT_CLIP = (3, 16, 112, 112)
NUM_CLASSES = 400


def clips_per_second(run: Callable[[torch.Tensor], object], clips: torch.Tensor, seconds: float) -> float:
    """Batches of ``clips`` ``(B, C, T, H, W)`` through ``run`` for about ``seconds`` (at least one)."""
    count, start = 0, time.perf_counter()
    while True:
        run(clips)
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count * clips.shape[0] / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="small3d,r2plus1d_18,c3d,timesformer_tiny")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime intra-op threads")
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per backend and round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating eager / ONNX Runtime rounds")
    parser.add_argument("--size", type=int, default=None, help="override the crop side (a quick check)")
    parser.add_argument("--frames", type=int, default=None, help="override the clip length (a quick check)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_model()}; {args.threads} threads; torch {torch.__version__}")
    print(f"{'model':<18}{'batch':>6}{'eager clips/s':>15}{'ORT clips/s':>13}{'ORT/eager':>11}{'max |diff|':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            channels, frames, height, _ = CLIPS.get(name, DEFAULT_CLIP)
            frames, side = args.frames or frames, args.size or height
            shape = (channels, frames, side, side)
            path = Path(tmp) / f"{name}.onnx"
            recipe, model = load_source(name, shape, NUM_CLASSES)
            export_program(recipe, model, frames="fixed").save(path, "onnx")
            network = load_exported(path)
            for batch in map(int, args.batches.split(",")):
                clips = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(0))
                with torch.inference_mode():
                    diff = (model(clips) - network(clips)).abs().max().item()
                eager, ort = [], []
                for _ in range(args.rounds):
                    with torch.inference_mode():
                        eager.append(clips_per_second(model, clips, args.seconds))
                    ort.append(clips_per_second(network, clips, args.seconds))
                e, o = max(eager), max(ort)
                print(f"{name:<18}{batch:>6}{e:>15.2f}{o:>13.2f}{o / e:>11.2f}{diff:>12.1e}", flush=True)


if __name__ == "__main__":
    main()
