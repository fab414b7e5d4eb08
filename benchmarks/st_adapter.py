"""From an image model to a video model: ST-Adapter against the frozen and the fully fine-tuned ViT.

1. Pretrain the CPU-sized image ViT (``vit_tiny_frames`` with 8x8 patches of 32-pixel frames,
   on one-frame videos: no motion) on still frames cut from the motion dataset's renderer
   (another seed than the fine-tuning splits): each still is labelled by the quadrant of the
   frame its object's centre lies in (from the object's box; balanced 4 classes).
2. Fine-tune on the motion dataset (8 classes that differ only in motion; --train videos per
   class) from those weights, three ways with the same recipe and epochs:
   ``frozen + linear`` (``vit_tiny_frames`` with ``--freeze-backbone``: the frame-averaged
   image model, it cannot see the order of frames), ``full fine-tuning`` (the same network,
   every weight trains: still frame-averaged) and ``ST-Adapter`` (``st_adapter_vit_tiny``:
   only the adapters and the head train).  ``--scratch`` adds ST-Adapter on a random ViT.
   Horizontal flips swap left/right and clockwise/anticlockwise (``flip_swap``).
3. Print a markdown row per way: trainable parameters and their share, test video accuracy on
   the held-out test videos, training wall time.

    OMP_NUM_THREADS=1 python benchmarks/st_adapter.py --out runs/st_adapter
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from safetensors.torch import save_file

from deepvideo.data.synthetic import SyntheticConfig, make_motion_dataset, render_object, video_rng
from deepvideo.engine import DataSpec, Recipe, TrainConfig, Transfer, train
from deepvideo.engine.classify import evaluate_checkpoints
from deepvideo.engine.recipe import load_trained
from deepvideo.io import write_video
from deepvideo.io.atomic import atomic_write_text

SIDE, PATCH = 32, 8
FLIP_SWAP = [("left", "right"), ("rotate_cw", "rotate_ccw")]


def write_stills(out: Path, synth: SyntheticConfig) -> Path:
    """``out/<split>/<quadrant>/<name>.mp4``: one frame of every video ``synth`` describes (a
    seeded random frame), as a one-frame video in the folder of its object's quadrant."""
    for split in ("train", "val"):
        for cls in synth.classes:
            for index in range(getattr(synth, split)):
                name = f"{cls}_{index:04d}.mp4"
                if any((out / split).glob(f"*/{name}")):
                    continue
                rendered = render_object(cls, video_rng(synth, split, cls, index), synth)
                t = int(np.random.default_rng((synth.seed, index)).integers(synth.num_frames))
                x, y, w, h = rendered.boxes[t]
                quadrant = ("top", "bottom")[int(y + h / 2 >= synth.size / 2)] + "_" + \
                    ("left", "right")[int(x + w / 2 >= synth.size / 2)]
                write_video(out / split / quadrant / name, rendered.frames[t:t + 1], fps=synth.fps)
    return out


def vit_weights(checkpoint: Path, out: Path) -> Path:
    """The image ViT of a ``vit_tiny_frames`` checkpoint as a torchvision-keyed file."""
    _, model = load_trained(checkpoint)
    save_file({k.removeprefix("vit."): v.contiguous() for k, v in model.state_dict().items()
               if k.startswith("vit.")}, str(out))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/st_adapter")
    parser.add_argument("--stills", type=int, default=300, help="pretraining stills per motion class")
    parser.add_argument("--still-epochs", type=int, default=40)
    parser.add_argument("--train", type=int, default=40, help="fine-tuning videos per class")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--frames", type=int, default=8, help="frames per clip (every other frame of 16)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scratch", action="store_true", help="also ST-Adapter on a random ViT")
    args = parser.parse_args()
    out = Path(args.out)
    vit = {"image_size": SIDE, "patch_size": PATCH}

    still_synth = SyntheticConfig(train=args.stills, val=max(args.stills // 10, 2), test=0, seed=1)
    stills = DataSpec(format="folder", root=str(write_stills(out / "stills", still_synth)))
    tic = time.perf_counter()
    if not (out / "still" / "best.pt").is_file():
        train(Recipe(model="vit_tiny_frames", classes=[], model_kwargs=vit, clip_len=1, size=SIDE, resize=SIDE,
                     flip=False, test_clips=1),
              stills, TrainConfig(epochs=args.still_epochs, batch_size=32, lr=5e-4, seed=args.seed), out / "still")
    still_seconds = time.perf_counter() - tic
    still_acc = evaluate_checkpoints([out / "still" / "best.pt"], stills, "val")["final"]["video_acc1"]
    weights = str(vit_weights(out / "still" / "best.pt", out / "vit_tiny_stills.safetensors"))

    synth = SyntheticConfig(train=args.train)
    data = DataSpec(format="folder", root=str(make_motion_dataset(out / "motion", synth, progress=True)))
    config = TrainConfig(epochs=args.epochs, batch_size=16, lr=3e-3, weight_decay=1e-4,
                         warmup_epochs=0.3 * args.epochs, seed=args.seed)
    ways = {"frozen + linear": ("vit_tiny_frames", weights, Transfer(freeze_backbone=True)),
            "full fine-tuning": ("vit_tiny_frames", weights, None),
            "ST-Adapter": ("st_adapter_vit_tiny", weights, None)}
    if args.scratch:
        ways["ST-Adapter, random ViT"] = ("st_adapter_vit_tiny", None, None)
    rows = [f"still-frame pretraining ({len(still_synth.classes) * args.stills} stills, 4 quadrants, "
            f"{args.still_epochs} epochs): val accuracy {still_acc:.3f}, {still_seconds:.0f} s",
            "", "| way | trainable / total params | share | test video acc | train time |",
            "|---|---|---|---|---|"]
    for way, (model, init, transfer) in ways.items():
        run = out / way.replace(" ", "_").replace("+", "").replace(",", "")
        recipe = Recipe(model=model, classes=[], model_kwargs={**vit, **({"weights": init} if init else {})},
                        clip_len=args.frames, frame_stride=synth.num_frames // args.frames, size=SIDE, resize=SIDE,
                        flip=True, flip_swap=FLIP_SWAP, test_clips=1)
        tic = time.perf_counter()
        if not (run / "best.pt").is_file():
            train(recipe, data, config, run, transfer=transfer)
        seconds = time.perf_counter() - tic
        net = recipe.build_model()
        if transfer is not None:
            transfer.apply(net, model)
        total = sum(p.numel() for p in net.parameters())
        trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
        acc = evaluate_checkpoints([run / "best.pt"], data, "test")["final"]["video_acc1"]
        rows.append(f"| {way} | {trainable:,} / {total:,} | {trainable / total:.1%} | {acc:.3f} | {seconds:.0f} s |")
        print(rows[-1], flush=True)
    rows.append(f"\nchance {1 / len(synth.classes):.3f}; {synth.train} training and {synth.test} test videos "
                f"per class; {args.frames} frames of {SIDE}x{SIDE} per clip")
    atomic_write_text(out / "results.md", "\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
