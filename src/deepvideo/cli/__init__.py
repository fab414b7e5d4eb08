"""The ``deepvideo`` command: thin sub-commands over the engine (``deepvideo track`` in
:mod:`deepvideo.cli.track`, the shared argument types in :mod:`deepvideo.cli.options`).

Every user error (a missing file, an undecodable video, a bad option value) is printed
as one line on stderr and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from deepvideo import __version__
from deepvideo.cli import ava, clip, detect, pretrain, segment, serve, sr, stream, track
from deepvideo.cli.options import (
    EXIT_USAGE,
    WORKERS_HELP,
    UsageError,
    add_cache_options,
    add_network_options,
    add_training_options,
    existing_file,
    fraction,
    input_shape,
    label_pair,
    model_option,
    nonneg_int,
    positive_float,
    positive_int,
    predict_network,
    print_json,
    train_config,
    workers_count,
)
from deepvideo.io.atomic import atomic_write_text

if TYPE_CHECKING:
    from deepvideo.io.jobs import JobSummary


# ----------------------------------------------------------------------------- models
def cmd_models(args: argparse.Namespace) -> None:
    from deepvideo.models.registry import list_models, model_doc

    names = list_models()
    if args.json:
        print_json({name: model_doc(name) for name in names})
        return
    width = max(map(len, names))
    for name in names:
        print(f"{name:<{width}}  {model_doc(name)}")


def cmd_summary(args: argparse.Namespace) -> None:
    import torch

    from deepvideo.models import create_model
    from deepvideo.models.registry import check_model_options, model_inputs
    from deepvideo.models.summary import format_summary, summarize

    if model_inputs(args.model) != ("video",):
        raise UsageError(f"{args.model} takes {' and '.join(model_inputs(args.model))} inputs; summarise "
                         f"its streams one at a time (e.g. spatial_stream, temporal_stream)")
    options = dict(args.model_opt or [])
    check_model_options(args.model, options)
    with torch.device("meta"):  # shapes and counts only: no memory, no compute
        model = create_model(args.model, num_classes=args.num_classes, **options)
    try:
        summary = summarize(model, args.input)
    except RuntimeError as exc:
        raise UsageError(f"{args.model} does not accept --input {'x'.join(map(str, args.input))} "
                         f"({str(exc).strip().splitlines()[0]})") from None
    if args.json:
        print_json(summary.to_dict())
    else:
        print(format_summary(summary))


# ----------------------------------------------------------------------------- synth
def _add_synth_options(parser: argparse.ArgumentParser) -> None:
    from deepvideo.data.synthetic import SyntheticConfig

    defaults = SyntheticConfig()
    group = parser.add_argument_group("built-in motion dataset")
    group.add_argument("--root", type=Path, help="dataset folder (default: a folder under "
                       "~/.cache/deepvideo named after the settings)")
    for split in ("train", "val", "test"):
        group.add_argument(f"--{split}-per-class", type=positive_int, default=getattr(defaults, split),
                           help=f"{split} videos per class (default %(default)s)")
    group.add_argument("--frames", type=positive_int, default=defaults.num_frames,
                       help="frames per video (default %(default)s)")
    group.add_argument("--size", type=positive_int, default=defaults.size,
                       help="frame side in pixels (default %(default)s)")
    group.add_argument("--data-seed", type=int, default=defaults.seed)


def _synth_config(args: argparse.Namespace):
    from deepvideo.data.synthetic import SyntheticConfig

    return SyntheticConfig(train=args.train_per_class, val=args.val_per_class,
                           test=args.test_per_class, num_frames=args.frames,
                           size=args.size, seed=args.data_seed)


def cmd_synth(args: argparse.Namespace) -> None:
    from deepvideo.data.synthetic import make_motion_dataset

    if args.untrimmed:
        from deepvideo.detect.synthetic import UntrimmedConfig, make_untrimmed_dataset

        root = make_untrimmed_dataset(args.root, UntrimmedConfig(size=args.size, seed=args.data_seed))
        print(f"{root} (videos/<subset>/*.mp4, annotations.json)")
        return
    if args.camera is not None:
        from deepvideo.data.camera import CameraConfig, camera_splits, make_camera_dataset

        if args.root is None:
            raise UsageError("--camera needs --root (the folder to write)")
        config = CameraConfig(size=args.size, num_frames=args.frames, seed=args.data_seed)
        root = make_camera_dataset(camera_splits(args.camera), args.root, config, progress=True)
        counts = {split: len(list((root / split).rglob("*.mp4"))) for split in ("train", "val", "test")}
        print(f"{root} ({', '.join(f'{n} {split}' for split, n in counts.items())} clips)")
        return
    root = make_motion_dataset(args.root, _synth_config(args), progress=True)
    print(root)


# ----------------------------------------------------------------------------- train
def _add_data_options(parser: argparse.ArgumentParser) -> None:
    from deepvideo.engine.recipe import DATA_FORMATS

    group = parser.add_argument_group("data")
    group.add_argument("--data", help="video root (folder format: DATA/{train,val,test}/<class>/<video>)")
    group.add_argument("--format", default="folder", choices=DATA_FORMATS,
                       help="dataset layout (default %(default)s)")
    group.add_argument("--splits", help="folder of official split files (ucf101, hmdb51)")
    group.add_argument("--split", type=positive_int, default=1, help="official split number")
    group.add_argument("--csv", help="Kinetics-style csv (kinetics format)")
    for subset in ("train", "val", "test"):
        group.add_argument(f"--{subset}-list", help=f"'path label' list of the {subset} videos (list format)")
    group.add_argument("--flow-dir", help="optical-flow cache written by `deepvideo flow-extract --data DATA "
                       "--out FLOW_DIR` (flow and rgb+flow modalities; without it flow is computed on the fly)")
    group.add_argument("--flow-method", default="farneback",
                       help="flow method when computing on the fly (default %(default)s)")
    group.add_argument("--feature-dir", help="features written by `deepvideo extract-features --data DATA "
                       "--out FEATURE_DIR` (features modality)")


def _data_spec(args: argparse.Namespace):
    from deepvideo.engine.recipe import DataSpec

    lists = {s: getattr(args, f"{s}_list") for s in ("train", "val", "test") if getattr(args, f"{s}_list")}
    return DataSpec(format=args.format, root=args.data, splits=args.splits, split=args.split,
                    csv=args.csv, lists=lists, flow_dir=args.flow_dir, flow_method=args.flow_method,
                    feature_dir=args.feature_dir, val_split=getattr(args, "val_split", 0.0),
                    train_per_class=getattr(args, "train_per_class", None))


def _add_runtime_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("runtime")
    group.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default %(default)s)")
    group.add_argument("--amp", default="none", choices=("none", "bf16", "fp16", "auto"),
                       help="mixed precision autocast, CPU or CUDA (fp16 with gradient scaling; on a CPU "
                            "only fast where it has bf16/fp16 arithmetic; auto: bf16 where the hardware "
                            "has it, else fp16 on CUDA and fp32 on the CPU) (default %(default)s)")
    group.add_argument("--channels-last", action="store_true",
                       help="channels_last_3d memory layout (faster 3D convs on recent CPUs)")
    group.add_argument("--workers", type=nonneg_int, default=0,
                       help="DataLoader worker processes (default %(default)s)")
    group.add_argument("--batch-size", type=positive_int, default=8)


def _add_clip_options(parser: argparse.ArgumentParser) -> None:
    from deepvideo.engine.recipe import MODALITIES

    group = parser.add_argument_group("clips")
    group.add_argument("--clip-len", type=positive_int, default=16, help="frames per clip (default %(default)s)")
    group.add_argument("--frame-stride", type=positive_int, default=1,
                       help="take every N-th frame (temporal subsampling, default %(default)s)")
    group.add_argument("--size", type=positive_int, default=112, help="crop side (default %(default)s)")
    group.add_argument("--resize", type=positive_int, default=128,
                       help="short side before cropping (default %(default)s)")
    group.add_argument("--test-clips", type=positive_int, default=5,
                       help="uniform clips per video at test time (default %(default)s)")
    group.add_argument("--no-flip", action="store_true",
                       help="no random horizontal flips (needed when left/right is part of the "
                       "label, as in the motion dataset)")
    group.add_argument("--modality", default="rgb", choices=MODALITIES,
                       help="rgb frames; stacks of --clip-len optical-flow fields for a temporal "
                       "stream (see --flow-dir); --clip-len cached feature rows for a temporal "
                       "head (see --feature-dir); or rgb+flow: an RGB clip of --clip-len frames and "
                       "the --clip-len flow fields starting at its first frame (field i: frame i to "
                       "i+1), same crop and flip, for --model two_stream or two_stream_i3d, both "
                       "streams trained at once (default %(default)s)")
    group.add_argument("--flow-scale", type=positive_float, default=20.0,
                       help="flow and rgb+flow modalities: divide flow by this many pixels, after "
                       "subtracting each field's mean (default %(default)s; use about the largest motion)")


def cmd_train(args: argparse.Namespace) -> None:
    from deepvideo.engine import Recipe, TrainConfig, Transfer, train
    from deepvideo.engine.distributed import launch_rank

    data = _data_spec(args)
    recipe = Recipe.for_data(data, args.model, dict(args.model_opt or []), clip_len=args.clip_len,
                             frame_stride=args.frame_stride, size=args.size, resize=args.resize,
                             test_clips=args.test_clips, flip=not args.no_flip, modality=args.modality,
                             flow_scale=args.flow_scale, flip_swap=args.flip_swap or [])
    transfer = Transfer(args.init, args.freeze_backbone, args.backbone_lr_scale)
    config = TrainConfig(cache=args.cache, cache_dir=args.cache_dir)
    result = train(recipe, data, train_config(args, config), args.out, resume=args.resume, transfer=transfer)
    if launch_rank() == 0:
        print(f"best validation video accuracy {result['best_val_acc']:.3f}; checkpoint {result['checkpoint']}")


# ----------------------------------------------------------------------------- eval
def _print_metrics(title: str, metrics: dict[str, Any]) -> None:
    clips = f", {metrics['num_clips']} clips" if "num_clips" in metrics else ""
    print(f"{title}: {metrics['num_videos']} videos{clips}")
    for key in ("clip_acc", "video_acc1", "video_acc5", "mean_class_acc", "loss", "spatial_clip_acc",
                "spatial_video_acc1", "temporal_clip_acc", "temporal_video_acc1"):
        if key in metrics:
            print(f"  {key + ' ':<15}{metrics[key]:.4f}")
    if metrics.get("bad_videos"):
        print(f"  skipped {len(metrics['bad_videos'])} unreadable videos")


def cmd_eval(args: argparse.Namespace) -> None:
    from deepvideo.engine.classify import evaluate_checkpoints
    from deepvideo.engine.distributed import launch_rank
    from deepvideo.engine.report import write_confusion

    paths = [args.checkpoint, *(args.fuse or [])]
    report = evaluate_checkpoints(paths, _data_spec(args), args.subset, args.clips, args.fusion_weights,
                                  batch_size=args.batch_size, device=args.device, amp=args.amp,
                                  channels_last=args.channels_last, workers=args.workers, progress=not args.json)
    if launch_rank() != 0:
        return
    shown = {**report["runs"], **({"fused": report["fused"]} if report["fused"] else {})}
    payload = shown if len(paths) > 1 else report["final"]
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_confusion(out / "confusion", report["final"]["confusion"], report["classes"])
        atomic_write_text(out / "metrics.json", json.dumps(payload, indent=2))
    if args.json:
        print_json(payload)
        return
    for title, metrics in shown.items():
        _print_metrics(f"{args.subset} {title}" if len(paths) > 1 else args.subset, metrics)


# ----------------------------------------------------------------------------- predict
def cmd_predict(args: argparse.Namespace) -> None:
    from deepvideo.engine.device import resolve_device
    from deepvideo.engine.predict import predict_video, predictions_to_csv

    device = resolve_device(args.device)
    recipe, model = predict_network(args, device)
    result = predict_video(model, args.video, recipe, step=args.step, topk=args.top,
                           batch_size=args.batch_size, device=device, amp=args.amp, progress=True)
    text = predictions_to_csv(result) if args.output_format == "csv" else json.dumps(result, indent=2)
    if args.out:
        atomic_write_text(args.out, text)
        best = result["top"][0]
        print(f"{args.video}: {best['label']} ({best['prob']:.3f}); "
              f"{len(result['windows'])} windows written to {args.out}")
    else:
        print(text)


# ----------------------------------------------------------------------------- export
def cmd_export(args: argparse.Namespace) -> None:
    from deepvideo.deploy import export_model

    try:
        exported = export_model(args.checkpoint, args.out, args.format, input_shape=args.input_shape,
                                num_classes=args.num_classes, model_kwargs=dict(args.model_kwargs or []),
                                frames=args.frames, opset=args.opset)
    except ImportError as exc:  # onnx/onnxscript not installed: one line naming the extra
        raise UsageError(str(exc)) from None
    meta = exported.metadata
    shapes = ", ".join(f"{spec.name} ({', '.join(map(str, spec.shape))})" for spec in meta.inputs)
    frames = (f"frames {meta.frames_text()}" if meta.dynamic_frames else
              f"frames fixed at {meta.frames_text()} ({meta.recipe.model}: {meta.fixed_frames_reason})")
    print(f"{args.out}: {meta.recipe.model} as {args.format}, input {shapes}, {frames}")


# ----------------------------------------------------------------------------- flow
def _add_flow_options(parser: argparse.ArgumentParser) -> None:
    from deepvideo.flow import ALL_METHODS

    parser.add_argument("--method", default="farneback", choices=ALL_METHODS,
                        help="farneback and dis (OpenCV), tvl1 (needs opencv-contrib), raft "
                        "(torchvision raft_small, needs --weights; default %(default)s)")
    parser.add_argument("--weights", type=existing_file, help="RAFT checkpoint file (local)")
    parser.add_argument("--device", default="cpu", help="device for RAFT (default %(default)s)")


def cmd_flow(args: argparse.Namespace) -> None:
    from deepvideo.flow import flow_video

    out = flow_video(args.video, args.out, method=args.method, progress=True, max_flow=args.max_flow,
                     weights=args.weights, device=args.device)
    print(f"{out}: frames beside their colour-coded {args.method} flow")


def _video_files(data: str) -> tuple[Path, list[Path]]:
    """``--data`` and every source under it that ``open_video`` reads (video files, packed
    ``.tar`` files, frame folders; see :func:`~deepvideo.data.datasets.find_videos`);
    one-line errors when none."""
    from deepvideo.data.datasets import VIDEO_EXTENSIONS, find_videos
    from deepvideo.io import PACKED_SUFFIX

    root = Path(data)
    if not root.is_dir():
        raise UsageError(f"--data {root}: no such folder")
    videos = find_videos(root)
    if not videos:
        raise UsageError(f"--data {root}: no videos ({', '.join(VIDEO_EXTENSIONS)}, packed {PACKED_SUFFIX} "
                         f"files or frame folders) found")
    return root, videos


def _report_jobs(args: argparse.Namespace, summary: JobSummary, written: str = "written",
                 extra: str = "") -> None:
    """Print what a dataset job did (``summary``: written, skipped, failed), each skipped video
    once with its reason; a one-line error when every video failed."""
    print(f"{args.out}: {summary.written} {written}, {summary.skipped} already done, "
          f"{len(summary.failed)} skipped{extra}")
    skipped = [f"{video}: {reason}" for video, reason in summary.failed]
    for line in skipped:
        print(f"  skipped {line}")
    if skipped and not summary.written and not summary.skipped:
        raise UsageError(f"--data {args.data}: none of the {len(skipped)} videos could be used "
                         f"(first: {skipped[0]})")


def cmd_flow_train(args: argparse.Namespace) -> None:
    from deepvideo.engine.flowtrain import TINYFLOW_TRAINING, train_tinyflow
    from deepvideo.flow.synthetic import PairConfig

    if len(args.size) != 2:
        raise UsageError(f"--size: expected HEIGHTxWIDTH, got {'x'.join(map(str, args.size))}")
    pairs = PairConfig(size=args.size, max_flow=args.max_flow, objects=args.objects)
    train_tinyflow(args.out, pairs, pairs_per_epoch=args.pairs_per_epoch, val_pairs=args.val_pairs,
                   model=dict(args.model_opt or []), train=train_config(args, TINYFLOW_TRAINING), resume=args.resume)
    print(f"{args.out / 'weights.safetensors'}: TinyFlow weights (use with --method tinyflow --weights)")


def cmd_flow_extract(args: argparse.Namespace) -> None:
    from deepvideo.flow import extract_flow_dataset

    root, videos = _video_files(args.data)
    summary = extract_flow_dataset(videos, args.out, method=args.method, bound=args.bound,
                                   workers=args.workers, progress=True, root=root,
                                   weights=args.weights, device=args.device)
    _report_jobs(args, summary)


# ----------------------------------------------------------------------------- features
def cmd_extract_features(args: argparse.Namespace) -> None:
    from deepvideo.engine.device import resolve_device
    from deepvideo.engine.features import build_backbone, extract_features

    root, videos = _video_files(args.data)
    backbone = build_backbone(args.backbone, args.weights, args.size, args.clip_len)
    summary = extract_features(videos, args.out, backbone, root=root, batch_size=args.batch_size,
                               every=args.every, device=resolve_device(args.device))
    dim = f"; {summary.dim} features per {'clip' if backbone.clip_len else 'frame'}" if summary.dim else ""
    _report_jobs(args, summary, extra=dim)


# ----------------------------------------------------------------------------- pack
def cmd_pack(args: argparse.Namespace) -> None:
    from deepvideo.data.pack import pack_dataset

    root, videos = _video_files(args.data)
    summary = pack_dataset(videos, args.out, root=root, format=args.format, size=args.size,
                           workers=args.workers, progress=True, quality=args.quality)
    _report_jobs(args, summary, written="packed")


# ----------------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> None:
    from deepvideo.engine.demo import run_demo

    run_demo(out=args.out, synth=_synth_config(args), root=args.root, epochs=args.epochs,
             workers=args.workers, seed=args.seed, amp=args.amp, cache=args.cache)


# ----------------------------------------------------------------------------- parser
def _add_dataset_job_options(parser: argparse.ArgumentParser, out_help: str) -> None:
    """``--data`` and ``--out`` of the commands that write one output per video of a dataset."""
    parser.add_argument("--data", required=True, help="folder of videos, packed .tar files or frame "
                        "folders (searched recursively)")
    parser.add_argument("--out", type=Path, required=True, help=out_help)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepvideo", description="Deep learning on video: "
                                     "train, evaluate and run video models on your own videos.")
    parser.add_argument("--version", action="version", version=f"deepvideo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="build the motion dataset, train two models, compare them",
                       description="Build the built-in motion dataset (cached), train the "
                       "single-frame baseline and the small 3D CNN, evaluate both on the test "
                       "split and write a report folder.")
    p.add_argument("--out", type=Path, default=Path("deepvideo-demo"), help="report folder (default %(default)s)")
    p.add_argument("--epochs", type=positive_int, default=None, help="override the demo's epoch count")
    p.add_argument("--workers", type=workers_count, default="auto", help=WORKERS_HELP)
    p.add_argument("--cache", default="auto", choices=("auto", "ram", "disk", "none"),
                   help="decoded-frame cache of the training videos (disk: OUT/cache; see deepvideo train "
                   "--help; default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--amp", default="auto", choices=("auto", "none", "bf16", "fp16"),
                   help="mixed precision (default auto: bf16 where the hardware has it, else fp32 on the CPU)")
    _add_synth_options(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("synth", help="write the built-in motion dataset (or the untrimmed detection set)",
                       description="Write the built-in motion dataset once (class-per-folder "
                       "train/val/test videos); prints its folder. With --untrimmed, the temporal detection "
                       "benchmark instead: 30-45 s videos over a moving background in which motion-class "
                       "actions and unannotated distractor motion occur at random times, with exact segments "
                       "in ActivityNet JSON (its own video counts; --root, --size and --data-seed apply). With "
                       "--camera, a labelled set of real footage (see docs/ssl.md).")
    _add_synth_options(p)
    p.add_argument("--untrimmed", action="store_true", help="write the untrimmed detection benchmark")
    p.add_argument("--camera", type=Path, metavar="VIDEOS",
                   help="write the camera-motion set instead: real footage from the sample videos in VIDEOS "
                   "(../shared/data/videos), a virtual camera panning or zooming over it (6 classes), "
                   "held out by source video; --root, --size, --frames and --data-seed apply")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("train", help="train a model on a video dataset",
                       description="Train MODEL on DATA; writes OUT/metrics.csv, OUT/curves.png, "
                       "OUT/last.pt (every epoch, atomically) and OUT/best.pt. --resume continues "
                       "from OUT/last.pt. Two-stream: --model two_stream --modality rgb+flow "
                       "[--flow-dir FLOW_DIR] trains both streams on aligned (rgb, flow) pairs, loss "
                       "= the sum of the streams' cross-entropies. Data-parallel on N processes: torchrun "
                       "--nproc_per_node=N -m deepvideo train ... (--batch-size is per process; "
                       "multi-node: add --nnodes, --node_rank, --rdzv_endpoint).")
    p.add_argument("--model", required=True, help="a name from `deepvideo models`")
    p.add_argument("--model-opt", type=model_option, action="append", metavar="KEY=VALUE",
                   help="model option, repeatable (e.g. --model-opt dropout=0.5)")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--val-split", type=fraction, default=0.0, metavar="FRACTION",
                   help="validate on this fraction of each class's training videos (seeded; for data "
                   "without a val/ subset; the chosen videos are written to OUT/val_split.txt)")
    p.add_argument("--flip-swap", type=label_pair, action="append", metavar="A:B",
                   help="a flipped training clip of class A is labelled B and vice versa (repeatable; "
                   "for labels with left/right in them, instead of --no-flip)")
    group = p.add_argument_group("transfer (start from pretrained weights)")
    group.add_argument("--init", type=existing_file, metavar="CHECKPOINT",
                       help="start from this checkpoint's backbone: a `deepvideo pretrain` run's best.pt, or a "
                       "classifier of the same model; the classifier starts fresh")
    group.add_argument("--freeze-backbone", action="store_true",
                       help="train only the classifier (a linear probe; BatchNorm statistics stay as loaded)")
    group.add_argument("--backbone-lr-scale", type=positive_float, default=1.0, metavar="SCALE",
                       help="the backbone's learning rate is --lr times SCALE (fine-tuning; default %(default)s)")
    group.add_argument("--train-per-class", type=positive_int, metavar="N",
                       help="keep N training videos per class, drawn with --seed (a few-label setting)")
    _add_data_options(p)
    _add_clip_options(p)
    add_training_options(p)
    add_cache_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a checkpoint (clip and video accuracy), or fuse several",
                       description="Video accuracy by averaging softmax over --clips uniform "
                       "clips per video; clip accuracy; mean class accuracy; confusion matrix. "
                       "A two-stream (rgb+flow) checkpoint reports its fused prediction and each "
                       "stream's clip and video accuracy. With --fuse: each checkpoint (each with "
                       "its own modality: rgb, flow or rgb+flow) and their late fusion.")
    p.add_argument("--checkpoint", type=existing_file, required=True)
    p.add_argument("--subset", default="test", choices=("train", "val", "test"))
    p.add_argument("--clips", type=positive_int, default=None,
                   help="clips per video (default: the recipe's test clips)")
    p.add_argument("--out", type=Path, help="folder for metrics.json and confusion.csv/png")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--fuse", type=existing_file, nargs="+", metavar="CHECKPOINT",
                   help="late fusion: also evaluate these checkpoints (e.g. the temporal stream "
                   "of a two-stream pair) and average the video class probabilities of all")
    p.add_argument("--fusion-weights", type=positive_float, nargs="+", metavar="W",
                   help="one weight per checkpoint for a weighted average (default: equal)")
    _add_data_options(p)
    _add_runtime_options(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="sliding-window predictions for one video",
                       description="Class probabilities per window (start and end in seconds) "
                       "and for the whole video.")
    p.add_argument("video", type=existing_file)
    add_network_options(p)
    p.add_argument("--step", type=positive_int, default=None,
                   help="frames between window starts (default: one window, no overlap)")
    p.add_argument("--top", type=positive_int, default=5)
    p.add_argument("--output-format", default="json", choices=("json", "csv"))
    p.add_argument("--out", type=Path, help="write to this file instead of stdout")
    _add_runtime_options(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export", help="export a checkpoint (or a fresh model) to ONNX or a torch.export program",
                       description="Trace CHECKPOINT's model with torch.export (dynamic batch; dynamic clip "
                       "length where the model allows it) and write it as ONNX (opset 18, for ONNX Runtime "
                       "and other runtimes) or as a torch.export program (.pt2), with the recipe (classes, "
                       "clip length, frame stride, crop size, mean/std) inside: the file alone runs with "
                       "deepvideo predict --backend. Needs pip install 'deepvideo[deploy]' for ONNX.")
    p.add_argument("checkpoint", metavar="CHECKPOINT",
                   help="a training checkpoint, or a model name of `deepvideo models` (fresh weights; needs --input)")
    p.add_argument("--format", default="onnx", choices=("onnx", "exported-program"),
                   help="onnx (.onnx) or exported-program (.pt2, torch.export.save) (default %(default)s)")
    p.add_argument("--out", type=Path, required=True, help="output file")
    p.add_argument("--frames", default="auto", choices=("auto", "dynamic", "fixed"),
                   help="clip length: dynamic where the model allows it (auto), dynamic or an error, or "
                   "fixed at the recipe's (default %(default)s)")
    p.add_argument("--opset", type=positive_int, default=18, help="ONNX opset, 17 or more (default %(default)s)")
    group = p.add_argument_group("a model name instead of a checkpoint")
    group.add_argument("--input", dest="input_shape", type=input_shape,
                       help="one clip, C x T x H x W (e.g. 3x16x112x112)")
    group.add_argument("--num-classes", type=positive_int, default=10, help="default %(default)s")
    group.add_argument("--model-opt", dest="model_kwargs", type=model_option, action="append",
                       metavar="KEY=VALUE", help="model option, repeatable")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("summary", help="per-layer output shapes, parameters and MACs of a model",
                       description="Per layer: output shape, parameters, multiply-accumulates "
                       "(convolutions, linear, recurrent and attention layers); totals at the end. "
                       "Runs on the meta device, so even large models take no memory.")
    p.add_argument("model", help="a name from `deepvideo models`")
    p.add_argument("--input", type=input_shape, default=(3, 16, 112, 112),
                   help="one input without the batch, C x T x H x W (default 3x16x112x112)")
    p.add_argument("--num-classes", type=positive_int, default=400)
    p.add_argument("--model-opt", type=model_option, action="append", metavar="KEY=VALUE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("flow", help="write a video of frames beside their colour-coded optical flow",
                       description="Dense optical flow between consecutive frames, written as a "
                       "video whose frames show the input (left) and the Middlebury colour coding "
                       "of its flow (right: hue = direction, saturation = speed).")
    p.add_argument("video", type=existing_file)
    p.add_argument("--out", type=Path, required=True, help="output video (.mp4)")
    p.add_argument("--max-flow", type=positive_float, default=None,
                   help="pixels of motion shown at full saturation (default: the largest per frame)")
    _add_flow_options(p)
    p.set_defaults(func=cmd_flow)

    p = sub.add_parser("flow-train", help="train TinyFlow (a compact PWC-Net) on synthetic pairs",
                       description="Train TinyFlow on pairs of textured layers warped by random smooth "
                       "flow, drawn afresh every step, validated on held-out pairs (endpoint error). "
                       "Writes OUT/weights.safetensors (for --method tinyflow --weights), OUT/last.pt, "
                       "OUT/best.pt, OUT/metrics.csv and OUT/curves.png; --resume continues a run.")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--size", type=input_shape, default=(64, 64), metavar="HxW",
                   help="pair size, multiples of 8 (default 64x64)")
    p.add_argument("--max-flow", type=positive_float, default=10.0, help="largest motion in pixels (default 10)")
    p.add_argument("--objects", type=nonneg_int, default=3, help="moving objects per pair (default 3)")
    p.add_argument("--pairs-per-epoch", type=positive_int, default=1600, help="default %(default)s")
    p.add_argument("--val-pairs", type=nonneg_int, default=64, help="held-out pairs (default %(default)s)")
    p.add_argument("--model-opt", type=model_option, action="append", metavar="KEY=VALUE",
                   help="TinyPWC option, repeatable (channels, widths, max_displacement)")
    add_training_options(p)
    p.set_defaults(func=cmd_flow_train)

    p = sub.add_parser("flow-extract", help="compute and cache the flow of every video of a dataset",
                       description="Flow of every video under --data, clipped to +-bound pixels and "
                       "quantised to uint8 (the two-stream papers' storage), one .npz per video "
                       "mirroring the folders. Resumable: finished videos are skipped.")
    _add_dataset_job_options(p, "flow cache folder (mirrors DATA)")
    p.add_argument("--bound", type=positive_float, default=20.0, help="clipping bound in pixels (default %(default)s)")
    p.add_argument("--workers", type=nonneg_int, default=0, help="videos processed side by side")
    _add_flow_options(p)
    p.set_defaults(func=cmd_flow_extract)

    p = sub.add_parser("extract-features", help="run a frozen backbone once over every video and cache features",
                       description="One .npz of float16 features per video under OUT (mirroring DATA; "
                       "resumable). A 2D torchvision classifier gives a row per frame, a video model "
                       "(or a checkpoint file) a row per clip. Then train a temporal head on them: "
                       "deepvideo train --modality features --feature-dir OUT --model lstm_head|tcn_head|"
                       "transformer_head.")
    _add_dataset_job_options(p, "output folder (mirrors DATA)")
    p.add_argument("--backbone", default="resnet18",
                   help="torchvision image classifier (resnet18, ...), a model of `deepvideo models`, "
                   "or a deepvideo checkpoint file (default %(default)s)")
    p.add_argument("--weights", type=existing_file, help="local state_dict for a named backbone "
                   "(random weights without it)")
    p.add_argument("--size", type=positive_int, help="input side (default 224 for 2D, 112 for video models)")
    p.add_argument("--clip-len", type=positive_int, default=16, help="frames per clip for video models")
    p.add_argument("--every", type=positive_int, default=None,
                   help="2D backbones: every N-th frame (default every frame); video models: a clip starting "
                   "every N frames (default --clip-len: consecutive clips; less overlaps them)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="frames (or clips) per forward")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_extract_features)

    p = sub.add_parser("pack", help="convert a dataset's videos to a format built for fast random clip reads",
                       description="Mirror every video under DATA into OUT in a packed format "
                       "(resumable: finished files are skipped). Datasets, training and predict "
                       "read the result like videos: train with --data OUT.")
    _add_dataset_job_options(p, "output folder (mirrors DATA)")
    p.add_argument("--format", default="jpeg", choices=("jpeg", "raw", "mp4", "folder"),
                   help="jpeg: one .tar of JPEG frames per video (default); raw: uncompressed "
                   "frames (fastest, large: for small --size); mp4: h264 with a keyframe every "
                   "8 frames; folder: a folder of JPEG frames per video")
    p.add_argument("--size", type=positive_int, help="resize the short side to SIZE pixels")
    p.add_argument("--quality", type=positive_int, default=90, help="JPEG quality (default %(default)s)")
    p.add_argument("--workers", type=nonneg_int, default=0, help="videos packed side by side")
    p.set_defaults(func=cmd_pack)

    track.add_parser(sub)
    sr.add_parser(sub)
    stream.add_parser(sub)
    serve.add_parser(sub)
    detect.add_parser(sub)
    ava.add_parser(sub)
    segment.add_parser(sub)
    pretrain.add_parser(sub)
    clip.add_parser(sub)

    p = sub.add_parser("models", help="list the registered models")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)
    return parser


def _one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line; for an error re-raised from a DataLoader worker
    ("Caught X in DataLoader worker process N. Original Traceback ..."), the original one."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"  # not "[Errno 22] Invalid argument" alone
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if lines[0].startswith("Caught ") and len(lines) > 1:
        return lines[-1]
    return lines[0]


def _with_flags(message: str, parser: argparse.ArgumentParser, command: str | None = None) -> str:
    """A library message that starts with a Python parameter (``lr must be positive``)
    starting with the flag of ``command`` (a sub-command of ``parser``) for it instead
    (``--lr must be positive``); another command's flags are not this one's."""
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if command is not None and subparsers and command in subparsers[0].choices:
        parser = subparsers[0].choices[command]
    flags = {action.dest: action.option_strings[-1] for action in _all_actions(parser) if action.option_strings}
    word = re.match(r"[a-z][a-z0-9_]*", message)
    if word and word.group() in flags and message[word.end():word.end() + 1] in (" ", ":", ""):
        message = flags[word.group()] + message[word.end():]
    # parameter names with an underscore are unambiguous anywhere in the message, but for
    # ``name=value`` (a model option or a recipe field, not a flag)
    return re.sub(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b(?!=)", lambda m: flags.get(m.group(), m.group()), message)


def _all_actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    """The actions of ``parser`` and of its sub-command parsers."""
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _all_actions(sub)


OUTPUT_OPTIONS = ("out", "video_out")  # the options every command names its outputs by


def _paths(value: Any) -> Iterator[str]:
    """The strings and paths in an option's value (lists and pairs flattened)."""
    if isinstance(value, (str, os.PathLike)):
        yield os.fspath(value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _paths(item)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # either missing (a new output cannot be an input), or not a path
        return False


def refuse_overwriting_inputs(args: argparse.Namespace) -> None:
    """A ``UsageError`` when an output option names an existing file that is one of the
    command's inputs (any other option's path, links and hard links included) or another
    output: ``track mot v.mp4 --out v.mp4`` must not destroy the video."""
    outputs = [(dest, os.fspath(value)) for dest in OUTPUT_OPTIONS
               if isinstance(value := getattr(args, dest, None), (str, os.PathLike))]
    inputs = [path for dest, value in vars(args).items() if dest not in OUTPUT_OPTIONS and dest != "func"
              for path in _paths(value)]
    for i, (dest, out) in enumerate(outputs):
        flag = "--" + dest.replace("_", "-")
        for other, path in outputs[i + 1:]:
            if os.path.abspath(out) == os.path.abspath(path) or _same_file(out, path):
                raise UsageError(f"{flag} and --{other.replace('_', '-')} are the same file {out}")
        if os.path.isfile(out):
            for path in inputs:
                if _same_file(out, path):
                    raise UsageError(f"{flag} {out} is the input {path}: writing it would destroy the "
                                     f"input; choose another output path")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status.  Errors users can fix print as one line (status 2)
    and warnings as one line each (``deepvideo COMMAND: warning: ...``) while it runs."""
    parser = build_parser()
    args = parser.parse_args(argv)
    show_warning = warnings.formatwarning
    warnings.formatwarning = lambda message, *_, **__: f"deepvideo {args.command}: warning: {message}\n"
    try:
        return _run(args, parser)
    finally:
        warnings.formatwarning = show_warning


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from deepvideo.engine.checkpoint import CheckpointError
    from deepvideo.io import VideoDecodeError

    handler: Callable[[argparse.Namespace], None] = args.func
    if os.environ.get("DEEPVIDEO_DEBUG") == "1":  # the full traceback instead of one line
        refuse_overwriting_inputs(args)
        handler(args)
        return 0
    try:
        refuse_overwriting_inputs(args)
        handler(args)
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    except (UsageError, ValueError, VideoDecodeError, CheckpointError, OSError) as exc:
        print(f"deepvideo {args.command}: error: {_with_flags(_one_line(exc), parser, args.command)}",
              file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"deepvideo {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0
