"""Decoding speed of ``deepvideo.io.VideoReader`` against plain PyAV and the FFmpeg CLI.

1. Random 16-frame clips from ``mmaction2__demo.mp4`` (h264 340x256, 280 frames, keyframes
   at 0/187/230/268): ``VideoReader.read`` (open + seek to the keyframe + decode forward,
   skipping unreferenced frames before the clip) against decoding every frame with plain
   PyAV, converting it to RGB and slicing.  Same clip starts (fixed seed), every file
   opened per clip as a dataset does.  Target: ours at most 1/3 of decode-all.
2. Sequential decode to RGB frames/s: iterating a ``VideoReader`` against the FFmpeg CLI
   from imageio-ffmpeg decoding to rgb24 into a pipe that Python reads frame by frame
   (``-f rawvideo -pix_fmt rgb24 -``), and decoding only (``-f null``).  Target: ours at
   least 70% of FFmpeg rgb24's frames/s.
3. Colour conversion inside a sequential decode (plain PyAV, decoder threads=2): OpenCV
   ``cvtColor(YUV2RGB_I420)`` against swscale on one thread (what the reader uses) and
   swscale with PyAV's default automatic threads, plus how far OpenCV's pixels lie from
   swscale's.

Threads: our decoder and PyAV use ``threads=2`` (frame + slice threading), FFmpeg
``-threads 2`` on its decoder (its filter and muxer threads are its own); swscale in the
reader runs on one thread; OpenCV keeps its default.  The machine may be shared, so every
timing is the best of several interleaved rounds; CPU ms/frame (user + system, all
threads, FFmpeg's counted from its process) is less sensitive to sharing than wall time.

Run: ``python benchmarks/decode.py [--rounds N]``.  Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import time
from pathlib import Path
from typing import Callable

import av
import cv2
import imageio_ffmpeg
import numpy as np

from deepvideo.io import VideoReader

from machine import cpu_model  # benchmarks/machine.py

VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"
CLIP_VIDEO = "mmaction2__demo.mp4"
SEQUENTIAL_VIDEOS = ["mmaction2__demo.mp4", "mmaction2__test.avi", "opencvtut__vtest.avi",
                     "opencvtut__car_traffic_small.mp4", "mmflow__demo_sintel.mp4",
                     "opencvtut__Megamind_as_test.avi"]
CONVERSION_VIDEOS = ["mmaction2__demo.mp4", "opencvtut__Megamind_as_test.avi",
                     "mmflow__demo_sintel.mp4", "mmtracking__demo.mp4"]
THREADS, CLIP_LEN, NUM_CLIPS, SEED = 2, 16, 10, 0
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], int]) -> tuple[float, float, int]:
    """(wall s, CPU s, fn's result) of one call."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = fn()
    return time.perf_counter() - wall, cpu_seconds() - cpu, result


def best(fns: dict[str, Callable[[], int]], rounds: int) -> dict[str, tuple[float, float, int]]:
    """Best (lowest wall) of ``rounds`` interleaved timings of each function."""
    results: dict[str, tuple[float, float, int]] = {}
    for _ in range(rounds):
        for name, fn in fns.items():
            run = timed(fn)
            if name not in results or run[0] < results[name][0]:
                results[name] = run
    return results


def open_pyav(path: Path) -> av.container.InputContainer:
    container = av.open(str(path))
    container.streams.video[0].thread_type = "AUTO"
    container.streams.video[0].thread_count = THREADS
    return container


# -- 1. random clips -------------------------------------------------------------------

def clip_benchmark(rounds: int) -> None:
    path = VIDEOS / CLIP_VIDEO
    with VideoReader(path) as reader:
        num_frames = reader.num_frames
    starts = np.random.default_rng(SEED).integers(0, num_frames - CLIP_LEN + 1, NUM_CLIPS)
    clips = [np.arange(s, s + CLIP_LEN) for s in starts]

    def ours() -> int:
        for clip in clips:
            with VideoReader(path, threads=THREADS) as reader:
                reader.read(clip)
        return len(clips)

    def ours_open() -> int:
        with VideoReader(path, threads=THREADS) as reader:
            for clip in clips:
                reader.read(clip)
        return len(clips)

    def decode_all() -> int:
        for clip in clips:
            with open_pyav(path) as container:
                frames = np.stack([f.to_ndarray(format="rgb24", threads=1)
                                   for f in container.decode(video=0)])
            frames[clip[0]:clip[-1] + 1].copy()
        return len(clips)

    res = best({"decode all + slice (PyAV)": decode_all, "ours: open + read": ours,
                "ours: read, reader kept open": ours_open}, rounds)
    reference = res["decode all + slice (PyAV)"][0]
    print(f"\n1. Random {CLIP_LEN}-frame clips from {CLIP_VIDEO} ({num_frames} frames), "
          f"{NUM_CLIPS} clips, seed {SEED}, starts {starts.tolist()}; best of {rounds} rounds")
    print(f"{'method':32s} {'ms/clip':>9s} {'CPU ms/clip':>12s} {'/ decode-all':>13s}")
    for name, (wall, cpu, n) in res.items():
        print(f"{name:32s} {wall / n * 1e3:9.1f} {cpu / n * 1e3:12.1f} {wall / reference:13.3f}")
    print(f"target: ours (open + read) <= 0.333 of decode-all -> measured "
          f"{res['ours: open + read'][0] / reference:.3f}")


# -- 2. sequential decode --------------------------------------------------------------

def ffmpeg_rgb(path: Path, width: int, height: int) -> int:
    """Frames FFmpeg decodes to rgb24, read from its pipe one frame at a time."""
    cmd = [FFMPEG, "-nostdin", "-v", "fatal", "-threads", str(THREADS), "-i", str(path),
           "-map", "0:v:0", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    size, count = width * height * 3, 0
    with subprocess.Popen(cmd, stdout=subprocess.PIPE) as proc:
        while True:
            frame = np.empty((height, width, 3), np.uint8)
            view, got = memoryview(frame).cast("B"), 0
            while got < size and (n := proc.stdout.readinto(view[got:])):
                got += n
            if got < size:
                return count
            count += 1


def ffmpeg_null(path: Path) -> int:
    """Decode only: FFmpeg's own count of frames decoded into its null muxer."""
    cmd = [FFMPEG, "-nostdin", "-v", "fatal", "-stats_period", "1000", "-progress", "pipe:1",
           "-threads", str(THREADS), "-i", str(path), "-map", "0:v:0", "-fps_mode",
           "passthrough", "-f", "null", "-"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return int([line for line in out.splitlines() if line.startswith("frame=")][-1][6:])


def sequential_benchmark(rounds: int) -> None:
    print(f"\n2. Sequential decode to RGB, frames/s (best of {rounds} rounds; "
          f"ours = VideoReader(threads={THREADS}) iteration incl. open and index; "
          f"FFmpeg -threads {THREADS})")
    print(f"{'video':34s} {'codec':>6s} {'size':>9s} {'frames':>6s} {'ours':>6s} "
          f"{'ff rgb24':>8s} {'ff null':>7s} {'ours/rgb24':>10s} {'CPU ms/f ours':>13s} "
          f"{'ff rgb24':>8s}")
    ratios = []
    for name in SEQUENTIAL_VIDEOS:
        path = VIDEOS / name
        with VideoReader(path) as reader:
            codec, width, height = reader.codec, reader.width, reader.height

        def ours() -> int:
            with VideoReader(path, threads=THREADS) as reader:
                return sum(1 for _ in reader)

        res = best({"ours": ours, "rgb": lambda: ffmpeg_rgb(path, width, height),
                    "null": lambda: ffmpeg_null(path)}, rounds)
        fps = {k: n / wall for k, (wall, _, n) in res.items()}
        cpu = {k: c / n * 1e3 for k, (_, c, n) in res.items()}
        counts = {res[k][2] for k in res}
        ratios.append(fps["ours"] / fps["rgb"])
        print(f"{name:34s} {codec:>6s} {width:4d}x{height:<4d} "
              f"{'/'.join(map(str, sorted(counts))):>6s} {fps['ours']:6.0f} {fps['rgb']:8.0f} "
              f"{fps['null']:7.0f} {ratios[-1]:10.2f} {cpu['ours']:13.2f} {cpu['rgb']:8.2f}")
    print(f"target: ours >= 0.70 of FFmpeg rgb24 frames/s -> measured min "
          f"{min(ratios):.2f}, geometric mean {np.exp(np.mean(np.log(ratios))):.2f}")


# -- 3. colour conversion --------------------------------------------------------------

def conversion_benchmark(rounds: int) -> None:
    converters: dict[str, Callable[[av.VideoFrame], np.ndarray]] = {
        "OpenCV I420": lambda f: cv2.cvtColor(f.to_ndarray(), cv2.COLOR_YUV2RGB_I420),
        "swscale 1 thread": lambda f: f.to_ndarray(format="rgb24", threads=1),
        "swscale auto threads": lambda f: f.to_ndarray(format="rgb24"),
    }
    print(f"\n3. Decode (PyAV, threads={THREADS}) + colour conversion, frames/s, best of "
          f"{rounds} rounds; OpenCV threads = {cv2.getNumThreads()}")
    print(f"{'frames/s | CPU ms/frame':44s} " + " ".join(f"{n:>20s}" for n in converters)
          + f" {'OpenCV-swscale |diff| mean/max':>31s}")
    for name in CONVERSION_VIDEOS:
        path = VIDEOS / name

        def run(convert: Callable[[av.VideoFrame], np.ndarray]) -> int:
            with open_pyav(path) as container:
                return sum(1 for f in container.decode(video=0) if convert(f) is not None)

        res = best({k: (lambda c=c: run(c)) for k, c in converters.items()}, rounds)
        with av.open(str(path)) as container:
            diffs = [np.abs(converters["OpenCV I420"](f).astype(np.int16)
                            - f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
            width, height = container.streams.video[0].width, container.streams.video[0].height
        mean, peak = np.mean([d.mean() for d in diffs]), max(int(d.max()) for d in diffs)
        print(f"{name:34s} {width:4d}x{height:<4d} "
              + " ".join(f"{res[k][2] / res[k][0]:12.0f} | {res[k][1] / res[k][2] * 1e3:5.2f}"
                         for k in converters)
              + f" {mean:24.2f} / {peak:3d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds (best is kept)")
    args = parser.parse_args()
    ffmpeg_version = subprocess.run([FFMPEG, "-version"], capture_output=True,
                                    text=True).stdout.split()[2]
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores "
          f"({len(os.sched_getaffinity(0))} usable), load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"PyAV {av.__version__} (libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))}), "
          f"OpenCV {cv2.__version__}, FFmpeg CLI {ffmpeg_version} (imageio-ffmpeg), "
          f"numpy {np.__version__}")
    clip_benchmark(args.rounds)
    sequential_benchmark(args.rounds)
    conversion_benchmark(args.rounds)


if __name__ == "__main__":
    main()
