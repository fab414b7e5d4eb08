"""``deepvideo pretrain``: self-supervised pretraining of a backbone on unlabelled videos (a
thin command over :func:`deepvideo.ssl.pretrain`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deepvideo.cli.options import (
    LibraryNames,
    add_training_options,
    fraction,
    model_option,
    positive_int,
    train_config,
)

PRETEXT_TASKS = LibraryNames("deepvideo.ssl.pretext", "PRETEXT_TASKS")


def cmd_pretrain(args: argparse.Namespace) -> None:
    from deepvideo.engine.distributed import launch_rank
    from deepvideo.ssl import PRETRAINING, pretrain

    result = pretrain(args.out, args.data, args.task, args.model, train_config(args, PRETRAINING), args.resume,
                      model_kwargs=dict(args.model_opt or []), task_options=dict(args.task_opt or []),
                      size=args.size, resize=args.resize, defences=not args.no_defences,
                      samples_per_video=args.samples_per_video, val_fraction=args.val_fraction)
    if launch_rank() == 0:
        if result["skipped"]:
            print(f"deepvideo pretrain: left out {len(result['skipped'])} videos (first: {result['skipped'][0]})",
                  file=sys.stderr)
        print(f"best pretext {result['monitor']} {result['best']:.3f} on {len(result['val_videos'])} held-out videos; "
              f"checkpoint {result['checkpoint']} (use with `deepvideo train --init`)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="self-supervised pretraining of a backbone on unlabelled videos",
                       description="Train MODEL's backbone on a pretext task whose labels come from the videos "
                       "under DATA (recursively; class folders and labels are ignored): shuffle (Shuffle & Learn, "
                       "frame-order verification, 2D frame models), order (VCOP clip order), arrow (forward or "
                       "backward), speed (frame stride), contrastive (two clips of one video, InfoNCE). Writes "
                       "OUT/metrics.csv with the pretext accuracy per epoch (train_acc; val_acc on held-out "
                       "videos), OUT/curves.png, OUT/last.pt and OUT/best.pt; start a classifier from it with "
                       "`deepvideo train --init OUT/best.pt`. Data-parallel: torchrun --nproc_per_node=N -m "
                       "deepvideo pretrain ...")
    group = p.add_argument_group("pretext task")
    group.add_argument("--task", required=True, choices=PRETEXT_TASKS, help="the pretext task")
    group.add_argument("--task-opt", type=model_option, action="append", metavar="KEY=VALUE",
                   help="pretext task option, repeatable (e.g. --task-opt clip_len=8, --task-opt speeds=[1,2,4])")
    p.add_argument("--model", required=True, help="a name from `deepvideo models` (its classifier is removed)")
    p.add_argument("--model-opt", type=model_option, action="append", metavar="KEY=VALUE",
                   help="model option, repeatable; use the same ones for `deepvideo train --init`")
    p.add_argument("--data", type=Path, required=True, help="a folder of videos, searched recursively")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--size", type=positive_int, default=112, help="crop side (default %(default)s)")
    p.add_argument("--resize", type=positive_int, default=128, help="short side before cropping (default %(default)s)")
    p.add_argument("--samples-per-video", type=positive_int, default=1,
                   help="pretext samples drawn from each video per epoch (default %(default)s)")
    p.add_argument("--val-fraction", type=fraction, default=0.1,
                   help="videos held out to measure the pretext accuracy (default %(default)s)")
    p.add_argument("--no-defences", action="store_true",
                   help="one crop for all clips of a sample and no colour jitter (to measure what the "
                   "shortcut defences are worth)")
    add_training_options(p)
    p.set_defaults(func=cmd_pretrain)
