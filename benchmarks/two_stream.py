"""Two-stream networks on the built-in motion dataset: spatial vs temporal vs fused.

    python benchmarks/two_stream.py [--epochs 16] [--flow-len 10] [--method farneback] [--out runs/two_stream]

The motion dataset's classes differ only in how an object moves, so a single RGB frame
(the spatial stream) should sit near chance (1/8) while stacked optical flow (the
temporal stream) sees the motion; Simonyan & Zisserman's UCF101 pattern was spatial 73.0,
temporal 83.7, fused 88.0.  Steps, each through the public API the CLI uses:

1. the default motion dataset (8 classes, 40/8/16 videos per class, 16 frames of 64x64);
2. the flow cache (``extract_flow_dataset``, as ``deepvideo flow-extract``), timed;
3. each stream trained alone with the demo's optimiser settings: the spatial stream on one
   frame, the temporal stream on ``--flow-len`` consecutive flow fields (frames and flow
   resized to 32 px, 28 px crops, no flip);
4. test-set video accuracy of each stream (5 frames / 3 stacks per video) and of their late
   fusion (softmax average, and weighted 1:2 towards the temporal stream).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from deepvideo.data.synthetic import SyntheticConfig, make_motion_dataset
from deepvideo.engine import DataSpec, Recipe, TrainConfig, evaluate, train
from deepvideo.engine.evaluate import fuse_results
from deepvideo.engine.recipe import load_trained
from deepvideo.flow import extract_flow_dataset

from machine import cpu_model  # benchmarks/machine.py

WIDTHS = [16, 32, 64, 128]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--flow-len", type=int, default=10, help="flow fields per stack (L)")
    parser.add_argument("--method", default="farneback", help="flow method of the cache")
    parser.add_argument("--out", type=Path, default=Path("runs/two_stream"))
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()

    root = make_motion_dataset(None, SyntheticConfig(), progress=True)
    videos = sorted(root.rglob("*.mp4"))
    tic = time.perf_counter()
    summary = extract_flow_dataset(videos, args.out / f"flow-{args.method}", method=args.method, root=root)
    flow_seconds = time.perf_counter() - tic
    data = DataSpec(root=str(root), flow_dir=str(args.out / f"flow-{args.method}"))
    config = TrainConfig(epochs=args.epochs, batch_size=16, lr=3e-3, weight_decay=1e-4,
                         warmup_epochs=0.3 * args.epochs, workers=args.workers)
    common = dict(classes=[], size=28, resize=32, flip=False, model_kwargs={"widths": WIDTHS})
    recipes = {
        "spatial": Recipe(model="spatial_stream", clip_len=1, test_clips=5, **common),
        "temporal": Recipe(model="temporal_stream", clip_len=args.flow_len, test_clips=3, modality="flow",
                           **{**common, "model_kwargs": {"widths": WIDTHS, "flow_frames": args.flow_len}}),
    }
    results, rows = {}, []
    for name, recipe in recipes.items():
        tic = time.perf_counter()
        train(recipe, data, config, args.out / name)
        seconds = time.perf_counter() - tic
        trained, model = load_trained(args.out / name / "best.pt")
        results[name] = evaluate(model, trained.dataset(data, "test", train=False), batch_size=16)
        rows.append((name, results[name]["video_acc1"], f"{seconds:.0f}"))
    fused = fuse_results([results["spatial"], results["temporal"]])
    weighted = fuse_results([results["spatial"], results["temporal"]], weights=[1.0, 2.0])
    rows += [("fused (average)", fused["video_acc1"], ""), ("fused (1:2)", weighted["video_acc1"], "")]

    print(f"\nmachine: {cpu_model()}, {torch.get_num_threads()} threads")
    print(f"flow cache ({args.method}): {summary.written} videos in {flow_seconds:.1f} s "
          f"({len(videos) / max(flow_seconds, 1e-9):.0f} videos/s; {summary.skipped} already cached)")
    print("\n| stream | test video accuracy | train seconds |\n|---|---|---|")
    for name, acc, seconds in rows:
        print(f"| {name} | {acc:.3f} | {seconds} |")
    (args.out / "results.json").write_text(json.dumps({n: a for n, a, _ in rows}, indent=2))


if __name__ == "__main__":
    main()
