"""Train every model of the zoo on the built-in motion dataset with one recipe.

    python benchmarks/zoo.py [--models a,b,...] [--epochs 10] [--lr 1e-3] [--out runs/zoo]

Recipe (CPU-sized, the same for every model): the default motion dataset (8 classes,
40/8/16 videos per class, 16 frames of 64x64, crf 8), frames resized to 32 px, random 28 px crops
(centre crop at test time), 8-frame clips at frame stride 2, no flip, AdamW lr 1e-3 (weight
decay 1e-4) with a warm-up over 30% of the epochs and cosine decay, batch 16; video accuracy from 3 uniform clips per
test video.  Models whose inputs must have a fixed size get it through their options (see
``MODEL_OPTIONS``); C3D alone gets larger clips (``CLIP_OVERRIDES``: 16 frames at stride 1,
resize 36, crop 32).  Prints a markdown table: parameters, GMACs per clip, seconds per
epoch, clip accuracy and video accuracy.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from deepvideo.data.synthetic import SyntheticConfig, make_motion_dataset
from deepvideo.engine import DataSpec, Recipe, TrainConfig, evaluate, train
from deepvideo.engine.recipe import load_trained
from deepvideo.models import create_model, list_models
from deepvideo.models.summary import summarize

from machine import cpu_model  # benchmarks/machine.py

CLIP_LEN, STRIDE, RESIZE, CROP = 8, 2, 32, 28
SMALL = {"widths": [16, 32, 64, 128]}
# options that make each model fit the recipe's 3 x 8 x 28 x 28 clips (and the CPU)
MODEL_OPTIONS: dict[str, dict] = {
    "single_frame": SMALL, "small3d": SMALL, "late_fusion_pool": SMALL,
    "late_fusion": {**SMALL, "num_frames": CLIP_LEN}, "early_fusion": {**SMALL, "num_frames": CLIP_LEN},
    "slow_fusion": {**SMALL, "temporal_kernels": [2, 2, 2, 1], "temporal_strides": [1, 2, 2, 1]},
    "lrcn": {"widths": [16, 32, 64, 128], "hidden_size": 128},
    "convlstm": {"stem_widths": [16, 32, 64], "hidden_channels": [64]},
    "gru_rcn": {"widths": [16, 32, 64], "hidden_channels": [16, 32, 32]},
    "timesformer": {"num_frames": CLIP_LEN, "img_size": CROP, "patch_size": 7, "dim": 96, "depth": 4, "heads": 4},
    "vivit": {"num_frames": CLIP_LEN, "img_size": CROP, "patch_size": 7, "tubelet_size": 2, "dim": 96,
              "spatial_depth": 3, "temporal_depth": 2, "heads": 4},
}
# the one departure from the recipe's clips: C3D's four temporal poolings need 16 frames
# (the motion dataset's whole 16-frame videos, stride 1) and its pool5 at least 32 px
CLIP_OVERRIDES: dict[str, dict] = {"c3d": {"clip_len": 16, "frame_stride": 1, "size": 32, "resize": 36}}
_C3D = CLIP_OVERRIDES["c3d"]
MODEL_OPTIONS["c3d"] = {"input_size": [_C3D["clip_len"], _C3D["size"], _C3D["size"]], "fc_width": 512}
# not trained here: feature-sequence heads (no video input), and models whose fixed input
# (224 px) or size makes CPU training impractical; their variants above cover the idea
SKIP = {"lstm_head": "takes feature sequences, not video",
        "tcn_head": "takes feature sequences, not video",
        "transformer_head": "takes feature sequences, not video",
        "spatial_stream": "a two-stream half: benchmarks/two_stream.py trains it beside the temporal stream",
        "temporal_stream": "takes flow stacks: benchmarks/two_stream.py",
        "two_stream": "takes (rgb, flow) pairs: benchmarks/two_stream.py",
        "two_stream_i3d": "takes (rgb, flow) pairs: benchmarks/two_stream.py",
        "t3d_121": "CPU-heavy; t3d_tiny covers the architecture",
        "t3d_169": "CPU-heavy; t3d_tiny covers the architecture",
        "mvit_v2_s": "needs 3x16x224x224 input: GPU-sized",
        "r2plus1d_34": "CPU-heavy; r2plus1d_18 covers the architecture",
        "r3d_50": "CPU-heavy; r3d_18 covers the architecture",
        "i3d_resnet50": "CPU-heavy; i3d_resnet18 covers the inflation",
        "timesformer_tiny": "covered by timesformer with the options above",
        "vivit_tiny": "covered by vivit with the options above"}


def run_one(name: str, data: DataSpec, epochs: int, out: Path, lr: float = 1e-3) -> dict:
    options = MODEL_OPTIONS.get(name, {})
    clips = {"clip_len": CLIP_LEN, "frame_stride": STRIDE, "size": CROP, "resize": RESIZE,
             **CLIP_OVERRIDES.get(name, {})}
    recipe = Recipe(model=name, classes=[], model_kwargs=options, flip=False, test_clips=3, **clips)
    with torch.device("meta"):
        shape = (3, clips["clip_len"], clips["size"], clips["size"])
        macs = summarize(create_model(name, num_classes=8, **options), shape).total_macs
    config = TrainConfig(epochs=epochs, batch_size=16, lr=lr, weight_decay=1e-4,
                         warmup_epochs=0.3 * epochs, progress=False)
    tic = time.perf_counter()
    result = train(recipe, data, config, out / name)
    seconds = time.perf_counter() - tic
    recipe, model = load_trained(out / name / "best.pt")
    test = data.build("test", recipe.sampler(False), recipe.transform(False))
    metrics = evaluate(model, test, batch_size=16)
    return {"model": name, "params": sum(p.numel() for p in model.parameters()), "gmacs": macs / 1e9,
            "s_per_epoch": seconds / epochs, "clip_acc": metrics["clip_acc"],
            "video_acc": metrics["video_acc1"], "best_val": result["best_val_acc"], "options": options,
            "clips": clips}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", help="comma-separated names (default: every registered model)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("runs/zoo"))
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (the recipe's: 1e-3)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    names = args.models.split(",") if args.models else [n for n in list_models() if n not in SKIP]
    root = make_motion_dataset(None, SyntheticConfig(), progress=True)
    data = DataSpec(format="folder", root=str(root))
    print(f"machine: {cpu_model()}, {torch.get_num_threads()} threads; "
          f"dataset {root}; clips 3x{CLIP_LEN}x{CROP}x{CROP} (stride {STRIDE}); {args.epochs} epochs, lr {args.lr:g}")
    rows = []
    for name in names:
        row = run_one(name, data, args.epochs, args.out, args.lr)
        rows.append(row)
        print(f"{name}: video acc {row['video_acc']:.3f} ({row['s_per_epoch']:.1f} s/epoch)", flush=True)
        (args.out / "zoo.json").write_text(json.dumps(rows, indent=2))
    print("\n| model | params | GMACs/clip | s/epoch | clip acc | video acc |\n|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['params']:,} | {r['gmacs']:.3f} | {r['s_per_epoch']:.1f} | "
              f"{r['clip_acc']:.3f} | {r['video_acc']:.3f} |")
    for name, why in SKIP.items():
        print(f"| {name} | not trained: {why} | | | | |")


if __name__ == "__main__":
    main()
