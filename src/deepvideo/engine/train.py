"""The one training loop: every trainable network in deepvideo trains through :func:`fit`.

``fit(task, config, out_dir)`` trains the network of a :class:`~deepvideo.engine.task.Task`
on its training set and validates on its validation set after every epoch.  The task
says what is learned (model, data, loss of a batch, validation metrics); this loop owns
everything else:

- device, AMP (``bf16``/``fp16``/``auto``), channels_last, ``torch.compile``, gradient
  accumulation and gradient-norm clipping;
- the optimiser (AdamW, Adam or SGD; no weight decay on biases and norms) and a per-step
  schedule: linear warm-up, then cosine decay to ``min_lr * lr`` (or constant);
- seeded determinism: the same seed gives the same weights;
- ``out_dir/last.pt`` every epoch and ``best.pt`` when the monitored column improves, both
  written atomically (model, optimiser, schedule, scaler, epoch, RNG states, history), so
  ``resume=True`` after a kill ends with the same weights as an uninterrupted run;
- ``out_dir/metrics.csv`` (one row per epoch), ``curves.png`` and, when asked, the same
  scalars to TensorBoard (``out_dir/tensorboard``);
- progress bars, throughput and ``input_wait`` (the share of the epoch the device waited
  for its next batch), unreadable samples skipped and counted per epoch (``bad_videos``);
- ``workers="auto"``: the DataLoader worker count chosen from the cores (:func:`auto_workers`),
  printed at the start.

Under ``torchrun`` the same call trains data-parallel (:mod:`deepvideo.engine.distributed`):
DistributedDataParallel averages gradients, a DistributedSampler gives each process its
share of every epoch's permutation (the permutation a single process would use, so N
processes with batch B take the steps of one process with batch N*B), validation is
sharded and summed, and only rank 0 prints and writes files.

For tests, the environment variable ``DEEPVIDEO_KILL_AT_STEP=N`` makes the process kill
itself (SIGKILL) right after optimiser step N: a deterministic stand-in for a crash.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

from deepvideo.data.cache import CACHE_MODES, FrameCache, available_cores
from deepvideo.engine.checkpoint import load_checkpoint, save_checkpoint
from deepvideo.engine.device import AMP_CHOICES, autocast, prepare_input, prepare_model, resolve_amp, resolve_device
from deepvideo.engine.distributed import (
    all_gather_objects,
    all_sum,
    broadcast_buffers,
    is_main,
    process_group,
    rank,
    world_size,
)
from deepvideo.engine.report import plot_curves, write_metrics_csv
from deepvideo.engine.task import Step, Task
from deepvideo.io.atomic import check_writable, remove_temps

__all__ = ["OPTIMIZERS", "RESUME_KEEPS", "SCHEDULES", "DivergedError", "TrainConfig", "auto_workers",
           "fit", "resolve_workers"]

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("cosine", "constant")
KILL_AT_STEP = "DEEPVIDEO_KILL_AT_STEP"
# settings that shape the optimisation: a resumed run must keep them (the rest, such as
# workers, device, progress or AMP, may change between the run and its resumption)
RESUME_KEEPS = ("epochs", "batch_size", "accumulate", "lr", "optimizer", "weight_decay", "momentum",
                "warmup_epochs", "schedule", "min_lr", "clip_grad", "seed")


class DivergedError(ValueError):
    """The training loss became NaN or infinite: the run stops, its last checkpoint (of the
    last finished epoch) is kept; the message names the epoch and batch."""


@dataclass
class TrainConfig:
    """How to train (any task).

    ``amp``: ``"none"``, ``"bf16"``, ``"fp16"`` (with gradient scaling) or ``"auto"`` (bf16
    where the hardware has it, fp16 on CUDA without bf16, otherwise fp32 on the CPU).
    ``batch_size`` is per process; ``accumulate`` sums the gradients of that many batches
    before each optimiser step (effective batch ``batch_size * accumulate * processes``).
    ``warmup_epochs`` (may be fractional) of linear warm-up, then ``schedule`` ``"cosine"``
    decays to ``min_lr * lr`` by the last step, ``"constant"`` stays at ``lr``.
    ``compile`` runs the model through ``torch.compile`` (a large one-time cost on the CPU);
    ``sync_bn`` converts BatchNorm to SyncBatchNorm in data-parallel CUDA runs.
    ``val_clips`` is the clips per validation video of classification.  ``tensorboard``
    writes the metrics to ``out_dir/tensorboard`` too (needs the ``tensorboard`` package).
    ``workers``: DataLoader worker processes, or ``"auto"`` (:func:`auto_workers`).
    ``cache``: the decoded-frame cache of a task that has one (classification of RGB clips,
    :mod:`deepvideo.data.cache`): ``"auto"``, ``"ram"``, ``"disk"`` (in ``cache_dir``, default
    ``out_dir/cache``) or ``"none"``; other tasks ignore it.
    """

    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-3
    optimizer: str = "adamw"
    weight_decay: float = 0.05
    momentum: float = 0.9
    warmup_epochs: float = 1.0
    schedule: str = "cosine"
    min_lr: float = 0.0
    clip_grad: float | None = 1.0
    workers: int | str = 0
    prefetch: int = 2
    cache: str = "auto"
    cache_dir: str | None = None
    accumulate: int = 1
    amp: str = "none"
    channels_last: bool = False
    compile: bool = False
    sync_bn: bool = False
    seed: int = 0
    device: str = "cpu"
    val_clips: int = 1
    progress: bool = True
    tensorboard: bool = False

    def __post_init__(self) -> None:
        for name, choices in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("amp", AMP_CHOICES),
                              ("cache", CACHE_MODES)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
        for name in ("epochs", "batch_size", "val_clips", "accumulate", "prefetch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("lr", "weight_decay", "momentum", "warmup_epochs", "min_lr", "clip_grad"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        for name in ("weight_decay", "warmup_epochs"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.workers != "auto" and (isinstance(self.workers, (str, bool)) or self.workers < 0):
            raise ValueError(f"workers must be an integer >= 0 or 'auto', got {self.workers!r}")
        if self.clip_grad is not None and self.clip_grad < 0:
            raise ValueError(f"clip_grad must be >= 0, got {self.clip_grad}")
        if not 0 <= self.min_lr <= 1:
            raise ValueError(f"min_lr must be in [0, 1] (a fraction of lr), got {self.min_lr}")


def _in_ram(dataset: Dataset) -> bool:
    """Whether ``dataset`` reads its samples from a filled RAM frame cache."""
    opener = getattr(dataset, "opener", None)
    return isinstance(opener, FrameCache) and opener.mode == "ram"


def auto_workers(dataset: Dataset, cores: int | None = None) -> tuple[int, str]:
    """DataLoader workers for ``dataset`` on ``cores`` cores (default: this process's share of
    the cores it may run on, :func:`~deepvideo.data.cache.available_cores` divided by
    ``LOCAL_WORLD_SIZE``), and the reason in words.

    * One worker on 2 cores, even beside a model that uses both: measured with ``deepvideo demo
      --epochs 3`` on 2 cores, one worker raised the training samples/s from 63-71 to 74-79
      (single_frame) and 48-54 to 60-66 (small3d) decoding from files, and from 124-138 to
      136-145 and 83-91 to 90-101 from the RAM cache; none on a single core.
    * Samples from a RAM frame cache cost a crop and a copy: at most 2 workers.
    * Samples read from files: one worker per core but one (left to the model), at most 8.
    """
    if cores is None:
        cores = max(1, available_cores() // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
    if _in_ram(dataset):
        return min(2, cores - 1), f"{cores} cores, training frames cached in RAM"
    return min(8, cores - 1), f"{cores} cores, training samples read from files"


def resolve_workers(workers: int | str, dataset: Dataset) -> tuple[int, str | None]:
    """``workers``, or for ``"auto"`` :func:`auto_workers`'s choice and a line saying it."""
    if workers != "auto":
        return int(workers), None
    count, why = auto_workers(dataset)
    return count, f"workers: auto -> {count} ({why})"


def build_optimizer(model: nn.Module, config: TrainConfig,
                    lr_scale: Callable[[str], float] | None = None) -> torch.optim.Optimizer:
    """``config.optimizer`` over the trainable parameters; no weight decay on 1-D ones
    (biases, norms, scales).  ``lr_scale(name)`` multiplies the learning rate of the
    parameter ``name`` (one parameter group per distinct multiplier)."""
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            scale = lr_scale(name) if lr_scale is not None else 1.0
            groups.setdefault((scale, param.dim() > 1), []).append(param)
    params = [{"params": group, "lr": config.lr * scale, "weight_decay": config.weight_decay if decay else 0.0}
              for (scale, decay), group in sorted(groups.items(), key=lambda item: (-item[0][0], not item[0][1]))]
    if not params:
        raise ValueError("the model has no trainable parameters")
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.momentum > 0)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr)
    return torch.optim.AdamW(params, lr=config.lr)


def build_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig, warmup_steps: int,
                   total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per optimiser step: linear warm-up to ``lr``, then cosine decay to ``min_lr * lr``
    (or ``lr`` held, for the constant schedule)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if config.schedule == "constant":
            return 1.0
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return config.min_lr + (1 - config.min_lr) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

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


def _json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), for comparisons."""
    return json.loads(json.dumps(value))


def fit(task: Task, config: TrainConfig, out_dir: str | os.PathLike, resume: bool = False) -> dict[str, Any]:
    """Train ``task``'s network; returns ``{"history": rows, "best": value of the monitored
    column at ``best.pt``, "monitor": its name, "checkpoint": best.pt, "last": last.pt,
    "model": the trained network (last epoch, on the training device)}``.

    ``resume=True`` continues from ``out_dir/last.pt`` (refused when it holds another task
    configuration); without it a run starts from scratch.
    """
    with process_group(resolve_device(config.device)) as device:
        return _fit(task, config, Path(out_dir), resume, device)


def _build_model(task: Task, config: TrainConfig, device: torch.device) -> nn.Module:
    model = task.build_model()
    if config.sync_bn and world_size() > 1:
        if device.type != "cuda":
            raise ValueError("sync_bn needs CUDA: PyTorch's SyncBatchNorm runs on GPUs only "
                             "(on the CPU use a model without BatchNorm, e.g. small3d norm=group)")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return prepare_model(model, device, config.channels_last)


def _bad_union(dataset: Dataset) -> list[int]:
    """Indices of the samples any process found unreadable; every process flags them all."""
    if not hasattr(dataset, "bad_indices"):
        return []
    bad = sorted(set().union(*all_gather_objects(dataset.bad_indices())))
    dataset.mark_bad(bad)
    return bad


def _describe_bad(dataset: Dataset, indices: list[int]) -> str:
    paths = getattr(dataset, "paths", None)
    return ", ".join(str(paths[i]) if paths is not None else f"#{i}" for i in indices)


class _Board:
    """The epoch rows as TensorBoard scalars (``out_dir/tensorboard``), rank 0 only."""

    def __init__(self, out_dir: Path, first_epoch: int) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ImportError("tensorboard=True needs the tensorboard package: "
                              "pip install 'deepvideo[tensorboard]'") from None
        self.writer = SummaryWriter(str(out_dir / "tensorboard"), purge_step=first_epoch + 1)

    def write(self, row: dict[str, Any]) -> None:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)):
                self.writer.add_scalar(key, value, row["epoch"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _fit(task: Task, config: TrainConfig, out_dir: Path, resume: bool, device: torch.device) -> dict[str, Any]:
    main = is_main()
    last, best_path = out_dir / "last.pt", out_dir / "best.pt"
    if main:  # before any work: a folder that cannot be written fails now, not after an epoch
        check_writable(out_dir)
        remove_temps([last, best_path, out_dir / "metrics.csv", out_dir / "curves.png"])  # a killed run's
    config = replace(config, amp=resolve_amp(config.amp, device))
    amp = config.amp
    torch.manual_seed(config.seed)
    train_set = task.train_set(config.seed)
    val_set = task.val_set(config.seed)
    workers, chosen = resolve_workers(config.workers, train_set)
    config = replace(config, workers=workers)
    if chosen and main:
        print(chosen)
    monitor, higher = (task.monitor, task.higher_is_better) if val_set is not None else ("train_loss", False)
    model = _build_model(task, config, device)
    optimizer = build_optimizer(model, config, task.lr_scale)
    if main:
        total = sum(p.numel() for p in model.parameters())
        trained = sum(p.numel() for group in optimizer.param_groups for p in group["params"])
        print(f"{task.name}: {trained:,} of {total:,} parameters train ({trained / max(total, 1):.1%})")
    # one process: the permutation RandomSampler would draw from this seed; N processes: its shares
    sampler = DistributedSampler(train_set, num_replicas=world_size(), rank=rank(), shuffle=True,
                                 seed=config.seed * 100_003)
    loader = DataLoader(train_set, batch_size=config.batch_size, sampler=sampler, num_workers=config.workers,
                        prefetch_factor=config.prefetch if config.workers else None,
                        persistent_workers=config.workers > 0, pin_memory=device.type == "cuda")
    if len(loader) == 0:
        raise ValueError(f"{task.name}: the training set is empty")
    steps_per_epoch = math.ceil(len(loader) / config.accumulate)
    scheduler = build_schedule(optimizer, config, round(config.warmup_epochs * steps_per_epoch),
                               config.epochs * steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")
    history: list[dict[str, Any]] = []
    best, start_epoch = None, 0

    if resume and last.is_file():
        state = load_checkpoint(last, required=("model", "optimizer", "scheduler", "scaler", "epoch",
                                                "rng", "task", "history", "best", "bad_samples"))
        stored, now = _json(state["task"]), _json(task.config())
        for key in sorted(set(stored) | set(now)):
            if stored.get(key) != now.get(key):
                raise ValueError(f"{last}: was trained with another {key} ({stored.get(key)!r}, now "
                                 f"{now.get(key)!r}); use another out_dir")
        trained = state.get("config") or {}
        changed = [f"{key} {trained[key]!r} -> {getattr(config, key)!r}" for key in RESUME_KEEPS
                   if key in trained and trained[key] != getattr(config, key)]
        if changed:
            raise ValueError(f"{last}: resuming needs the settings it was trained with, not {'; '.join(changed)}: "
                             f"resume with the same ones, or train into another out_dir")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"], device)
        if hasattr(train_set, "mark_bad"):
            train_set.mark_bad(state["bad_samples"])
        history, best, start_epoch = state["history"], state["best"], state["epoch"]
        if main:
            print(f"resuming {last} after epoch {start_epoch}/{config.epochs}")
    elif resume and main:
        print(f"nothing to resume in {out_dir}: starting from scratch")

    net: nn.Module = model
    if world_size() > 1:
        net = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    if config.compile:
        net = torch.compile(net)
    board = _Board(out_dir, start_epoch) if config.tensorboard and main else None
    bad, val_bad = _bad_union(train_set), set()
    kill_at = int(os.environ.get(KILL_AT_STEP, "0"))
    for epoch in range(start_epoch, config.epochs):
        sampler.set_epoch(epoch)
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)
        row = {"epoch": epoch + 1, "lr": scheduler.get_last_lr()[0]}
        row.update(_train_epoch(task, net, loader, optimizer, scheduler, scaler, device, amp, config,
                                f"{task.name} epoch {epoch + 1}/{config.epochs}", kill_at,
                                f"{task.name}: epoch {epoch + 1}", last if start_epoch or epoch else None))
        broadcast_buffers(model)  # validate and save rank 0's model on every process
        if hasattr(train_set, "bad_indices"):
            bad_before, bad = bad, _bad_union(train_set)
            row["bad_videos"] = len(bad) - len(bad_before)
            if row["bad_videos"] and main:
                warnings.warn(f"epoch {epoch + 1}: skipped {row['bad_videos']} unreadable {task.samples} "
                              f"(all so far: {_describe_bad(train_set, bad)})", stacklevel=2)
        if val_set is not None:
            val = _validate(task, model, val_set, config, device, amp)
            new_val_bad = sorted(set(val.pop("bad_videos", [])) - val_bad)  # gathered from every process
            val_bad.update(new_val_bad)
            if new_val_bad and main:
                warnings.warn(f"epoch {epoch + 1}: validation skipped {len(new_val_bad)} unreadable {task.samples} "
                              f"({', '.join(map(str, new_val_bad))})", stacklevel=2)
            row.update(val)
        history.append(row)
        if monitor not in row:
            raise ValueError(f"{task.name}: monitored column {monitor!r} is not among {', '.join(row)}")
        improved = best is None or (row[monitor] > best if higher else row[monitor] < best)
        best = row[monitor] if improved else best
        if main:
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "epoch": epoch + 1,
                     "rng": _rng_state(device), "task": task.config(), "config": asdict(config),
                     "history": history, "best": best, "monitor": monitor, "bad_samples": bad,
                     **task.checkpoint_extras()}
            if improved:  # best first: a crash between the two loses nothing
                save_checkpoint(best_path, state)
            save_checkpoint(last, state)
            write_metrics_csv(out_dir / "metrics.csv", history)
            plot_curves(out_dir / "curves.png", history, title=task.name)
            if board is not None:
                board.write(row)
            if config.progress:
                print(_epoch_line(row))
    if board is not None:
        board.close()
    return {"history": history, "best": best, "monitor": monitor, "checkpoint": best_path, "last": last,
            "model": model}


def _epoch_line(row: dict[str, Any]) -> str:
    """``epoch 3: train loss 0.412 acc 0.875 | val loss 0.5 acc 0.812 | 41.0 samples/s, input wait 3%``."""
    parts = []
    for split in ("train", "val"):
        values = [f"{key[len(split) + 1:]} {value:.3f}" for key, value in row.items()
                  if key.startswith(f"{split}_") and isinstance(value, float)]
        if values:
            parts.append(f"{split} " + " ".join(values))
    parts.append(f"{row['samples_per_s']:.1f} samples/s, input wait {row['input_wait']:.0%}")
    return f"epoch {row['epoch']}: " + " | ".join(parts)


def _add_sums(totals: dict[str, torch.Tensor], step: Step, device: torch.device) -> None:
    totals["loss"] = totals.get("loss", 0) + step.loss.detach().double() * step.size
    for key, value in step.sums.items():
        value = value.detach() if isinstance(value, torch.Tensor) else torch.tensor(value)
        totals[key] = totals.get(key, 0) + value.to(device, torch.float64)


def _means(totals: dict[str, torch.Tensor], seen: int, prefix: str) -> dict[str, float]:
    """Sums over every process divided by the samples of every process."""
    keys = ["loss", *sorted(set(totals) - {"loss"})]
    values = all_sum([float(totals[k]) for k in keys] + [seen])
    return {f"{prefix}_{k}": v / values[-1] for k, v in zip(keys, values[:-1])}


@torch.no_grad()
def _validate(task: Task, model: nn.Module, dataset: Dataset, config: TrainConfig, device: torch.device,
              amp: str) -> dict[str, Any]:
    """``val_*`` columns: the task's own validation, or :meth:`Task.validation_step` over
    ``dataset`` (process ``r`` of ``N`` takes samples ``r, r + N, ...``), summed over processes."""
    model.eval()
    custom = task.validate(model, dataset, config, device)
    if custom is not None:
        return custom
    requested = list(range(rank(), len(dataset), world_size()))
    loader = DataLoader(dataset, batch_size=config.batch_size, sampler=requested, num_workers=config.workers,
                        pin_memory=device.type == "cuda")
    totals: dict[str, torch.Tensor] = {}
    seen = 0
    for batch in loader:
        with autocast(device, amp):
            step = task.validation_step(model, prepare_input(batch, device, config.channels_last))
        _add_sums(totals, step, device)
        seen += step.size
    return _means(totals, seen, "val")


_SYNC_EVERY = 10  # steps between reading the loss back from the device (for the progress bar)


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


def _check_finite(loss_sum: torch.Tensor, where: str, index: int, exact: bool, last: Path | None) -> None:
    """:class:`DivergedError` when the running loss sum of any process is NaN or infinite."""
    if not all_sum([0.0 if bool(torch.isfinite(loss_sum)) else 1.0])[0]:
        return
    batch = f"batch {index}" if exact else f"one of the batches up to {index}"
    kept = f"{last} keeps the last finished epoch" if last is not None else "no epoch finished, nothing saved"
    raise DivergedError(f"{where}: the training loss became {float(loss_sum)} at {batch}: training diverged "
                        f"(lower --lr, or check the data); {kept}")


def _train_epoch(task: Task, net: nn.Module, loader: DataLoader, optimizer, scheduler, scaler,
                 device: torch.device, amp: str, config: TrainConfig, desc: str,
                 kill_at: int, where: str, last: Path | None) -> dict[str, float]:
    """One epoch; loss, metrics and samples/s are over all processes.

    A loss that becomes NaN or infinite (in any process) raises :class:`DivergedError`
    naming ``where`` and the batch (checked every batch on the CPU, every ``_SYNC_EVERY``
    batches on an accelerator, where each check waits for the device), before anything of
    the epoch is saved: ``last`` (the last finished epoch's checkpoint, if any) stays.

    ``input_wait`` is the share of the epoch the device sat idle waiting for the next batch
    (:class:`_InputWait`; mean over processes): near 0 the input pipeline keeps up, near 1
    it starves the model.  Loss and metric sums stay on ``device`` and are read back every
    ``_SYNC_EVERY`` steps (for the progress bar), so a GPU is not stalled by a host sync
    after every step.
    """
    net.train()
    totals: dict[str, torch.Tensor] = {}
    seen, wait = 0, _InputWait(device)
    start = time.perf_counter()
    bar = tqdm(loader, desc=desc, leave=False, disable=not config.progress or not is_main(), unit="batch")
    optimizer.zero_grad(set_to_none=True)
    batches = iter(bar)
    for index in range(1, len(loader) + 1):
        wait.ask()
        batch = next(batches)
        wait.got()
        batch = prepare_input(batch, device, config.channels_last)
        with autocast(device, amp):
            step = task.training_step(net, batch)
        stepping = index % config.accumulate == 0 or index == len(loader)
        # DDP: gradients are averaged over processes only on the batch that steps
        with nullcontext() if stepping or not hasattr(net, "no_sync") else net.no_sync():
            scaler.scale(step.loss.float() / config.accumulate).backward()
        if stepping:
            if config.clip_grad:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(net.parameters(), config.clip_grad)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if scheduler.last_epoch == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        _add_sums(totals, step, device)
        seen += step.size
        if device.type == "cpu" or index % _SYNC_EVERY == 0 or index == len(loader):
            _check_finite(totals["loss"], where, index, device.type == "cpu", last)
        if not bar.disable and (index % _SYNC_EVERY == 0 or index == len(loader)):
            rate = seen / (time.perf_counter() - start)
            bar.set_postfix(loss=f"{totals['loss'].item() / seen:.3f}", samples_s=f"{rate * world_size():.1f}")
    waited = wait.seconds()  # on CUDA: after the epoch's last kernel
    elapsed = time.perf_counter() - start
    row = _means(totals, seen, "train")
    total_seen, waited = all_sum([seen, waited])
    row.update(samples_per_s=total_seen / elapsed, epoch_s=elapsed, input_wait=waited / world_size() / elapsed)
    return row
