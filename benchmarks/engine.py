"""Training throughput: deepvideo's engine against a plain PyTorch loop, same model and data.

    python benchmarks/engine.py [--model r2plus1d_18] [--clip-len 16] [--size 112] [--batch 4]
                                [--steps 6] [--workers 1] [--device cpu] [--amp none] [--channels-last]

Both sides train torchvision's video model of the same name from the same clips: the
built-in motion dataset written at 128x128 (16 frames per video), random 16 x 112 x 112
clips.  The plain loop is what a user would write: torchvision's model, a DataLoader over
the same dataset, AdamW, cross-entropy, backward, step.  Ours is
``deepvideo.engine.train`` on a deepvideo model with the same layers (checkpoints,
progress, metrics and validation switched to their cheapest: one validation video per
class).  Both run one epoch of about ``--steps`` optimiser steps over the same videos,
timed the same way (from asking for the first batch to the last step; ours by its own
epoch timer, validation excluded), interleaved plain, ours, plain, ours so that a shared
machine's drifts hit both.  Prints clips/s and the ratio ours / plain.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision.models import video as tv

from deepvideo.data.synthetic import SyntheticConfig, make_motion_dataset
from deepvideo.engine import DataSpec, Recipe, TrainConfig, train
from deepvideo.engine.device import autocast, prepare_input, prepare_model, resolve_device

from machine import cpu_model  # benchmarks/machine.py


def plain_loop(recipe: Recipe, data: DataSpec, args, device: torch.device) -> float:
    """clips/s of a hand-written one-epoch loop over torchvision's model."""
    dataset = recipe.dataset(data, "train", train=True)
    loader = DataLoader(dataset, batch_size=args.batch, shuffle=True, num_workers=args.workers,
                        pin_memory=device.type == "cuda")
    model = prepare_model(getattr(tv, args.model)(num_classes=len(dataset.classes)), device, args.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    start, seen = time.perf_counter(), 0
    for clips, labels, _ in loader:
        with autocast(device, args.amp):
            loss = F.cross_entropy(model(prepare_input(clips, device, args.channels_last)).float(),
                                   labels.to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += len(labels)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def ours(recipe: Recipe, data: DataSpec, args, out: Path) -> float:
    """clips/s of ``deepvideo.engine.train`` over one epoch (its own timer)."""
    config = TrainConfig(epochs=1, batch_size=args.batch, lr=1e-3, workers=args.workers, amp=args.amp,
                         channels_last=args.channels_last, device=args.device, progress=False,
                         warmup_epochs=0.0)
    result = train(recipe, data, config, out)
    return result["history"][0]["samples_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="r2plus1d_18", choices=("r3d_18", "mc3_18", "r2plus1d_18"))
    parser.add_argument("--clip-len", type=int, default=16)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", default="none")
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()
    device = resolve_device(args.device)
    per_class = -(-args.batch * args.steps // 8)  # one epoch of about --steps batches
    root = make_motion_dataset(None, SyntheticConfig(size=128, train=per_class, val=1, test=1), progress=True)
    data = DataSpec(root=str(root))
    recipe = Recipe(model=args.model, classes=[], clip_len=args.clip_len, size=args.size,
                    resize=max(args.size, 128), flip=False, test_clips=1)
    ours_rates, plain_rates = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            plain_rates.append(plain_loop(recipe, data, args, device))
            ours_rates.append(ours(recipe, data, args, Path(tmp) / f"run{r}"))
            print(f"round {r + 1}: plain {plain_rates[-1]:.2f} clips/s, ours {ours_rates[-1]:.2f} clips/s")
    gpu = f", GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    print(f"\nmachine: {cpu_model()}, {torch.get_num_threads()} torch threads{gpu}")
    print(f"{args.model} {args.clip_len}x{args.size}x{args.size}, batch {args.batch}, {args.workers} workers, "
          f"amp {args.amp}, channels_last {args.channels_last}")
    print(f"| | clips/s (best of {args.rounds}) |\n|---|---|")
    print(f"| plain PyTorch loop, torchvision model | {max(plain_rates):.2f} |")
    print(f"| deepvideo engine | {max(ours_rates):.2f} |")
    print(f"| ratio ours / plain | {max(ours_rates) / max(plain_rates):.3f} |")


if __name__ == "__main__":
    main()
