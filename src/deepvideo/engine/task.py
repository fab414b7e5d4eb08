"""What a trainable network supplies to the engine's one training loop.

The split follows PyTorch Lightning's ``LightningModule``/``Trainer`` and Ignite's
``Engine``: a :class:`Task` says *what* is learned -- the network, the training and
validation data, the loss of a batch and the validation metrics -- and
:func:`deepvideo.engine.fit` says *how*: device, optimiser and schedule, AMP,
channels_last, ``torch.compile``, gradient accumulation, DDP, atomic checkpoints and
exact resume, ``metrics.csv``, ``curves.png``, TensorBoard, progress, input wait and
unreadable samples.  A task never builds an optimiser, seeds, saves or loops.

A batch reaches :meth:`Task.training_step` as the DataLoader collated it, every tensor
in it already on the training device (5-D tensors in channels_last_3d and 4-D tensors in
channels_last when asked).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import Dataset

from deepvideo.data.datasets import EpochDataset

__all__ = ["GeneratedSet", "Step", "Task"]


@dataclass
class Step:
    """The result of one batch: ``loss`` (a scalar tensor, mean over the batch, the one that
    is back-propagated), ``size`` (samples in the batch) and ``sums``: per-metric sums over
    the batch's samples (tensors or numbers, e.g. ``{"acc": correct}``), which the engine
    adds up over the epoch and every process and divides by the number of samples."""

    loss: torch.Tensor
    size: int
    sums: dict[str, torch.Tensor | float] = field(default_factory=dict)


class Task:
    """A trainable network for :func:`deepvideo.engine.fit`; subclasses override the methods.

    ``name`` titles progress bars and plots.  ``monitor`` is the ``metrics.csv`` column that
    chooses ``best.pt`` (``higher_is_better`` says which way); without validation data the
    engine monitors ``train_loss``.  ``samples`` names what a sample is in messages.
    """

    name: str = "task"
    samples: str = "samples"
    monitor: str = "val_loss"
    higher_is_better: bool = False

    def config(self) -> dict[str, Any]:
        """A JSON-able description stored in checkpoints; resuming with another is refused."""
        raise NotImplementedError

    def build_model(self) -> nn.Module:
        """The network, freshly initialised (the engine seeds the RNG before calling this)."""
        raise NotImplementedError

    def train_set(self, seed: int) -> Dataset:
        """The training samples.  A dataset with ``set_epoch(epoch)`` is told each epoch;
        one with ``bad_indices()``/``mark_bad(indices)`` (samples it could not read and
        replaced) has them counted per epoch and remembered across a resume."""
        raise NotImplementedError

    def val_set(self, seed: int) -> Dataset | None:
        """The validation samples, or ``None`` for none."""
        return None

    def training_step(self, model: nn.Module, batch: Any) -> Step:
        """The loss (and metric sums) of one training batch (the engine runs it under autocast)."""
        raise NotImplementedError

    def validation_step(self, model: nn.Module, batch: Any) -> Step:
        """The loss and metric sums of one validation batch; by default the training step's."""
        return self.training_step(model, batch)

    def validate(self, model: nn.Module, dataset: Dataset, config: Any,
                 device: torch.device) -> dict[str, float] | None:
        """Task-specific validation returning ``val_*`` columns, or ``None`` (the default)
        for the engine's: :meth:`validation_step` over ``dataset``, summed over processes.
        ``config`` is the run's :class:`~deepvideo.engine.train.TrainConfig`."""
        return None

    def lr_scale(self, name: str) -> float:
        """The learning-rate multiplier of the parameter ``name`` of :meth:`build_model`'s
        network (default 1: every parameter at the configured ``lr``)."""
        return 1.0

    def checkpoint_extras(self) -> dict[str, Any]:
        """Entries added to every checkpoint (e.g. what is needed to rebuild the model)."""
        return {}


class GeneratedSet(EpochDataset):
    """Samples drawn afresh every epoch: item ``i`` of epoch ``e`` is ``make(rng)`` with
    ``rng = numpy.random.default_rng((seed, e, i))``, so a sample depends only on its
    seed, epoch and index -- not on worker processes, DDP shares or a resume -- and no
    sample is seen twice.  For tasks whose data is rendered or cropped on the fly."""

    def __init__(self, make: Callable[[np.random.Generator], Any], length: int, seed: int = 0) -> None:
        if length < 1:
            raise ValueError(f"length must be at least 1, got {length}")
        super().__init__()
        self.make, self.length, self.seed = make, length, seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Any:
        return self.make(np.random.default_rng((self.seed, self.epoch, index)))
