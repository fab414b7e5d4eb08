"""Multi-object tracking: accuracy on two MOT15 sequences and association speed.

1. Accuracy: SORT (reference settings max_age 1, min_hits 3, IoU 0.3), the ByteTrack-style
   tracker and DeepSORT (motion only: ``shared/data`` holds no TUD frames, so no appearance)
   on the Faster R-CNN detections of ``shared/data/mot/sort_frcnn_dets``, scored by
   ``deepvideo.track.mot_metrics`` against ``shared/data/mot/<seq>/gt.txt``, next to the row
   the SORT paper/README publishes (MOT15 devkit) for TUD-Campus.
2. Speed, tracker only (detections given; no decoding, detection or I/O): frames/s on
   TUD-Stadtmitte (179 frames, ~5 detections each) and on a synthetic scene of 100 objects
   (1920x1080, heights 90-216 px, 200 frames, simulated detections: 5 % misses, 5 % box jitter, 2 false boxes
   per frame).  DeepSORT runs with an oracle "encoder" that returns a fixed 128-d descriptor
   per true identity (plus noise), so the appearance association (gallery distances,
   gating, cascade) is timed but not the CNN, whose crops/s are given separately.  Best of
   ``--rounds``; ratios are to our SORT and to the ~260 Hz the SORT paper reported (2016).

3. Appearance on rendered scenes: every tracker on two rendered synthetic scenes (12
   objects, 320x240, 150 frames, simulated detections with 0.5 false boxes per frame),
   DeepSORT with an :class:`EmbeddingNet` trained here on crops of 6 other scenes (or loaded
   with ``--embedder``); the time includes DeepSORT's CNN (1 torch thread).

Run: ``python benchmarks/track_mot.py [--rounds 3] [--embedder FILE]``.  Prints tables;
asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from deepvideo.track.deepsort import (
    EMBEDDING_TRAINING,
    AppearanceEncoder,
    DeepSort,
    EmbeddingNet,
    identity_crops,
    load_embedding,
    train_embedding,
)
from deepvideo.track.mot import make_tracker, track_detections
from deepvideo.track.mot_metrics import evaluate_mot
from deepvideo.track.motio import frames_of, read_mot
from deepvideo.track.scenes import make_scene, noisy_detections
from deepvideo.track.sort import ByteTrack, Sort

from machine import cpu_model  # benchmarks/machine.py

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mot"
SEQUENCES = ("TUD-Campus", "TUD-Stadtmitte")
PUBLISHED = {"TUD-Campus": {"MOTA": 62.7, "FP": 15, "FN": 113, "IDSW": 6}}  # abewley/sort README
SORT_2016_HZ = 260.0
NO_FRAME = np.zeros((0, 0, 3), np.uint8)  # the oracle encoder needs no pixels
TRACKERS = {"sort": Sort, "bytetrack": ByteTrack, "deepsort (motion)": DeepSort}


class OracleEncoder:
    """``encoder(frame, boxes)``: the descriptor of each box's true identity (column 1 of the
    simulated detections of the current frame, set in ``ids``) plus noise, unit length."""

    def __init__(self, num_ids: int, dim: int = 128, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.table = self.rng.standard_normal((num_ids + 1, dim)).astype(np.float32)
        self.ids = np.empty(0, np.int64)

    def __call__(self, frame: np.ndarray | None, boxes: np.ndarray) -> np.ndarray:
        f = self.table[self.ids] + 0.3 * self.rng.standard_normal((len(boxes), self.table.shape[1]),
                                                                  dtype=np.float32)
        return f / np.linalg.norm(f, axis=1, keepdims=True)


def accuracy_table() -> None:
    print("\n1. Accuracy on MOT15 TUD sequences (Faster R-CNN detections of the SORT repository)")
    print(f"{'sequence':<15}{'tracker':<19}{'MOTA':>6}{'IDF1':>6}{'HOTA':>6}{'MOTP':>6}"
          f"{'FP':>5}{'FN':>5}{'IDSW':>5}{'MOTA/SORT':>10}")
    for seq in SEQUENCES:
        gt, dets = read_mot(DATA / seq / "gt.txt"), read_mot(DATA / "sort_frcnn_dets" / f"{seq}.det.txt")
        base = None
        for name, make in TRACKERS.items():
            r = evaluate_mot(gt, track_detections(dets, make()))
            base = base or r["MOTA"]
            print(f"{seq:<15}{name:<19}{100 * r['MOTA']:>6.1f}{100 * r['IDF1']:>6.1f}"
                  f"{100 * r['HOTA']:>6.1f}{100 * r['MOTP']:>6.1f}{r['FP']:>5}{r['FN']:>5}"
                  f"{r['IDSW']:>5}{r['MOTA'] / base:>10.3f}")
        if seq in PUBLISHED:
            p = PUBLISHED[seq]
            print(f"{seq:<15}{'SORT, published':<19}{p['MOTA']:>6.1f}{'':>6}{'':>6}{'':>6}"
                  f"{p['FP']:>5}{p['FN']:>5}{p['IDSW']:>5}")
    print("  (MOTP here is the mean IoU of matches; the devkit's 73.7 for SORT is another measure)")


def time_tracker(make, by_frame: dict[int, np.ndarray], num_frames: int, rounds: int,
                 encoder: OracleEncoder | None = None) -> float:
    """Best frames/s of ``rounds`` runs of a fresh tracker over the frames."""
    empty = np.empty((0, 10))
    best = 0.0
    for _ in range(rounds):
        tracker = make()
        start = time.perf_counter()
        for number in range(1, num_frames + 1):
            rows = by_frame.get(number, empty)
            if encoder is not None:
                encoder.ids = rows[:, 1].astype(np.int64)
            tracker.update(rows[:, 2:7], NO_FRAME)
        best = max(best, num_frames / (time.perf_counter() - start))
    return best


def speed_table(rounds: int) -> None:
    print(f"\n2. Association speed, tracker only (frames/s, best of {rounds}; single process)")
    print(f"{'scene':<34}{'tracker':<22}{'frames/s':>9}{'x SORT':>8}{'x 260 Hz':>9}{'MOTA':>6}{'IDF1':>6}")
    stadt = read_mot(DATA / "sort_frcnn_dets" / "TUD-Stadtmitte.det.txt")
    scene = make_scene(num_objects=100, num_frames=200, size=(1080, 1920), speed=8.0, seed=0,
                       render=False, heights=(1 / 12, 1 / 5))
    sim = noisy_detections(scene.gt, seed=0, false_per_frame=2.0, size=(1080, 1920), keep_ids=True)
    cases = [("TUD-Stadtmitte (FRCNN dets)", None, stadt, 179),
             ("synthetic, 100 objects, 1920x1080", scene.gt, sim, 200)]
    for label, gt, dets, num_frames in cases:
        by_frame = frames_of(dets)
        trackers = dict(TRACKERS)
        if gt is not None:
            oracle = OracleEncoder(int(dets[:, 1].max()))
            trackers["deepsort (appearance)"] = lambda: DeepSort(encoder=oracle)
        base = None
        for name, make in trackers.items():
            encoder = oracle if name == "deepsort (appearance)" else None
            fps = time_tracker(make, by_frame, num_frames, rounds, encoder)
            base = base or fps
            accuracy = ""
            if gt is not None:
                tracker = make()
                rows = []
                for number in range(1, num_frames + 1):
                    d = by_frame.get(number, np.empty((0, 10)))
                    oracle.ids = d[:, 1].astype(np.int64)
                    tracks = tracker.update(d[:, 2:7], NO_FRAME)
                    rows += [[number, i, x, y, w, h, 1] for x, y, w, h, i in tracks]
                r = evaluate_mot(gt, np.array(rows))
                accuracy = f"{100 * r['MOTA']:>6.1f}{100 * r['IDF1']:>6.1f}"
            print(f"{label:<34}{name:<22}{fps:>9.1f}{fps / base:>8.2f}{fps / SORT_2016_HZ:>9.2f}{accuracy}")
    net = EmbeddingNet().eval()
    crops = torch.rand(32, 3, *net.crop_size)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        with torch.no_grad():
            net(crops)
            start = time.perf_counter()
            for _ in range(rounds):
                net(crops)
        per_s = 32 * rounds / (time.perf_counter() - start)
        print(f"  DeepSORT appearance CNN (EmbeddingNet, 64x32 crops, batch 32, {threads} torch "
              f"thread{'s' if threads > 1 else ''}): {per_s:.0f} crops/s")


def train_scene_embedding(steps: int = 200) -> EmbeddingNet:
    """The embedding of section 3: crops (box jitter 5 %) of 6 scenes of 8 objects."""
    crops, ids = [], []
    for k in range(6):
        scene = make_scene(num_objects=8, num_frames=40, seed=1000 + k)
        c, i = identity_crops(scene.frames, scene.gt[scene.gt[:, 8] > 0.6], jitter=0.05, seed=k)
        crops.append(c)
        ids.append(i + 100 * k)
    start = time.perf_counter()
    train = replace(EMBEDDING_TRAINING, epochs=4, progress=False)   # 4 x 50 = 200 steps of 64 crops
    with tempfile.TemporaryDirectory() as tmp:
        net, _ = train_embedding(np.concatenate(crops), np.concatenate(ids), tmp, crops_per_epoch=steps // 4 * 64,
                                 train=train)
    print(f"  embedding: {steps} steps on {sum(map(len, crops))} crops of 48 identities in "
          f"{time.perf_counter() - start:.0f} s")
    return net


def appearance_table(embedder: str | None) -> None:
    print("\n3. Rendered scenes (12 objects, 320x240, 150 frames), DeepSORT with a trained embedding")
    torch.set_num_threads(1)
    net = load_embedding(embedder) if embedder else train_scene_embedding()
    print(f"{'scene':<7}{'tracker':<22}{'MOTA':>6}{'IDF1':>6}{'HOTA':>6}{'IDSW':>5}{'frames/s':>9}")
    for seed in (1, 2):
        scene = make_scene(num_objects=12, num_frames=150, seed=seed)
        by_frame = frames_of(noisy_detections(scene.gt, seed=seed, false_per_frame=0.5, size=(240, 320)))
        trackers = {name: (lambda name=name: make_tracker(name)) for name in ("sort", "bytetrack")}
        trackers["deepsort (motion)"] = DeepSort
        trackers["deepsort (appearance)"] = lambda: DeepSort(AppearanceEncoder(net))
        for name, make in trackers.items():
            tracker, rows = make(), []
            start = time.perf_counter()
            for number, frame in enumerate(scene.frames, start=1):
                dets = by_frame.get(number, np.empty((0, 10)))[:, 2:7]
                rows += [[number, i, x, y, w, h, 1] for x, y, w, h, i in tracker.update(dets, frame)]
            fps = len(scene.frames) / (time.perf_counter() - start)
            r = evaluate_mot(scene.gt, np.array(rows))
            print(f"{seed:<7}{name:<22}{100 * r['MOTA']:>6.1f}{100 * r['IDF1']:>6.1f}"
                  f"{100 * r['HOTA']:>6.1f}{r['IDSW']:>5}{fps:>9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--embedder", help="DeepSORT embedding file for section 3 (default: train one)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"CPU: {cpu_model()}, numpy {np.__version__}, torch {torch.__version__}")
    accuracy_table()
    speed_table(args.rounds)
    appearance_table(args.embedder)


if __name__ == "__main__":
    main()
