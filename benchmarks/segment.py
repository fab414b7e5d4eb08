"""Moving-object segmentation on the built-in set: transformer-bottleneck U-Net, plain U-Net and
the flow-threshold baseline, DAVIS J&F on held-out sequences.

    OMP_NUM_THREADS=1 python benchmarks/segment.py [--out /tmp/deepvideo-bench-segment] [--epochs 6]
        [--width 8] [--train 40] [--val 10] [--test 10] [--clips 8] [--flow] [--subset val]
        [--only unet_transformer|unet]

Writes the built-in set (``make_segment_dataset``: ``--train`` (40) train, ``--val`` (10) val,
``--test`` (10) test sequences of 24 frames at 64 px; sequence ``i`` of a split does not depend
on the counts, so the first 10 test sequences are the same in every set; resumable, reused by
later runs), fits the flow baseline's threshold on the
train split (J&F), trains ``unet_transformer`` and ``unet`` with the same recipe through the
engine (``train_segmenter``, resumed where a run was stopped: same seed, epochs, ``--clips``
random clips per training sequence and epoch, widths; ``best.pt`` chosen by val J&F),
and scores all three on ``--subset`` (``test``, the sequences no choice was made on, by default;
``val`` gives the numbers ``best.pt`` was chosen by).  ``--only`` trains and scores one network
(run the two in two processes, one core each).  Prints the CPU, the threshold, the training
time of each network and a table of J-Mean, F-Mean, J&F-Mean, over all the subset's sequences
and over its first 10 (the sets of earlier runs).  Asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import torch

from deepvideo.segment.baseline import fit_flow_threshold
from deepvideo.segment.synthetic import make_segment_dataset
from deepvideo.segment.train import SEGMENT_TRAINING, evaluate_masks, load_davis, segmenter, train_segmenter

from machine import cpu_model  # benchmarks/machine.py

NETWORKS = ("unet_transformer", "unet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/deepvideo-bench-segment"))
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--clip-len", type=int, default=8)
    parser.add_argument("--train", type=int, default=40, help="training sequences")
    parser.add_argument("--val", type=int, default=10, help="validation sequences (choose best.pt)")
    parser.add_argument("--test", type=int, default=10, help="test sequences")
    parser.add_argument("--clips", type=int, default=8, help="random clips per training sequence and epoch")
    parser.add_argument("--flow", action="store_true", help="Farneback flow as extra input channels of the networks")
    parser.add_argument("--subset", default="test", choices=("val", "test"))
    parser.add_argument("--only", choices=NETWORKS, help="train and score this network alone")
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}, torch threads {torch.get_num_threads()}")
    counts = {"train": args.train, "val": args.val, "test": args.test}
    root = make_segment_dataset(args.out / "data_{train}_{val}_{test}".format(**counts), **counts)
    threshold, train_jf = fit_flow_threshold(load_davis(root, "train"),
                                             candidates=[round(0.1 * i, 1) for i in range(1, 31)])
    print(f"flow baseline threshold {threshold} px/frame (train J&F {train_jf:.3f})")
    recipe = replace(SEGMENT_TRAINING, epochs=args.epochs, progress=False)
    held_out = load_davis(root, args.subset)
    rows = {}
    for model in [args.only] if args.only else NETWORKS:
        start = time.perf_counter()
        flow = "_flow" if args.flow else ""
        run = args.out / f"{model}{flow}_w{args.width}_e{args.epochs}_t{args.train}_c{args.clips}"
        result = train_segmenter(run, root, model, recipe, resume=(run / "last.pt").is_file(),
                                 model_options={"width": args.width}, clip_len=args.clip_len, flow=args.flow,
                                 clips_per_sequence=args.clips)
        print(f"{model}: trained in {time.perf_counter() - start:.0f} s, best val J&F {result['best']:.3f}")
        rows[model] = evaluate_masks(held_out, segmenter(result["checkpoint"]))[0]
    rows["flow baseline"] = evaluate_masks(held_out, segmenter("flow", threshold=threshold))[0]
    first = sorted(held_out)[:10]
    for title, names in ((f"{args.subset} ({len(held_out)} sequences)", None), (f"{first[0]}-{first[-1]}", first)):
        print(f"\n{title:<20}  J-Mean  F-Mean  J&F-Mean")
        for name, result in rows.items():
            if names is not None:
                result = replace(result, objects=[o for o in result.objects if o.sequence in names])
            table = result.global_table()
            print(f"{name:<20}  {table['J-Mean']:6.3f}  {table['F-Mean']:6.3f}  {table['J&F-Mean']:8.3f}")


if __name__ == "__main__":
    main()
