"""``deepvideo detect run`` on long videos: wall time and peak memory against the video's length.

    python benchmarks/detect_run.py --checkpoint RUN/best.pt --backbone BACKBONE.pt [--every 4]
                                    [--minutes 1,10] [--threads 2]

For each length, one untrimmed video of the built-in benchmark's kind (actions of the motion
classes and distractors over a panning 64 px background at 10 fps, rendered frame by frame
and cached in a temporary folder) is written once; then ``detect_video`` runs on it in a
fresh child process (so that each length's peak resident memory, ``ru_maxrss``, is its own):
features on the fly with the backbone, the detector, the segments.  Prints the CPU, and per
length: frames, wall seconds, frames/s, peak memory (MB), segments found.  Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from deepvideo.detect.synthetic import UntrimmedConfig, plan_video, render_untrimmed
from deepvideo.io.encode import VideoWriter

from machine import cpu_model  # benchmarks/machine.py

CACHE = Path(tempfile.gettempdir()) / "deepvideo-bench-detect"
CHILD = """
import json, resource, sys, time, torch
from deepvideo.detect.apply import detect_video
torch.set_num_threads(int(sys.argv[5]))
start = time.perf_counter()
result = detect_video(sys.argv[1], sys.argv[2], sys.argv[3], every=int(sys.argv[4]) or None)
print(json.dumps({"seconds": time.perf_counter() - start, "segments": len(result["segments"]),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def long_video(minutes: float) -> tuple[Path, int]:
    """A cached untrimmed video of ``minutes`` minutes and its frame count."""
    seconds = minutes * 60
    config = replace(UntrimmedConfig(), duration=(seconds, seconds), actions=(max(2, int(seconds / 12)),) * 2)
    plan = plan_video(config, "testing", 0)
    path = CACHE / f"untrimmed_{minutes:g}min.mp4"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.mp4")
        with VideoWriter(partial, config.fps, config.size, config.size, crf=config.crf) as out:
            for frame in render_untrimmed(plan, config):
                out.write(frame)
        partial.rename(path)
    return path, plan.num_frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path, help="a detector of deepvideo detect train")
    parser.add_argument("--backbone", required=True, help="the backbone of its features")
    parser.add_argument("--every", type=int, default=0, help="as given to extract-features (0: its default)")
    parser.add_argument("--minutes", default="1,10")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}; torch {torch.__version__}, {args.threads} threads")
    print(f"{'minutes':>8}{'frames':>8}{'wall s':>9}{'frames/s':>10}{'peak MB':>9}{'segments':>10}")
    for minutes in map(float, args.minutes.split(",")):
        started = time.perf_counter()
        path, frames = long_video(minutes)
        made = time.perf_counter() - started
        child = subprocess.run([sys.executable, "-c", CHILD, str(path), str(args.checkpoint), args.backbone,
                                str(args.every), str(args.threads)], capture_output=True, text=True, check=True)
        result = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"{minutes:>8g}{frames:>8}{result['seconds']:>9.1f}{frames / result['seconds']:>10.0f}"
              f"{result['peak_mb']:>9.0f}{result['segments']:>10}" + (f"   (video written in {made:.0f} s)"
                                                                       if made > 1 else ""))


if __name__ == "__main__":
    main()
