"""``deepvideo detect``: temporal action detection in untrimmed videos -- train a detector on
cached features, score detections (ActivityNet mAP), find the actions of one video (thin
commands over :mod:`deepvideo.detect`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deepvideo.cli.options import (
    LibraryNames,
    UsageError,
    add_training_options,
    existing_file,
    model_option,
    positive_int,
    print_json,
    train_config,
)

DETECTORS = LibraryNames("deepvideo.detect.models", "DETECTORS")


def cmd_detect_train(args: argparse.Namespace) -> None:
    from deepvideo.detect.train import DETECT_TRAINING, train_detector

    result = train_detector(args.out, args.features, args.annotations, model=args.model,
                            train=train_config(args, DETECT_TRAINING), resume=args.resume, steps=args.steps,
                            model_options=dict(args.model_opt or []))
    print(f"{result['checkpoint']}: best {result['monitor']} {result['best']:.3f} "
          f"(use with `deepvideo detect eval|run --checkpoint`)")


def cmd_detect_eval(args: argparse.Namespace) -> None:
    from deepvideo.detect.annotations import read_activitynet, read_results, write_results
    from deepvideo.detect.metrics import ANET_THRESHOLDS, THUMOS_THRESHOLDS, detection_map
    from deepvideo.detect.train import FeatureVideos, evaluate_detector, feature_files, load_detector

    if (args.checkpoint is None) == (args.pred is None):
        raise UsageError("give --checkpoint (with --features) to detect and score, or --pred RESULTS.json to score")
    thresholds = THUMOS_THRESHOLDS if args.thresholds == "thumos14" else ANET_THRESHOLDS
    truth = read_activitynet(args.annotations, args.subset)
    if args.pred is not None:
        result = detection_map(truth, read_results(args.pred), thresholds)
    else:
        if args.features is None:
            raise UsageError("--checkpoint needs --features (the folder of deepvideo extract-features)")
        model, info = load_detector(args.checkpoint, args.device)
        videos = FeatureVideos(truth, feature_files(args.features), info["classes"], info["backbone"])
        if not len(videos):
            raise UsageError(f"--features {args.features}: none of the {len(truth)} {args.subset} videos has a "
                             f"feature file")
        result, predictions = evaluate_detector(model, videos, thresholds, args.device)
        truth = {name: truth[name] for name in videos.names}
        if args.out is not None:
            write_results(args.out, predictions)
        if videos.missing:
            print(f"deepvideo detect eval: skipped {len(videos.missing)} videos without features (first: "
                  f"{videos.missing[0]})", file=sys.stderr)
    if args.json:
        print_json(result.to_dict())
        return
    print(f"{args.subset}: {len(truth)} videos, {sum(result.num_ground_truth.values())} ground-truth segments, "
          f"{sum(result.num_predictions.values())} predictions")
    print(result.format())
    if args.out is not None and args.checkpoint is not None:
        print(f"{args.out}: predictions (ActivityNet result format)")


def cmd_detect_run(args: argparse.Namespace) -> None:
    from deepvideo.detect.apply import detect_video, segments_to_csv

    result = detect_video(args.video, args.checkpoint, args.backbone, every=args.every, size=args.size,
                          clip_len=args.clip_len, weights=args.weights, min_score=args.min_score,
                          video_out=args.video_out,
                          device=args.device, progress=True)
    if args.output_format == "csv":
        print(segments_to_csv(result["segments"]), end="")
    else:
        print_json(result)


def add_parser(sub) -> None:
    """``deepvideo detect train|eval|run``."""
    p = sub.add_parser("detect", help="temporal action detection: train on cached features, mAP, run on a video",
                       description="Find when each action happens in untrimmed videos (Montes et al. 2016; "
                       "ActionFormer-style): detectors over clip features cached by extract-features, "
                       "ActivityNet/THUMOS14 annotations, mAP as ActivityNet's evaluator computes it.")
    detect = p.add_subparsers(dest="detect_command", required=True, metavar="SUBCOMMAND")

    p = detect.add_parser("train", help="train a detector on the features of annotated videos",
                          description="Train --model on the features (--features, from deepvideo extract-features) "
                          "of the training videos of --annotations (ActivityNet JSON), choosing OUT/best.pt by mAP "
                          "(0.3:0.1:0.7) on its validation videos.")
    p.add_argument("--features", required=True, type=Path, help="folder of feature files (<video name>.npz)")
    p.add_argument("--annotations", required=True, type=existing_file, help="ActivityNet JSON")
    p.add_argument("--model", default="anchor_free", choices=DETECTORS, help="default %(default)s")
    p.add_argument("--model-opt", type=model_option, action="append", metavar="KEY=VALUE",
                   help="detector option, repeatable (e.g. hidden=64 for rnn, levels=3 or soft_nms=true for "
                   "anchor_free)")
    p.add_argument("--steps", type=positive_int, default=256,
                   help="feature rows per training window (default %(default)s)")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    add_training_options(p)
    p.set_defaults(func=cmd_detect_train, command="detect train")

    p = detect.add_parser("eval", help="detection mAP of a detector, or of any result file",
                          description="mAP per tIoU threshold, its average and per class, exactly as ActivityNet's "
                          "Evaluation/eval_detection.py: of --checkpoint run on --features, or of the detections "
                          "in --pred (ActivityNet result format).")
    p.add_argument("--annotations", required=True, type=existing_file, help="ActivityNet JSON (ground truth)")
    p.add_argument("--subset", default="testing", help="annotation subset to score (default %(default)s)")
    p.add_argument("--checkpoint", type=existing_file, help="a detector from deepvideo detect train")
    p.add_argument("--features", type=Path, help="with --checkpoint: folder of feature files")
    p.add_argument("--pred", type=existing_file, help="detections to score (ActivityNet result JSON)")
    p.add_argument("--thresholds", default="thumos14", choices=("thumos14", "activitynet"),
                   help="tIoU thresholds: thumos14 0.3:0.1:0.7, activitynet 0.5:0.05:0.95 (default %(default)s)")
    p.add_argument("--out", type=Path, help="with --checkpoint: also write its detections (ActivityNet result JSON)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_detect_eval, command="detect eval")

    p = detect.add_parser("run", help="the actions of one long video (start, end, label, score)",
                          description="Decode VIDEO in chunks, compute its clip features with --backbone (the one "
                          "the detector's features came from), detect, and print the segments; memory stays "
                          "flat in the video's length.")
    p.add_argument("video", type=existing_file)
    p.add_argument("--checkpoint", required=True, type=existing_file, help="a detector from deepvideo detect train")
    p.add_argument("--backbone", required=True,
                   help="the backbone of the detector's features: a checkpoint or a model name, as given to "
                   "extract-features")
    p.add_argument("--weights", type=existing_file, help="as given to extract-features (a named backbone)")
    p.add_argument("--size", type=positive_int, help="as given to extract-features (a named backbone)")
    p.add_argument("--clip-len", type=positive_int, default=16, help="as given to extract-features (a named "
                   "video backbone; default %(default)s)")
    p.add_argument("--every", type=positive_int, help="as given to extract-features")
    p.add_argument("--min-score", type=float, default=0.1, help="segments below are left out (default %(default)s)")
    p.add_argument("--output-format", default="json", choices=("json", "csv"))
    p.add_argument("--video-out", type=Path, help="also write VIDEO with the current action drawn (.mp4)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_detect_run, command="detect run")
