"""Live streams: latency and dropped windows on a paced file, CPU of the idle loop against a
busy-waiting consumer, and memory over a long stream.

    python benchmarks/stream.py [--video FILE] [--models small3d,r2plus1d_18] [--threads 2]
                                [--idle-seconds 20] [--long-minutes 30] [--skip latency,idle,long]

1. **Latency** (per model, fresh weights, its usual clip 3 x 16 x 112 x 112 at frame stride 2):
   ``deepvideo.deploy.run_stream`` on ``--video`` (default: the 10 s Kinetics sample
   mmaction2__demo.mp4, 340x256 at 28 fps) paced at its frame rate (``realtime``, as
   ``deepvideo stream --realtime``): mean and 95th-percentile latency from a clip's last
   frame to its prediction, windows predicted and the share of due windows dropped.
2. **Idle loop**: the same decode thread and ring buffer fed by a 2 fps video (the network
   mostly waits for frames), process CPU seconds per wall second of ``run_stream`` against
   the same frames consumed by a loop that polls the buffer without sleeping (the pattern
   of MMAction2's webcam demo, mmaction2#575), in one process.
3. **Long stream**: ``--long-minutes`` of generated 320x240 video at 25 fps (written once to a
   cache folder), streamed unpaced through small3d; resident memory sampled every second,
   reported at the first minute of stream time and at the end.

Prints the CPU and the numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from deepvideo.deploy import recipe_for_model
from deepvideo.deploy.stream import ClipBuffer, run_stream
from deepvideo.io import write_video
from deepvideo.io.encode import VideoWriter
from deepvideo.io.stream import LiveSource

from machine import cpu_model  # benchmarks/machine.py

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos" / "mmaction2__demo.mp4"
CACHE = Path(tempfile.gettempdir()) / "deepvideo-bench-stream"


def network(name: str):
    recipe = replace(recipe_for_model(name, (3, 16, 112, 112), num_classes=400), frame_stride=2, resize=128)
    return recipe, recipe.build_model().eval()


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def latency(video: Path, models: list[str]) -> None:
    print(f"\n1. latency on {video.name}, paced at its frame rate (--realtime)")
    print(f"{'model':<14}{'frames':>8}{'windows':>9}{'dropped':>9}{'mean s':>9}{'p95 s':>8}")
    for name in models:
        recipe, model = network(name)
        with LiveSource(video, realtime=True) as source:
            s = run_stream(model, recipe, source)
        print(f"{name:<14}{s.frames:>8}{s.windows:>9}{100 * s.dropped_share:>8.1f}%{s.latency_mean:>9.3f}"
              f"{s.latency_p95:>8.3f}")


def busy_consumer(source: LiveSource, clip_len: int, stride: int) -> int:
    """The reference: a decode thread fills the buffer, the consumer polls it without sleeping."""
    buffer = ClipBuffer(clip_len, stride)
    done = threading.Event()

    def decode() -> None:
        for frame in source:
            buffer.put(frame)
        done.set()

    threading.Thread(target=decode, daemon=True).start()
    taken = 0
    while not done.is_set():
        if buffer.due > taken:  # the webcam demo's `if len(frame_queue) != 0` spin
            taken = buffer.due
    return taken


def idle(seconds: float) -> None:
    fps = 2
    path = CACHE / f"idle_{fps}fps_{seconds:g}s.mp4"
    if not path.exists():
        rng = np.random.default_rng(0)
        write_video(path, rng.integers(0, 255, (int(seconds * fps), 240, 320, 3), dtype=np.uint8), fps)
    recipe, model = network("small3d")
    rows = []
    for label in ("deepvideo run_stream (sleeps on a condition)", "busy-wait poll (reference)"):
        with LiveSource(path, realtime=True) as source:
            wall, cpu = time.perf_counter(), cpu_seconds()
            if label.startswith("deepvideo"):
                windows = run_stream(model, recipe, source).windows
            else:
                windows = busy_consumer(source, recipe.clip_len, recipe.frame_stride)
            rows.append((label, windows, (cpu_seconds() - cpu) / (time.perf_counter() - wall)))
    print(f"\n2. idle loop: {seconds:g} s of a {fps} fps stream through small3d")
    for label, windows, share in rows:
        print(f"  {label:<46} {windows:>4} windows   CPU {100 * share:6.1f}% of one core")
    print(f"  ratio busy-wait / deepvideo CPU: {rows[1][2] / rows[0][2]:.1f}x")


def long_stream(minutes: float) -> None:
    fps, frames = 25, int(minutes * 60 * 25)
    path = CACHE / f"long_{minutes:g}min.mp4"
    if not path.exists():
        rng = np.random.default_rng(0)
        base = rng.integers(0, 200, (240, 400, 3), dtype=np.uint8)
        started = time.perf_counter()
        with VideoWriter(path, fps, 320, 240) as out:
            for t in range(frames):  # a texture panning right, a bright square moving down
                frame = np.ascontiguousarray(base[:, (t % 80):(t % 80) + 320])
                frame[(t * 3) % 200:(t * 3) % 200 + 40, 140:180] = 250
                out.write(frame)
        print(f"   (wrote {path}, {frames} frames, in {time.perf_counter() - started:.0f} s)")
    recipe, model = network("small3d")
    samples: list[tuple[float, float, float]] = []  # (wall s, stream s, RSS MB)
    latest = [0.0]
    stop = threading.Event()

    def sample() -> None:
        start = time.perf_counter()
        while not stop.wait(1.0):
            samples.append((time.perf_counter() - start, latest[0], rss_mb()))

    sampler = threading.Thread(target=sample, daemon=True)
    before = rss_mb()
    sampler.start()
    with LiveSource(path) as source:
        summary = run_stream(model, recipe, source, lambda p: latest.__setitem__(0, p["time"]))
    stop.set()
    sampler.join()
    first_minute = [rss for _, stream_s, rss in samples if 50 <= stream_s <= 70] or [samples[0][2]]
    print(f"\n3. long stream: {minutes:g} min of 320x240 video at 25 fps, unpaced, small3d")
    print(f"  {summary}")
    print(f"  RSS before {before:.0f} MB; at 1 min of stream {np.mean(first_minute):.0f} MB; "
          f"at the end {samples[-1][2]:.0f} MB; max {max(s[2] for s in samples):.0f} MB "
          f"({len(samples)} samples over {samples[-1][0]:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=SAMPLE)
    parser.add_argument("--models", default="small3d,r2plus1d_18")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--idle-seconds", type=float, default=20)
    parser.add_argument("--long-minutes", type=float, default=30)
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: latency, idle, long")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    CACHE.mkdir(parents=True, exist_ok=True)
    skip = set(filter(None, args.skip.split(",")))
    print(f"CPU: {cpu_model()}; torch {torch.__version__}, {args.threads} threads")
    if "latency" not in skip:
        latency(args.video, args.models.split(","))
    if "idle" not in skip:
        idle(args.idle_seconds)
    if "long" not in skip:
        long_stream(args.long_minutes)


if __name__ == "__main__":
    main()
