"""``deepvideo stream``: action recognition on a file, camera or network stream, one JSON line
per prediction (a thin command over :func:`deepvideo.deploy.stream.run_stream`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from deepvideo.cli.options import UsageError, add_network_options, positive_float, positive_int, predict_network


def cmd_stream(args: argparse.Namespace) -> None:
    from deepvideo.deploy.stream import run_stream
    from deepvideo.engine.device import resolve_device
    from deepvideo.io.stream import LiveSource

    device = resolve_device(args.device)
    recipe, network = predict_network(args, device)
    if args.video_out is not None and args.video_out.suffix.lower() not in (".mp4", ".mkv", ".mov"):
        raise UsageError(f"--video-out {args.video_out}: write an .mp4, .mkv or .mov file")

    def emit(prediction: dict) -> None:
        print(json.dumps(prediction), flush=True)

    with LiveSource(args.source, realtime=args.realtime, timeout=args.timeout) as source:
        summary = run_stream(network, recipe, source, emit, step=args.step, average=args.average, topk=args.top,
                             device=device, amp=args.amp, video_out=args.video_out)
    if summary.windows == 0:
        print(f"deepvideo stream: warning: {args.source}: no prediction (the stream ended after {summary.frames} "
              f"frames, before one clip of {recipe.clip_len} frames at stride {recipe.frame_stride})", file=sys.stderr)
    print(f"deepvideo stream: {summary}", file=sys.stderr)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``deepvideo stream SOURCE``."""
    p = sub.add_parser("stream", help="predict on a live stream (file, camera or URL), one JSON line per window",
                       description="Decode SOURCE on one thread into a ring buffer of the last clip; predict on "
                       "the newest clip whenever the network is free (windows that fall due meanwhile are dropped "
                       "and counted, never queued). Each prediction is a JSON line: frame, time (s), latency (s, "
                       "from the clip's last frame), window, dropped, top (averaged over the last --average "
                       "windows). A summary line goes to stderr at the end.")
    p.add_argument("source", metavar="SOURCE", help="a video file, a camera (/dev/video0 or an index such as 0) or "
                   "a stream URL (rtsp://, http://, udp://, ...)")
    add_network_options(p)
    p.add_argument("--realtime", action="store_true", help="pace a file at its frame rate, as a camera")
    p.add_argument("--video-out", type=Path, help="also write the stream with the current label drawn (.mp4)")
    p.add_argument("--step", type=positive_int, default=1,
                   help="sampled frames (at the recipe's stride) between windows (default %(default)s)")
    p.add_argument("--average", type=positive_int, default=5,
                   help="windows whose probabilities are averaged (default %(default)s)")
    p.add_argument("--top", type=positive_int, default=5)
    p.add_argument("--timeout", type=positive_float, default=10.0,
                   help="seconds to wait for the source to open and for each read (default %(default)s)")
    p.add_argument("--device", default="cpu", help="torch device (default %(default)s)")
    p.add_argument("--amp", default="none", choices=("none", "bf16", "fp16", "auto"), help="default %(default)s")
    p.set_defaults(func=cmd_stream, command="stream")
