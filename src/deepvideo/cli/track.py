"""``deepvideo track``: multi-object and single-object tracking, tracker evaluation, and
training of the trackers' networks (thin commands over :mod:`deepvideo.track`)."""

from __future__ import annotations

import argparse
import inspect
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

from deepvideo.cli.options import (
    LibraryNames,
    UsageError,
    add_training_options,
    existing_file,
    fraction,
    input_shape,
    model_option,
    nonneg_float,
    nonneg_int,
    positive_float,
    positive_int,
    print_json,
    train_config,
    unit_float,
)

if TYPE_CHECKING:
    import numpy as np


_MOT_TRACKERS = LibraryNames("deepvideo.track.mot", "TRACKERS")
_SOT_TRACKERS = LibraryNames("deepvideo.track.sot", "TRACKERS")
_DETECTORS = LibraryNames("deepvideo.track.detect", "DETECTORS")
_CLEAR_RULES = LibraryNames("deepvideo.track.mot_metrics", "CLEAR_RULES")


def _box(text: str) -> tuple[float, float, float, float]:
    """``x,y,w,h``: four finite numbers (the tracker checks them against the frame)."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected x,y,w,h (4 numbers), got {text!r}")
    return values  # type: ignore[return-value]


def _keyword_options(target: Callable, pairs: list[tuple[str, Any]] | None, flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` pairs given to ``flag`` as keyword arguments of ``target`` (a config
    dataclass): a one-line error for a key it does not take, or for a value that is not a
    number (an integer) where the default is one (``null`` passes where the annotation
    allows ``None``)."""
    params = {name: param for name, param in inspect.signature(target).parameters.items()
              if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)}
    options = dict(pairs or [])
    for key, value in options.items():
        if key not in params:
            raise UsageError(f"{flag} {key}: {target.__name__} takes {', '.join(params)}")
        default = params[key].default
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            continue
        if value is None and "None" in str(params[key].annotation):
            continue
        integer = isinstance(default, int)
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            raise UsageError(f"{flag} {key}={value!r}: expected {'an integer' if integer else 'a number'}")
    return options


def cmd_track_mot(args: argparse.Namespace) -> None:
    import numpy as np

    from deepvideo.track.detect import make_detector
    from deepvideo.track.mot import make_tracker, track_detections, track_video
    from deepvideo.track.motio import read_mot, write_mot

    if args.video is None:
        if args.dets is None:
            raise UsageError("give a VIDEO to track in, or --dets DET.txt to track detections alone")
        for flag in ("video_out", "detector", "detector_opt", "weights", "embedder"):
            if getattr(args, flag):
                raise UsageError(f"--{flag.replace('_', '-')} needs VIDEO (without it only --dets is tracked)")
    tracker = make_tracker(args.tracker, embedder=args.embedder, device=args.device, max_age=args.max_age,
                           min_hits=args.min_hits, iou_threshold=args.iou_threshold,
                           options=dict(args.tracker_opt or []))
    if args.video is None:
        rows = track_detections(read_mot(args.dets), tracker, progress=True)
    else:
        detector = make_detector(args.detector, dets=args.dets, weights=args.weights, device=args.device,
                                 options=dict(args.detector_opt or []))
        rows = track_video(args.video, tracker, detector, video_out=args.video_out, progress=True, device=args.device,
                           out=args.out, realtime=args.realtime, timeout=args.timeout)
    if args.video is None:
        write_mot(args.out, rows)
    shown = f"; annotated video {args.video_out}" if args.video_out else ""
    print(f"{args.out}: {len(rows)} boxes of {len(np.unique(rows[:, 1]))} tracks "
          f"in {len(np.unique(rows[:, 0]))} frames{shown}")


def cmd_track_sot(args: argparse.Namespace) -> None:
    from deepvideo.track.ope import write_boxes
    from deepvideo.track.sot import track_video

    boxes = track_video(args.video, args.box, tracker=args.tracker, weights=args.weights, progress=True,
                        out_video=args.video_out, device=args.device)
    write_boxes(args.out, boxes)
    shown = f"; annotated video {args.video_out}" if args.video_out else ""
    print(f"{args.out}: {len(boxes)} boxes, last {','.join(f'{v:.1f}' for v in boxes[-1])}{shown}")


def cmd_track_eval(args: argparse.Namespace) -> None:
    from deepvideo.track.mot_metrics import evaluate_tracking, format_results

    results = evaluate_tracking(args.gt, args.pred, args.kind, args.iou_threshold, clear_rule=args.clear_rule,
                                pred_format=args.pred_format, progress=not args.json)
    if args.json:
        print_json(results)
    else:
        print(format_results(results))


def _loss_change(history: Sequence[dict[str, Any]]) -> str:
    return f"train loss {history[0]['train_loss']:.4f} -> {history[-1]['train_loss']:.4f} over {len(history)} epochs"


def cmd_track_train_sot(args: argparse.Namespace) -> None:
    from deepvideo.track.goturn import GOTURNConfig
    from deepvideo.track.siamfc import SiamFCConfig
    from deepvideo.track.sot import TRACKERS, load_annotated_videos, synthetic_sequences, train_sot

    config_type = SiamFCConfig if args.tracker == "siamfc" else GOTURNConfig
    config = config_type(**_keyword_options(config_type, args.config, "--config"))
    sequences = (load_annotated_videos(args.data, args.split) if args.data is not None else
                 synthetic_sequences(args.sequences, args.frames, args.size, seed=args.data_seed))
    _, result = train_sot(args.tracker, sequences, args.out, config, max_gap=args.max_gap,
                          pairs_per_epoch=args.pairs_per_epoch,
                          train=train_config(args, TRACKERS.info(args.tracker)["training"]), resume=args.resume)
    print(f"{args.out / 'weights.safetensors'}: {args.tracker} weights trained on {len(sequences)} sequences, "
          f"{_loss_change(result['history'])}")


def _identity_sources(args: argparse.Namespace) -> Iterator[tuple[Iterable[np.ndarray], np.ndarray]]:
    """``(frames, gt)`` per sequence: each ``--video`` (streamed) with its ``--gt``, or a
    rendered scene."""
    from deepvideo.io import VideoReader
    from deepvideo.track.motio import read_mot
    from deepvideo.track.scenes import make_scene

    if not args.video:
        scene = make_scene(num_objects=args.objects, num_frames=args.frames, seed=args.data_seed)
        yield scene.frames, scene.gt
    for video, gt in zip(args.video, args.gt):
        rows = read_mot(gt)
        with VideoReader(video) as reader:
            yield reader, rows


def cmd_track_train_embedder(args: argparse.Namespace) -> None:
    import numpy as np

    from deepvideo.track.deepsort import EMBEDDING_TRAINING, identity_crops, renumber_identities, train_embedding

    if len(args.video) != len(args.gt):
        raise UsageError(f"--gt: {len(args.gt)} files for {len(args.video)} --video files")
    if len(args.crop) != 2:
        raise UsageError(f"--crop: expected HEIGHTxWIDTH, got {'x'.join(map(str, args.crop))}")
    crops, ids = [], []
    for frames, gt in _identity_sources(args):
        visible = (gt[:, 8] < 0) | (gt[:, 8] >= args.min_visibility)  # -1: no visibility column
        c, i = identity_crops(frames, gt[visible], size=args.crop, max_per_identity=args.max_per_identity,
                              jitter=args.jitter, seed=args.data_seed)
        crops.append(c)
        ids.append(i)
    labels = renumber_identities(ids)
    _, result = train_embedding(np.concatenate(crops), labels, args.out, dim=args.dim, width=args.width,
                                crops_per_epoch=args.crops_per_epoch,
                                train=train_config(args, EMBEDDING_TRAINING), resume=args.resume)
    print(f"{args.out / 'weights.safetensors'}: {args.dim}-d embedding trained on {len(labels)} crops of "
          f"{int(labels.max()) + 1} identities, {_loss_change(result['history'])}")


def _add_mot_tracker_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("tracker")
    group.add_argument("--tracker", default="sort", choices=_MOT_TRACKERS, help="default %(default)s")
    group.add_argument("--max-age", type=nonneg_int,
                       help="frames a track survives unmatched (default: the tracker's: sort 1, others 30)")
    group.add_argument("--min-hits", type=nonneg_int,
                       help="matches before a track is reported (deepsort: n_init; default: the tracker's)")
    group.add_argument("--iou-threshold", type=unit_float,
                       help="smallest IoU of a match (deepsort: 1 - max_iou_distance; default: the tracker's)")
    group.add_argument("--tracker-opt", type=model_option, action="append", metavar="KEY=VALUE",
                       help="any other tracker argument, repeatable (e.g. high_threshold=0.5 for "
                       "bytetrack, max_cosine_distance=0.3 for deepsort)")
    group.add_argument("--embedder", type=existing_file,
                       help="deepsort: appearance network from `deepvideo track train-embedder` "
                       "(without it deepsort associates by motion alone; needs VIDEO)")


def add_parser(sub) -> None:
    """``deepvideo track mot|sot|eval|train-sot|train-embedder``."""
    p = sub.add_parser("track", help="track objects in videos (SORT, ByteTrack, DeepSORT, SiamFC, "
                       "GOTURN), evaluate trackers, train their networks",
                       description="Multi-object tracking by detection, single-object tracking from "
                       "a first-frame box, MOTChallenge / one-pass evaluation, and training of the "
                       "trackers' networks on the built-in synthetic data.")
    track = p.add_subparsers(dest="track_command", required=True, metavar="SUBCOMMAND")

    p = track.add_parser("mot", help="multi-object tracking: MOTChallenge results (and an annotated video)",
                         description="Track every object: detections of VIDEO (MOG2 background "
                         "subtraction, a MOT detection file or a local torchvision detector) or of "
                         "--dets alone, linked into tracks; writes OUT as MOTChallenge rows "
                         "frame,id,x,y,w,h,1,-1,-1,-1 and with --video-out VIDEO with each track's box "
                         "and id drawn in a colour fixed by its id.")
    p.add_argument("video", nargs="?", help="video file, camera (/dev/video0 or an index) or stream URL "
                   "(rtsp://, http://, udp://, ...) to track in (optional with --dets)")
    p.add_argument("--dets", type=existing_file, help="MOTChallenge detection file (det.txt)")
    p.add_argument("--out", type=Path, required=True, help="result file (MOTChallenge .txt); for a camera or "
                   "stream each frame's confirmed tracks are appended as they come")
    p.add_argument("--video-out", type=Path, help="also write VIDEO with the tracks drawn (.mp4)")
    p.add_argument("--realtime", action="store_true", help="pace a video file at its frame rate, as a camera")
    p.add_argument("--timeout", type=positive_float, default=10.0,
                   help="seconds to wait for a stream to open and for each read (default %(default)s)")
    group = p.add_argument_group("detector")
    group.add_argument("--detector", choices=_DETECTORS,
                       help="detections of VIDEO: dets (the --dets file), mog2 (moving objects, static "
                       "camera) or torchvision (--weights; persons); default dets with --dets, else mog2")
    group.add_argument("--weights", type=existing_file, help="torchvision detector: local state_dict file")
    group.add_argument("--detector-opt", type=model_option, action="append", metavar="KEY=VALUE",
                       help="detector argument, repeatable (e.g. min_area=200 for mog2, min_score=0.5 "
                       "for dets, arch=fasterrcnn_resnet50_fpn or score_threshold=0.7 for torchvision)")
    group.add_argument("--device", default="cpu", help="device of the torchvision detector and the embedder")
    _add_mot_tracker_options(p)
    p.set_defaults(func=cmd_track_mot, command="track mot")

    p = track.add_parser("sot", help="single-object tracking from a box on the first frame",
                         description="Track the object inside --box on the first frame of VIDEO "
                         "through the whole file; writes one x,y,w,h line per frame (the first is "
                         "--box itself). SiamFC without --weights is training-free template "
                         "matching; GOTURN needs weights (see `deepvideo track train-sot`).")
    p.add_argument("video", type=existing_file)
    p.add_argument("--box", type=_box, required=True, metavar="X,Y,W,H",
                   help="the target on the first frame, pixels, top-left corner (a negative x: --box=-4,10,20,30)")
    p.add_argument("--out", type=Path, required=True, help="box file to write")
    p.add_argument("--video-out", type=Path, help="also write VIDEO with the box drawn (.mp4)")
    group = p.add_argument_group("tracker")
    group.add_argument("--tracker", default="siamfc", choices=_SOT_TRACKERS, help="default %(default)s")
    group.add_argument("--weights", type=existing_file, help="weights from `deepvideo track train-sot`")
    group.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_track_sot, command="track sot")

    p = track.add_parser("eval", help="score tracker results: CLEAR MOT, IDF1, HOTA or one-pass evaluation",
                         description="MOT files (frame,id,x,y,w,h,conf,...): CLEAR MOT (MOTA, MOTP, "
                         "IDSW, ...), identity (IDF1, IDP, IDR) and HOTA, as py-motmetrics and TrackEval "
                         "compute them; several sequences add a COMBINED row. --gt and --pred may also "
                         "be a benchmark folder (<seq>/gt/gt.txt) and a results folder (<seq>.txt). "
                         "Single-object box files (x,y,w,h per line): one-pass evaluation as "
                         "mmtracking computes it, success AUC, precision at 20 px and normalised "
                         "precision at 0.2 (percent). --kind auto tells them apart by the first line "
                         "of the first --gt file: 4 numbers is a box file.")
    p.add_argument("--gt", type=Path, nargs="+", required=True, help="ground-truth files, one per sequence")
    p.add_argument("--pred", type=Path, nargs="+", required=True, help="result files, in the order of --gt")
    p.add_argument("--kind", default="auto", choices=("auto", "mot", "sot"), help="default %(default)s")
    p.add_argument("--json", action="store_true", help="print the metrics (fractions for mot, percent for sot) as JSON")
    group = p.add_argument_group("mot files")
    group.add_argument("--iou-threshold", type=unit_float, default=0.5,
                       help="smallest IoU of a match (default %(default)s)")
    group.add_argument("--clear-rule", default="motmetrics", choices=_CLEAR_RULES,
                       help="CLEAR MOT as py-motmetrics or as TrackEval computes it (default %(default)s)")
    group = p.add_argument_group("box files")
    group.add_argument("--pred-format", default="xywh", choices=("xywh", "xyxy"),
                       help="x,y,w,h or mmtracking's x1,y1,x2,y2 result lines (default %(default)s)")
    p.set_defaults(func=cmd_track_eval, command="track eval")

    p = track.add_parser("train-sot", help="train SiamFC or GOTURN weights",
                         description="Train a single-object tracker's network on frame pairs of "
                         "annotated sequences: the built-in motion dataset rendered in memory, or "
                         "--data (a folder written by `deepvideo synth`, with annotations/<split>.csv).")
    group = p.add_argument_group("network")
    group.add_argument("--tracker", default="siamfc", choices=_SOT_TRACKERS, help="default %(default)s")
    group.add_argument("--config", type=model_option, action="append", metavar="KEY=VALUE",
                       help="network setting, repeatable (SiamFCConfig: width, exemplar_size, search_size, "
                       "...; GOTURNConfig: input_size, width, fc_dim, dropout)")
    group.add_argument("--max-gap", type=nonneg_int, help="largest frame gap of a training pair "
                       "(default: the library's, siamfc 8, goturn 1)")
    group.add_argument("--pairs-per-epoch", type=positive_int,
                       help="training pairs drawn per epoch (default: siamfc 400, goturn 800)")
    group = p.add_argument_group("data")
    group.add_argument("--data", type=Path, help="motion dataset folder (default: rendered in memory)")
    group.add_argument("--split", default="train", choices=("train", "val", "test"))
    group.add_argument("--sequences", type=positive_int, default=32, help="rendered sequences (default %(default)s)")
    group.add_argument("--frames", type=positive_int, default=32, help="frames per rendered sequence")
    group.add_argument("--size", type=positive_int, default=64, help="side of the rendered frames")
    group.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True,
                   help="run folder: weights.safetensors, last.pt, best.pt, metrics.csv, curves.png")
    add_training_options(p)
    p.set_defaults(func=cmd_track_train_sot, command="track train-sot")

    p = track.add_parser("train-embedder", help="train DeepSORT's appearance network",
                         description="Train the re-identification embedding DeepSORT uses (cosine-"
                         "softmax over identities) on crops of MOT ground-truth boxes: of each --video "
                         "with its --gt, or of a rendered scene of moving textured objects.")
    p.add_argument("--video", type=existing_file, nargs="+", default=[], help="videos of the sequences")
    p.add_argument("--gt", type=existing_file, nargs="+", default=[], help="their MOT ground truth files")
    p.add_argument("--objects", type=positive_int, default=8, help="objects of the rendered scene")
    p.add_argument("--frames", type=positive_int, default=60, help="frames of the rendered scene")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--min-visibility", type=fraction, default=0.5,
                   help="skip boxes less visible than this (gt column 9; -1, as in MOT15, keeps the box)")
    p.add_argument("--max-per-identity", type=positive_int, default=200)
    p.add_argument("--jitter", type=nonneg_float, default=0.05,
                   help="move box corners by this fraction of the box size, as a detector would")
    p.add_argument("--crop", type=input_shape, default=(64, 32), metavar="HxW", help="crop size (default 64x32)")
    p.add_argument("--dim", type=positive_int, default=128, help="embedding size (default %(default)s)")
    p.add_argument("--width", type=positive_int, default=16, help="channels of the first layer")
    p.add_argument("--crops-per-epoch", type=positive_int, default=3200,
                   help="crops drawn (with replacement) per epoch (default %(default)s)")
    p.add_argument("--out", type=Path, required=True,
                   help="run folder: weights.safetensors, last.pt, best.pt, metrics.csv, curves.png")
    add_training_options(p)
    p.set_defaults(func=cmd_track_train_embedder, command="track train-embedder")
