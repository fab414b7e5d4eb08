"""Spatio-temporal action detection on the built-in AVA-format benchmark: frame-mAP@0.5.

1. Write the benchmark (``--train`` training and 40 validation videos, seed 0) and a held-out
   test set of another seed (``--test`` videos; its videos are named ``val_*``), plus the same
   test scenes' seed with a still camera for the detector row.
2. Train ``roi3d`` (the 3D head: clip of 8 frames, time steps kept, boxes read at 1.5x for
   context) and ``roi2d`` (the same head on the keyframe alone) with one recipe through the
   engine, half the samples mirrored left-right (move_left and move_right swapped); ``best.pt``
   is chosen on the validation videos.
3. Score both on the held-out test videos with the ground-truth boxes (AVA's GT-box protocol),
   and ``roi3d`` with boxes from OpenCV's MOG2 background subtraction (``deepvideo track``'s
   ``mog2`` detector, every frame; it cannot see objects that stand still, nor work under a
   panning camera: it runs on the still-camera test scenes).

Prints a markdown table: frame-mAP, per-class AP, training time.

    OMP_NUM_THREADS=1 python benchmarks/ava.py --out runs/ava
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from deepvideo.ava import frame_map, read_groundtruth, read_label_map
from deepvideo.ava.apply import detect_actions
from deepvideo.ava.synthetic import AvaSynthConfig, make_ava_dataset
from deepvideo.ava.train import KeyframeSet, evaluate_ava, keyframes_of, load_ava_model, train_ava, video_files
from deepvideo.engine import TrainConfig
from deepvideo.track.detect import make_detector

MODELS = {"roi3d": {"clip_len": 8, "time_pool": "keep", "context": 1.5}, "roi2d": {"context": 1.5}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/ava"))
    parser.add_argument("--train", type=int, default=500, help="training videos")
    parser.add_argument("--test", type=int, default=60, help="held-out test videos")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()

    data = make_ava_dataset(args.out / "data", AvaSynthConfig(train=args.train, val=40))
    test = make_ava_dataset(args.out / "test", AvaSynthConfig(train=0, val=args.test, seed=1))
    still = make_ava_dataset(args.out / "test_still", AvaSynthConfig(train=0, val=args.test, seed=1, camera=0.0))
    labels = read_label_map(data / "annotations" / "label_map.pbtxt")
    recipe = TrainConfig(epochs=args.epochs, batch_size=8, lr=2e-3, weight_decay=0.05, warmup_epochs=1.0)
    rows = []
    for name, options in MODELS.items():
        start = time.perf_counter()
        result = train_ava(args.out / name, data / "videos", data / "annotations" / "train.csv",
                           data / "annotations" / "label_map.pbtxt", data / "annotations" / "val.csv", model=name,
                           train=recipe, resume=(args.out / name / "last.pt").is_file(), model_options=options,
                           flip_swap=[("move_left", "move_right")])
        minutes = (time.perf_counter() - start) / 60
        model, info = load_ava_model(result["checkpoint"])
        frames = keyframes_of(read_groundtruth(test / "annotations" / "val.csv"))
        scored, _ = evaluate_ava(model, KeyframeSet(frames, video_files(test / "videos"), info["classes"],
                                                    model.clip_len), labels)
        rows.append((name, "ground truth", scored, minutes))
        if name == "roi3d":
            detections = []
            for video in sorted((still / "videos").glob("*.mp4")):
                detections += detect_actions(video, result["checkpoint"], detector=make_detector("mog2"))
            scored = frame_map(read_groundtruth(still / "annotations" / "val.csv"), detections, labels)
            rows.append((name, "MOG2 (still camera)", scored, minutes))

    names = [label.name for label in labels.values()]
    print(f"| model | boxes | frame-mAP@0.5 | {' | '.join(names)} | training |")
    print("|---|---|---|" + "---|" * len(names) + "---|")
    for name, boxes, scored, minutes in rows:
        per_class = " | ".join(f"{scored['AP_by_name'][n]:.2f}" for n in names)
        print(f"| {name} | {boxes} | {scored['mAP']:.3f} | {per_class} | {minutes:.1f} min |")


if __name__ == "__main__":
    main()
