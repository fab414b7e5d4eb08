"""``deepvideo serve``: an HTTP API (FastAPI + uvicorn) answering sliding-window predictions.

* ``POST /predict?name=NAME`` (or ``PUT``): the video file is the raw request body
  (``curl --data-binary @clip.mp4``, or ``curl -T clip.mp4``, which streams it); the answer is
  the JSON of :func:`deepvideo.engine.predict.predict_video` with ``"video"`` set to ``NAME``
  (default ``"upload"``).  The upload is checked by decoding, never by its name: 400 for an
  empty body, 413 past the size limit (told by ``Content-Length`` before anything is read,
  else counted while streaming to a temporary file), 422 for content FFmpeg cannot decode.
* ``GET /health``: ``{"status": "ok", "busy", "max_queue"}``; ``GET /model``: the model's
  name, classes and recipe.

All requests share one network, called by one worker thread, one request at a time; at
most ``max_queue`` requests are admitted (running or waiting), and one more is answered
503 at once, before its body is read.  Error answers are ``{"detail": "<one line>"}``
(500 for an exception of the network, logged with its traceback).
Needs ``pip install 'deepvideo[serve]'``.
"""

# no ``from __future__ import annotations``: FastAPI reads the annotations of the routes,
# which name fastapi's classes imported inside create_app

import asyncio
import contextlib
import os
import socket
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Iterator

import torch

from deepvideo.deploy.packages import SERVE_EXTRA, require
from deepvideo.engine.predict import predict_video
from deepvideo.engine.recipe import Recipe
from deepvideo.io import VideoDecodeError

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "create_app", "running_server", "serve"]

DEFAULT_MAX_UPLOAD_BYTES = 100 * 2**20


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


def create_app(network: Callable[[torch.Tensor], Any], recipe: Recipe, *,
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES, max_queue: int = 4, step: int | None = None,
               topk: int = 5, batch_size: int = 4, device: torch.device | str = "cpu") -> "FastAPI":
    """The API of ``network`` (clips ``(B, C, T, H, W)`` float32 on ``device`` -> logits
    ``(B, num_classes)``, as :func:`~deepvideo.deploy.load_network` returns it) with ``recipe``'s
    windows and transform; ``step``, ``topk`` and ``batch_size`` as in ``predict_video``.
    ``ValueError`` for a recipe that is not of the rgb modality, or a limit below 1."""
    fastapi = require("fastapi", "deepvideo serve", SERVE_EXTRA)
    from fastapi.responses import JSONResponse
    from starlette.requests import ClientDisconnect

    if recipe.modality != "rgb":
        raise ValueError(f"deepvideo serve reads RGB windows; a {recipe.model} model of the {recipe.modality} "
                         f"modality cannot be served")
    for label, value in (("max_upload_bytes", max_upload_bytes), ("max_queue", max_queue),
                         ("topk", topk), ("batch_size", batch_size)):
        if value < 1:
            raise ValueError(f"{label} must be at least 1, got {value}")
    state = {"admitted": 0}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        # one worker thread: the network is never called by two requests at once
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="deepvideo-predict") as worker:
            yield {"worker": worker}

    app = fastapi.FastAPI(title="deepvideo", summary=f"{recipe.model}: sliding-window video classification",
                          lifespan=lifespan)

    def error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"detail": _first_line(detail)}, status_code=status, headers=headers)

    def run(path: str, name: str) -> dict[str, Any]:
        try:
            result = predict_video(network, path, recipe, step=step, topk=topk, batch_size=batch_size, device=device)
        except VideoDecodeError as exc:
            raise VideoDecodeError(str(exc).replace(path, name)) from None
        return {**result, "video": name}

    @app.exception_handler(Exception)
    async def failed(request: fastapi.Request, exc: Exception) -> JSONResponse:  # also logged with its traceback
        return error(500, f"{type(exc).__name__}: {exc}")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "busy": state["admitted"], "max_queue": max_queue}

    @app.get("/model")
    async def model() -> dict[str, Any]:
        return {"model": recipe.model, "classes": recipe.classes, "recipe": recipe.to_dict()}

    @app.api_route("/predict", methods=["POST", "PUT"])  # PUT: curl -T streams the file
    async def predict(request: fastapi.Request, name: str = "upload") -> Any:
        if state["admitted"] >= max_queue:
            return error(503, f"busy: {max_queue} requests are running or waiting; retry later",
                         {"Retry-After": "1"})
        length = request.headers.get("content-length")  # digits: the HTTP parser checks it
        if length is not None and int(length) > max_upload_bytes:
            return error(413, f"upload of {length} bytes is over the limit of {max_upload_bytes} bytes")
        fd, path = tempfile.mkstemp(prefix="deepvideo-upload-")
        state["admitted"] += 1
        try:
            size = 0
            with os.fdopen(fd, "wb") as file:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > max_upload_bytes:
                        return error(413, f"upload is over the limit of {max_upload_bytes} bytes")
                    file.write(chunk)
            if size == 0:
                return error(400, "empty upload: send the video file as the request body "
                             "(curl --data-binary @video.mp4)")
            try:
                return await asyncio.get_running_loop().run_in_executor(request.state.worker, run, path, name)
            except VideoDecodeError as exc:
                return error(422, str(exc))
        except ClientDisconnect:
            return error(400, "the client disconnected during the upload")
        finally:
            state["admitted"] -= 1
            os.unlink(path)

    return app


def _listen(host: str, port: int) -> tuple[socket.socket, str]:
    """A socket listening on ``host:port`` (0: a free port) and its base URL; ``OSError``
    naming the address when it cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family)
    except OSError as exc:
        raise OSError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    bound_host, bound_port = sock.getsockname()[:2]
    if family == socket.AF_INET6:
        bound_host = f"[{bound_host}]"
    return sock, f"http://{bound_host}:{bound_port}"


def _server(app: "FastAPI", log_level: str) -> Any:
    uvicorn = require("uvicorn", "deepvideo serve", SERVE_EXTRA)
    return uvicorn.Server(uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=30))


def serve(app: "FastAPI", host: str = "127.0.0.1", port: int = 8000, *, log_level: str = "info",
          ready: Callable[[str], None] | None = None) -> None:
    """Answer requests to ``app`` on ``host:port`` until Ctrl+C or SIGTERM (requests in flight
    finish first).  ``ready(base_url)`` is called once the port is bound; ``OSError`` naming the
    address when it cannot be."""
    server = _server(app, log_level)
    sock, url = _listen(host, port)
    if ready is not None:
        ready(url)
    server.run(sockets=[sock])


@contextlib.contextmanager
def running_server(app: "FastAPI", host: str = "127.0.0.1", port: int = 0, *, log_level: str = "warning",
                   timeout: float = 30.0) -> Iterator[str]:
    """``app`` served by a background thread of this process (a notebook, a test) while the
    ``with`` block runs; yields its base URL (``port`` 0: a free port).  Leaving the block lets
    requests in flight finish and stops the server."""
    server = _server(app, log_level)
    sock, url = _listen(host, port)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="deepvideo-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the server on {url} did not start")
        time.sleep(0.01)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join()
        sock.close()
