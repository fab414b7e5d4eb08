"""Horizontal flips that swap left/right labels.

Mirroring a clip turns "pan left" into "pan right": when left and right are part of the
label, a plain random flip teaches the wrong class, and switching flips off loses the
augmentation.  :class:`FlipSwap` keeps it: it mirrors half of a dataset's training clips
and gives a mirrored clip of class ``A`` the label ``B`` (and ``B`` the label ``A``) for
every swapped pair; classes in no pair keep their label.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from torch.utils.data import Dataset

from deepvideo.data.datasets import EpochDataset

__all__ = ["FlipSwap", "flip_clip", "swap_table"]


def flip_clip(clip: Any, modality: str) -> Any:
    """Mirror a clip left-right: ``(..., C, T, H, W)`` RGB frames along ``W``; optical flow
    ``(..., 2, T, H, W)`` also has its ``dx`` channel negated; an ``(rgb, flow)`` pair
    (``"rgb+flow"``) both."""
    if modality == "rgb+flow":
        rgb, flow = clip
        return flip_clip(rgb, "rgb"), flip_clip(flow, "flow")
    if modality not in ("rgb", "flow"):
        raise ValueError(f"modality: flipping needs rgb or flow clips, got {modality!r}")
    flipped = clip.flip(-1)
    if modality == "flow":
        flipped = flipped.clone()
        flipped.select(-4, 0).neg_()
    return flipped


def swap_table(pairs: Sequence[tuple[str, str]], classes: Sequence[str]) -> list[int]:
    """Label after a flip for every label: ``table[i]`` is ``i`` unless class ``i`` is in a
    pair.  Raises ``ValueError`` for a class not in ``classes`` or in two pairs."""
    table = list(range(len(classes)))
    seen: set[str] = set()
    for pair in pairs:
        for name in pair:
            if name not in classes:
                raise ValueError(f"flip_swap: no class {name!r} (classes: {', '.join(classes)})")
            if name in seen:
                raise ValueError(f"flip_swap: class {name!r} is in two pairs")
            seen.add(name)
        a, b = (list(classes).index(name) for name in pair)
        table[a], table[b] = b, a
    return table


class FlipSwap(EpochDataset):
    """``dataset`` (items ``(clip, label, index)``, clips unflipped) with each item mirrored
    with probability ``p`` and its label mapped through ``table`` when it is.  The coin of
    item ``i`` in epoch ``e`` comes from ``(seed, e, i)``, so it does not depend on workers
    or a resume.  ``set_epoch`` sets its own epoch and the wrapped dataset's; everything else
    (unreadable-video bookkeeping, ``paths``, ``classes``) is the wrapped dataset's."""

    def __init__(self, dataset: Dataset, table: Sequence[int], modality: str = "rgb", p: float = 0.5,
                 seed: int = 0) -> None:
        self.dataset, self.table, self.modality, self.p, self.seed = dataset, list(table), modality, p, seed
        super().__init__()

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, index: int) -> tuple[Any, int, int]:
        clip, label, source = self.dataset[index]
        if np.random.default_rng((self.seed, self.epoch, index, 1)).random() < self.p:
            return flip_clip(clip, self.modality), self.table[int(label)], source
        return clip, label, source

