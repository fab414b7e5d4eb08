"""``deepvideo clip``: train a video-text dual encoder, classify videos zero-shot from class
names, search videos by text (thin commands over :mod:`deepvideo.language`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from deepvideo.cli.options import (
    LibraryNames,
    UsageError,
    add_training_options,
    existing_file,
    fraction,
    model_option,
    positive_int,
    print_json,
    train_config,
)

VIDEO_ENCODERS = LibraryNames("deepvideo.language.model", "VIDEO_ENCODERS")


def _spec(args: argparse.Namespace):
    from deepvideo.language import ClipSpec, open_clip_spec

    if args.clip_model:
        given = [flag for flag, value in (("--video-opt", args.video_opt), ("--text-opt", args.text_opt),
                                          ("--embed-dim", args.embed_dim), ("--size", args.size),
                                          ("--resize", args.resize)) if value]
        if given:
            raise UsageError(f"--clip-model {args.clip_model} sets the towers and the frame size; drop {given[0]}")
        return open_clip_spec(args.clip_model, args.clip_len, args.pooling, args.frame_stride)
    if args.clip_weights:
        raise UsageError("--clip-weights needs --clip-model (the open_clip name of its architecture, e.g. ViT-B-32)")
    defaults = ClipSpec()
    text = {**defaults.text_options, **dict(args.text_opt or [])}
    return ClipSpec(embed_dim=args.embed_dim or defaults.embed_dim, video_encoder=args.video_encoder,
                    video_options=dict(args.video_opt or []), text_options=text, clip_len=args.clip_len,
                    frame_stride=args.frame_stride, size=args.size or defaults.size,
                    resize=args.resize or max(args.size or 0, defaults.resize))


def cmd_clip_train(args: argparse.Namespace) -> None:
    from deepvideo.engine.distributed import launch_rank
    from deepvideo.language import CLIP_TRAINING, train_clip

    result = train_clip(args.out, args.data, args.captions, _spec(args), train_config(args, CLIP_TRAINING),
                        args.resume, args.clip_weights, args.val_fraction)
    if launch_rank() == 0:
        last = result["history"][-1]
        scores = f", val text-to-video R@1 {last['val_t2v_r1']:.3f}" if "val_t2v_r1" in last else ""
        print(f"best {result['monitor']} {result['best']:.3f}{scores} on {len(result['val_videos'])} held-out videos; "
              f"checkpoint {result['checkpoint']} (use with `deepvideo clip zeroshot|search --checkpoint`)")


def cmd_clip_zeroshot(args: argparse.Namespace) -> None:
    from deepvideo.language import TEMPLATES, zero_shot_accuracy

    labels = [label for label in args.labels.split(",") if label.strip()]
    result = zero_shot_accuracy(args.checkpoint, args.data, labels, args.template or TEMPLATES, args.device,
                                args.batch_size, progress=not args.json)
    if args.json:
        print_json({**result, "skipped": [str(path) for path in result["skipped"]]})
        return
    width = max(len(folder) for folder in result["labels"])
    for folder, text in result["labels"].items():
        score = result["per_class"].get(folder)
        print(f"{folder:<{width}}  {'-' if score is None else f'{score:.3f}'}  {text!r}")
    for path in result["skipped"]:
        print(f"skipped {path}: cannot be decoded")
    print(f"zero-shot accuracy {result['accuracy']:.3f} on {result['videos']} videos "
          f"({len(result['labels'])} classes, chance {result['chance']:.3f})")


def cmd_clip_search(args: argparse.Namespace) -> None:
    from deepvideo.language import search_videos

    result = search_videos(args.checkpoint, args.videos, args.query, args.top, args.device, args.batch_size,
                           progress=not args.json)
    if args.json:
        print_json({"results": [{"video": str(path), "score": score} for path, score in result["results"]],
                    "searched": result["searched"]})
        return
    for rank, (path, score) in enumerate(result["results"], 1):
        print(f"{rank:>3}  {score:+.3f}  {path}")
    print(f"top {len(result['results'])} of {result['searched']} videos for {args.query!r}")


def _add_use_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=existing_file, required=True, help="best.pt of `deepvideo clip train`")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=positive_int, default=16, help="videos per forward (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``deepvideo clip train|zeroshot|search``."""
    p = sub.add_parser("clip", help="video and text in one embedding space: train, zero-shot classify, search",
                       description="A CLIP-style dual encoder (Radford et al. 2021) of videos and captions: "
                       "train it with the symmetric InfoNCE loss on captioned videos, classify videos zero-shot "
                       "from class names, search videos with a text query.")
    clip = p.add_subparsers(dest="clip_command", required=True, metavar="SUBCOMMAND")

    p = clip.add_parser("train", help="train a dual encoder on captioned videos",
                        description="Train on the videos under --data named in --captions (video<TAB>caption "
                        "lines, paths relative to --data, several captions per video allowed); a --val-fraction "
                        "of the videos measures retrieval after every epoch. Writes OUT/best.pt, OUT/last.pt, "
                        "OUT/metrics.csv and OUT/curves.png; --resume continues.")
    p.add_argument("--data", type=Path, required=True, metavar="VIDEOS", help="folder the caption file's paths are in")
    p.add_argument("--captions", type=Path, required=True, help="caption file (video<TAB>caption lines)")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--val-fraction", type=fraction, default=0.1,
                   help="videos held out for validation (default %(default)s; 0: none)")
    group = p.add_argument_group("towers")
    group.add_argument("--video-encoder", default="backbone", choices=VIDEO_ENCODERS,
                       help="backbone: a registered video model without its classifier (--video-opt model=small3d, "
                       "model_kwargs={...}); frames: CLIP's ViT per frame, pooled over time (--video-opt "
                       "pooling=mean|transformer, patch_size, width, layers, heads) (default %(default)s)")
    group.add_argument("--video-opt", type=model_option, action="append", metavar="KEY=VALUE",
                       help="video encoder option, repeatable")
    group.add_argument("--text-opt", type=model_option, action="append", metavar="KEY=VALUE",
                       help="text transformer option, repeatable (context_length, width, heads, layers)")
    group.add_argument("--embed-dim", type=positive_int, help="joint embedding size (default 128)")
    group.add_argument("--clip-model", help="build both towers as open_clip's model of this name (ViT-B-32, ...; "
                       "its config ships with open_clip, nothing is downloaded)")
    group.add_argument("--clip-weights", type=existing_file,
                       help="start the towers from this local CLIP state_dict file (needs --clip-model)")
    group.add_argument("--pooling", default="transformer", choices=("mean", "transformer"),
                       help="with --clip-model: temporal pooling of the frame embeddings (default %(default)s)")
    group = p.add_argument_group("clips")
    group.add_argument("--clip-len", type=positive_int, default=8, help="frames per clip (default %(default)s)")
    group.add_argument("--frame-stride", type=positive_int, default=1, help="take every N-th frame (default 1)")
    group.add_argument("--size", type=positive_int, help="crop side (default 112)")
    group.add_argument("--resize", type=positive_int, help="short side before cropping (default 128)")
    add_training_options(p)
    p.set_defaults(func=cmd_clip_train, command="clip train")

    p = clip.add_parser("zeroshot", help="video accuracy on a labelled folder from class names alone",
                        description="Classify every video under DATA/<class>/ by the closest class text (CLIP's "
                        "prompt ensemble) and score it against its folder: no training on these labels.")
    p.add_argument("--data", type=Path, required=True, help="labelled folder: DATA/<class>/<video>")
    p.add_argument("--labels", required=True,
                   help="comma-separated class texts: FOLDER=TEXT, or a TEXT holding its folder's name as a word "
                   "('moving left' for DATA/left)")
    p.add_argument("--template", action="append", metavar="TEXT",
                   help="prompt template with {} for the label, repeatable (default: 'a video of {}' and three more)")
    _add_use_options(p)
    p.set_defaults(func=cmd_clip_zeroshot, command="clip zeroshot")

    p = clip.add_parser("search", help="the videos that best match a text query",
                        description="Embed every video under --videos (recursively) and the query; print the "
                        "closest videos with their cosine similarity.")
    p.add_argument("--videos", type=Path, required=True, help="folder of videos, searched recursively")
    p.add_argument("--query", required=True, help="text describing the wanted video")
    p.add_argument("--top", type=positive_int, default=5, help="videos shown (default %(default)s)")
    _add_use_options(p)
    p.set_defaults(func=cmd_clip_search, command="clip search")
