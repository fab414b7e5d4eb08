"""``deepvideo segment``: moving-object segmentation -- write the built-in set in DAVIS's
layout, train a U-Net (with or without a transformer bottleneck), score J&F on a DAVIS folder,
segment one video (thin commands over :mod:`deepvideo.segment`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from deepvideo.cli.options import (
    LibraryNames,
    UsageError,
    add_training_options,
    model_option,
    nonneg_float,
    nonneg_int,
    positive_int,
    print_json,
    train_config,
)

SEGMENTERS = LibraryNames("deepvideo.segment.models", "SEGMENTERS")


def checkpoint_or_flow(text: str) -> str:
    """``flow`` (the flow-threshold baseline) or an existing checkpoint file."""
    if text != "flow" and not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file (give a checkpoint, or flow for the baseline)")
    return text


def cmd_segment_synth(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from deepvideo.segment.synthetic import SEGMENT_SCENES, make_segment_dataset

    config = replace(SEGMENT_SCENES, size=args.size, num_frames=args.frames)
    root = make_segment_dataset(args.out, config, train=args.train, val=args.val, test=args.test, seed=args.data_seed)
    print(f"{root}: {args.train} train, {args.val} val, {args.test} test sequences of {args.frames} frames at "
          f"{args.size} px (DAVIS layout)")


def cmd_segment_train(args: argparse.Namespace) -> None:
    from deepvideo.segment.train import SEGMENT_TRAINING, train_segmenter

    result = train_segmenter(args.out, args.data, model=args.model, train=train_config(args, SEGMENT_TRAINING),
                             resume=args.resume, model_options=dict(args.model_opt or []), clip_len=args.clip_len,
                             size=args.size, flow=args.flow, clips_per_sequence=args.clips_per_sequence,
                             dice=args.dice)
    print(f"{result['checkpoint']}: best {result['monitor']} {result['best']:.3f} "
          f"(use with `deepvideo segment eval|run --checkpoint`)")


def cmd_segment_eval(args: argparse.Namespace) -> None:
    from deepvideo.segment.train import evaluate_masks, load_davis, segmenter

    if args.out is not None and args.out.exists() and any(args.out.iterdir()):
        raise UsageError(f"--out {args.out}: folder is not empty")
    sequences = load_davis(args.data, args.subset)
    if not sequences:
        raise UsageError(f"--data {args.data}: the {args.subset} image set names no sequence")
    result, predictions = evaluate_masks(sequences, segmenter(args.checkpoint, args.device, args.threshold),
                                         progress=not args.json)
    if args.out is not None:
        from deepvideo.segment.davis import write_masks

        for name, masks in predictions.items():
            write_masks(args.out / name, masks)
    table, rows = result.global_table(), result.per_sequence()
    if args.json:
        print_json({"subset": args.subset, "global": table, "sequences": rows})
        return
    scored = len(rows)
    print(f"{args.subset}: {len(sequences)} sequences ({scored} with a moving object in the first frame, scored)")
    width = max([len(name) for name in rows] + [8])
    print(f"{'sequence':<{width}}  J-Mean  F-Mean  J&F-Mean")
    for name, row in rows.items():
        print(f"{name:<{width}}  {row['J-Mean']:6.3f}  {row['F-Mean']:6.3f}  {row['J&F-Mean']:8.3f}")
    print(f"{'overall':<{width}}  {table['J-Mean']:6.3f}  {table['F-Mean']:6.3f}  {table['J&F-Mean']:8.3f}")


def cmd_segment_run(args: argparse.Namespace) -> None:
    from deepvideo.segment.apply import segment_video

    result = segment_video(args.video, args.checkpoint, args.out, video_out=args.video_out,
                           threshold=args.threshold, device=args.device, progress=True)
    print(f"{result['masks']}: {result['frames']} masks, {result['moving_fraction']:.1%} of the pixels moving"
          + (f"; {result['video_out']}: overlay" if result["video_out"] else ""))


def add_parser(sub) -> None:
    """``deepvideo segment synth|train|eval|run``."""
    p = sub.add_parser("segment", help="moving-object segmentation: built-in set, U-Nets, DAVIS J&F, run on a video",
                       description="Segment the objects that move (not the camera, not still objects) in every "
                       "frame: DAVIS folders, a U-Net with a transformer bottleneck (TransUNet-style) or without, "
                       "a flow-threshold baseline, DAVIS's J, F and J&F.")
    segment = p.add_subparsers(dest="segment_command", required=True, metavar="SUBCOMMAND")

    p = segment.add_parser("synth", help="write the built-in moving-object set in DAVIS's layout",
                           description="Scenes of moving objects, still distractors and a panning camera with "
                           "binary moving masks, as JPEGImages/Annotations/ImageSets; resumable.")
    p.add_argument("--out", type=Path, required=True, help="DAVIS root to write")
    p.add_argument("--train", type=nonneg_int, default=40, help="training sequences (default %(default)s)")
    p.add_argument("--val", type=nonneg_int, default=10, help="validation sequences (default %(default)s)")
    p.add_argument("--test", type=nonneg_int, default=10, help="test sequences (default %(default)s)")
    p.add_argument("--frames", type=positive_int, default=24, help="frames per sequence (default %(default)s)")
    p.add_argument("--size", type=positive_int, default=64, help="frame side, even, >= 32 (default %(default)s)")
    p.add_argument("--data-seed", type=int, default=0)
    p.set_defaults(func=cmd_segment_synth, command="segment synth")

    p = segment.add_parser("train", help="train a segmenter on a DAVIS folder",
                           description="Train --model on random clips of the train image set of --data, choosing "
                           "OUT/best.pt by J&F on its val image set.")
    p.add_argument("--data", type=Path, required=True, help="DAVIS root (JPEGImages, Annotations, ImageSets/2017)")
    p.add_argument("--model", default="unet_transformer", choices=SEGMENTERS, help="default %(default)s")
    p.add_argument("--model-opt", type=model_option, action="append", metavar="KEY=VALUE",
                   help="network option, repeatable (e.g. width=8, depth=3, layers=2, heads=4)")
    p.add_argument("--clip-len", type=positive_int, default=8, help="frames per training clip (default %(default)s)")
    p.add_argument("--size", type=positive_int, help="resize frames to SIZE x SIZE (default: as stored)")
    p.add_argument("--flow", action="store_true", help="add Farneback flow as two input channels")
    p.add_argument("--clips-per-sequence", type=positive_int, default=8,
                   help="random clips of each sequence per epoch (default %(default)s)")
    p.add_argument("--dice", type=nonneg_float, default=1.0, help="weight of the Dice loss (default %(default)s)")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    add_training_options(p)
    p.set_defaults(func=cmd_segment_train, command="segment train")

    p = segment.add_parser("eval", help="DAVIS J, F and J&F of a segmenter on a DAVIS folder",
                           description="J mean, F mean and J&F per sequence and overall (DAVIS's evaluation, "
                           "binary moving masks, every frame) of --checkpoint, or of the flow baseline (flow).")
    p.add_argument("--checkpoint", type=checkpoint_or_flow, required=True,
                   help="a run's best.pt, or flow for the flow-threshold baseline")
    p.add_argument("--data", type=Path, required=True, help="DAVIS root")
    p.add_argument("--subset", default="val", help="image set to score (default %(default)s)")
    p.add_argument("--threshold", type=nonneg_float,
                   help="flow baseline: residual speed threshold, px/frame (default: fitted on the built-in "
                   "set's train split)")
    p.add_argument("--out", type=Path, help="also write the predicted masks (OUT/<sequence>/*.png)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_segment_eval, command="segment eval")

    p = segment.add_parser("run", help="moving-object masks of one video",
                           description="Segment every frame of VIDEO; one DAVIS palette PNG per frame in --out, "
                           "and with --video-out the video with the moving pixels tinted.")
    p.add_argument("video", type=Path, help="a video file, frame folder or packed video")
    p.add_argument("--checkpoint", type=checkpoint_or_flow, required=True,
                   help="a run's best.pt, or flow for the flow-threshold baseline")
    p.add_argument("--out", type=Path, required=True, help="folder of the masks (00000.png, ...)")
    p.add_argument("--video-out", type=Path, help="also write the overlay video (.mp4)")
    p.add_argument("--threshold", type=nonneg_float,
                   help="flow baseline: residual speed threshold, px/frame (default: fitted on the built-in "
                   "set's train split)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_segment_run, command="segment run")
