"""TinyFlow training as a task of the one training loop (:func:`deepvideo.engine.fit`).

The network is :class:`~deepvideo.flow.tinyflow.TinyPWC` (a compact PWC-Net, in the flow
layer); this module only says how it learns: pairs of textured layers warped by random
smooth flow (:mod:`deepvideo.flow.synthetic`), drawn afresh at every step, the paper's
multi-scale endpoint-error loss, and validation on a fixed set of held-out pairs (another
seed): the multi-scale loss and the full-resolution endpoint error ``val_epe``, which
chooses ``best.pt``.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from deepvideo.engine.device import resolve_device
from deepvideo.engine.task import GeneratedSet, Step, Task
from deepvideo.engine.train import TrainConfig, fit
from deepvideo.flow.synthetic import PairConfig, synthetic_pairs
from deepvideo.flow.tinyflow import TinyFlow, TinyPWC, full_resolution, multiscale_epe, save_tinyflow

__all__ = ["TINYFLOW_TRAINING", "TinyFlowTask", "flow_pair", "train_tinyflow"]

VAL_SEED = 1_000_003  # added to the seed for the held-out validation pairs


def flow_pair(config: PairConfig, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One synthetic pair drawn with ``rng``: images ``(3, H, W)`` in ``[0, 1]`` and their
    flow ``(2, H, W)`` (:func:`~deepvideo.flow.synthetic.synthetic_pairs`)."""
    generator = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
    img1, img2, flow = synthetic_pairs(1, config, generator)
    return img1[0], img2[0], flow[0]


class TinyFlowTask(Task):
    """TinyPWC on synthetic pairs: ``pairs_per_epoch`` fresh pairs per epoch, the multi-scale
    EPE loss; ``val_pairs`` fixed held-out pairs; ``model`` holds TinyPWC's options.  ``pairs``
    defaults to ``PairConfig()`` (64x64, flow up to 10 px, 3 objects)."""

    name = "tinyflow"
    samples = "pairs"
    monitor = "val_epe"

    def __init__(self, pairs: PairConfig | None = None, pairs_per_epoch: int = 1600, val_pairs: int = 64,
                 model: dict[str, Any] | None = None) -> None:
        pairs = pairs or PairConfig()
        self.pairs, self.pairs_per_epoch, self.val_pairs = pairs, pairs_per_epoch, val_pairs
        self.model_options = dict(model or {})
        stride = TinyPWC(**self.model_options).stride
        if any(side % stride for side in pairs.size):
            raise ValueError(f"pairs.size {pairs.size} must be a multiple of {stride} on both sides")

    def config(self) -> dict[str, Any]:
        return {"task": "tinyflow", "pairs": {**asdict(self.pairs), "size": list(self.pairs.size)},
                "pairs_per_epoch": self.pairs_per_epoch, "val_pairs": self.val_pairs, "model": self.model_options}

    def build_model(self) -> nn.Module:
        return TinyPWC(**self.model_options)

    def example(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return flow_pair(self.pairs, rng)

    def train_set(self, seed: int) -> GeneratedSet:
        return GeneratedSet(self.example, self.pairs_per_epoch, seed)

    def val_set(self, seed: int) -> GeneratedSet | None:
        return GeneratedSet(self.example, self.val_pairs, seed + VAL_SEED) if self.val_pairs else None

    def training_step(self, model: nn.Module, batch) -> Step:
        img1, img2, flow = batch
        return Step(multiscale_epe([f.float() for f in model(img1, img2)], flow), len(flow))

    def validation_step(self, model: nn.Module, batch) -> Step:
        img1, img2, flow = batch
        levels = [f.float() for f in model(img1, img2)]
        full = full_resolution(levels[0], flow.shape[-2:])
        return Step(multiscale_epe(levels, flow), len(flow), {"epe": (full - flow).norm(dim=1).mean(dim=(1, 2)).sum()})


TINYFLOW_TRAINING = TrainConfig(epochs=10, batch_size=8, lr=2e-3, optimizer="adam", weight_decay=0.0,
                                warmup_epochs=0.5, min_lr=0.01, clip_grad=None)


def train_tinyflow(out_dir: str | os.PathLike, pairs: PairConfig | None = None, pairs_per_epoch: int = 1600,
                   val_pairs: int = 64, model: dict[str, Any] | None = None, train: TrainConfig | None = None,
                   resume: bool = False) -> TinyFlow:
    """Train a :class:`~deepvideo.flow.tinyflow.TinyPWC` on synthetic pairs through the
    engine (:class:`TinyFlowTask`) and write ``out_dir/weights.safetensors``
    (:func:`~deepvideo.flow.tinyflow.save_tinyflow`) beside ``last.pt``, ``metrics.csv``
    and ``curves.png``.

    ``train`` defaults to :data:`TINYFLOW_TRAINING`: Adam, batches of 8, 10 epochs of
    ``pairs_per_epoch`` pairs (2000 steps), warm-up over half an epoch, then a cosine decay
    to 1% of 2e-3.  ``resume=True`` continues a killed run exactly.  Returns the estimator
    of the last epoch's weights.
    """
    config = train or TINYFLOW_TRAINING
    result = fit(TinyFlowTask(pairs, pairs_per_epoch, val_pairs, model), config, out_dir, resume=resume)
    net = result["model"].cpu().eval()
    save_tinyflow(Path(out_dir) / "weights.safetensors", net)
    return TinyFlow(net, device=resolve_device(config.device))
