"""Throughput of the training clip pipeline against a plain PyAV + float-tensor pipeline.

Pipeline: ``RandomClipSampler(16, stride=2)`` picks 50 clips (fixed seed) from the sample
videos in ``../shared/data/videos``; each clip is decoded, its short side resized to 128,
centre-cropped to 112, turned into a ``(3, 16, 112, 112)`` float32 tensor and normalised.
0 workers, 2 threads (torch, OpenCV and the decoder).  Four pipelines on the same clip
list, interleaved over several rounds (the best round is reported with its CPU time, which
a busy shared machine inflates less than the wall-clock time):

* ours: ``deepvideo.io.VideoReader`` + ``build_transform(train=False)`` (geometry on
  uint8, float conversion on the cropped clip), antialiased bilinear resize (the default);
* ours, cv2 area: the same with ``interpolation="area"`` (OpenCV ``INTER_AREA``);
* ours, float first: the same decoder, frames converted to float32 at full resolution,
  then the same resize / crop;
* PyAV reference: ``av.open``, seek, decode, ``to_ndarray("rgb24")``, float tensors at full
  resolution, torchvision ``resize`` (antialiased bilinear) / ``center_crop`` / ``normalize``.

Every pipeline opens the file for each clip, as a dataset's ``__getitem__`` does (a
dataset of thousands of videos cannot keep them all open), so our per-file frame index is
part of the cost.  Run: ``python benchmarks/pipeline.py``.  Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

import av
import cv2
import numpy as np
import torch
import torchvision
from torchvision.transforms.v2 import functional as TF

from deepvideo.data.sampling import RandomClipSampler
from deepvideo.data.transforms import KINETICS_MEAN, KINETICS_STD, CenterCrop, Normalize, ResizeShort, build_transform
from deepvideo.io import VideoReader

from machine import cpu_model  # benchmarks/machine.py

VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"
THREADS, CLIP_LEN, STRIDE, RESIZE, CROP, TARGET = 2, 16, 2, 128, 112, 13.0


def clip_list(videos: list[Path], num_clips: int, seed: int) -> list[tuple[Path, np.ndarray]]:
    """``num_clips`` (video, frame indices) pairs: a random video, a random clip in it."""
    lengths = []
    for path in videos:
        with VideoReader(path) as reader:
            lengths.append(reader.num_frames)
    rng = np.random.default_rng(seed)
    sampler = RandomClipSampler(CLIP_LEN, stride=STRIDE)
    clips = []
    for _ in range(num_clips):
        v = int(rng.integers(len(videos)))
        clips.append((videos[v], sampler(lengths[v], rng)[0]))
    return clips


# ---- ours -------------------------------------------------------------------------------

def decode(path: Path, indices: np.ndarray, times: dict[str, float]) -> np.ndarray:
    t0 = time.perf_counter()
    with VideoReader(path, threads=THREADS) as reader:
        t1 = time.perf_counter()
        frames = reader.read(indices)
    times["open + index"] += t1 - t0
    times["decode"] += time.perf_counter() - t1
    return frames


def ours_with(interpolation: str) -> Callable[..., torch.Tensor]:
    transform = build_transform(train=False, size=CROP, resize=RESIZE,
                                interpolation=interpolation)

    def ours(path: Path, indices: np.ndarray, times: dict[str, float]) -> torch.Tensor:
        frames = decode(path, indices, times)
        t0 = time.perf_counter()
        clip = transform(frames)
        times["transform"] += time.perf_counter() - t0
        return clip

    return ours


RESIZE_SHORT, CENTER_CROP = ResizeShort(RESIZE), CenterCrop(CROP)
NORMALIZE = Normalize(KINETICS_MEAN, KINETICS_STD)


def ours_float_first(path: Path, indices: np.ndarray, times: dict[str, float]) -> torch.Tensor:
    frames = decode(path, indices, times)
    t0 = time.perf_counter()
    x = frames.astype(np.float32) / 255.0
    t1 = time.perf_counter()
    x = CENTER_CROP(RESIZE_SHORT(x))
    clip = NORMALIZE(torch.from_numpy(np.ascontiguousarray(x)).permute(3, 0, 1, 2).contiguous())
    times["to float (full res)"] += t1 - t0
    times["transform"] += time.perf_counter() - t1
    return clip


# ---- plain PyAV reference ----------------------------------------------------------------

def pyav_reference(path: Path, indices: np.ndarray, times: dict[str, float]) -> torch.Tensor:
    """Seek to the first wanted frame's timestamp, decode forward, frame index from pts.

    Where the index guessed from a timestamp misses a wanted frame (AVI timestamps), the
    nearest decoded frame stands in: the timing is what this reference is for.
    """
    t0 = time.perf_counter()
    first, last = int(indices.min()), int(indices.max())
    decoded: dict[int, av.VideoFrame] = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type, stream.thread_count = "AUTO", THREADS
        fps, tb = float(stream.average_rate), stream.time_base
        start = stream.start_time or 0
        container.seek(start + int(first / fps / tb), stream=stream, backward=True)
        for frame in container.decode(stream):
            j = round(float((frame.pts - start) * tb) * fps)
            decoded[j] = frame
            if j >= last:
                break
        keys = np.array(sorted(decoded))
        nearest = {j: int(keys[np.abs(keys - j).argmin()]) for j in set(indices.tolist())}
        rgb = {k: decoded[k].to_ndarray(format="rgb24") for k in set(nearest.values())}
    frames = np.stack([rgb[nearest[j]] for j in indices.tolist()])
    t1 = time.perf_counter()
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255.0)  # (T, 3, H, W)
    t2 = time.perf_counter()
    x = TF.center_crop(TF.resize(x, [RESIZE], antialias=True), [CROP])
    clip = TF.normalize(x, list(KINETICS_MEAN), list(KINETICS_STD)).permute(1, 0, 2, 3)
    clip = clip.contiguous()
    t3 = time.perf_counter()
    times["open + seek + decode + rgb24"] += t1 - t0
    times["to float (full res)"] += t2 - t1
    times["transform"] += t3 - t2
    return clip


PIPELINES = {"ours (uint8 geometry)": ours_with("bilinear"),
             "ours, cv2 area": ours_with("area"), "ours, float first": ours_float_first,
             "PyAV + float tensors": pyav_reference}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=Path, default=VIDEOS)
    parser.add_argument("--clips", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    torch.set_num_threads(THREADS)
    cv2.setNumThreads(THREADS)
    videos = sorted(p for p in args.videos.glob("*") if p.is_file())
    if not videos:
        raise SystemExit(f"{args.videos}: no videos")
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores, "
          f"load average {os.getloadavg()[0]:.2f}; python {platform.python_version()}, "
          f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"PyAV {av.__version__}, OpenCV {cv2.__version__}")
    print(f"{args.clips} clips of {CLIP_LEN} frames at stride {STRIDE} from {len(videos)} "
          f"videos (seed {args.seed}); resize short side {RESIZE}, centre crop {CROP}, "
          f"normalise; 0 workers, {THREADS} threads; file opened per clip; "
          f"best of {args.rounds} rounds")
    clips = clip_list(videos, args.clips, args.seed)

    # A first pass warms caches and compares our clips with the reference's.
    ours, reference = PIPELINES["ours (uint8 geometry)"], PIPELINES["PyAV + float tensors"]
    diffs = [float((ours(*clip, defaultdict(float)) - reference(*clip, defaultdict(float)))
                   .abs().mean()) for clip in clips]
    best = {name: float("inf") for name in PIPELINES}
    stages: dict[str, dict[str, float]] = {}
    cpu: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, fn in PIPELINES.items():
            times: dict[str, float] = defaultdict(float)
            start, start_cpu = time.perf_counter(), time.process_time()
            for path, indices in clips:
                fn(path, indices, times)
            elapsed = time.perf_counter() - start
            if elapsed < best[name]:
                best[name], stages[name] = elapsed, times
                cpu[name] = time.process_time() - start_cpu

    rate = {name: args.clips / t for name, t in best.items()}
    for name in PIPELINES:
        profile = ", ".join(f"{stage} {1e3 * t / args.clips:.1f}"
                            for stage, t in stages[name].items())
        print(f"{name:24s} {rate[name]:6.1f} clips/s  ({1e3 / rate[name]:.1f} ms/clip: "
              f"{profile} ms; CPU time {1e3 * cpu[name] / args.clips:.1f} ms/clip)")
    ours_rate = rate["ours (uint8 geometry)"]
    print(f"ours / PyAV + float tensors: {ours_rate / rate['PyAV + float tensors']:.2f}x; "
          f"ours / ours float first: {ours_rate / rate['ours, float first']:.2f}x; "
          f"ours / ours cv2 area: {ours_rate / rate['ours, cv2 area']:.2f}x; "
          f"target {TARGET:.0f} clips/s: {'met' if ours_rate >= TARGET else 'NOT met'}")
    print(f"mean |ours - PyAV reference| per clip (normalised units): median "
          f"{np.median(diffs):.4f}, max {max(diffs):.4f} (colour conversion and rounding; "
          f"the larger ones: the reference's timestamp-to-frame guess picks other frames in "
          f"AVI and variable-rate files)")


if __name__ == "__main__":
    main()
