"""``deepvideo demo``: why video models need time.

Builds the built-in motion dataset (classes differ only in motion), trains the
single-frame baseline and the small 3D CNN with the same recipe, evaluates both on the
test split, prints a table and writes a report folder::

    OUT/results.json                 per-model metrics, settings, timings
    OUT/samples.png                  a strip of frames per class
    OUT/<model>/metrics.csv, curves.png, last.pt, best.pt
    OUT/<model>/confusion.csv, confusion.png
    OUT/cache/                       with cache="disk": the decoded training frames, shared by both models
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepvideo.data.synthetic import SyntheticConfig, make_motion_dataset
from deepvideo.engine import TrainConfig, train
from deepvideo.engine.evaluate import evaluate
from deepvideo.engine.recipe import DataSpec, Recipe, load_trained
from deepvideo.engine.report import save_frame_strip, write_confusion
from deepvideo.engine.train import resolve_workers
from deepvideo.io import VideoReader
from deepvideo.io.atomic import atomic_write_text

__all__ = ["run_demo", "DEMO_MODELS"]

DEMO_MODELS = ("single_frame", "small3d")
DEMO_WIDTHS = (16, 32, 64, 128)
DEMO_EPOCHS = 16
DEMO_SIDE = 32


def demo_recipe(model: str, synth: SyntheticConfig) -> Recipe:
    """The shared recipe: whole videos (all frames) shrunk to 32 px; no flip (flipping
    would swap the left/right and clockwise/anticlockwise classes)."""
    return Recipe(model=model, classes=[], model_kwargs={"widths": list(DEMO_WIDTHS)},
                  clip_len=synth.num_frames, size=DEMO_SIDE, resize=DEMO_SIDE, flip=False,
                  test_clips=1)


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _sample_strip(root: Path, classes: list[str], out: Path, frames: int = 8) -> Path:
    rows = []
    for name in classes:
        video = sorted((root / "test" / name).iterdir())[0]
        with VideoReader(video) as reader:
            rows.append((name, reader.read(np.linspace(0, reader.num_frames - 1, frames).round().astype(int))))
    return save_frame_strip(out, rows)


def run_demo(out: str | Path = "deepvideo-demo", synth: SyntheticConfig | None = None,
             root: str | Path | None = None, epochs: int | None = None, workers: int | str = "auto",
             seed: int = 0, amp: str = "auto", cache: str = "auto") -> dict[str, Any]:
    """Run the demo; returns the content of ``results.json``.  ``workers`` and ``cache`` as in
    :class:`~deepvideo.engine.TrainConfig` (a disk cache goes to ``out/cache``)."""
    synth = synth or SyntheticConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    root = make_motion_dataset(root, synth, progress=True)
    data_seconds = time.perf_counter() - start
    data = DataSpec(format="folder", root=str(root))
    epochs = epochs or DEMO_EPOCHS
    # a long warm-up (30% of training) mattered here: 60% vs 34% test accuracy with one epoch
    config = TrainConfig(epochs=epochs, batch_size=16, lr=3e-3, weight_decay=1e-4,
                         warmup_epochs=0.3 * epochs, workers=workers, amp=amp, seed=seed, cache=cache,
                         cache_dir=str(out / "cache"))
    results: dict[str, Any] = {"dataset": str(root), "dataset_seconds": round(data_seconds, 1),
                               "synthetic": asdict(synth), "train": asdict(config), "models": {}}
    for name in DEMO_MODELS:
        print(f"\n== {name} ==")
        recipe = demo_recipe(name, synth)
        tic = time.perf_counter()
        train(recipe, data, config, out / name)
        train_seconds = time.perf_counter() - tic
        recipe, model = load_trained(out / name / "best.pt")
        test_set = recipe.dataset(data, "test", train=False, seed=seed)
        metrics = evaluate(model, test_set, batch_size=16, amp=amp, workers=resolve_workers(workers, test_set)[0])
        write_confusion(out / name / "confusion", np.array(metrics["confusion"]), recipe.classes)
        results["classes"] = recipe.classes
        results["models"][name] = {
            "params": _params(model), "clip_acc": metrics["clip_acc"],
            "video_acc1": metrics["video_acc1"], "video_acc5": metrics["video_acc5"],
            "mean_class_acc": metrics["mean_class_acc"], "test_videos": metrics["num_videos"],
            "train_seconds": round(train_seconds, 1), "recipe": recipe.to_dict()}
    _sample_strip(root, results["classes"], out / "samples.png")
    chance = 1.0 / len(results["classes"])
    results["chance"] = chance
    results["total_seconds"] = round(time.perf_counter() - start, 1)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    _print_table(results)
    print(f"\nreport: {out}/ (results.json, samples.png, <model>/curves.png, <model>/confusion.png)")
    return results


def _print_table(results: dict[str, Any]) -> None:
    print(f"\n{'model':<14}{'params':>10}{'clip acc':>10}{'video acc@1':>13}{'train time':>12}")
    for name, m in results["models"].items():
        print(f"{name:<14}{m['params']:>10,}{m['clip_acc']:>10.3f}{m['video_acc1']:>13.3f}"
              f"{m['train_seconds']:>11.0f}s")
    print(f"chance level {results['chance']:.3f}; {len(results['classes'])} classes differing "
          f"only in motion; total {results['total_seconds']:.0f}s")
