"""Training loop: optimizer, warm-up + cosine schedule, AMP, checkpoints, resume.

``train(recipe, data, config, out_dir)`` trains ``recipe.model`` on the "train" subset of
``data`` and validates on "val" after every epoch.  Each epoch appends a row to
``out_dir/metrics.csv``, redraws ``out_dir/curves.png`` and writes ``out_dir/last.pt``
atomically (model, optimizer, scheduler, epoch, RNG states, history), plus ``best.pt``
when validation accuracy improves.  ``resume=True`` continues from ``last.pt`` and ends
with the same weights as an uninterrupted run.

A two-stream model (modality ``rgb+flow``, batches ``(rgb, flow)``) trains both streams
at once: the loss is the sum of the streams' cross-entropies (see
:mod:`deepvideo.engine.batch`), accuracy is the fused prediction's, and the validation
columns add each stream's clip accuracy (``val_spatial_acc``, ``val_temporal_acc``).

Under ``torchrun`` the same call trains data-parallel (:mod:`deepvideo.engine.distributed`):
DistributedDataParallel averages gradients, a DistributedSampler gives each process its
share of every epoch's permutation (the permutation a single process would use, so N
processes with batch B take the steps of one process with batch N*B), validation is
sharded and gathered, and only rank 0 prints and writes files.
"""

from __future__ import annotations

import math
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from deepvideo.engine.batch import STREAMS, forward, output_loss, prediction_scores
from deepvideo.engine.checkpoint import load_checkpoint, save_checkpoint
from deepvideo.engine.device import AMP_MODES, autocast, prepare_input, prepare_model, resolve_device
from deepvideo.engine.distributed import (all_gather_objects, all_sum, broadcast_buffers, is_main,
                                          process_group, rank, world_size)
from deepvideo.engine.evaluate import evaluate
from deepvideo.engine.recipe import DataSpec, Recipe
from deepvideo.engine.report import plot_curves, write_metrics_csv

__all__ = ["TrainConfig", "train"]


@dataclass
class TrainConfig:
    """Optimisation settings.  ``amp``: "none", "bf16" or "fp16" autocast (fp16 with
    gradient scaling), on the CPU or CUDA.

    ``batch_size`` is per process; ``accumulate`` sums the gradients of that many batches
    before each optimiser step (effective batch ``batch_size * accumulate * processes``).
    ``compile`` runs the model through ``torch.compile`` (a large one-time cost on the
    CPU); ``sync_bn`` converts BatchNorm to SyncBatchNorm in data-parallel CUDA runs.
    """

    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-3
    optimizer: str = "adamw"
    weight_decay: float = 0.05
    momentum: float = 0.9
    warmup_epochs: float = 1.0
    clip_grad: float | None = 1.0
    workers: int = 0
    prefetch: int = 2
    accumulate: int = 1
    amp: str = "none"
    channels_last: bool = False
    compile: bool = False
    sync_bn: bool = False
    seed: int = 0
    device: str = "cpu"
    val_clips: int = 1
    progress: bool = True

    def __post_init__(self) -> None:
        if self.optimizer not in ("adamw", "sgd"):
            raise ValueError(f"--optimizer must be adamw or sgd, got {self.optimizer!r}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"--amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        for name in ("epochs", "batch_size", "val_clips", "accumulate", "prefetch"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        if self.lr <= 0:
            raise ValueError(f"--lr must be positive, got {self.lr}")
        if self.weight_decay < 0 or (self.clip_grad is not None and self.clip_grad < 0):
            raise ValueError("--weight-decay and --clip-grad must be >= 0")
        if self.workers < 0:
            raise ValueError(f"--workers must be >= 0, got {self.workers}")


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=config.lr)


def _schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    """Linear warm-up to the base learning rate, then cosine decay to zero (per step)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def train(recipe: Recipe, data: DataSpec, config: TrainConfig, out_dir: str | Path,
          resume: bool = False) -> dict[str, Any]:
    """Train and validate; returns ``{"history": rows, "best_val_acc": float, "checkpoint": path}``.

    An empty ``recipe.classes`` is filled from the training set.

    Videos that cannot be decoded are skipped (with a warning), replaced by other videos,
    and counted per epoch in the ``bad_videos`` column of ``metrics.csv``.
    """
    with process_group(resolve_device(config.device)) as device:
        return _train(recipe, data, config, Path(out_dir), resume, device)


def _build_model(recipe: Recipe, config: TrainConfig, device: torch.device) -> nn.Module:
    model = recipe.build_model()
    if config.sync_bn and world_size() > 1:
        if device.type != "cuda":
            raise ValueError("--sync-bn needs CUDA: PyTorch's SyncBatchNorm runs on GPUs only "
                             "(on the CPU use a model without BatchNorm, e.g. small3d norm=group)")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return prepare_model(model, device, config.channels_last)


def _bad_union(dataset) -> list[int]:
    """Indices of the videos any process found unreadable; every process flags them all."""
    bad = sorted(set().union(*all_gather_objects(dataset.bad_indices())))
    dataset.mark_bad(bad)
    return bad


def _train(recipe: Recipe, data: DataSpec, config: TrainConfig, out_dir: Path, resume: bool,
           device: torch.device) -> dict[str, Any]:
    main = is_main()
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    train_set = recipe.dataset(data, "train", train=True, seed=config.seed)
    if not recipe.classes:
        recipe.classes = list(train_set.classes)
    val_set = recipe.dataset(data, "val", train=False, seed=config.seed, num_clips=config.val_clips)
    model = _build_model(recipe, config, device)
    optimizer = _optimizer(model, config)
    # one process: the permutation RandomSampler would draw from this seed; N processes: its shares
    sampler = DistributedSampler(train_set, num_replicas=world_size(), rank=rank(), shuffle=True,
                                 seed=config.seed * 100_003)
    loader = DataLoader(train_set, batch_size=config.batch_size, sampler=sampler, num_workers=config.workers,
                        prefetch_factor=config.prefetch if config.workers else None,
                        persistent_workers=config.workers > 0, pin_memory=device.type == "cuda")
    steps_per_epoch = math.ceil(len(loader) / config.accumulate)
    scheduler = _schedule(optimizer, round(config.warmup_epochs * steps_per_epoch),
                          config.epochs * steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type, enabled=config.amp == "fp16")
    history: list[dict[str, Any]] = []
    best, start_epoch = -1.0, 0
    last, best_path = out_dir / "last.pt", out_dir / "best.pt"

    if resume and last.is_file():
        state = load_checkpoint(last, required=("model", "optimizer", "scheduler", "scaler", "epoch",
                                                "rng", "recipe", "history", "best_val_acc",
                                                "bad_train_videos"))
        for key in ("model", "model_kwargs", "classes"):
            if state["recipe"][key] != recipe.to_dict()[key]:
                raise ValueError(f"{last}: was trained with another {key} "
                                 f"({state['recipe'][key]!r}); use another --out")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"], device)
        train_set.mark_bad(state["bad_train_videos"])
        history, best, start_epoch = state["history"], state["best_val_acc"], state["epoch"]
        if main:
            print(f"resuming {last} after epoch {start_epoch}/{config.epochs}")
    elif resume and main:
        print(f"nothing to resume in {out_dir}: starting from scratch")

    net: nn.Module = model
    if world_size() > 1:
        net = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    if config.compile:
        net = torch.compile(net)
    bad, val_bad = _bad_union(train_set), set()
    for epoch in range(start_epoch, config.epochs):
        sampler.set_epoch(epoch)
        train_set.set_epoch(epoch)
        row = {"epoch": epoch + 1, "lr": scheduler.get_last_lr()[0]}
        row.update(_train_epoch(net, loader, optimizer, scheduler, scaler, device, config,
                                f"epoch {epoch + 1}/{config.epochs}"))
        broadcast_buffers(model)  # validate and save rank 0's model on every process
        bad_before, bad = bad, _bad_union(train_set)
        row["bad_videos"] = len(bad) - len(bad_before)
        if row["bad_videos"] and main:
            warnings.warn(f"epoch {epoch + 1}: skipped {row['bad_videos']} unreadable videos "
                          f"(all so far: {', '.join(str(train_set.paths[i]) for i in bad)})")
        val = evaluate(model, val_set, batch_size=config.batch_size, device=device, amp=config.amp,
                       channels_last=config.channels_last, workers=config.workers)
        new_val_bad = sorted(set(val["bad_videos"]) - val_bad)  # gathered from every process
        val_bad.update(new_val_bad)
        if new_val_bad and main:
            warnings.warn(f"epoch {epoch + 1}: validation skipped {len(new_val_bad)} unreadable videos "
                          f"({', '.join(new_val_bad)})")
        row.update(val_loss=val["loss"], val_acc=val["clip_acc"], val_video_acc=val["video_acc1"])
        row.update({f"val_{s}_acc": val[f"{s}_clip_acc"] for s in STREAMS if f"{s}_clip_acc" in val})
        history.append(row)
        improved = row["val_video_acc"] > best
        best = max(best, row["val_video_acc"])
        if main:
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "epoch": epoch + 1,
                     "rng": _rng_state(device), "recipe": recipe.to_dict(), "config": asdict(config),
                     "history": history, "best_val_acc": best, "bad_train_videos": bad}
            if improved:  # best first: a crash between the two loses nothing
                save_checkpoint(best_path, state)
            save_checkpoint(last, state)
            write_metrics_csv(out_dir / "metrics.csv", history)
            plot_curves(out_dir / "curves.png", history, title=recipe.model)
            if config.progress:
                print(f"epoch {epoch + 1}: loss {row['train_loss']:.3f} acc {row['train_acc']:.3f} | "
                      f"val loss {row['val_loss']:.3f} acc {row['val_acc']:.3f} | "
                      f"{row['clips_per_s']:.1f} clips/s, input wait {row['input_wait']:.0%}")
    return {"history": history, "best_val_acc": best, "checkpoint": best_path}


_SYNC_EVERY = 10  # steps between reading loss and accuracy back from the device


class _InputWait:
    """Seconds the device sat idle waiting for input between training steps.

    On the CPU, the time spent asking the DataLoader for the next batch.  On CUDA the host
    runs ahead of the GPU, so its waiting is not the GPU's: there it is the gaps on the
    GPU's own timeline between the work queued before asking (the previous step) and the
    work queued after the batch came (a pair of CUDA events per step, summed as soon as the
    GPU has passed them, so only the pairs still queued are held).
    """

    def __init__(self, device: torch.device) -> None:
        self.device, self.cuda = device, device.type == "cuda"
        self.waited = self.asked = 0.0
        self.events: list[torch.cuda.Event] = []

    def _mark(self) -> None:
        event = torch.cuda.Event(enable_timing=True)
        event.record(torch.cuda.current_stream(self.device))
        self.events.append(event)

    def _fold(self) -> None:
        """Add up the pairs the GPU has passed (``query`` does not wait)."""
        while len(self.events) >= 2 and self.events[1].query():
            asked, got = self.events[:2]
            self.waited += asked.elapsed_time(got) / 1000
            del self.events[:2]

    def ask(self) -> None:
        if self.cuda:
            self._mark()
        else:
            self.asked = time.perf_counter()

    def got(self) -> None:
        if self.cuda:
            self._mark()
            self._fold()
        else:
            self.waited += time.perf_counter() - self.asked

    def seconds(self) -> float:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            self._fold()
        return self.waited


def _train_epoch(net: nn.Module, loader: DataLoader, optimizer, scheduler, scaler,
                 device: torch.device, config: TrainConfig, desc: str) -> dict[str, float]:
    """One epoch; loss, accuracy and clips/s are over all processes.

    ``input_wait`` is the share of the epoch the device sat idle waiting for the next batch
    (:class:`_InputWait`; mean over processes): near 0 the input pipeline keeps up, near 1
    it starves the model.  Loss and accuracy are summed on ``device`` and read back every
    ``_SYNC_EVERY`` steps (for the progress bar), so a GPU is not stalled by a host sync
    after every step.
    """
    net.train()
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    seen, wait = 0, _InputWait(device)
    start = time.perf_counter()
    bar = tqdm(loader, desc=desc, leave=False, disable=not config.progress or not is_main(), unit="batch")
    optimizer.zero_grad(set_to_none=True)
    batches = iter(bar)
    for step in range(1, len(loader) + 1):
        wait.ask()
        clips, labels, _ = next(batches)
        wait.got()
        inputs = prepare_input(clips, device, config.channels_last)
        labels = labels.to(device, non_blocking=True)
        with autocast(device, config.amp):
            output = forward(net, inputs)
        loss = output_loss(output, labels)
        stepping = step % config.accumulate == 0 or step == len(loader)
        # DDP: gradients are averaged over processes only on the batch that steps
        with nullcontext() if stepping or not hasattr(net, "no_sync") else net.no_sync():
            scaler.scale(loss / config.accumulate).backward()
        if stepping:
            if config.clip_grad:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(net.parameters(), config.clip_grad)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        total_loss += loss.detach() * len(labels)
        correct += (prediction_scores(output).argmax(1) == labels).sum()
        seen += len(labels)
        if not bar.disable and (step % _SYNC_EVERY == 0 or step == len(loader)):
            rate = seen / (time.perf_counter() - start)
            bar.set_postfix(loss=f"{total_loss.item() / seen:.3f}", acc=f"{correct.item() / seen:.3f}",
                            clips_s=f"{rate * world_size():.1f}")
    waited = wait.seconds()  # on CUDA: after the epoch's last kernel
    elapsed = time.perf_counter() - start
    total_loss, correct, seen, waited = all_sum([total_loss.item(), correct.item(), seen, waited])
    return {"train_loss": total_loss / seen, "train_acc": correct / seen,
            "clips_per_s": seen / elapsed, "epoch_s": elapsed,
            "input_wait": waited / world_size() / elapsed}
