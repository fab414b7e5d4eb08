"""Compositional generalisation of a video-text dual encoder on the captioned motion dataset.

Writes the captioned motion dataset (``deepvideo.language.make_captioned_motion_dataset``) with
the (shape, motion) combinations of ``HOLDOUT`` kept out of its train and val splits entirely (its test
split holds only them), trains a dual encoder on the train captions (``train_clip``: CLIP's
symmetric InfoNCE, a learned temperature; video tower ``small3d`` without its classifier, which
sees the order of frames; text tower CLIP's transformer over CLIP's BPE tokens, from scratch),
then measures on the held-out combinations -- shapes moving in ways never seen with those
shapes -- and, for reference, on the seen combinations of the val split:

* text-to-video retrieval (MSR-VTT protocol: each video's canonical caption "a {size} {colours}
  {shape} moving {direction} on a noisy background" queries all videos of the split; R@1, R@5,
  R@10, median rank; the number of candidates is printed);
* zero-shot accuracy over the 8 directions from the texts "moving {direction}" (CLIP's prompt
  ensemble over ``deepvideo.language.TEMPLATES``; chance 1/8).

    OMP_NUM_THREADS=1 python benchmarks/clip_compositional.py --out runs/clip_compositional

(one thread: on a 2-core machine shared with another training job, two threads ran the video
tower's training step 14x slower than one)
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from deepvideo.language import (
    CLIP_TRAINING,
    DIRECTIONS,
    CaptionedConfig,
    ClipSpec,
    Tokenizer,
    class_embeddings,
    embed_texts,
    embed_videos,
    load_clip_checkpoint,
    make_captioned_motion_dataset,
    parse_captions,
    retrieval_metrics,
    train_clip,
)

# one held-out combination per motion, every shape held out once or twice, so every shape and
# every motion is still seen in training with other partners
HOLDOUT = (("square", "right"), ("triangle", "left"), ("cross", "down"), ("arrow", "up"), ("ell", "rotate_cw"),
           ("pacman", "rotate_ccw"), ("star", "grow"), ("triangle", "shrink"))


def evaluate(model, spec, root: Path, split: str) -> dict:
    """Text-to-video retrieval with canonical captions and zero-shot direction accuracy on ``split``."""
    captions = parse_captions(root / "captions" / f"{split}.tsv", root)
    paths = list(captions)
    videos, used, skipped = embed_videos(model, spec, paths)
    assert not skipped, skipped
    tokenizer = Tokenizer(spec.context_length)
    queries = [captions[path][0] for path in used]  # the canonical caption
    retrieval = retrieval_metrics(embed_texts(model, tokenizer, queries) @ videos.T, np.arange(len(used)))
    motions = list(DIRECTIONS)
    classifier = class_embeddings(model, tokenizer, [f"moving {DIRECTIONS[m]}" for m in motions])
    truth = torch.tensor([motions.index(path.parent.name) for path in used])
    predicted = (videos @ classifier.T).argmax(1)
    per_motion = {m: float((predicted[truth == i] == i).float().mean()) for i, m in enumerate(motions)
                  if (truth == i).any()}
    return {"videos": len(used), "duplicate_queries": len(queries) - len(set(queries)), "t2v": retrieval,
            "zero_shot": float((predicted == truth).float().mean()), "zero_shot_per_motion": per_motion}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the dataset and the run")
    parser.add_argument("--train", type=int, default=2400, help="training videos (default %(default)s)")
    parser.add_argument("--val", type=int, default=96, help="val videos, seen combinations (default %(default)s)")
    parser.add_argument("--test", type=int, default=64, help="test videos, held-out combinations (default %(default)s)")
    parser.add_argument("--captions", type=int, default=1, help="captions per video (default %(default)s)")
    parser.add_argument("--epochs", type=int, default=22)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--widths", default="16,32,64,128", help="small3d stage widths (default %(default)s)")
    parser.add_argument("--embed-dim", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.perf_counter()
    config = CaptionedConfig(train=args.train, val=args.val, test=args.test, holdout=HOLDOUT, num_frames=8, size=32,
                             captions=args.captions)
    root = make_captioned_motion_dataset(args.out / "data", config)
    made = time.perf_counter() - start
    spec = ClipSpec(embed_dim=args.embed_dim, video_encoder="backbone",
                    video_options={"model": "small3d", "model_kwargs": {"widths": [int(w) for w in
                                                                                  args.widths.split(",")]}},
                    text_options={"context_length": 32, "width": 128, "heads": 4, "layers": 2},
                    clip_len=8, size=32, resize=36)  # random 32-pixel crops: position is not in the captions
    train = replace(CLIP_TRAINING, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                    channels_last=True)
    result = train_clip(args.out / "run", root, root / "captions" / "train.tsv", spec, train, val_fraction=0.1)
    trained = time.perf_counter() - start - made
    last = result["history"][-1]
    print(f"trained {args.epochs} epochs on {len(result['train_videos'])} videos in {trained:.0f}s: train loss "
          f"{last['train_loss']:.3f}, val loss {last['val_loss']:.3f}, logit scale {last['val_scale']:.1f}", flush=True)
    model, spec = load_clip_checkpoint(result["checkpoint"])
    report = {"held_out": evaluate(model, spec, root, "test"), "seen": evaluate(model, spec, root, "val"),
              "holdout": HOLDOUT, "train_videos": len(result["train_videos"]), "epochs": args.epochs,
              "data_s": made, "train_s": trained, "total_s": time.perf_counter() - start}
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    print(f"held out: {', '.join(f'{s}+{m}' for s, m in HOLDOUT)}")
    print("| combinations | videos = candidates | t2v R@1 | R@5 | R@10 | median rank | zero-shot direction acc "
          "(chance 0.125) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, key in (("held out (never trained on)", "held_out"), ("seen (val split)", "seen")):
        row = report[key]
        t2v = row["t2v"]
        print(f"| {name} | {t2v['candidates']} | {t2v['r1']:.3f} | {t2v['r5']:.3f} | {t2v['r10']:.3f} | "
              f"{t2v['median_rank']:.0f} | {row['zero_shot']:.3f} |")
    print("held-out zero-shot per motion: " + ", ".join(f"{m} {a:.2f}" for m, a in
                                                        report["held_out"]["zero_shot_per_motion"].items()))
    print(f"duplicate canonical captions among the held-out queries: {report['held_out']['duplicate_queries']}")
    print(f"wall time {report['total_s']:.0f}s (dataset {made:.0f}s, training {trained:.0f}s)")


if __name__ == "__main__":
    main()
