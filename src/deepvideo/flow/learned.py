"""Learned optical flow: RAFT (Teed & Deng, "RAFT: Recurrent All-Pairs Field Transforms for
Optical Flow", ECCV 2020) through torchvision, behind the same frame-pair API as the
classical methods.

RAFT extracts features of both frames at 1/8 resolution, builds the 4-D correlation volume
of every pixel pair (pooled into a pyramid), and refines a flow field with a recurrent
(GRU) update block that looks up the correlation around the current estimate; the 1/8
flow is upsampled by learned convex combinations.  ``raft_small`` (~1M parameters) is the
light variant; ``raft_large`` (~5M) the full one.

Weights come from a local file only (a torchvision state_dict, e.g. the
``raft_small_C_T_V2`` checkpoint saved with ``torch.save(model.state_dict(), path)``);
nothing is downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.models.optical_flow import RAFT, raft_large, raft_small

from deepvideo.flow.classical import frame_batches

__all__ = ["RAFT_ARCHS", "RAFTFlow", "load_raft"]

RAFT_ARCHS = {"raft_small": raft_small, "raft_large": raft_large}
_MIN_SIDE = 128  # 8 (feature stride) * 16 (smallest feature map the correlation pyramid accepts)


def _to_tensor(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    """``(B, H, W, 3)`` uint8 RGB -> ``(B, 3, H, W)`` float in ``[-1, 1]`` (torchvision's RAFT input)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2)
    return x.float() / 127.5 - 1.0


class RAFTFlow:
    """A RAFT model as a flow estimator: ``(frame1, frame2) -> (2, H, W)`` float32 ``(dx, dy)``.

    Frames are ``(H, W, 3)`` uint8 RGB (or ``(B, H, W, 3)`` batches, giving ``(B, 2, H, W)``)
    of any size: torchvision's RAFT needs sides divisible by 8 and at least 128 (its
    correlation pyramid halves 1/8-resolution features 3 times), so frames are padded by
    edge replication (split evenly between both sides, as the RAFT authors' ``InputPadder``)
    and the flow is cropped back.

    Args:
        model: a torchvision ``RAFT`` (see :func:`load_raft` for one with trained weights).
        device: where it runs; ``None`` picks CUDA when available.
        num_flow_updates: recurrent refinement steps (12 as in the paper's evaluation).
    """

    def __init__(self, model: RAFT, device: str | torch.device | None = None,
                 num_flow_updates: int = 12) -> None:
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.eval().to(self.device)
        self.num_flow_updates = num_flow_updates

    @torch.inference_mode()
    def __call__(self, frame1: np.ndarray, frame2: np.ndarray) -> np.ndarray:
        frame1, frame2, single = frame_batches(frame1, frame2, "RAFT")
        height, width = frame1.shape[1:3]
        pad_h, pad_w = (max(_MIN_SIDE, side + -side % 8) - side for side in (height, width))
        padding = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
        images = [F.pad(_to_tensor(f, self.device), padding, mode="replicate") for f in (frame1, frame2)]
        flow = self.model(*images, num_flow_updates=self.num_flow_updates)[-1]
        flow = flow[..., padding[2]:padding[2] + height, padding[0]:padding[0] + width]
        flow = flow.float().cpu().numpy()
        return flow[0] if single else flow


def load_raft(weights: str | os.PathLike, arch: str = "raft_small", device: str | torch.device | None = None,
              num_flow_updates: int = 12) -> RAFTFlow:
    """Build torchvision's ``arch`` (``raft_small`` or ``raft_large``) with the state_dict in
    ``weights`` (read with ``torch.load(weights_only=True)``) as a :class:`RAFTFlow`.

    Raises ``ValueError`` naming the file when it is missing, unreadable, or its keys or
    shapes differ from the architecture's (the first mismatched key is named).
    """
    if arch not in RAFT_ARCHS:
        raise ValueError(f"unknown RAFT architecture {arch!r} (choose from {', '.join(RAFT_ARCHS)})")
    path = Path(weights)
    if not path.is_file():
        raise ValueError(f"RAFT weights file {path} does not exist (weights are never downloaded)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file is a user error about that file
        raise ValueError(f"RAFT weights file {path} cannot be read: {exc}".splitlines()[0]) from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise ValueError(f"RAFT weights file {path} does not hold a state_dict")
    model = RAFT_ARCHS[arch]()
    own = model.state_dict()
    for key in (*own, *state):
        if key not in own or key not in state or state[key].shape != own[key].shape:
            where = ("missing from the file" if key not in state else "not in " + arch if key not in own
                     else f"shaped {tuple(state[key].shape)} in the file, {tuple(own[key].shape)} in {arch}")
            raise ValueError(f"RAFT weights file {path} does not fit {arch}: key {key!r} {where}")
    model.load_state_dict(state)
    return RAFTFlow(model, device=device, num_flow_updates=num_flow_updates)
