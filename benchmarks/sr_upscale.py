"""Video super-resolution on the CPU: upscaling speed, and peak memory against video length.

    python benchmarks/sr_upscale.py --frvsr RUN_F/best.pt --srnet RUN_S/best.pt
                                    [--speed-frames 30] [--lengths 100,2000]

The input is a real video, ``opencvtut__car_traffic_small.mp4`` of ``../shared/data``
(640x360 traffic), resized to the LR size and looped to the wanted length, written as h264.

* **Speed**, 180p -> 720p x4: ``deepvideo.sr.upscale_video`` (decode, super-resolve, encode
  1280x720 h264) of a ``--speed-frames``-frame 320x180 video with each model -- ``bicubic``
  (the reference), srnet and frvsr -- frames/s, and each model's ratio to bicubic.
  ``--threads`` torch threads (default 2).
* **Memory**, 90p -> 360p x4 (so that 2,000 frames take minutes): ``deepvideo sr upscale``
  with frvsr of each ``--lengths`` video in a fresh process, its peak resident memory
  (``VmHWM``); and the reference, the whole-clip approach of sliding-window or bidirectional
  VSR tools (decode the video, super-resolve it as one clip tensor: ``model(clip)``), only
  for the shortest length (it grows with the length: ``T * 3 * H * W`` floats of output).

Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from deepvideo.io import VideoReader, write_video
from deepvideo.sr import upscale_video

from machine import cpu_model  # benchmarks/machine.py

SOURCE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos" / "opencvtut__car_traffic_small.mp4"
PEAK = "print(next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM:')))"
STREAMING = f"""
import sys
from deepvideo.cli import main
assert main(["sr", "upscale", sys.argv[1], "--checkpoint", sys.argv[2], "--out", sys.argv[3]]) == 0
{PEAK}
"""
WHOLE_CLIP = f"""
import sys, torch
from deepvideo.io import read_video
from deepvideo.sr import load_sr
from deepvideo.sr.degrade import frames_to_tensor
model, _ = load_sr(sys.argv[2])
clip = frames_to_tensor(read_video(sys.argv[1]))
pad = (-clip.shape[-2]) % model.multiple
with torch.no_grad():
    sr = model(torch.nn.functional.pad(clip, (0, 0, 0, pad), mode="replicate")[None])
{PEAK}
"""


def looped_video(path: Path, frames: int, width: int, height: int) -> Path:
    """The source video resized to ``width x height`` and looped to ``frames`` frames."""
    with VideoReader(SOURCE) as reader:
        source = reader.read(np.arange(min(len(reader), 300)))
    resized = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in source])
    indices = np.arange(frames) % len(resized)
    return write_video(path, resized[indices], fps=30)


def peak_kb(script: str, *args: str) -> int:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frvsr", type=Path, required=True, help="best.pt of an frvsr x4 run")
    parser.add_argument("--srnet", type=Path, help="best.pt of an srnet x4 run")
    parser.add_argument("--speed-frames", type=int, default=30)
    parser.add_argument("--lengths", default="100,2000")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_model()}, {args.threads} torch threads")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video = looped_video(tmp / "180p.mp4", args.speed_frames, 320, 180)
        models = {"bicubic": "bicubic", "srnet": args.srnet, "frvsr": args.frvsr}
        rates = {}
        print(f"\nupscaling {args.speed_frames} frames 320x180 -> 1280x720 (decode + model + h264 encode)")
        for name, checkpoint in models.items():
            if checkpoint is None:
                continue
            upscale_video(video, checkpoint, tmp / "warm.mp4", progress=False)  # warm-up: first-call costs
            start = time.perf_counter()
            upscale_video(video, checkpoint, tmp / f"{name}.mp4", progress=False)
            rates[name] = args.speed_frames / (time.perf_counter() - start)
            print(f"  {name:8s} {rates[name]:7.2f} frames/s  ({rates[name] / rates['bicubic']:.3f}x bicubic)")

        lengths = [int(n) for n in args.lengths.split(",")]
        print("\npeak resident memory, frvsr x4 of a 160x90 video -> 640x360, fresh process each")
        for length in lengths:
            video = looped_video(tmp / f"90p_{length}.mp4", length, 160, 90)
            start = time.perf_counter()
            ours = peak_kb(STREAMING, str(video), str(args.frvsr), str(tmp / f"up_{length}.mp4"))
            seconds = time.perf_counter() - start
            line = f"  {length:5d} frames: streaming {ours / 1024:7.1f} MB ({seconds:.0f} s)"
            if length == min(lengths):
                whole = peak_kb(WHOLE_CLIP, str(video), str(args.frvsr))
                line += f", whole clip {whole / 1024:7.1f} MB ({whole / ours:.2f}x)"
            print(line)


if __name__ == "__main__":
    main()
