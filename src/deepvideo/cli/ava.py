"""``deepvideo ava``: spatio-temporal action detection -- write the built-in benchmark, train
an actor action detector on AVA-format data, score it (AVA frame-mAP), run it on a video
(thin commands over :mod:`deepvideo.ava`)."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from deepvideo.cli.options import (
    LibraryNames,
    UsageError,
    add_training_options,
    existing_file,
    label_pair,
    model_option,
    nonneg_float,
    positive_int,
    print_json,
    train_config,
)

AVA_MODELS = LibraryNames("deepvideo.ava.model", "AVA_MODELS")
BOX_DETECTORS = LibraryNames("deepvideo.track.detect", "DETECTORS")
TRACKERS = LibraryNames("deepvideo.track.mot", "TRACKERS")


def _layout(args: argparse.Namespace) -> dict[str, Path | None]:
    """The files of ``--data ROOT`` (the layout of ``deepvideo ava synth``), each overridden
    by its own flag."""
    root = args.data
    defaults = {"videos": "videos", "train_csv": "annotations/train.csv", "val_csv": "annotations/val.csv",
                "label_map": "annotations/label_map.pbtxt"}
    paths = {}
    for name, relative in defaults.items():
        given = getattr(args, name, None)
        paths[name] = given if given is not None else (root / relative if root is not None else None)
    missing = [name for name in ("videos", "label_map") if paths[name] is None]
    if missing:
        raise UsageError(f"give --data ROOT or --{missing[0].replace('_', '-')}")
    return paths


def cmd_ava_synth(args: argparse.Namespace) -> None:
    from deepvideo.ava.synthetic import AvaSynthConfig, make_ava_dataset

    config = AvaSynthConfig(train=args.train, val=args.val, seconds=args.seconds, size=args.size,
                            camera=args.camera, seed=args.seed)
    print(make_ava_dataset(args.out, config))


def cmd_ava_train(args: argparse.Namespace) -> None:
    from deepvideo.ava.train import AVA_TRAINING, train_ava

    paths = _layout(args)
    if paths["train_csv"] is None:
        raise UsageError("give --data ROOT or --train-csv")
    val = paths["val_csv"] if paths["val_csv"] is not None and paths["val_csv"].is_file() else None
    result = train_ava(args.out, paths["videos"], paths["train_csv"], paths["label_map"], val, model=args.model,
                       train=train_config(args, AVA_TRAINING), resume=args.resume,
                       model_options=dict(args.model_opt or []), size=args.size, flip=args.flip,
                       flip_swap=args.flip_swap or (), excluded=args.excluded, time_offset=args.time_offset or 0)
    print(f"{result['checkpoint']}: best {result['monitor']} {result['best']:.3f} "
          f"(use with `deepvideo ava eval|run --checkpoint`)")


def _print_map(result: dict, what: str) -> None:
    print(f"{what}: frame-mAP@{result['iou']:g} {result['mAP']:.3f} over {result['num_frames']} keyframes")
    for entry in result["per_class"].values():
        ap = "  -  " if entry["num_groundtruth"] == 0 else f"{entry['AP']:.3f}"
        print(f"  {entry['name']:<24} AP {ap}  ({entry['num_groundtruth']} boxes)")


def cmd_ava_eval(args: argparse.Namespace) -> None:
    from deepvideo.ava.annotations import (
        read_detections,
        read_excluded,
        read_groundtruth,
        read_label_map,
        write_detections,
    )
    from deepvideo.ava.metrics import frame_map
    from deepvideo.ava.train import KeyframeSet, evaluate_ava, keyframes_of, load_ava_model, video_files

    if (args.checkpoint is None) == (args.pred is None):
        raise UsageError("give --checkpoint (with --data or --videos) to detect and score, or --pred DETECTIONS.csv")
    paths = _layout(args)
    truth_csv = args.annotations or paths["val_csv"]
    if truth_csv is None:
        raise UsageError("give --data ROOT or --annotations GROUND_TRUTH.csv")
    labels = read_label_map(paths["label_map"])
    excluded = read_excluded(args.excluded) if args.excluded else set()
    if args.pred is not None:
        result = frame_map(read_groundtruth(truth_csv), read_detections(args.pred), labels, excluded)
    else:
        model, info = load_ava_model(args.checkpoint, args.device)
        unknown = sorted(set(info["classes"]) - set(labels))
        if unknown:
            raise UsageError(f"--checkpoint {args.checkpoint}: its action ids {unknown[:5]} are not in the label map "
                             f"{paths['label_map']} (trained on another label map?)")
        keyframes = keyframes_of(read_groundtruth(truth_csv, skip_bad=True), excluded)
        offset = info["time_offset"] if args.time_offset is None else args.time_offset
        found = KeyframeSet(keyframes, video_files(paths["videos"]), info["classes"], model.clip_len, info["size"],
                            time_offset=offset)
        if not len(found):
            raise UsageError(f"--videos {paths['videos']}: none of the videos of {truth_csv} is there")
        if found.missing:  # their keyframes are not scored at all (not counted as missed)
            warnings.warn(f"{paths['videos']}: {len(found.missing)} videos of {truth_csv} are not there, their "
                          f"keyframes left out of the score (first: {found.missing[0]})", stacklevel=2)
        result, detections = evaluate_ava(model, found, labels, args.device, progress=True)
        if args.out is not None:
            write_detections(args.out, detections)
    if args.json:
        print_json(result)
    else:
        _print_map(result, str(truth_csv))
        if args.out is not None and args.checkpoint is not None:
            print(f"{args.out}: detections (AVA CSV)")


def cmd_ava_run(args: argparse.Namespace) -> None:
    from deepvideo.ava.annotations import write_detections
    from deepvideo.ava.apply import detect_actions

    if (args.boxes is None) == (args.detector is None):
        raise UsageError("give --boxes BOXES.csv (AVA CSV) or --detector NAME, one of the two")
    detector = None
    if args.detector is not None:
        from deepvideo.track.detect import make_detector

        detector = make_detector(args.detector, weights=args.weights, device=args.device,
                                 options=dict(args.detector_opt or []))
    tracker = None
    if args.tracker is not None:
        from deepvideo.track.mot import make_tracker

        tracker = make_tracker(args.tracker)
    rows = detect_actions(args.video, args.checkpoint, boxes=args.boxes, detector=detector, tracker=tracker,
                          min_box_score=args.min_box_score, min_score=args.min_score, video_out=args.video_out,
                          device=args.device, progress=True, time_offset=args.time_offset)
    if args.out is not None:
        write_detections(args.out, rows)
        print(f"{args.out}: {len(rows)} detections (AVA CSV)")
    else:
        print_json([{"timestamp": r.timestamp, "box": list(r.box), "person_id": r.person_id,
                     "action_id": r.action_id, "score": r.score} for r in rows])
    if args.video_out is not None:
        print(f"{args.video_out}: boxes and their best action drawn")


def _add_layout(p: argparse.ArgumentParser, train: bool) -> None:
    p.add_argument("--data", type=Path, help="a folder laid out as `deepvideo ava synth` writes it (videos/, "
                   "annotations/train.csv, val.csv, label_map.pbtxt); the flags below override its parts")
    p.add_argument("--videos", type=Path, help="folder of the videos (<video_id>.mp4 anywhere under it)")
    if train:
        p.add_argument("--train-csv", type=existing_file, help="AVA ground truth to learn from")
    p.add_argument("--val-csv", type=existing_file, help="AVA ground truth to validate on")
    p.add_argument("--label-map", type=existing_file, help="AVA label map (.pbtxt): the classes")
    p.add_argument("--excluded", type=existing_file, help="AVA excluded-timestamps CSV: keyframes left out")
    _add_time_offset(p)


def _add_time_offset(p: argparse.ArgumentParser) -> None:
    p.add_argument("--time-offset", type=int, help="keyframe timestamps are the video's seconds plus this (AVA's "
                   "videos start at 900 s of the movie); default: 0 to train, the checkpoint's after")


def add_parser(sub) -> None:
    """``deepvideo ava synth|train|eval|run``."""
    p = sub.add_parser("ava", help="spatio-temporal action detection: who does what where (AVA)",
                       description="Actor action detection (AVA; SlowFast's head): a 3D CNN over the clip around "
                       "each keyframe, RoIAlign at every actor box, one sigmoid per action. AVA's CSV formats, "
                       "its frame-mAP@0.5 exactly as its evaluator computes it.")
    ava = p.add_subparsers(dest="ava_command", required=True, metavar="SUBCOMMAND")

    p = ava.add_parser("synth", help="write the built-in benchmark (videos and AVA CSV)",
                       description="Scenes of 2-3 objects over a panning textured background, each moving, "
                       "standing, rotating, growing or pulsing; one keyframe per second annotated in AVA CSV.")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--train", type=int, default=160, help="training videos (default %(default)s)")
    p.add_argument("--val", type=int, default=40, help="validation videos (default %(default)s)")
    p.add_argument("--seconds", type=positive_int, default=4, help="video length (default %(default)s)")
    p.add_argument("--size", type=positive_int, default=64, help="frame side (default %(default)s)")
    p.add_argument("--camera", type=nonneg_float, default=0.006,
                   help="largest camera pan, fraction of the side per frame (default %(default)s; 0: still)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_ava_synth, command="ava synth")

    p = ava.add_parser("train", help="train an actor action detector",
                       description="Train --model on the keyframes of the training CSV, choosing OUT/best.pt by "
                       "frame-mAP@0.5 with the ground-truth boxes of the validation CSV.")
    _add_layout(p, train=True)
    p.add_argument("--model", default="roi3d", choices=AVA_MODELS, help="default %(default)s")
    p.add_argument("--model-opt", type=model_option, action="append", metavar="KEY=VALUE",
                   help="model option, repeatable (e.g. clip_len=8, time_pool=keep, context=1.5)")
    p.add_argument("--size", type=positive_int, help="resize the short side of the frames (default: as decoded)")
    p.add_argument("--flip", action="store_true", help="mirror half the training samples left-right")
    p.add_argument("--flip-swap", type=label_pair, action="append", metavar="A:B",
                   help="actions that trade places in a mirrored sample, repeatable (implies --flip)")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    add_training_options(p)
    p.set_defaults(func=cmd_ava_train, command="ava train")

    p = ava.add_parser("eval", help="frame-mAP of a model (ground-truth boxes), or of any detection file",
                       description="AVA frame-mAP@0.5 per class and mean, as AVA's evaluator: of --checkpoint "
                       "scoring the ground-truth boxes of --annotations, or of the detections in --pred.")
    _add_layout(p, train=False)
    p.add_argument("--annotations", type=existing_file, help="ground truth to score (default: the val CSV)")
    p.add_argument("--checkpoint", type=existing_file, help="a model from deepvideo ava train")
    p.add_argument("--pred", type=existing_file, help="detections to score (AVA CSV with scores)")
    p.add_argument("--out", type=Path, help="with --checkpoint: also write its detections (AVA CSV)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_ava_eval, command="ava eval")

    p = ava.add_parser("run", help="the actions of the actors of one video, a keyframe per second",
                       description="Score every actor box of every keyframe (each whole second) of VIDEO; boxes "
                       "from an AVA CSV (--boxes) or a detector (--detector).")
    p.add_argument("video", type=existing_file)
    p.add_argument("--checkpoint", required=True, type=existing_file, help="a model from deepvideo ava train")
    p.add_argument("--boxes", type=existing_file, help="AVA CSV whose rows of this video (its file name's stem) "
                   "give the boxes")
    p.add_argument("--detector", choices=BOX_DETECTORS, help="a detector of deepvideo track (mog2, torchvision)")
    p.add_argument("--detector-opt", type=model_option, action="append", metavar="KEY=VALUE")
    p.add_argument("--tracker", choices=TRACKERS, help="track the detector's boxes (sort, bytetrack): an actor "
                   "keeps its id (person_id) across keyframes")
    p.add_argument("--weights", type=existing_file, help="weights of the torchvision detector")
    p.add_argument("--min-box-score", type=float, default=0.0,
                   help="boxes scored below (a detector's, or a --boxes detection CSV's) are dropped")
    p.add_argument("--min-score", type=float, default=0.0, help="action scores below are left out")
    p.add_argument("--out", type=Path, help="write the detections as an AVA CSV (default: JSON on stdout)")
    p.add_argument("--video-out", type=Path, help="also write the video with boxes and actions drawn (.mp4)")
    _add_time_offset(p)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_ava_run, command="ava run")
