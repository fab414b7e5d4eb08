"""Data-parallel training with PyTorch's own engine: ``torch.distributed`` and ``torchrun``.

``torchrun --nproc_per_node=N -m deepvideo train ...`` starts N processes with the
environment variables ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`process_group` reads them, joins the group (gloo on the CPU, NCCL
on CUDA, each process on GPU ``LOCAL_RANK``) and leaves it at the end.  Without them
everything here is a no-op for a single process, so the same code path trains either way.

Helpers for the engine: the rank and world size, the main process (rank 0 writes logs,
metrics and checkpoints; the others keep quiet about unreadable videos, which the engine
gathers and rank 0 reports), sums over processes, gathering Python objects and sharing
rank 0's buffers.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Iterator

import torch
import torch.distributed as dist
import torch.nn as nn

from deepvideo.data.datasets import BadVideoWarning

__all__ = ["all_gather_objects", "all_sum", "broadcast_buffers", "is_distributed", "is_main", "launch_rank",
           "process_group", "rank", "torchrun_world_size", "world_size"]


def launch_rank() -> int:
    """``RANK`` set by torchrun (0 when run directly): usable outside the process group."""
    return int(os.environ.get("RANK", "0"))


def torchrun_world_size() -> int:
    """``WORLD_SIZE`` set by torchrun (1 when run directly)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Rank 0 (or a single process): the one that prints and writes files."""
    return rank() == 0


@contextmanager
def process_group(device: torch.device, timeout_s: float = 1800.0) -> Iterator[torch.device]:
    """Join torchrun's process group for the duration of the block; yields the device to use.

    ``device`` is the requested one: a CUDA request becomes ``cuda:LOCAL_RANK`` under torchrun.
    Without torchrun (``WORLD_SIZE`` unset or 1), or when a group already exists (the
    caller owns it), nothing is joined or left.
    """
    if torchrun_world_size() <= 1 or is_distributed():
        yield device
        return
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                            timeout=timedelta(seconds=timeout_s))
    try:
        with warnings.catch_warnings():
            if not is_main():
                warnings.simplefilter("ignore", BadVideoWarning)
            yield device
        # every process reaches this point before any tears gloo down: leaving while a peer
        # still talks to it aborts the process ("terminate called without an active exception")
        dist.barrier()
    finally:
        dist.destroy_process_group()


def all_sum(values: list[float]) -> list[float]:
    """Element-wise sum of ``values`` over all processes (float64, via the CPU for gloo/NCCL alike)."""
    if not is_distributed():
        return list(values)
    backend_device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.tensor(values, dtype=torch.float64, device=backend_device)
    dist.all_reduce(tensor)
    return tensor.cpu().tolist()


def all_gather_objects(obj: Any) -> list[Any]:
    """``obj`` of every process, in rank order (picklable objects)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_buffers(module: nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every process.

    Each process's last forward pass updates its own running statistics, so without this
    (or SyncBatchNorm) the processes would validate slightly different models from the
    one rank 0 saves.  A no-op for one process.
    """
    if world_size() > 1:
        for buffer in module.buffers():
            dist.broadcast(buffer.data, 0)
