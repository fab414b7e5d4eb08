"""The engine's speed knobs, each measured: workers, prefetch, channels_last_3d, autocast,
gradient accumulation and torch.compile, one at a time against the same baseline.

    python benchmarks/knobs.py [--model r2plus1d_18] [--clip-len 8] [--size 56] [--batch 4]
                               [--steps 6] [--knobs baseline,workers=1,...] [--device cpu]

Every run trains ``--model`` with ``deepvideo.engine.train`` for 2 epochs of about
``--steps`` optimiser steps on the built-in motion dataset written at 128x128 (random
``clip-len x size x size`` clips, resize 128), with one knob changed from the baseline
(fp32, 0 workers, prefetch 2, no accumulation, eager).  Reported: clips/s of the second
epoch (warm: the first pays for worker start-up and ``torch.compile``'s compilation) and
the first epoch's seconds, and the ratio of the warm clips/s to the baseline's.  Knobs
(``--knobs``, comma-separated): ``baseline``, ``workers=N``, ``prefetch=N`` (with 2
workers), ``channels_last``, ``amp=bf16`` / ``amp=fp16`` (fp16: CUDA), ``accumulate=N``,
``compile``.  Prints a markdown table; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from deepvideo.data.synthetic import SyntheticConfig, make_motion_dataset
from deepvideo.engine import DataSpec, Recipe, TrainConfig, train

from machine import cpu_model  # benchmarks/machine.py

DEFAULT_KNOBS = "baseline,workers=1,workers=2,prefetch=4,channels_last,accumulate=2,compile"


def knob_options(knob: str) -> dict:
    """TrainConfig fields that one ``--knobs`` entry changes from the baseline."""
    name, _, value = knob.partition("=")
    if name == "baseline":
        return {}
    if name == "workers":
        return {"workers": int(value)}
    if name == "prefetch":
        return {"workers": 2, "prefetch": int(value)}
    if name == "channels_last":
        return {"channels_last": True}
    if name == "amp":
        return {"amp": value}
    if name == "accumulate":
        return {"accumulate": int(value)}
    if name == "compile":
        return {"compile": True}
    raise SystemExit(f"--knobs: unknown knob {knob!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="r2plus1d_18")
    parser.add_argument("--clip-len", type=int, default=8)
    parser.add_argument("--size", type=int, default=56)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--knobs", default=DEFAULT_KNOBS)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    per_class = -(-args.batch * args.steps // 8)  # one epoch of about --steps batches
    root = make_motion_dataset(None, SyntheticConfig(size=128, train=per_class, val=1, test=1), progress=True)
    data = DataSpec(root=str(root))
    recipe = Recipe(model=args.model, classes=[], clip_len=args.clip_len, size=args.size, resize=128,
                    flip=False, test_clips=1)
    print(f"machine: {cpu_model()}, {torch.get_num_threads()} torch threads, device {args.device}")
    print(f"{args.model} {args.clip_len}x{args.size}x{args.size}, batch {args.batch}, "
          f"{per_class * 8} training clips per epoch, 2 epochs per knob")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, knob in enumerate(args.knobs.split(",")):
            config = TrainConfig(epochs=2, batch_size=args.batch, lr=1e-3, warmup_epochs=0.0, progress=False,
                                 device=args.device, **knob_options(knob))
            history = train(recipe, data, config, Path(tmp) / f"run{n}")["history"]
            rows.append((knob, history[0]["epoch_s"], history[1]["samples_per_s"]))
            print(f"{knob}: first epoch {rows[-1][1]:.1f} s, warm {rows[-1][2]:.2f} clips/s", flush=True)
    base = dict((k, r) for k, _, r in rows).get("baseline")
    print("\n| knob | first epoch s | warm clips/s | x baseline |\n|---|---:|---:|---:|")
    for knob, first, rate in rows:
        ratio = f"{rate / base:.2f}" if base else ""
        print(f"| {knob} | {first:.1f} | {rate:.2f} | {ratio} |")


if __name__ == "__main__":
    main()
