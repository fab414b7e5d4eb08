"""Does the input pipeline keep the model busy?  Training from source videos vs packed shards.

    python benchmarks/busy.py [--device cuda] [--amp bf16] [--channels-last] [--batch 32]
                              [--steps 32] [--workers 8] [--formats video,jpeg,raw]

The model (deepvideo's ``r2plus1d_18``, 16 x 112 x 112 clips, 8 classes) first trains on
one batch that already lies on the device, so no input is ever waited for: its clips/s is
the **compute limit**.  Then ``deepvideo.engine.train`` trains it on the same settings
from each storage format, two epochs of about ``--steps`` steps (the second one counts: the
first starts the persistent workers):

* ``video``: the built-in motion dataset written as h264 with a 250-frame GOP (x264's
  default, as videos in the wild), 64 frames at 128 x 128, random 16-frame clips;
* ``jpeg`` / ``raw``: the same videos after ``deepvideo pack`` (a ``.tar`` of JPEG / raw
  RGB frames per video).

For each it prints clips/s, **busy = clips/s / compute limit** (the share of the epoch the
model was computing), the engine's own ``input_wait`` (on CUDA the GPU's idle gaps between
steps from CUDA events) and, on CUDA, the mean of NVML's utilisation readings
(``torch.cuda.utilization()``, needs pynvml; sampled every 50 ms over the whole ``train``
call, so model set-up, worker start-up and validation pull it below busy).  Both timed
numbers include each epoch's wait for its first batch, as a user's epoch does: use enough
``--steps`` that it does not dominate.  Issue 6's target: busy >= 90% from packed shards on
a GPU.

The training list repeats each video ``--repeat`` times, so a short generation makes a
long epoch (each repeat draws another random clip).  Everything is written to a
temporary folder.  Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from deepvideo.data.pack import pack_dataset
from deepvideo.data.synthetic import MOTION_CLASSES, SyntheticConfig, make_motion_dataset
from deepvideo.engine import DataSpec, Recipe, TrainConfig, train
from deepvideo.engine.device import autocast, prepare_input, prepare_model, resolve_device

from machine import cpu_model  # benchmarks/machine.py


def compute_limit(recipe: Recipe, args, device: torch.device) -> float:
    """clips/s of the engine's training step on one batch resident on ``device`` (best of two
timings of ``--steps`` steps)."""
    model = prepare_model(recipe.build_model(), device, args.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    scaler = torch.amp.GradScaler(device.type, enabled=args.amp == "fp16")
    shape = (args.batch, 3, recipe.clip_len, recipe.size, recipe.size)
    clips = prepare_input(torch.randn(shape), device, args.channels_last)
    labels = torch.randint(len(recipe.classes), (args.batch,), device=device)

    def step() -> None:
        with autocast(device, args.amp):
            loss = F.cross_entropy(model(clips).float(), labels)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    rates = []
    for _ in range(2):  # the faster of two timings: other load only slows a run down
        synchronize(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        synchronize(device)
        rates.append(args.steps * args.batch / (time.perf_counter() - start))
    return max(rates)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Utilisation:
    """NVML's GPU utilisation (%), sampled in a thread while the ``with`` block runs."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.readings = device, []
        self.done = threading.Event()

    def _sample(self) -> None:
        while not self.done.wait(0.05):
            self.readings.append(torch.cuda.utilization(self.device))

    def __enter__(self) -> "Utilisation":
        self.thread = None
        if self.device.type == "cuda":
            try:
                torch.cuda.utilization(self.device)
            except Exception as exc:  # no pynvml or no NVML: the column says n/a
                print(f"NVML utilisation unavailable: {exc}")
                return self
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        if self.thread is not None:
            self.thread.join()

    def mean(self) -> str:
        return f"{statistics.mean(self.readings):.0f}%" if self.readings else "n/a"


def write_list(root: Path, split: str, suffix: str, repeat: int, out: Path) -> Path:
    """A ``path label`` list of ``root/split``'s videos (packed: ``suffix``), each ``repeat`` times."""
    lines = []
    for label, name in enumerate(MOTION_CLASSES):
        for video in sorted((root / split / name).glob(f"*{suffix}")):
            lines += [f"{video} {label}"] * repeat
    out.write_text("\n".join(lines) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=8, help="optimiser steps per epoch (about)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before the compute limit")
    parser.add_argument("--videos", type=int, default=4, help="training videos per class")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--prefetch", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", default="none")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--formats", default="video,jpeg,raw")
    args = parser.parse_args()
    device = resolve_device(args.device)
    formats = args.formats.split(",")
    recipe = Recipe(model="r2plus1d_18", classes=list(MOTION_CLASSES), clip_len=16, size=112, resize=128,
                    flip=False, test_clips=1)
    repeat = math.ceil(args.batch * args.steps / (len(MOTION_CLASSES) * args.videos))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config = SyntheticConfig(size=128, num_frames=64, train=args.videos, val=1, test=1, keyframe_interval=250)
        start = time.perf_counter()
        source = make_motion_dataset(tmp / "video", config, progress=False, workers=os.cpu_count() or 1)
        print(f"generated {len(MOTION_CLASSES) * (args.videos + 2)} videos in {time.perf_counter() - start:.0f} s")
        roots = {"video": (source, ".mp4")}
        for fmt in set(formats) - {"video"}:
            start = time.perf_counter()
            videos = sorted(source.rglob("*.mp4"))
            pack_dataset(videos, tmp / fmt, root=source, format=fmt, workers=os.cpu_count() or 1, progress=False)
            roots[fmt] = (tmp / fmt, ".tar")
            print(f"packed {fmt} in {time.perf_counter() - start:.0f} s")

        limit = compute_limit(recipe, args, device)
        print(f"compute limit: {limit:.3g} clips/s")
        rows = []
        for fmt in formats:
            root, suffix = roots[fmt]
            lists = {split: str(write_list(root, split, suffix, repeat if split == "train" else 1,
                                           tmp / f"{fmt}_{split}.txt")) for split in ("train", "val")}
            data = DataSpec(format="list", root=str(root), lists=lists)
            cfg = TrainConfig(epochs=2, batch_size=args.batch, lr=1e-3, workers=args.workers,
                              prefetch=args.prefetch, amp=args.amp, channels_last=args.channels_last,
                              device=args.device, progress=False, warmup_epochs=0.0)
            with Utilisation(device) as nvml:
                row = train(recipe, data, cfg, tmp / f"run_{fmt}")["history"][-1]
            rows.append((fmt, row["samples_per_s"], row["samples_per_s"] / limit, row["input_wait"], nvml.mean()))
            print(f"{fmt}: {row['samples_per_s']:.3g} clips/s, busy {rows[-1][2]:.0%}")

    gpu = f", GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    print(f"\nmachine: {cpu_model()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads{gpu}")
    print(f"r2plus1d_18 16x112x112, batch {args.batch}, {args.workers} workers (prefetch {args.prefetch}), "
          f"amp {args.amp}, channels_last {args.channels_last}, {args.steps} steps/epoch")
    print(f"| input | clips/s | busy (clips/s / compute limit {limit:.3g}) | input_wait | NVML util |")
    print("|---|---:|---:|---:|---:|")
    for fmt, rate, busy, wait, util in rows:
        print(f"| {fmt} | {rate:.3g} | {busy:.0%} | {wait:.0%} | {util} |")


if __name__ == "__main__":
    main()
