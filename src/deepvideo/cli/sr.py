"""``deepvideo sr``: train, evaluate and apply video super-resolution (thin commands over
:mod:`deepvideo.sr`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from deepvideo.cli.options import (
    LibraryNames,
    add_training_options,
    existing_file,
    model_option,
    positive_int,
    print_json,
    train_config,
)

SCALES = LibraryNames("deepvideo.sr.degrade", "SCALES")
DEGRADATIONS = LibraryNames("deepvideo.sr.degrade", "DEGRADATIONS")


def cmd_sr_train(args: argparse.Namespace) -> None:
    from deepvideo.sr import SR_TRAINING, train_sr

    result = train_sr(args.out, args.data, val_videos=args.val_videos or (), model=args.model, scale=args.scale,
                      degradation=args.degradation, train=train_config(args, SR_TRAINING), resume=args.resume,
                      patch=args.patch, frames=args.frames, clips_per_epoch=args.clips_per_epoch,
                      val_frames=args.val_frames, max_frames=args.max_frames,
                      model_options=dict(args.model_opt or []))
    print(f"{result['checkpoint']}: best {result['monitor']} {result['best']:.3f} "
          f"(use with `deepvideo sr eval|upscale --checkpoint`)")


def cmd_sr_eval(args: argparse.Namespace) -> None:
    from deepvideo.sr import evaluate_sr

    samples = args.out / "samples.png" if args.out else None
    result = evaluate_sr(args.checkpoint, args.data, scale=args.scale, degradation=args.degradation,
                         frames=args.frames, device=args.device, samples=samples, progress=not args.json)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    if args.json:
        print_json(result)
        return
    print(f"x{result['scale']} {result['degradation'].upper()}, {result['scale']} px cropped at each border")
    width = max(len(name) for name in [*result["videos"], "video"])
    model_width = max(len(name) for name in result["rows"])
    print(f"{'video':<{width}}  {'model':<{model_width}}  Y-PSNR  Y-SSIM    tOF")
    for video in [*result["videos"], "mean"]:
        for i, (name, row) in enumerate(result["rows"].items()):
            score = row[video]
            label = video if i == 0 else ""
            print(f"{label:<{width}}  {name:<{model_width}}  {score['psnr']:6.2f}  {score['ssim']:.4f}  "
                  f"{score['tof']:5.3f}")
    for path, why in result["skipped"]:
        print(f"skipped {path}: {why}")
    if samples is not None:
        print(f"{samples}: LR | bicubic | models | HR crops")


def cmd_sr_upscale(args: argparse.Namespace) -> None:
    from deepvideo.sr import upscale_video

    info = upscale_video(args.video, args.checkpoint, args.out, side_by_side=args.side_by_side, scale=args.scale,
                         device=args.device)
    width, height = info["size"]
    print(f"{args.out}: {info['frames']} frames, {width}x{height}, {info['fps']:g} fps")


def add_parser(sub) -> None:
    """``deepvideo sr train|eval|upscale``."""
    p = sub.add_parser("sr", help="video super-resolution: train SRNet/FRVSR on any videos, evaluate, upscale",
                       description="Video super-resolution (FRVSR, Sajjadi et al. 2018): training pairs made "
                       "from any videos by a known degradation, Y-PSNR/Y-SSIM/tOF evaluation against the "
                       "bicubic baseline, and upscaling of videos.")
    sr = p.add_subparsers(dest="sr_command", required=True, metavar="SUBCOMMAND")

    p = sr.add_parser("train", help="train an SR model on a folder of videos (no labels)",
                      description="Train on random HR crops of the videos under --data and their LR crops "
                      "(--degradation), validated on --val-videos (held out from training by name). Writes "
                      "OUT/best.pt, OUT/last.pt, OUT/metrics.csv and OUT/curves.png; --resume continues.")
    p.add_argument("--data", type=Path, nargs="+", required=True, metavar="VIDEOS",
                   help="video files or folders of videos")
    p.add_argument("--val-videos", type=Path, nargs="+", metavar="VIDEO",
                   help="held-out video files or folders for validation (excluded from --data)")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    group = p.add_argument_group("model")
    group.add_argument("--model", default="frvsr", help="srnet or frvsr (default %(default)s)")
    group.add_argument("--scale", type=int, default=4, choices=SCALES, help="2 or 4 (default %(default)s)")
    group.add_argument("--degradation", default="bd", choices=DEGRADATIONS,
                       help="bd: Gaussian blur sigma 1.5 + decimation; bi: bicubic (default %(default)s)")
    group = p.add_argument_group("samples")
    group.add_argument("--patch", type=positive_int, default=128, help="HR crop side (default %(default)s)")
    group.add_argument("--frames", type=positive_int, default=10, help="frames per clip (default %(default)s)")
    group.add_argument("--clips-per-epoch", type=positive_int, default=400, help="default %(default)s")
    group.add_argument("--val-frames", type=positive_int, default=20,
                       help="first frames of each validation video (default %(default)s)")
    group.add_argument("--max-frames", type=positive_int, default=300,
                       help="first frames of each training video held in memory (default %(default)s)")
    group.add_argument("--model-opt", type=model_option, action="append", metavar="KEY=VALUE",
                       help="model option, repeatable (channels, blocks, upsample, fnet_width; the paper's "
                       "sizes: channels=64 blocks=10 upsample=transposed fnet_width=32)")
    add_training_options(p)
    p.set_defaults(func=cmd_sr_train, command="sr train")

    p = sr.add_parser("eval", help="Y-PSNR, Y-SSIM and tOF against the bicubic baseline",
                      description="Degrade each video under --data, super-resolve it with every --checkpoint "
                      "and the bicubic baseline, and score the frames against the originals: Y-PSNR and "
                      "Y-SSIM as BasicSR (scale pixels cropped at each border), tOF as TecoGAN.")
    p.add_argument("--checkpoint", nargs="+", required=True,
                   help="best.pt of `deepvideo sr train` runs, or bicubic")
    p.add_argument("--data", type=Path, nargs="+", required=True, metavar="VIDEOS",
                   help="video files or folders of videos (the HR ground truth)")
    p.add_argument("--frames", type=positive_int, help="score only the first frames of each video")
    p.add_argument("--out", type=Path, help="folder for samples.png (LR | bicubic | models | HR crops)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    group = p.add_argument_group("degradation")
    group.add_argument("--scale", type=int, choices=SCALES, help="2 or 4 (default: the checkpoint's)")
    group.add_argument("--degradation", choices=DEGRADATIONS, help="bd or bi (default: the checkpoint's)")
    p.set_defaults(func=cmd_sr_eval, command="sr eval")

    p = sr.add_parser("upscale", help="super-resolve a video",
                      description="Upscale every frame of VIDEO with --checkpoint, one frame of state held "
                      "at a time; the frame rate is kept, audio dropped.")
    p.add_argument("video", type=existing_file)
    p.add_argument("--checkpoint", required=True, help="best.pt of `deepvideo sr train`, or bicubic")
    p.add_argument("--out", type=Path, required=True, help="output video (.mp4, .mkv, .mov or .avi)")
    p.add_argument("--side-by-side", action="store_true", help="write bicubic | model next to each other")
    p.add_argument("--device", default="cpu")
    group = p.add_argument_group("bicubic")
    group.add_argument("--scale", type=int, choices=SCALES, help="bicubic's scale, 2 or 4 (default 4); else the "
                       "checkpoint's")
    p.set_defaults(func=cmd_sr_upscale, command="sr upscale")
