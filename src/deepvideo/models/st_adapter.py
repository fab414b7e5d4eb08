"""ST-Adapter: a frozen image transformer turned into a video model by small adapters.

Pan et al., "ST-Adapter: Parameter-Efficient Image-to-Video Transfer Learning", NeurIPS
2022.  The lecture's question -- what is the minimum that takes a model from per-image to
per-video inference? -- answered with a few percent of new parameters:

* Every frame of the clip goes through an image ViT (torchvision's ``VisionTransformer``,
  its state_dict keys kept under ``vit.``, so a torchvision ``vit_b_16``/``vit_b_32``
  checkpoint loads unchanged).  The class tokens of the frames are averaged over time
  and a linear ``head`` classifies them.  Without adapters this is the "single-frame"
  answer: the frame-averaged image model.
* An :class:`STAdapter` before the attention and/or the MLP of chosen blocks: a linear
  down-projection of the patch tokens, a depthwise 3D convolution over their (T, H, W)
  grid (kernel 3x1x1 by default: each token sees the same position in the neighbouring
  frames), a linear up-projection, added back residually.  The class token is left
  untouched, as in the paper.
* The adapter starts as the identity: its convolution (weight and bias) and its
  projections' biases are zero, as in the reference code (``Adapter`` in
  ``st_adapter/vit_clip.py``), so at step 0 the model gives exactly the frame-averaged
  image model's logits.  The up-projection's weight keeps its random start: zeroing it
  too would leave both the convolution and the up-projection without gradient forever.
* Only the adapters and the head train: the ViT's parameters have ``requires_grad=False``
  (``train_backbone=True`` fine-tunes everything).  The baselines beside it are the same
  network without adapters (``vit_*_frames``), trained whole (full fine-tuning) or with
  ``--freeze-backbone`` (frozen image model + temporal average + linear head).

The paper's ViT-B/16 setting: adapters of 384 channels before the attention of all 12
blocks, kernel 3x1x1, dropout 0.5 before the head: 7.1 M parameters in the adapters (plus the
head's), 93 M in all.
``vit_tiny`` is a CPU-sized image ViT (patch 4 on 32-pixel frames, width 128, 4 blocks).

Input ``(B, 3, T, H, W)`` with ``H = W = image_size``; output ``(B, num_classes)`` logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn as nn
import torchvision
from torchvision.models.vision_transformer import VisionTransformer

from deepvideo.models.registry import register_model
from deepvideo.models.weights import load_weights

__all__ = ["ADAPTER_POSITIONS", "FrameViT", "STAdapter", "image_vit"]

ADAPTER_POSITIONS = ("attn", "mlp")  # where in a block an adapter may sit: before attention, before the MLP


class STAdapter(nn.Module):
    """Down-projection, depthwise 3D convolution over the patch grid, up-projection, residual.

    ``forward(tokens, frames)`` takes ``(B*T, 1 + H*W, dim)`` tokens (a class token, then the
    patches of a square ``H x W`` grid, frames of one clip consecutive) and returns the same
    shape; the class token passes through unchanged.
    """

    def __init__(self, dim: int, channels: int, kernel: Sequence[int] = (3, 1, 1)) -> None:
        super().__init__()
        kernel = tuple(kernel)
        if len(kernel) != 3 or any(k < 1 or k % 2 == 0 for k in kernel):
            raise ValueError(f"adapter kernel must be three odd sizes (T, H, W), got {list(kernel)}")
        self.down = nn.Linear(dim, channels)
        self.conv = nn.Conv3d(channels, channels, kernel, padding=tuple(k // 2 for k in kernel), groups=channels)
        self.up = nn.Linear(channels, dim)
        for layer in (self.conv.weight, self.conv.bias, self.down.bias, self.up.bias):
            nn.init.zeros_(layer)

    def forward(self, tokens: torch.Tensor, frames: int) -> torch.Tensor:
        clips_frames, length, _ = tokens.shape
        side = round((length - 1) ** 0.5)
        patches = self.down(tokens[:, 1:])  # (B*T, H*W, C)
        channels = patches.shape[-1]
        grid = patches.view(clips_frames // frames, frames, side, side, channels).permute(0, 4, 1, 2, 3)
        patches = self.conv(grid).permute(0, 2, 3, 4, 1).reshape(clips_frames, length - 1, channels)
        return torch.cat([tokens[:, :1], tokens[:, 1:] + self.up(patches)], dim=1)


class FrameViT(nn.Module):
    """An image ViT applied to every frame, class tokens averaged over time, a linear head;
    with :class:`STAdapter` modules in chosen blocks (``adapters`` keyed ``"<block>_<position>"``,
    blocks numbered from 1).

    ``forward(video)``: ``(B, 3, T, H, W)`` -> ``(B, num_classes)``.
    """

    def __init__(self, vit: VisionTransformer, num_classes: int, adapter_blocks: Sequence[int] = (),
                 positions: Sequence[str] = ("attn",), adapter_channels: int | None = None,
                 kernel: Sequence[int] = (3, 1, 1), dropout: float = 0.0) -> None:
        super().__init__()
        if not isinstance(vit, VisionTransformer):
            raise ValueError(f"ST-Adapter needs a torchvision VisionTransformer (transformer blocks in "
                             f"vit.encoder.layers), got {type(vit).__name__}")
        depth, dim = len(vit.encoder.layers), vit.hidden_dim
        wrong = [b for b in adapter_blocks if not 1 <= b <= depth]
        if wrong:
            raise ValueError(f"adapter_blocks: the ViT has blocks 1..{depth}, got {wrong}")
        unknown = [p for p in positions if p not in ADAPTER_POSITIONS]
        if unknown or not positions:
            raise ValueError(f"adapter positions: one or more of {', '.join(ADAPTER_POSITIONS)}, got {list(positions)}")
        vit.heads = nn.Identity()
        self.vit = vit
        channels = adapter_channels or dim // 2
        if channels < 1:
            raise ValueError(f"adapter_channels must be at least 1, got {channels}")
        self.adapters = nn.ModuleDict({f"{b}_{p}": STAdapter(dim, channels, kernel)
                                       for b in sorted(set(adapter_blocks)) for p in positions})
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        batch, channels, frames, height, width = video.shape
        vit = self.vit
        if height != vit.image_size or width != vit.image_size:
            raise ValueError(f"this ViT takes {vit.image_size}x{vit.image_size} frames (option image_size), "
                             f"got {height}x{width}")
        images = video.transpose(1, 2).reshape(batch * frames, channels, height, width)
        tokens = vit.conv_proj(images).flatten(2).transpose(1, 2)  # (B*T, H*W, dim)
        tokens = torch.cat([vit.class_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        tokens = vit.encoder.dropout(tokens + vit.encoder.pos_embedding)
        for index, block in enumerate(vit.encoder.layers, start=1):
            tokens = self.adapt(tokens, f"{index}_attn", frames)
            normed = block.ln_1(tokens)
            attended, _ = block.self_attention(normed, normed, normed, need_weights=False)
            tokens = tokens + block.dropout(attended)
            tokens = self.adapt(tokens, f"{index}_mlp", frames)
            tokens = tokens + block.mlp(block.ln_2(tokens))
        cls = vit.encoder.ln(tokens)[:, 0].view(batch, frames, -1).mean(dim=1)
        return self.head(self.dropout(cls))

    def adapt(self, tokens: torch.Tensor, key: str, frames: int) -> torch.Tensor:
        """``tokens`` through the adapter ``key`` if there is one."""
        return self.adapters[key](tokens, frames) if key in self.adapters else tokens


def image_vit(arch: str, image_size: int | None = None, weights: str | Path | None = None,
              patch_size: int = 4) -> VisionTransformer:
    """A torchvision image ViT: ``"vit_b_16"``, ``"vit_b_32"`` (224-pixel images by default)
    or ``"vit_tiny"`` (32 pixels, ``patch_size`` 4, width 128, 4 blocks of 4 heads), its weights
    from a local torchvision-keyed file (the ImageNet classifier ``heads`` in the file is ignored)."""
    if arch == "vit_tiny":
        if (image_size or 32) % patch_size:
            raise ValueError(f"image_size ({image_size}) must be a multiple of patch_size ({patch_size})")
        vit = VisionTransformer(image_size=image_size or 32, patch_size=patch_size, num_layers=4, num_heads=4,
                                hidden_dim=128, mlp_dim=512)
    else:
        vit = getattr(torchvision.models, arch)(image_size=image_size or 224)
    vit.heads = nn.Identity()
    if weights is not None:
        load_weights(vit, weights, ignore=("heads",))
    return vit


def _build(arch: str, num_classes: int, image_size: int | None, weights: str | Path | None,
           adapters: bool, adapter_blocks: Sequence[int] | None, positions: Sequence[str],
           adapter_channels: int | None, kernel: Sequence[int], dropout: float,
           train_backbone: bool, patch_size: int = 4) -> FrameViT:
    vit = image_vit(arch, image_size, weights, patch_size)
    blocks = (range(1, len(vit.encoder.layers) + 1) if adapter_blocks is None else adapter_blocks) if adapters else ()
    model = FrameViT(vit, num_classes, tuple(blocks), tuple(positions), adapter_channels, kernel, dropout)
    model.vit.requires_grad_(train_backbone or not adapters)
    return model


@register_model
def st_adapter_vit_b16(num_classes: int = 400, weights: str | Path | None = None, image_size: int = 224,
                       adapter_blocks: Sequence[int] | None = None, positions: Sequence[str] = ("attn",),
                       adapter_channels: int = 384, kernel: Sequence[int] = (3, 1, 1), dropout: float = 0.5,
                       train_backbone: bool = False) -> FrameViT:
    """ST-Adapter on a frozen ViT-B/16 (Pan 2022). Input (B, 3, T, 224, 224).

    ``weights``: a local torchvision ``vit_b_16`` state_dict file; ``adapter_blocks``: block
    numbers 1..12 (default all); ``positions``: ``attn`` and/or ``mlp`` (before which sub-layer);
    ``train_backbone``: also train the ViT (default: only adapters and head).
    """
    return _build("vit_b_16", num_classes, image_size, weights, True, adapter_blocks, positions,
                  adapter_channels, kernel, dropout, train_backbone)


@register_model
def st_adapter_vit_b32(num_classes: int = 400, weights: str | Path | None = None, image_size: int = 224,
                       adapter_blocks: Sequence[int] | None = None, positions: Sequence[str] = ("attn",),
                       adapter_channels: int = 384, kernel: Sequence[int] = (3, 1, 1), dropout: float = 0.5,
                       train_backbone: bool = False) -> FrameViT:
    """ST-Adapter on a frozen ViT-B/32. Input (B, 3, T, 224, 224). Options as st_adapter_vit_b16."""
    return _build("vit_b_32", num_classes, image_size, weights, True, adapter_blocks, positions,
                  adapter_channels, kernel, dropout, train_backbone)


@register_model
def st_adapter_vit_tiny(num_classes: int = 400, weights: str | Path | None = None, image_size: int = 32,
                        adapter_blocks: Sequence[int] | None = None, positions: Sequence[str] = ("attn",),
                        adapter_channels: int = 64, kernel: Sequence[int] = (3, 1, 1), dropout: float = 0.0,
                        train_backbone: bool = False, patch_size: int = 4) -> FrameViT:
    """ST-Adapter on a frozen CPU-sized ViT (width 128, 4 blocks, patch 4). Input (B, 3, T, 32, 32).

    Options as st_adapter_vit_b16; ``weights``: a ``vit_tiny`` state_dict with torchvision's keys;
    ``patch_size`` with ``image_size`` sets the patch grid (64 and 8: 64-pixel frames, 8x8 patches).
    """
    return _build("vit_tiny", num_classes, image_size, weights, True, adapter_blocks, positions,
                  adapter_channels, kernel, dropout, train_backbone, patch_size)


@register_model
def vit_b16_frames(num_classes: int = 400, weights: str | Path | None = None, image_size: int = 224,
                   dropout: float = 0.5) -> FrameViT:
    """ViT-B/16 on every frame, class tokens averaged over time, linear head. Input (B, 3, T, 224, 224).

    The baseline beside ST-Adapter: trained whole (full fine-tuning) or with
    ``--freeze-backbone`` (frozen image model + linear head).
    """
    return _build("vit_b_16", num_classes, image_size, weights, False, None, ("attn",), None, (3, 1, 1),
                  dropout, True)


@register_model
def vit_b32_frames(num_classes: int = 400, weights: str | Path | None = None, image_size: int = 224,
                   dropout: float = 0.5) -> FrameViT:
    """ViT-B/32 on every frame, time-averaged, linear head. Input (B, 3, T, 224, 224)."""
    return _build("vit_b_32", num_classes, image_size, weights, False, None, ("attn",), None, (3, 1, 1),
                  dropout, True)


@register_model
def vit_tiny_frames(num_classes: int = 400, weights: str | Path | None = None, image_size: int = 32,
                    dropout: float = 0.0, patch_size: int = 4) -> FrameViT:
    """The CPU-sized ViT on every frame, time-averaged, linear head. Input (B, 3, T, 32, 32)."""
    return _build("vit_tiny", num_classes, image_size, weights, False, None, ("attn",), None, (3, 1, 1),
                  dropout, True, patch_size)
