"""Peak memory of training against video length: clips are decoded by seeking, never whole videos.

    python benchmarks/memory.py [--lengths 32,256,2048] [--size 320x240]

For each length L, a two-class dataset of real h264 videos of L frames (a textured square
moving left or right, 320x240, x264's default keyframe interval of 250 frames; 2 training,
1 validation and 1 test video per class) and, in a fresh process each:

* ours: ``deepvideo train`` for one epoch (small3d, 16-frame clips at stride 2 resized to
  128 / cropped to 112, batch 4, 2 test clips per video, 0 workers) — its peak resident
  memory (``VmHWM`` in ``/proc/self/status``) as the process reports it at the end;
* reference: the common "decode the video, then slice a clip" loader
  (``deepvideo.io.read_video`` of one video, then one 16-frame clip) in a process that
  has imported the same libraries as ours (torch, torchvision, the engine), same measure.

The reference grows with L (a whole video is ``L * H * W * 3`` bytes of uint8 frames); ours
should not.  Prints a table: L, raw size of one decoded video, peak MB of ours and of the
reference, and the ratio.  Asserts nothing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from deepvideo.io import write_video

from machine import cpu_model  # benchmarks/machine.py

OURS = """
import sys
from deepvideo.cli import main
code = main(["train", "--model", "small3d", "--model-opt", "widths=[8,16,32,64]", "--data", sys.argv[1],
             "--out", sys.argv[2], "--epochs", "1", "--clip-len", "16", "--frame-stride", "2",
             "--resize", "128", "--size", "112", "--batch-size", "4", "--test-clips", "2", "--no-flip"])
assert code == 0
# VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's peak (Linux carries the
# pre-exec high-water mark over), and the parent held each generated video's frames.
print(next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM:')))
"""
REFERENCE = """
import sys
import deepvideo.cli, deepvideo.engine.train  # the same libraries in memory as ours (torch, ...)
from deepvideo.io import read_video
frames = read_video(sys.argv[1])
clip = frames[:32:2].copy()
# VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's peak (Linux carries the
# pre-exec high-water mark over), and the parent held each generated video's frames.
print(next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM:')))
"""


def moving_square(length: int, width: int, height: int, direction: int, seed: int) -> np.ndarray:
    """``(length, height, width, 3)`` uint8: a textured square crossing a noisy background."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 80, (height, width, 3), np.uint8)
    patch = rng.integers(120, 256, (height // 4, height // 4, 3), np.uint8)
    frames = np.repeat(background[None], length, axis=0)
    side = patch.shape[0]
    for t in range(length):
        x = (width - side) // 2 + direction * ((3 * t) % (width - side) - (width - side) // 2)
        x = int(np.clip(x, 0, width - side))
        frames[t, height // 3:height // 3 + side, x:x + side] = patch
    return frames


def make_dataset(root: Path, length: int, width: int, height: int) -> None:
    counts = {"train": 2, "val": 1, "test": 1}
    for s, (split, count) in enumerate(counts.items()):
        for c, (name, direction) in enumerate((("left", -1), ("right", 1))):
            for n in range(count):
                frames = moving_square(length, width, height, direction, seed=100 * s + 10 * c + n)
                write_video(root / split / name / f"{name}_{n}.mp4", frames, fps=25)


def peak_mb(code: str, *argv: str) -> float:
    """Peak resident memory (MB) of a fresh Python running ``code`` with ``argv``."""
    run = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(run.stderr[-2000:])
    return int(run.stdout.split()[-1]) / 1024  # VmHWM is in KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="32,256,2048", help="frames per video, comma-separated")
    parser.add_argument("--size", default="320x240", help="WxH of the videos")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    print(f"machine: {cpu_model()}; videos {width}x{height} h264, 8 per dataset")
    print(f"{'frames':>7} {'raw MB/video':>13} {'ours peak MB':>13} {'reference peak MB':>18} {'ref/ours':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for length in map(int, args.lengths.split(",")):
            root = Path(tmp) / f"len{length}"
            make_dataset(root, length, width, height)
            ours = peak_mb(OURS, str(root), str(Path(tmp) / f"run{length}"))
            reference = peak_mb(REFERENCE, str(root / "train" / "left" / "left_0.mp4"))
            raw = length * width * height * 3 / 2**20
            print(f"{length:>7} {raw:>13.1f} {ours:>13.1f} {reference:>18.1f} {reference / ours:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
