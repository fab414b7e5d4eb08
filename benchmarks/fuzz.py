"""Fuzzing the readers: mutated videos and packed files may only read fully or raise ours.

Seed files (several containers and codecs, odd sizes, two packed codecs) are mutated the
ways real damage and hostile files look: bit flips, random and zeroed chunks, truncation,
splices of two files, insertions, rewritten header bytes and numbers (the packed files'
JSON metadata: 0, -1, NaN, 1e308, deep nesting).  Each mutant is opened with
``deepvideo.io.open_video`` in a worker process with a memory cap and a per-file time
limit; it is read by iterating every frame and reading the first and last frames by
index.  The allowed outcomes are:

* ``full``: every one of ``num_frames`` frames came back with the declared shape;
* ``error``: :class:`deepvideo.io.VideoDecodeError` (or a subclass).

Anything else fails: ``foreign`` (another exception type), ``short`` (iteration ended
early without an error), ``crash`` (the worker died: segfault, abort, the memory cap) and
``hang`` (over the time limit).  ``tests/io/test_fuzz.py`` runs a few hundred mutants in
the suite; a long run goes here.

Run: ``python benchmarks/fuzz.py --n 5000 [--seed 0] [--timeout 20] [--memory-gb 2]``.
Prints the outcome counts, the files per second and every failure with its mutations;
exits 1 when anything failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import select
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ALLOWED = ("full", "error")
# name, codec, size (W, H), frames, extra write_video options
VIDEO_SEEDS = [("h264.mp4", "libx264", (48, 32), 12, {"keyframe_interval": 4}),
               ("mpeg4.avi", "mpeg4", (50, 30), 10, {}),
               ("rgb.mkv", "libx264rgb", (35, 27), 9, {"crf": 0}),
               ("mjpeg.avi", "mjpeg", (34, 26), 8, {"pix_fmt": "yuvj420p"}),
               ("vp8.webm", "libvpx", (40, 24), 10, {}),
               ("mpeg2.mov", "mpeg2video", (64, 48), 13, {})]
PACKED_SEEDS = [("jpeg.tar", "jpeg", (31, 23), 7), ("raw.tar", "raw", (16, 12), 6)]
NUMBERS = [b"0", b"-1", b"NaN", b"1e308", b"-1e308", b"Infinity", b"99999999999", b"4294967296", b"0.0001",
           b"[" * 5000 + b"]" * 5000, b'"x"', b"true", b"null"]


def frames(count: int, size: tuple[int, int], seed: int) -> np.ndarray:
    """``(T, H, W, 3)`` uint8: a moving gradient with noise, so codecs make P-frames."""
    width, height = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:height, :width]
    clip = [np.stack([(x * 5 + t * 7) % 256, (y * 9 + t * 3) % 256, (x + y + t * 11) % 256], -1)
            + rng.integers(0, 20, (height, width, 3)) for t in range(count)]
    return np.clip(clip, 0, 255).astype(np.uint8)


def make_seeds(folder: Path) -> list[Path]:
    """Write the seed videos and packed files into ``folder``; return their paths."""
    from deepvideo.io import write_packed, write_video

    paths = []
    for index, (name, codec, size, count, options) in enumerate(VIDEO_SEEDS):
        paths.append(write_video(folder / name, frames(count, size, index), fps=12.5, codec=codec, threads=1,
                                 **options))
    for index, (name, codec, size, count) in enumerate(PACKED_SEEDS):
        paths.append(write_packed(folder / name, iter(frames(count, size, 100 + index)), count, fps=25.0,
                                  codec=codec))
    return paths


def mutate(data: bytes, other: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One random mutation of ``data`` (``other``: a second file for splices); returns it and its name."""
    kind = rng.choice(["flip", "random", "zero", "truncate", "splice", "insert", "header", "number"])
    size = len(data)
    at = rng.randrange(max(size, 1))
    span = rng.choice([1, 4, 16, 64, 256, 4096])
    if kind == "flip":
        out = bytearray(data)
        for _ in range(rng.randint(1, 20)):
            out[rng.randrange(size)] ^= 1 << rng.randrange(8)
        return bytes(out), kind
    if kind in ("random", "zero"):
        chunk = bytes(span) if kind == "zero" else rng.randbytes(span)
        return data[:at] + chunk[:size - at] + data[at + span:], f"{kind}@{at}+{span}"
    if kind == "truncate":
        return data[:at], f"truncate@{at}"
    if kind == "splice":
        cut = rng.randrange(max(len(other), 1))
        return data[:at] + other[cut:], f"splice@{at}/{cut}"
    if kind == "insert":
        return data[:at] + rng.randbytes(span) + data[at:], f"insert@{at}+{span}"
    if kind == "header":
        out = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            out[rng.randrange(min(64, size))] = rng.choice([0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)])
        return bytes(out), kind
    starts = [i for i in range(min(size, 4096)) if data[i:i + 1].isdigit() and not data[i - 1:i].isdigit()]
    if not starts:
        return data, "number(none)"
    start = rng.choice(starts)
    end = start
    while data[end:end + 1].isdigit() or data[end:end + 1] == b".":
        end += 1
    number = rng.choice(NUMBERS)
    return data[:start] + number + data[end:], f"number@{start}={number[:12].decode()}"


def make_mutants(seeds: list[Path], folder: Path, n: int, seed: int) -> dict[Path, str]:
    """Write ``n`` mutants of ``seeds`` (1-3 mutations each) into ``folder``; return path -> description."""
    rng = random.Random(seed)
    contents = {path: path.read_bytes() for path in seeds}
    mutants = {}
    for index in range(n):
        source = rng.choice(seeds)
        data, names = contents[source], []
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            data, name = mutate(data, contents[rng.choice(seeds)], rng)
            names.append(name)
        path = folder / f"mutant_{index:05d}{source.suffix}"
        path.write_bytes(data)
        mutants[path] = f"{source.name}: {', '.join(names)}"
    return mutants


def read_fully(path: str) -> dict:
    """Open and read ``path`` the two ways a dataset does; classify the outcome."""
    from deepvideo.io import VideoDecodeError, open_video

    try:
        with open_video(path, threads=1) as reader:
            count, shape = 0, (reader.height, reader.width, 3)
            for frame in reader:
                if frame.shape != shape or frame.dtype != np.uint8:
                    return {"outcome": "foreign", "detail": f"frame {count} is {frame.shape} {frame.dtype}"}
                count += 1
            if count != reader.num_frames:
                return {"outcome": "short", "detail": f"{count} of {reader.num_frames} frames, no error"}
            clip = reader.read([0, reader.num_frames - 1])
            if clip.shape != (2, *shape):
                return {"outcome": "foreign", "detail": f"read() gave {clip.shape}"}
            return {"outcome": "full", "detail": f"{count} frames"}
    except VideoDecodeError as exc:
        return {"outcome": "error", "detail": str(exc)[:200]}
    except Exception as exc:  # anything else is what the fuzzer looks for
        return {"outcome": "foreign", "detail": f"{type(exc).__name__}: {str(exc)[:200]}"}


def worker(list_file: str, start: int) -> None:
    """Read the files of ``list_file`` from line ``start`` on; print one JSON line per file."""
    paths = Path(list_file).read_text().splitlines()
    for path in paths[start:]:
        print(json.dumps(read_fully(path)), flush=True)


def run(paths: list[Path], timeout: float = 20.0, memory_gb: float = 2.0) -> dict[Path, dict]:
    """Read every path in a capped worker process (restarted after a crash or hang); return the outcomes."""
    limit = int(memory_gb * 2**30)

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    results: dict[Path, dict] = {}
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("".join(f"{path}\n" for path in paths))
    try:
        while len(results) < len(paths):
            start = len(results)
            process = subprocess.Popen([sys.executable, __file__, "--worker", handle.name, str(start)],
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, preexec_fn=cap)
            buffer, fd = b"", process.stdout.fileno()
            for path in paths[start:]:
                deadline = time.monotonic() + timeout
                while b"\n" not in buffer:
                    ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
                    chunk = os.read(fd, 65536) if ready else None
                    if not chunk:
                        break
                    buffer += chunk
                if b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    results[path] = json.loads(line)
                    continue
                if chunk is None:
                    process.kill()
                    results[path] = {"outcome": "hang", "detail": f"over {timeout:g} s"}
                else:
                    results[path] = {"outcome": "crash", "detail": f"worker exit status {process.wait()}"}
                break
            process.kill()
            process.wait()
            process.stdout.close()
    finally:
        os.unlink(handle.name)
    return results


def fuzz(folder: Path, n: int, seed: int = 0, timeout: float = 20.0,
         memory_gb: float = 2.0) -> tuple[dict[Path, dict], dict[Path, str], list[Path]]:
    """Seeds and ``n`` mutants in ``folder``, all read; returns (outcomes, mutant descriptions, seeds)."""
    seeds = make_seeds(folder)
    mutants = make_mutants(seeds, folder, n, seed)
    return run(seeds + list(mutants), timeout, memory_gb), mutants, seeds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="mutants to read")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per file")
    parser.add_argument("--memory-gb", type=float, default=2.0, help="the worker's address-space cap")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]))
        return 0
    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        outcomes, mutants, _ = fuzz(Path(folder), args.n, args.seed, args.timeout, args.memory_gb)
        seconds = time.perf_counter() - began
        counts = Counter(result["outcome"] for path, result in outcomes.items() if path in mutants)
        kinds = Counter(Path(path).suffix for path in mutants)
        print(f"{args.n} mutants (seed {args.seed}; {dict(sorted(kinds.items()))}) in {seconds:.1f} s, "
              f"{args.n / seconds:.1f} files/s")
        print("outcomes:", dict(sorted(counts.items())))
        failures = {path: result for path, result in outcomes.items() if result["outcome"] not in ALLOWED}
        for path, result in failures.items():
            print(f"FAIL {path.name} ({mutants.get(path, 'seed')}): {result['outcome']}: {result['detail']}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
