"""Does self-supervised pretraining pay with few labels?  Pretext tasks against random init.

For each pretext task: pretrain a backbone on the unlabelled videos under --pretrain-data
(``deepvideo.ssl.pretrain``), then train a classifier on --data keeping --per-class labelled
training videos per class, from random weights and from each pretrained backbone, both
fine-tuned (every weight trains) and linear-probed (only the classifier trains), for every
seed in --seeds (the seed draws the labelled videos and the classifier's initialisation).
Prints one markdown row per initialisation: the pretext accuracy on held-out videos, the
pretraining wall time, and the test video accuracy (mean and spread over the seeds).

    python benchmarks/pretrain_few_labels.py --pretrain-data MOTION/train --data MOTION --out runs/ssl_motion \\
        --model-opt "widths=[16,32,64,128]" --size 32 --resize 32 --task-opt speed:speeds=[1,2,4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

from deepvideo.cli.options import model_option
from deepvideo.engine import DataSpec, Recipe, TrainConfig, Transfer, train
from deepvideo.engine.classify import evaluate_checkpoints
from deepvideo.ssl import PRETRAINING, pretrain

# the 2D frame task needs a frame model (and its own random-init reference); the rest use --model
TASK_MODELS = {"shuffle": "single_frame", "random_2d": "single_frame"}


def task_option(text: str) -> tuple[str, str, object]:
    task, _, option = text.partition(":")
    key, value = model_option(option)
    return task, key, value


def downstream(args: argparse.Namespace, model: str, init: str | None, freeze: bool, seed: int, out: Path) -> float:
    """Test video accuracy of one few-label classifier."""
    data = DataSpec(root=str(args.data), train_per_class=args.per_class)
    recipe = Recipe(model=model, classes=[], model_kwargs=dict(args.model_opt or []), clip_len=args.clip_len,
                    size=args.size, resize=args.resize, flip=False, test_clips=args.test_clips)
    config = TrainConfig(epochs=args.epochs, batch_size=8, lr=args.probe_lr if freeze else args.lr,
                         weight_decay=1e-4, warmup_epochs=1.0, seed=seed, progress=False)
    transfer = Transfer(init, freeze, args.backbone_lr_scale if init and not freeze else 1.0)
    result = train(recipe, data, config, out, transfer=transfer)
    return evaluate_checkpoints([result["checkpoint"]], data, "test")["final"]["video_acc1"]


def spread(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-data", type=Path, required=True, help="unlabelled videos (any folder)")
    parser.add_argument("--data", type=Path, required=True, help="labelled data, folder format train/val/test")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tasks", default="shuffle,order,arrow,speed,contrastive")
    parser.add_argument("--model", default="small3d")
    parser.add_argument("--model-opt", type=model_option, action="append", metavar="KEY=VALUE")
    parser.add_argument("--task-opt", type=task_option, action="append", metavar="TASK:KEY=VALUE")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--resize", type=int, default=32)
    parser.add_argument("--pretrain-resize", type=int, help="short side before the pretext crops (default --resize)")
    parser.add_argument("--clip-len", type=int, default=16, help="downstream clip length")
    parser.add_argument("--test-clips", type=int, default=1)
    parser.add_argument("--pretrain-epochs", type=int, default=15)
    parser.add_argument("--samples-per-video", type=int, default=2)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--per-class", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--probe-lr", type=float, default=1e-2)
    parser.add_argument("--backbone-lr-scale", type=float, default=1.0)
    parser.add_argument("--val-fraction", type=float, default=0.1, help="videos held out from pretraining")
    parser.add_argument("--no-defences", action="store_true", help="pretrain without the shortcut defences")
    parser.add_argument("--no-random", action="store_true", help="skip the random-initialisation rows")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    task_options: dict[str, dict] = {}
    for task, key, value in args.task_opt or []:
        task_options.setdefault(task, {})[key] = value
    results_file = args.out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}

    tasks = args.tasks.split(",")
    references = [] if args.no_random else ["random", *(["random_2d"] if "shuffle" in tasks else [])]
    for name in [*references, *tasks]:
        model = TASK_MODELS.get(name, args.model)
        row = results.setdefault(name, {"model": model})
        init = None
        if not name.startswith("random"):
            run = args.out / f"pretrain_{name}"
            if "pretext_acc" not in row:
                start = time.perf_counter()
                config = replace(PRETRAINING, epochs=args.pretrain_epochs, progress=False)
                result = pretrain(run, args.pretrain_data, name, model, config, model_kwargs=dict(args.model_opt or []),
                                  task_options=task_options.get(name), size=args.size,
                                  resize=args.pretrain_resize or args.resize,
                                  samples_per_video=args.samples_per_video, val_fraction=args.val_fraction,
                                  defences=not args.no_defences)
                row.update(pretext_acc=result["best"], pretrain_s=time.perf_counter() - start,
                           train_acc=result["history"][-1]["train_acc"])
            init = str(run / "best.pt")
        for mode, freeze in (("finetune", False), ("probe", True)):
            accs = row.setdefault(mode, {})
            for seed in seeds:
                if str(seed) not in accs:
                    accs[str(seed)] = downstream(args, model, init, freeze, seed, args.out / f"{name}_{mode}_{seed}")
                    results_file.write_text(json.dumps(results, indent=1))
                    print(f"{name} {mode} seed {seed}: {accs[str(seed)]:.3f}", flush=True)
        results_file.write_text(json.dumps(results, indent=1))

    print(f"\n{args.per_class} labelled videos per class; test video accuracy, mean ± std over seeds {args.seeds}")
    print("| init | model | pretext acc (held-out) | pretraining | fine-tuned | linear probe |")
    print("|---|---|---:|---:|---:|---:|")
    for name, row in results.items():
        pre = (f"{row['pretext_acc']:.3f} | {row['pretrain_s'] / 60:.1f} min" if "pretext_acc" in row else "– | –")
        print(f"| {name} | {row['model']} | {pre} | {spread(list(row['finetune'].values()))} | "
              f"{spread(list(row['probe'].values()))} |")


if __name__ == "__main__":
    main()
