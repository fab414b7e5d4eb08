"""``deepvideo serve``: the HTTP API of a checkpoint or exported model (a thin command over
:mod:`deepvideo.deploy.serve`)."""

from __future__ import annotations

import argparse

from deepvideo.cli.options import UsageError, existing_file, positive_float, positive_int


def port_number(text: str) -> int:
    """A TCP port, 0 (a free one) to 65535."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}")
    return int(text)


def cmd_serve(args: argparse.Namespace) -> None:
    from deepvideo.deploy import load_network
    from deepvideo.deploy.serve import create_app, serve
    from deepvideo.engine.device import resolve_device

    def ready(url: str) -> None:
        print(f"{args.checkpoint}: {recipe.model}, {len(recipe.classes)} classes; POST videos to {url}/predict "
              f"(GET {url}/health, {url}/model); Ctrl+C stops", flush=True)

    device = resolve_device(args.device)
    try:
        recipe, network = load_network(args.checkpoint, args.backend, device)
        app = create_app(network, recipe, max_upload_bytes=int(args.max_upload_mb * 2**20), max_queue=args.max_queue,
                         step=args.step, topk=args.top, batch_size=args.batch_size, device=device)
        serve(app, args.host, args.port, ready=ready)
    except ImportError as exc:  # fastapi, uvicorn or onnxruntime not installed: one line naming the extra
        raise UsageError(str(exc)) from None


def add_parser(sub) -> None:
    """``deepvideo serve``."""
    p = sub.add_parser("serve", help="an HTTP API answering predictions for uploaded videos",
                       description="Serve CHECKPOINT (a training checkpoint, or an .onnx or .pt2 file of "
                       "deepvideo export) over HTTP (FastAPI + uvicorn): POST a video file as the request body "
                       "to /predict and get the JSON of deepvideo predict; GET /health and /model. One model "
                       "answers one request at a time; past --max-queue requests, more get HTTP 503 at once. "
                       "Needs pip install 'deepvideo[serve]'.")
    p.add_argument("checkpoint", type=existing_file, metavar="CHECKPOINT",
                   help="a training checkpoint, or an exported model (.onnx, .pt2)")
    p.add_argument("--backend", choices=("pytorch", "onnxruntime", "exported-program"),
                   help="default: by the suffix (.onnx: onnxruntime, .pt2: exported-program, else pytorch)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default %(default)s: this machine only; 0.0.0.0: every network)")
    p.add_argument("--port", type=port_number, default=8000, help="default %(default)s; 0: a free port")
    p.add_argument("--max-upload-mb", type=positive_float, default=100, metavar="MB",
                   help="larger uploads get HTTP 413 (default %(default)s)")
    p.add_argument("--max-queue", type=positive_int, default=4, metavar="N",
                   help="requests admitted at once, running or waiting; more get HTTP 503 (default %(default)s)")
    p.add_argument("--step", type=positive_int, default=None, metavar="FRAMES",
                   help="frames between window starts (default: one window, no overlap)")
    p.add_argument("--top", type=positive_int, default=5, metavar="K",
                   help="classes in each answer's top lists (default %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=4, metavar="N",
                   help="windows per forward pass (default %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (pytorch backend; default cpu)")
    p.set_defaults(func=cmd_serve, command="serve")
