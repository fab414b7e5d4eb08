"""Training input pipeline throughput by storage format, against FFmpeg's decoding limit.

The same clips (``benchmarks/pipeline.py``'s ``clip_list``: ``RandomClipSampler(16,
stride=2)``, fixed seed) go through the same pipeline (``pipeline.py``'s settings:
``open_video`` + ``read`` + ``build_transform(train=False)``: short side 128, centre crop
112, normalise, ``(3, 16, 112, 112)`` float32) from every format that
``deepvideo.data.pack.pack_dataset`` writes, through a DataLoader (batch 8) with 0, 1 and 2
workers (persistent; one warm-up epoch; best of ``--rounds`` epochs), one thread per
process (decoder, torch and OpenCV), the file opened per clip as a dataset does:

* ``video``: the source files as they are (x264 with its default 250-frame GOP for the
  generated ones);
* ``mp4 gop8``: re-encoded h264, a keyframe every 8 frames;
* ``jpeg`` / ``raw``: packed ``.tar`` of JPEG (quality 90) / raw RGB frames;
* ``folder``: a frame folder of JPEGs (quality 90);
* ``jpeg 128`` / ``raw 128``: packed with the short side resized to 128 at packing time
  (the transform's resize then does nothing).

Besides clips/s (wall clock, which a busy shared machine disturbs), each item measures its
own thread's CPU time (open + read + transform): CPU ms/clip, far less sensitive to other
load; 1000 / CPU ms is the clips/s one free core would sustain.

Limit: FFmpeg (imageio-ffmpeg's CLI, ``-threads 2``, as in ``benchmarks/decode.py``)
decoding each source video sequentially to rgb24, per-frame wall and CPU time averaged
over the clips' videos, times the 16 frames a clip needs: what a perfect video decoder that
wasted no frame would cost, before any transform ("best/limit": best clips/s over the
limit's clips/s; "CPU limit/ours": the limit's CPU ms/clip over ours).  Packed formats do
not decode video, so they can pass it.

Data: 4 generated videos (the built-in motion dataset's renderer at 256 px, stretched to
340x256; 250 frames, 25 fps, 10 s) and 4 real sample videos from ``../shared/data/videos``.
Also: bytes on disk per format, packing time, and the JPEG decoders (OpenCV, torchvision,
PIL) on the packed frames.  The packed data is kept in ``--work`` (resumable) between runs.

Run: ``python benchmarks/formats.py [--clips 48] [--rounds 2]``.  Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import tarfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torchvision
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.io import decode_jpeg

from decode import best, ffmpeg_rgb  # benchmarks/decode.py
from deepvideo.data.pack import pack_dataset, pack_target
from deepvideo.data.synthetic import MOTION_CLASSES, SyntheticConfig, render_video
from deepvideo.data.transforms import build_transform
from deepvideo.io import VideoReader, open_video, write_video
from pipeline import CLIP_LEN, CROP, RESIZE, STRIDE, THREADS, VIDEOS, clip_list  # benchmarks/pipeline.py

from machine import cpu_model  # benchmarks/machine.py

REAL = ["mmaction2__demo.mp4", "mmaction2__test.mp4", "mmaction2__test.avi",
        "mmaction2__demo_spatiotemporal_det.mp4"]
GENERATED, WIDTH, HEIGHT, FRAMES, FPS = 4, 340, 256, 250, 25
# name -> pack_dataset options (None: the source videos themselves)
FORMATS = {"video": None, "mp4 gop8": {"format": "mp4", "keyframe_interval": 8},
           "jpeg": {"format": "jpeg"}, "raw": {"format": "raw"}, "folder": {"format": "folder"},
           "jpeg 128": {"format": "jpeg", "size": RESIZE}, "raw 128": {"format": "raw", "size": RESIZE}}
WORKERS, BATCH = (0, 1, 2), 8


def generated_videos(folder: Path) -> list[Path]:
    """The motion dataset's renderer, 256 px stretched to 340x256: x264 defaults (GOP 250)."""
    paths = []
    for i in range(GENERATED):
        path = folder / f"motion_{i}.mp4"
        if not path.exists():
            config = SyntheticConfig(size=HEIGHT, num_frames=FRAMES, fps=FPS)
            frames, _ = render_video(MOTION_CLASSES[i], np.random.default_rng(i), config)
            write_video(path, np.stack([cv2.resize(f, (WIDTH, HEIGHT)) for f in frames]), FPS)
        paths.append(path)
    return paths


def real_videos(folder: Path) -> list[Path]:
    """Links to the real sample videos, named apart (``test.mp4`` and ``test.avi`` would
    both pack to ``test.tar``)."""
    folder.mkdir(parents=True, exist_ok=True)
    links = []
    for name in REAL:
        if (VIDEOS / name).is_file():
            stem, suffix = Path(name).stem, Path(name).suffix
            link = folder / f"{stem}_{suffix[1:]}{suffix}"  # test.avi -> test_avi.avi
            if not link.exists():
                link.symlink_to(VIDEOS / name)
            links.append(link)
    return links


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*")) if path.is_dir() else path.stat().st_size


class Clips(Dataset):
    """Item ``i``: clip ``i`` read from its file in one format and transformed, with the CPU
    seconds that took (this thread: open + read + transform, all on one thread)."""

    def __init__(self, clips: list[tuple[Path, np.ndarray]]) -> None:
        self.clips = clips
        self.transform = build_transform(train=False, size=CROP, resize=RESIZE)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, float]:
        start = time.thread_time()
        path, indices = self.clips[i]
        with open_video(path, threads=1) as reader:
            clip = self.transform(reader.read(indices))
        return clip, time.thread_time() - start


def throughput(clips: list[tuple[Path, np.ndarray]], workers: int, rounds: int
               ) -> tuple[float, float]:
    """(clips/s, CPU ms/clip) of the fastest of ``rounds`` epochs after a warm-up epoch."""
    loader = DataLoader(Clips(clips), batch_size=BATCH, num_workers=workers,
                        persistent_workers=workers > 0)
    for _ in loader:  # warm-up: workers started, files in the page cache
        pass
    fastest, cpu = float("inf"), 0.0
    for _ in range(rounds):
        start, used = time.perf_counter(), 0.0
        for _, seconds in loader:
            used += float(seconds.sum())
        if (elapsed := time.perf_counter() - start) < fastest:
            fastest, cpu = elapsed, used
    return len(clips) / fastest, 1e3 * cpu / len(clips)


def jpeg_decoders(packed: Path, rounds: int) -> None:
    """OpenCV (what the readers use), torchvision and PIL on one packed video's JPEGs."""
    with tarfile.open(packed) as tar:
        jpegs = [tar.extractfile(m).read() for m in tar.getmembers() if m.name.endswith(".jpg")]
    decoders = {
        "cv2.imdecode + cvtColor": lambda b: cv2.cvtColor(
            cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB),
        "torchvision decode_jpeg": lambda b: decode_jpeg(
            torch.frombuffer(bytearray(b), dtype=torch.uint8)).permute(1, 2, 0).numpy(),
        "PIL": lambda b: np.asarray(Image.open(io.BytesIO(b)).convert("RGB")),
    }
    res = best({name: (lambda d=d: sum(1 for b in jpegs if d(b) is not None))
                for name, d in decoders.items()}, rounds)
    reference = decoders["cv2.imdecode + cvtColor"](jpegs[0]).astype(int)
    print(f"\nJPEG decoders on {packed.name}'s {len(jpegs)} frames (one thread, best of {rounds}):")
    for name, (wall, _cpu, n) in res.items():
        diff = np.abs(decoders[name](jpegs[0]).astype(int) - reference).max()
        print(f"  {name:26s} {wall / n * 1e3:6.3f} ms/frame  (max |diff| vs OpenCV {diff})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/deepvideo_formats"))
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)  # one thread per process, as in DataLoader workers
    cv2.setNumThreads(1)
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; python "
          f"{platform.python_version()}, torch {torch.__version__}, torchvision "
          f"{torchvision.__version__}, OpenCV {cv2.__version__}")

    source = args.work / "source"
    videos = generated_videos(source / "generated")
    videos += real_videos(source / "real")
    clips = clip_list(videos, args.clips, args.seed)
    print(f"{len(videos)} videos ({GENERATED} generated {WIDTH}x{HEIGHT} {FRAMES} f, "
          f"{len(videos) - GENERATED} real); {args.clips} clips of {CLIP_LEN} frames at "
          f"stride {STRIDE}; resize {RESIZE}, crop {CROP}; batch {BATCH}; 1 thread per process; "
          f"best of {args.rounds} epochs after a warm-up")

    # FFmpeg's limit: sequential rgb24 decode of each video, weighted like the clip list
    wall_ms, cpu_ms = {}, {}  # per frame
    for path in videos:
        with VideoReader(path) as reader:
            width, height = reader.width, reader.height
        wall, cpu, n = best({"ffmpeg": lambda: ffmpeg_rgb(path, width, height)}, 2)["ffmpeg"]
        wall_ms[path], cpu_ms[path] = 1e3 * wall / n, 1e3 * cpu / n
    limit = 1e3 / (CLIP_LEN * np.mean([wall_ms[path] for path, _ in clips]))
    limit_cpu = CLIP_LEN * np.mean([cpu_ms[path] for path, _ in clips])

    rates: dict[str, list[float]] = {}
    print(f"\n{'format':10s} {'MB':>6s} {'pack s':>6s} " + " ".join(
        f"{f'{w} workers':>9s}" for w in WORKERS) + f" {'CPU ms/clip':>11s} {'best/limit':>10s} "
        f"{'CPU limit/ours':>14s}")
    for name, options in FORMATS.items():
        packed_clips, seconds = clips, float("nan")
        if options is not None:
            out = args.work / name.replace(" ", "_")
            start = time.perf_counter()
            summary = pack_dataset(videos, out, root=source, progress=False, **options)
            seconds = time.perf_counter() - start if summary.written else seconds
            targets = {v: pack_target(v, out, source, options["format"]) for v in videos}
            packed_clips = [(targets[path], indices) for path, indices in clips]
        size = sum(disk_bytes(path) for path in {p for p, _ in packed_clips}) / 1e6
        runs = [throughput(packed_clips, w, args.rounds) for w in WORKERS]
        rates[name] = [rate for rate, _ in runs]
        cpu = min(c for _, c in runs)
        print(f"{name:10s} {size:6.1f} {seconds:6.1f} " + " ".join(
            f"{r:9.1f}" for r in rates[name]) + f" {cpu:11.1f} {max(rates[name]) / limit:10.2f} "
            f"{limit_cpu / cpu:14.2f}")
    print(f"FFmpeg limit: {limit:.1f} clips/s, {limit_cpu:.1f} CPU ms/clip (rgb24 decode only, "
          f"-threads {THREADS}, {CLIP_LEN} frames a clip, no transform)")
    base = max(rates["video"])
    print("best clips/s relative to the source videos: " + ", ".join(
        f"{name} {max(r) / base:.2f}x" for name, r in rates.items()))
    jpeg_decoders(pack_target(videos[0], args.work / "jpeg", source, "jpeg"), args.rounds + 1)


if __name__ == "__main__":
    main()
