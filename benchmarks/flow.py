"""Optical flow: accuracy on FlyingChairs crops, speed on a real video, and flow storage formats.

1. Accuracy: endpoint error (EPE, px) and angular error (AE, degrees) of every classical
   method against zero flow, on the two 50x50 FlyingChairs crops in ``shared/data/flow``
   (for the FlyingChairsOcc crop also over non-occluded pixels only).
2. Speed: flow frames/s at 340x256 on the first 60 frames of ``mmaction2__demo.mp4``
   (decoded beforehand, so estimation only), OpenCV on 2 threads (``cv2.setNumThreads(2)``);
   torchvision's ``raft_small`` on the CPU (2 torch threads, random weights: speed only)
   over a few pairs.  Best of ``--rounds`` rounds.
3. Storage of the quantised flow of those 60 frames (DIS, bound 20 px): size, write time,
   time to read all frames back and to read 10 consecutive ones, for the format
   ``deepvideo.flow.save_flow`` uses (an npz with one zlib member per frame) and the
   alternatives (one npz array; PNG or JPEG x/y planes per frame as TSN's denseflow).

Run: ``python benchmarks/flow.py [--rounds N]``.  Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from deepvideo.flow import (
    FLOW_METHODS,
    angular_error,
    endpoint_error,
    flow_estimator,
    load_flow,
    quantize_flow,
    read_flo,
    save_flow,
)
from deepvideo.io import VideoReader

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
VIDEO, NUM_FRAMES, THREADS, RAFT_PAIRS, BOUND = "mmaction2__demo.mp4", 60, 2, 3, 20.0


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def best_time(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def estimators() -> dict[str, Callable | str]:
    """Each classical method's estimator, or why it is unavailable."""
    out: dict[str, Callable | str] = {}
    for method in FLOW_METHODS:
        try:
            out[method] = flow_estimator(method)
        except ValueError as exc:
            out[method] = str(exc)
    return out


def accuracy_table(methods: dict[str, Callable | str]) -> None:
    folder = DATA / "flow"
    cases = [("FlyingChairs 00001", "00001_img1.ppm", "00001_img2.ppm", "00001_flow.flo", None),
             ("FlyingChairsOcc 0000000", "0000000-img_0.png", "0000000-img_1.png", "0000000-flow_01.flo",
              "0000000-occ_01.png")]
    print("\n1. Accuracy on 50x50 FlyingChairs crops (EPE px / AE deg; noc = non-occluded pixels)")
    print(f"{'method':<11}" + "".join(f"{name:>34}" for name, *_ in cases))
    rows = {"zero flow": lambda a, b: np.zeros((2, *a.shape[:2]), np.float32)}
    rows.update(methods)
    for method, estimate in rows.items():
        cells = []
        for _, img1, img2, flo, occ in cases:
            if isinstance(estimate, str):
                cells.append("unavailable")
                continue
            gt = read_flo(folder / flo)
            flow = estimate(read_rgb(folder / img1), read_rgb(folder / img2))
            cell = f"{endpoint_error(flow, gt):.3f} / {angular_error(flow, gt):5.2f}"
            if occ:
                noc = read_rgb(folder / occ)[..., 0] < 128
                cell += f"  noc {endpoint_error(flow, gt, noc):.3f}"
            cells.append(cell)
        print(f"{method:<11}" + "".join(f"{c:>34}" for c in cells))
    for method, estimate in methods.items():
        if isinstance(estimate, str):
            print(f"  {method}: {estimate}")


def speed_table(methods: dict[str, Callable | str], frames: np.ndarray, rounds: int) -> np.ndarray:
    height, width = frames.shape[1:3]
    print(f"\n2. Speed at {width}x{height}, {len(frames) - 1} frame pairs of {VIDEO} (estimation only)")
    print(f"{'method':<11}{'frames/s':>10}{'ms/frame':>10}")
    dis_flows = None
    for method, estimate in methods.items():
        if isinstance(estimate, str):
            print(f"{method:<11}{'unavailable':>10}")
            continue
        flows: list[np.ndarray] = []

        def run() -> None:
            flows[:] = [estimate(a, b) for a, b in zip(frames[:-1], frames[1:])]

        seconds = best_time(run, rounds)
        print(f"{method:<11}{(len(frames) - 1) / seconds:>10.1f}{1000 * seconds / (len(frames) - 1):>10.1f}")
        if method == "dis":
            dis_flows = np.stack(flows)
    from torchvision.models.optical_flow import raft_small

    from deepvideo.flow.learned import RAFTFlow

    torch.manual_seed(0)
    raft = RAFTFlow(raft_small(), device="cpu")
    raft(frames[0], frames[1])  # warm-up
    seconds = best_time(lambda: [raft(frames[i], frames[i + 1]) for i in range(RAFT_PAIRS)], 1)
    print(f"{'raft_small':<11}{RAFT_PAIRS / seconds:>10.2f}{1000 * seconds / RAFT_PAIRS:>10.0f}"
          f"   (CPU, {torch.get_num_threads()} threads, 12 updates, {RAFT_PAIRS} pairs)")
    return dis_flows


def storage_table(flows: np.ndarray, rounds: int) -> None:
    codes = quantize_flow(flows, BOUND)
    print(f"\n3. Storage of {len(codes)} quantised flow frames {codes.shape[2]}x{codes.shape[3]} "
          f"(raw uint8 {codes.nbytes / 1e6:.1f} MB)")
    print(f"{'format':<30}{'MB':>7}{'write s':>9}{'read all ms':>13}{'read 10 ms':>12}{'max err':>9}")
    window = list(range(20, 30))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)

        def planes(ext: str, params: list[int]) -> tuple[Callable, Callable[[list[int]], np.ndarray]]:
            folder = tmp / ext
            folder.mkdir()

            def write() -> None:
                for i, (x, y) in enumerate(codes):
                    cv2.imwrite(str(folder / f"x_{i:05d}.{ext}"), x, params)
                    cv2.imwrite(str(folder / f"y_{i:05d}.{ext}"), y, params)

            def read(indices: list[int]) -> np.ndarray:
                return np.stack([[cv2.imread(str(folder / f"{c}_{i:05d}.{ext}"), cv2.IMREAD_GRAYSCALE)
                                  for c in "xy"] for i in indices])
            return write, read

        def single_write() -> None:
            np.savez_compressed(tmp / "single.npz", flow=codes)

        def single_read(indices: list[int]) -> np.ndarray:
            with np.load(tmp / "single.npz") as archive:
                return archive["flow"][indices]

        formats = {  # ours is timed through load_flow, which also turns codes into float32 pixels
            "npz, zlib, member/frame (ours)": (lambda: save_flow(tmp / "ours.npz", codes, BOUND),
                                               lambda indices: load_flow(tmp / "ours.npz", indices),
                                               tmp / "ours.npz"),
            "npz, zlib, one array": (single_write, single_read, tmp / "single.npz"),
            "PNG x/y planes per frame": (*planes("png", [cv2.IMWRITE_PNG_COMPRESSION, 3]), tmp / "png"),
            "JPEG q95 x/y planes per frame": (*planes("jpg", [cv2.IMWRITE_JPEG_QUALITY, 95]), tmp / "jpg"),
        }
        everything = list(range(len(codes)))
        for name, (write, read, where) in formats.items():
            write_s = best_time(write, rounds)
            size = sum(f.stat().st_size for f in where.rglob("*")) if where.is_dir() else where.stat().st_size
            read_all = best_time(lambda: read(everything), rounds)
            read_10 = best_time(lambda: read(window), rounds)
            back = read(everything)
            back = quantize_flow(back, BOUND) if back.dtype == np.float32 else back
            error = int(np.abs(back.astype(int) - codes).max())
            print(f"{name:<30}{size / 1e6:>7.2f}{write_s:>9.3f}{1000 * read_all:>13.1f}"
                  f"{1000 * read_10:>12.1f}{error:>9}")
    print(f"  (max err in quantisation levels; one level is {2 * BOUND / 255:.3f} px)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(THREADS)
    torch.set_num_threads(THREADS)
    print(f"CPU: {platform.processor() or platform.machine()}, OpenCV {cv2.__version__}, "
          f"torch {torch.__version__}")
    methods = estimators()
    accuracy_table(methods)
    with VideoReader(DATA / "videos" / VIDEO) as reader:
        frames = reader.read(np.arange(NUM_FRAMES))
    dis_flows = speed_table(methods, frames, args.rounds)
    storage_table(dis_flows, args.rounds)


if __name__ == "__main__":
    main()
