"""Video transformers: TimeSformer, ViViT and MViTv2.

* TimeSformer (Bertasius et al., "Is Space-Time Attention All You Need for Video
  Understanding?", ICML 2021): every frame is cut into ``patch x patch`` patches; one
  class token for the clip.  ``attention="divided"`` (the paper's best): each block first
  attends over time (a patch attends to the patches at the same position in the other
  frames; the class token takes no part), then over space (the patches of one frame and
  the class token, which is copied into every frame and whose per-frame outputs are
  averaged, as in the reference code), then the MLP.  ``"joint"``: one attention over all
  ``T*N + 1`` tokens.  ``"space"``: space-only; frames are encoded independently (each with
  its own class token) and the class outputs are averaged over frames.  The reference
  code's zero-initialised linear after temporal attention only serves initialisation
  from an image ViT and is left out (so the base model has 114.5 M parameters where the
  paper counts 121.4 M).
* ViViT (Arnab et al., "ViViT: A Video Vision Transformer", ICCV 2021), model 2, the
  factorised encoder: tubelet embedding (``t x p x p`` tubes), a spatial transformer over
  the tokens of each temporal index with its own class token, then a temporal transformer
  over the per-index class tokens and a clip class token, which is classified.
* MViTv2 (Fan et al., "Multiscale Vision Transformers", ICCV 2021; Li et al., "MViTv2",
  CVPR 2022): torchvision's ``mvit_v2_s`` registered under this package's API; its
  weights come from a local torchvision checkpoint file, the classifier is left fresh
  when the class count differs.

Builder defaults are the papers' base configurations (ViT-B: width 768, 12 heads); the
``*_tiny`` variants and the size options make CPU-sized models.  Attention is
``torch.nn.functional.scaled_dot_product_attention``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from deepvideo.models.registry import register_model
from deepvideo.models.weights import load_weights


class Attention(nn.Module):
    """Multi-head self-attention over ``(N, L, dim)`` token sequences."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"transformer option dim ({dim}) must be divisible by heads ({heads})")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape
        q, k, v = self.qkv(x).view(n, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(n, length, dim))

    def extra_macs(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
        """The two attention matmuls, QK^T and AV, for ``deepvideo summary`` (the
        projections are Linear layers and count themselves)."""
        n, length, dim = inputs[0].shape
        return 2 * n * length * length * dim


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TubeletEmbedding(nn.Module):
    """Non-overlapping ``t x p x p`` tubes, linearly embedded (a strided Conv3d).

    ``(B, C, T, H, W) -> (B, T / t, (H / p) * (W / p), dim)``; with ``t = 1`` these are
    ViT's per-frame patches.
    """

    def __init__(self, dim: int, patch_size: int, tubelet_size: int = 1, in_channels: int = 3) -> None:
        super().__init__()
        kernel = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_channels, dim, kernel, stride=kernel)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.proj(video).flatten(3).permute(0, 2, 3, 1)


def token_grid(model: str, num_frames: int, img_size: int, patch_size: int,
               tubelet_size: int = 1) -> tuple[int, int]:
    """``(T', N)``: tubelet positions in time and patches per frame; checks divisibility."""
    if num_frames % tubelet_size or img_size % patch_size:
        raise ValueError(f"{model}: num_frames={num_frames} and img_size={img_size} must be "
                         f"multiples of the tubelet {tubelet_size}x{patch_size}x{patch_size}")
    return num_frames // tubelet_size, (img_size // patch_size) ** 2


def _check_input(model: str, video: torch.Tensor, num_frames: int, img_size: int) -> None:
    expected = (3, num_frames, img_size, img_size)
    if tuple(video.shape[1:]) != expected:
        raise ValueError(f"{model} was built for input (B, {', '.join(map(str, expected))}) "
                         f"(options num_frames, img_size); got {tuple(video.shape)}")


# --- TimeSformer ------------------------------------------------------------------------

ATTENTIONS = ("divided", "joint", "space")


def _check_attention(attention: str) -> None:
    if attention not in ATTENTIONS:
        raise ValueError(f"timesformer option attention must be one of {ATTENTIONS}, "
                         f"got {attention!r}")


class TimeSformerBlock(Block):
    """A TimeSformer block over ``(B, 1 + T*N, dim)`` tokens: the class token first, then
    the patches frame by frame (frame-major).  ``attention`` is ``"divided"``, ``"joint"``
    or ``"space"`` (see the module docstring); ``forward(x, num_frames)``.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0,
                 attention: str = "divided") -> None:
        super().__init__(dim, heads, mlp_ratio, dropout)
        _check_attention(attention)
        self.attention = attention
        if attention == "divided":
            self.temporal_norm = nn.LayerNorm(dim)
            self.temporal_attn = Attention(dim, heads)

    def temporal_attention(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Residual attention over time among patches at the same position; class token unchanged."""
        b, length, dim = x.shape
        n = (length - 1) // num_frames
        patches = x[:, 1:].reshape(b, num_frames, n, dim).transpose(1, 2).reshape(b * n, num_frames, dim)
        update = self.temporal_attn(self.temporal_norm(patches))
        update = update.view(b, n, num_frames, dim).transpose(1, 2).reshape(b, num_frames * n, dim)
        return torch.cat([x[:, :1], x[:, 1:] + update], dim=1)

    def spatial_attention(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Residual attention within each frame; the class token joins every frame and its
        per-frame outputs are averaged."""
        b, length, dim = x.shape
        n = (length - 1) // num_frames
        cls = x[:, :1].expand(b, num_frames, dim).reshape(b * num_frames, 1, dim)
        frames = torch.cat([cls, x[:, 1:].reshape(b * num_frames, n, dim)], dim=1)
        update = self.attn(self.norm1(frames))
        cls_update = update[:, 0].view(b, num_frames, dim).mean(dim=1, keepdim=True)
        return x + torch.cat([cls_update, update[:, 1:].reshape(b, num_frames * n, dim)], dim=1)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:  # type: ignore[override]
        if self.attention == "joint":
            x = x + self.attn(self.norm1(x))
        else:
            if self.attention == "divided":
                x = self.temporal_attention(x, num_frames)
            x = self.spatial_attention(x, num_frames)
        return x + self.mlp(self.norm2(x))


class TimeSformer(nn.Module):
    """TimeSformer: per-frame patches, a clip class token, space-time blocks.

    Learned position embeddings: spatial ``(1 + N)`` shared by all frames, plus a temporal
    embedding per frame (not in space-only mode, which encodes frames independently).
    Input ``(B, 3, num_frames, img_size, img_size)``; logits ``(B, num_classes)``.
    """

    def __init__(self, num_classes: int, attention: str = "divided", num_frames: int = 8,
                 img_size: int = 224, patch_size: int = 16, dim: int = 768, depth: int = 12,
                 heads: int = 12, mlp_ratio: float = 4.0, dropout: float = 0.0) -> None:
        super().__init__()
        _check_attention(attention)
        self.num_frames, self.img_size, self.attention = num_frames, img_size, attention
        num_patches = token_grid("timesformer", num_frames, img_size, patch_size)[1]
        self.patch_embed = TubeletEmbedding(dim, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + num_patches, dim))
        self.time_embed = (None if attention == "space"
                           else nn.Parameter(torch.zeros(1, num_frames, 1, dim)))
        self.blocks = nn.ModuleList(TimeSformerBlock(dim, heads, mlp_ratio, dropout, attention)
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(dim, num_classes)
        for p in (self.cls_token, self.pos_embed, self.time_embed):
            if p is not None:
                nn.init.trunc_normal_(p, std=0.02)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        _check_input("timesformer", video, self.num_frames, self.img_size)
        patches = self.patch_embed(video) + self.pos_embed[:, None, 1:]  # (B, T, N, D)
        b, t, n, d = patches.shape
        cls = self.cls_token + self.pos_embed[:, :1]
        if self.attention == "space":  # frames as independent images
            x = torch.cat([cls.expand(b * t, 1, d), patches.reshape(b * t, n, d)], dim=1)
            frames = 1
        else:
            patches = patches + self.time_embed
            x = torch.cat([cls.expand(b, 1, d), patches.reshape(b, t * n, d)], dim=1)
            frames = t
        for block in self.blocks:
            x = block(x, frames)
        cls_out = self.norm(x)[:, 0]
        if self.attention == "space":
            cls_out = cls_out.view(b, t, d).mean(dim=1)
        return self.head(self.dropout(cls_out))


# --- ViViT ------------------------------------------------------------------------------


class ClassTokenEncoder(nn.Module):
    """Transformer encoder that prepends a class token and returns its final state.

    ``(N, L, dim) -> (N, dim)`` for ``L <= length``; learned position embeddings for
    ``1 + length`` tokens (the first ``1 + L`` used); a final LayerNorm.
    """

    def __init__(self, length: int, dim: int, depth: int, heads: int, mlp_ratio: float = 4.0,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + length, dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.Sequential(*(Block(dim, heads, mlp_ratio, dropout) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.shape[1] >= self.pos_embed.shape[1]:
            raise ValueError(f"at most {self.pos_embed.shape[1] - 1} tokens, got {tokens.shape[1]}")
        x = torch.cat([self.cls_token.expand(tokens.shape[0], 1, -1), tokens], dim=1)
        return self.norm(self.blocks(x + self.pos_embed[:, :x.shape[1]]))[:, 0]


class ViViT(nn.Module):
    """ViViT factorised encoder: spatial encoder per temporal index, then temporal encoder.

    Input ``(B, 3, num_frames, img_size, img_size)``; logits ``(B, num_classes)``.
    ``frame_tokens`` gives the spatial encoder's per-index class tokens ``(B, T', dim)``
    with ``T' = num_frames / tubelet_size``.
    """

    def __init__(self, num_classes: int, num_frames: int = 32, img_size: int = 224,
                 patch_size: int = 16, tubelet_size: int = 2, dim: int = 768,
                 spatial_depth: int = 12, temporal_depth: int = 4, heads: int = 12,
                 mlp_ratio: float = 4.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_frames, self.img_size = num_frames, img_size
        times, num_patches = token_grid("vivit", num_frames, img_size, patch_size, tubelet_size)
        self.tubelet_embed = TubeletEmbedding(dim, patch_size, tubelet_size)
        self.spatial = ClassTokenEncoder(num_patches, dim, spatial_depth, heads, mlp_ratio, dropout)
        self.temporal = ClassTokenEncoder(times, dim, temporal_depth, heads, mlp_ratio, dropout)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(dim, num_classes)

    def frame_tokens(self, video: torch.Tensor) -> torch.Tensor:
        _check_input("vivit", video, self.num_frames, self.img_size)
        tokens = self.tubelet_embed(video)  # (B, T', N, D)
        b, t, n, d = tokens.shape
        return self.spatial(tokens.reshape(b * t, n, d)).view(b, t, d)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.temporal(self.frame_tokens(video))))


# --- registered builders ----------------------------------------------------------------


@register_model
def timesformer(num_classes: int = 400, attention: str = "divided", num_frames: int = 8,
                img_size: int = 224, patch_size: int = 16, dim: int = 768, depth: int = 12,
                heads: int = 12, mlp_ratio: float = 4.0, dropout: float = 0.0) -> TimeSformer:
    """TimeSformer (Bertasius 2021), divided/joint/space attention, ViT-B/16. Input (B, 3, 8, 224, 224)."""
    return TimeSformer(num_classes, attention, num_frames, img_size, patch_size, dim, depth, heads,
                       mlp_ratio, dropout)


@register_model
def timesformer_tiny(num_classes: int = 400, attention: str = "divided", num_frames: int = 8,
                     img_size: int = 112, dropout: float = 0.0) -> TimeSformer:
    """TimeSformer, CPU size: patch 16, width 192, 4 blocks, 3 heads. Input (B, 3, 8, 112, 112)."""
    return TimeSformer(num_classes, attention, num_frames, img_size, patch_size=16, dim=192,
                       depth=4, heads=3, dropout=dropout)


@register_model
def vivit(num_classes: int = 400, num_frames: int = 32, img_size: int = 224, patch_size: int = 16,
          tubelet_size: int = 2, dim: int = 768, spatial_depth: int = 12, temporal_depth: int = 4,
          heads: int = 12, mlp_ratio: float = 4.0, dropout: float = 0.0) -> ViViT:
    """ViViT factorised encoder (Arnab 2021), ViViT-B, tubelet 2x16x16. Input (B, 3, 32, 224, 224)."""
    return ViViT(num_classes, num_frames, img_size, patch_size, tubelet_size, dim, spatial_depth,
                 temporal_depth, heads, mlp_ratio, dropout)


@register_model
def vivit_tiny(num_classes: int = 400, num_frames: int = 8, img_size: int = 112,
               dropout: float = 0.0) -> ViViT:
    """ViViT factorised encoder, CPU size: width 192, 4+2 blocks, 3 heads. Input (B, 3, 8, 112, 112)."""
    return ViViT(num_classes, num_frames, img_size, patch_size=16, tubelet_size=2, dim=192,
                 spatial_depth=4, temporal_depth=2, heads=3, dropout=dropout)


@register_model
def mvit_v2_s(num_classes: int = 400, weights: str | None = None, dropout: float = 0.5) -> nn.Module:
    """MViTv2-S (Li 2022) from torchvision, optional local weights file. Input (B, 3, 16, 224, 224).

    ``weights``: a torchvision ``mvit_v2_s`` state_dict file (Kinetics-400); when
    ``num_classes`` differs, every layer but the classifier ``head.1`` is loaded (with a
    warning) and the head keeps its fresh initialisation.
    """
    model = torchvision.models.video.mvit_v2_s(num_classes=num_classes, dropout=dropout)
    if weights is not None:
        load_weights(model, weights, head="head.1")
    return model
