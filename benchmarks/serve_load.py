"""Requests/s and latency of ``deepvideo serve`` under a bounded number of concurrent clients.

    python benchmarks/serve_load.py [--checkpoint FILE] [--video FILE] [--concurrency 1,2,4,8]
                                    [--requests 16] [--max-queue 4] [--threads 2]

The server runs in a process of its own (``deepvideo.deploy``'s ``load_network``,
``create_app`` and ``serve``, what ``deepvideo serve`` runs), on 127.0.0.1 at a free port,
with ``--threads`` torch threads, so that the clients do not share its GIL.  The model is
``--checkpoint``, else a fresh small3d (widths 8, 16, 32, 64; 8-frame 112 x 112 clips) written
to a temporary folder.  The video is ``--video``, else the smallest sample of
../shared/data/videos, else a generated one (48 frames, 128 x 128).  After one warm-up
request, for each concurrency level, that many client threads (urllib) upload the video
``--requests`` times in all; a client sends its next request when its last one is answered.
Prints per level: requests/s (answers of any status / wall time), 200s/s, p50 and p95
latency of the 200s, and the counts of 200s, 503s (past ``--max-queue`` admitted
requests) and other answers or connection errors.  Asserts nothing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import torch

from deepvideo.engine.checkpoint import save_checkpoint
from deepvideo.engine.recipe import Recipe
from deepvideo.io import write_video

from machine import cpu_model  # benchmarks/machine.py

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"
SERVER = """
import sys, torch
from deepvideo.deploy import load_network
from deepvideo.deploy.serve import create_app, serve
torch.set_num_threads(int(sys.argv[3]))
recipe, network = load_network(sys.argv[1])
serve(create_app(network, recipe, max_queue=int(sys.argv[2])), port=0, log_level="warning",
      ready=lambda url: print(url, flush=True))
"""
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 never through a proxy


def fresh_checkpoint(folder: Path) -> Path:
    torch.manual_seed(0)
    recipe = Recipe(model="small3d", classes=[f"class{i}" for i in range(10)],
                    model_kwargs={"widths": [8, 16, 32, 64]}, clip_len=8, frame_stride=2)
    return save_checkpoint(folder / "small3d.pt", {"model": recipe.build_model().state_dict(),
                                                   "recipe": recipe.to_dict()})


def default_video(folder: Path) -> Path:
    samples = sorted(SAMPLES.glob("*")) if SAMPLES.is_dir() else []
    if samples:
        return min(samples, key=lambda path: path.stat().st_size)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (48, 128, 128, 3), dtype=np.uint8)
    return write_video(folder / "generated.mp4", frames, fps=25)


def upload(url: str, body: bytes) -> tuple[int, float]:
    """The status of one upload (0: no answer) and its latency in seconds."""
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/octet-stream"})
    start = time.perf_counter()
    try:
        with OPENER.open(request, timeout=300) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        exc.read()
        status = exc.code
    except OSError:
        status = 0
    return status, time.perf_counter() - start


def load_level(url: str, body: bytes, clients: int, requests: int) -> tuple[float, list[tuple[int, float]]]:
    """``requests`` uploads by ``clients`` threads: wall time and ``(status, latency)`` of each."""
    results: list[tuple[int, float]] = []
    left = iter(range(requests))
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                if next(left, None) is None:
                    return
            answer = upload(url, body)
            with lock:
                results.append(answer)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="default: a fresh small3d")
    parser.add_argument("--video", type=Path, help="default: the smallest sample video, else a generated one")
    parser.add_argument("--concurrency", default="1,2,4,8", help="client threads of each level")
    parser.add_argument("--requests", type=int, default=16, help="uploads per level")
    parser.add_argument("--max-queue", type=int, default=4, help="the server's admitted requests")
    parser.add_argument("--threads", type=int, default=2, help="the server's torch threads")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint or fresh_checkpoint(Path(tmp))
        video = args.video or default_video(Path(tmp))
        body = video.read_bytes()
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(checkpoint), str(args.max_queue),
                                   str(args.threads)], stdout=subprocess.PIPE, text=True)
        try:
            base = server.stdout.readline().strip()
            if not base:
                raise SystemExit(f"the server did not start (exit status {server.wait()})")
            url = f"{base}/predict?name={video.name}"
            status, warm = upload(url, body)
            if status != 200:
                raise SystemExit(f"the warm-up upload got HTTP {status}")
            print(f"CPU: {cpu_model()}; server: {checkpoint.name}, {args.threads} torch threads, "
                  f"--max-queue {args.max_queue}; video {video.name} ({len(body) / 1e3:.0f} kB), "
                  f"one answer alone {warm:.2f} s")
            print(f"{'clients':>7}{'requests':>10}{'req/s':>8}{'200/s':>8}{'p50 s':>8}{'p95 s':>8}"
                  f"{'200':>6}{'503':>6}{'other':>7}")
            for clients in map(int, args.concurrency.split(",")):
                wall, results = load_level(url, body, clients, args.requests)
                ok = [latency for status, latency in results if status == 200]
                p50, p95 = np.percentile(ok, [50, 95]) if ok else (float("nan"),) * 2
                busy = sum(status == 503 for status, _ in results)
                print(f"{clients:>7}{len(results):>10}{len(results) / wall:>8.2f}{len(ok) / wall:>8.2f}"
                      f"{p50:>8.2f}{p95:>8.2f}{len(ok):>6}{busy:>6}{len(results) - len(ok) - busy:>7}", flush=True)
        finally:
            server.terminate()  # uvicorn stops on SIGTERM after the requests in flight
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    main()
