"""TinyFlow: a compact PWC-Net trained from scratch on synthetic pairs, small enough for a CPU.

Sun, Yang, Liu & Kautz, "PWC-Net: CNNs for Optical Flow Using Pyramid, Warping, and Cost
Volume" (CVPR 2018), at a fraction of its width and depth:

1. **Pyramid.**  A shared CNN turns each image into features at 1/2, 1/4 and 1/8
   resolution (two 3x3 convolutions per level, the first with stride 2; leaky ReLU 0.1).
2. **Warping.**  From the coarsest level down, the flow of the level above is upsampled
   (bilinear, doubled in length) and the second image's features are backward-warped
   towards the first's by it (:func:`deepvideo.flow.warp.backward_warp`), removing the
   motion found so far.
3. **Cost volume.**  The correlation of the first image's features with the warped ones
   at every displacement within ``max_displacement`` pixels of the level: ``(2 d + 1)^2``
   matching costs per pixel.  Unlike the paper (raw feature products), features are first
   centred per channel and scaled to unit length per pixel, so the costs are normalised
   cross-correlations in ``[-1, 1]``: informative from the first step, which is what lets
   this network learn in minutes (with raw products it stayed at zero flow for the first
   few hundred steps).
4. **Flow estimator.**  A small CNN reads the costs, the first image's features and the
   upsampled flow and outputs the level's flow, as a correction added to the upsampled
   flow (the residual form of the later IRR-PWC; the paper outputs it directly).
5. **Context network.**  Dilated 3x3 convolutions (dilations 1, 2, 4, 8, 1) over the
   finest estimator's features refine the 1/2-resolution flow, which is upsampled
   bilinearly to full resolution.
6. **Loss.**  The paper's multi-scale loss: the endpoint error of each level's flow against
   the ground truth area-downsampled to that level, weighted (finest first) by
   ``LEVEL_WEIGHTS``.  Training (:func:`deepvideo.engine.flowtrain.train_tinyflow`, the
   engine's one loop) draws pairs from :mod:`deepvideo.flow.synthetic` afresh at every
   step (no pair is ever seen twice), with Adam and a cosine schedule.

Images enter as ``(B, 3, H, W)`` float in ``[0, 1]``, normalised per pair (mean and
contrast of both images together), so dark and bright scenes look alike to the network.
Flow is ``(dx, dy)`` in pixels from image 1 to image 2 (the :mod:`deepvideo.flow`
convention).  Weights are a safetensors file (:func:`save_tinyflow`, written atomically)
holding the parameters and the architecture in its metadata.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from deepvideo.flow.classical import frame_batches
from deepvideo.flow.warp import backward_warp
from deepvideo.io.atomic import atomic_write

__all__ = ["LEVEL_WEIGHTS", "TinyPWC", "TinyFlow", "full_resolution", "load_tinyflow", "multiscale_epe",
           "save_tinyflow"]

LEVEL_WEIGHTS = (1.0, 0.5, 0.25)   # loss weights of the 1/2, 1/4, 1/8 flows
_FORMAT = "deepvideo.tinyflow/1"


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation),
                         nn.LeakyReLU(0.1))


def _flow_head(cin: int) -> nn.Conv2d:
    """The 3x3 convolution that outputs a flow correction, zero at first: training starts from zero flow."""
    head = nn.Conv2d(cin, 2, 3, padding=1)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    return head


def correlation(feat1: torch.Tensor, feat2: torch.Tensor, max_displacement: int) -> torch.Tensor:
    """Cost volume: ``(B, (2d+1)^2, H, W)`` channel sums of products of ``feat1`` ``(B, C, H, W)`` with
    ``feat2`` shifted by every ``(dx, dy)`` in ``[-d, d]^2`` (row-major, ``dy`` outer; zero outside)."""
    batch, channels, height, width = feat1.shape
    window = 2 * max_displacement + 1
    shifted = F.unfold(feat2, window, padding=max_displacement)
    shifted = shifted.view(batch, channels, window ** 2, height, width)
    return (shifted * feat1.unsqueeze(2)).sum(1)


def _standardize(feat: torch.Tensor) -> torch.Tensor:
    """Features ``(B, C, H, W)`` centred per channel over the image, then unit length per pixel."""
    centred = feat - feat.mean(dim=(2, 3), keepdim=True)
    return F.normalize(centred, dim=1)


class FlowEstimator(nn.Module):
    """One level's estimator: (costs, features of image 1, upsampled flow) -> flow correction,
    and its last hidden features (for the context network)."""

    def __init__(self, cin: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.body = nn.Sequential(*(_conv(a, b) for a, b in zip((cin, *widths), widths)))
        self.flow = _flow_head(widths[-1])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.body(x)
        return self.flow(hidden), hidden


class ContextNetwork(nn.Module):
    """Dilated convolutions over (hidden features, flow) -> flow correction."""

    def __init__(self, cin: int, widths: tuple[int, ...] = (48, 48, 32, 32, 16),
                 dilations: tuple[int, ...] = (1, 2, 4, 8, 1)) -> None:
        super().__init__()
        self.body = nn.Sequential(*(_conv(a, b, dilation=r)
                                    for a, b, r in zip((cin, *widths), widths, dilations)))
        self.flow = _flow_head(widths[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.flow(self.body(x))


class TinyPWC(nn.Module):
    """A compact PWC-Net (module docstring).

    Args:
        channels: feature channels of the pyramid levels, finest (1/2) first; their number
            is the number of levels.
        widths: hidden channels of every level's flow estimator.
        max_displacement: cost-volume search radius ``d`` in pixels of each level.
    """

    def __init__(self, channels: tuple[int, ...] = (16, 32, 48), widths: tuple[int, ...] = (64, 48, 32),
                 max_displacement: int = 3) -> None:
        super().__init__()
        if not channels or not widths or max_displacement < 0:
            raise ValueError(f"TinyPWC needs at least one level and one estimator width and "
                             f"max_displacement >= 0, got channels={channels} widths={widths} "
                             f"max_displacement={max_displacement}")
        self.config = {"channels": list(channels), "widths": list(widths), "max_displacement": max_displacement}
        self.max_displacement = max_displacement
        self.pyramid = nn.ModuleList(nn.Sequential(_conv(a, b, stride=2), _conv(b, b))
                                     for a, b in zip((3, *channels), channels))
        costs = (2 * max_displacement + 1) ** 2
        self.estimators = nn.ModuleList(FlowEstimator(costs + c + 2, tuple(widths)) for c in channels)
        self.context = ContextNetwork(widths[-1] + 2)

    @property
    def stride(self) -> int:
        """Input sides must be multiples of this (the coarsest level's downsampling)."""
        return 2 ** len(self.pyramid)

    def features(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The feature pyramid of ``(B, 3, H, W)`` normalised images, finest first."""
        levels = []
        for block in self.pyramid:
            image = block(image)
            levels.append(image)
        return levels

    def forward(self, img1: torch.Tensor, img2: torch.Tensor) -> list[torch.Tensor]:
        """Flow of every level, finest first: ``(B, 2, H / 2^l, W / 2^l)`` for ``l = 1 .. L``, each
        in pixels of its own level.  Images ``(B, 3, H, W)`` in ``[0, 1]``, sides multiples of
        :attr:`stride`."""
        if img1.shape != img2.shape or img1.dim() != 4 or img1.shape[1] != 3:
            raise ValueError(f"TinyPWC needs two equal (B, 3, H, W) images, got {tuple(img1.shape)} "
                             f"and {tuple(img2.shape)}")
        if img1.shape[-2] % self.stride or img1.shape[-1] % self.stride:
            raise ValueError(f"TinyPWC input sides must be multiples of {self.stride}, "
                             f"got {tuple(img1.shape[-2:])}")
        both = torch.stack([img1, img2])
        mean = both.mean(dim=(0, 3, 4), keepdim=True)
        scale = both.std(dim=(0, 2, 3, 4), keepdim=True) + 0.02
        pyramid1, pyramid2 = (self.features(x) for x in (both - mean) / scale)
        flows, flow, hidden = [], None, None
        for level in reversed(range(len(self.pyramid))):
            feat1, feat2 = pyramid1[level], pyramid2[level]
            if flow is None:
                flow = feat1.new_zeros((feat1.shape[0], 2, *feat1.shape[-2:]))
            else:
                flow = 2 * F.interpolate(flow, size=feat1.shape[-2:], mode="bilinear", align_corners=False)
                feat2 = backward_warp(feat2, flow)[0]
            costs = correlation(_standardize(feat1), _standardize(feat2), self.max_displacement)
            correction, hidden = self.estimators[level](torch.cat([costs, feat1, flow], 1))
            flow = flow + correction
            flows.append(flow)
        flows[-1] = flow + self.context(torch.cat([hidden, flow], 1))
        return flows[::-1]

    def estimate(self, img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
        """Full-resolution flow ``(B, 2, H, W)`` for images ``(B, 3, H, W)`` in ``[0, 1]`` of any
        size: padded by edge replication to multiples of :attr:`stride` (split between both
        sides), the finest flow upsampled bilinearly, cropped back."""
        height, width = img1.shape[-2:]
        pad_h, pad_w = (-side % self.stride for side in (height, width))
        padding = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
        img1, img2 = (F.pad(x, padding, mode="replicate") for x in (img1, img2))
        flow = full_resolution(self(img1, img2)[0], img1.shape[-2:])
        return flow[..., padding[2]:padding[2] + height, padding[0]:padding[0] + width]


def full_resolution(finest: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The finest level's flow ``(B, 2, H / 2, W / 2)`` (pixels of that level) as the flow of
    the images, ``(B, 2, H, W)`` in their pixels: upsampled bilinearly, doubled."""
    return 2 * F.interpolate(finest, size=tuple(size), mode="bilinear", align_corners=False)


def multiscale_epe(flows: list[torch.Tensor], target: torch.Tensor,
                   weights: tuple[float, ...] = LEVEL_WEIGHTS) -> torch.Tensor:
    """The multi-scale training loss: sum over levels of ``weight *`` mean endpoint error (in
    full-resolution pixels) of each level's flow (``TinyPWC.forward``, finest first) against
    ``target`` ``(B, 2, H, W)`` area-downsampled and rescaled to that level."""
    if len(weights) < len(flows):
        raise ValueError(f"weights: {len(weights)} loss weights for {len(flows)} flow levels")
    if target.dim() != 4 or target.shape[1] != 2:
        raise ValueError(f"target must be a (B, 2, H, W) flow, got shape {tuple(target.shape)}")
    loss = target.new_zeros(())
    for level, (flow, weight) in enumerate(zip(flows, weights), start=1):
        scale = 2 ** level
        if flow.shape[0] != target.shape[0] or [scale * side for side in flow.shape[-2:]] != list(target.shape[-2:]):
            raise ValueError(f"target {tuple(target.shape)} does not fit flow level {level} "
                             f"{tuple(flow.shape)} (1/{scale} of the target's size)")
        small = F.interpolate(target, size=flow.shape[-2:], mode="area") / scale
        loss = loss + weight * scale * (flow - small).norm(dim=1).mean()
    return loss


class TinyFlow:
    """A :class:`TinyPWC` as a flow estimator: ``(frame1, frame2) -> (2, H, W)`` float32 ``(dx, dy)``.

    Frames are ``(H, W, 3)`` uint8 RGB (or ``(B, H, W, 3)`` batches, giving ``(B, 2, H, W)``)
    of any size, as for the classical methods and :class:`~deepvideo.flow.learned.RAFTFlow`.
    ``device`` ``None`` picks CUDA when available.
    """

    def __init__(self, model: TinyPWC, device: str | torch.device | None = None) -> None:
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.eval().to(self.device)

    @torch.inference_mode()
    def __call__(self, frame1: np.ndarray, frame2: np.ndarray) -> np.ndarray:
        frame1, frame2, single = frame_batches(frame1, frame2, "tinyflow")
        img1, img2 = (torch.from_numpy(np.ascontiguousarray(f)).to(self.device).permute(0, 3, 1, 2) / 255
                      for f in (frame1, frame2))
        flow = self.model.estimate(img1, img2).float().cpu().numpy()
        return flow[0] if single else flow


def save_tinyflow(path: str | os.PathLike, model: TinyPWC) -> Path:
    """Write ``model``'s weights, its architecture in the metadata, to a safetensors file,
    atomically."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    data = save(tensors, metadata={"format": _FORMAT, "model": json.dumps(model.config)})
    return atomic_write(path, lambda fh: fh.write(data))


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open
    from safetensors.torch import load

    if not path.is_file():
        raise ValueError(f"tinyflow weights file {path} does not exist (train one with "
                         f"`deepvideo flow-train`)")
    try:
        data = path.read_bytes()
        tensors = load(data)
        with safe_open(str(path), "pt") as handle:
            meta = handle.metadata() or {}
    except Exception as exc:  # any unreadable file is a user error about that file
        raise ValueError(f"tinyflow weights file {path} cannot be read: {exc}".splitlines()[0]) from None
    if meta.get("format") != _FORMAT:
        raise ValueError(f"tinyflow weights file {path} is not a TinyFlow checkpoint "
                         f"(format {meta.get('format')!r}, expected {_FORMAT!r})")
    return tensors, meta


def _load_model(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> TinyPWC:
    model = TinyPWC(**json.loads(meta["model"]))
    own = model.state_dict()
    stored = tensors
    for key in (*own, *stored):
        if key not in own or key not in stored or stored[key].shape != own[key].shape:
            where = ("missing from the file" if key not in stored else "not in TinyPWC" if key not in own
                     else f"shaped {tuple(stored[key].shape)} in the file, {tuple(own[key].shape)} in TinyPWC")
            raise ValueError(f"tinyflow weights file {path} does not fit its architecture: key {key!r} {where}")
    model.load_state_dict(stored)
    return model


def load_tinyflow(weights: str | os.PathLike, device: str | torch.device | None = None) -> TinyFlow:
    """The :class:`TinyFlow` estimator stored in ``weights`` (a file from
    :func:`~deepvideo.engine.flowtrain.train_tinyflow` or :func:`save_tinyflow`).  Raises
    ``ValueError`` naming the file when it is missing, unreadable, of another kind, or its
    tensors do not fit (the first bad key is named)."""
    path = Path(weights)
    return TinyFlow(_load_model(path, *_read(path)), device=device)
