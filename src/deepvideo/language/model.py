"""Video and text in one embedding space: the dual encoder of CLIP (Radford et al., "Learning
Transferable Visual Models From Natural Language Supervision", ICML 2021) with a video tower.

A :class:`DualEncoder` maps a clip ``(B, 3, T, H, W)`` and caption tokens ``(B, L)`` to unit
vectors ``(B, E)`` of one space; :func:`clip_loss` is CLIP's symmetric InfoNCE over the
``(B, B)`` cosine similarities of a batch scaled by a learned temperature (``logit_scale``,
initialised to ``log(1 / 0.07)`` and capped at 100 as in CLIP).

The video tower is a named choice (:data:`VIDEO_ENCODERS`):

* ``frames`` -- CLIP's image tower (``open_clip``'s ViT) applied to every frame, its frame
  embeddings pooled over time: ``mean`` (ActionCLIP's "MeanP", Wang et al. 2021) or
  ``transformer``: a small temporal transformer with learned temporal position embeddings
  and a residual connection, then the mean (ActionCLIP's "Transf"; X-CLIP, Ni et al. ECCV
  2022, models frames in time in the same spirit).  Averaged frame features alone cannot
  tell left from right (the order of frames is lost); the temporal transformer can.
* ``backbone`` -- any registered video model of :mod:`deepvideo.models` without its
  classifier (``small3d``, ``r3d_18``, ...) and a linear projection.

The text tower is :class:`~deepvideo.language.text.TextEncoder`.  Real CLIP weights load from
a local file (:func:`load_clip_weights`) into towers built from ``open_clip``'s own
configuration of that model (:func:`open_clip_spec`): ``visual.*`` into the image tower, the
text keys into the text tower, ``logit_scale`` into the temperature; the temporal transformer
(absent from CLIP) keeps its fresh initialisation.  Nothing is downloaded.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from deepvideo.engine.checkpoint import CheckpointError, load_checkpoint
from deepvideo.language.text import TextEncoder, require_open_clip
from deepvideo.models import create_model
from deepvideo.models.registry import check_model_options, drop_classifier
from deepvideo.models.weights import read_state_dict
from deepvideo.registry import Registry

__all__ = ["CLIP_MEAN", "CLIP_STD", "MAX_LOGIT_SCALE", "POOLINGS", "VIDEO_ENCODERS", "BackboneEncoder", "ClipSpec",
           "DualEncoder", "FrameEncoder", "build_dual_encoder", "clip_loss", "load_clip_checkpoint",
           "load_clip_weights", "open_clip_spec"]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # CLIP's image normalisation (open_clip's OPENAI_DATASET_*)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
MAX_LOGIT_SCALE = 100.0
POOLINGS = ("mean", "transformer")

VIDEO_ENCODERS: Registry = Registry("video encoder")
_SET_BY_SPEC = ("embed_dim", "num_frames", "size")  # what ClipSpec gives every video encoder builder


class FrameEncoder(nn.Module):
    """CLIP's image tower per frame, pooled over time: ``(B, 3, T, H, W)`` -> ``(B, embed_dim)``.

    ``tower`` is ``open_clip``'s ``VisionTransformer`` (keys of a CLIP state_dict's ``visual.*``);
    frames must be ``image_size`` square.  ``pooling="transformer"`` adds ``temporal_position``
    ``(num_frames, embed_dim)`` and ``temporal`` (``temporal_layers`` pre-norm transformer layers)
    and needs clips of exactly ``num_frames`` frames.
    """

    def __init__(self, embed_dim: int, num_frames: int, image_size: int = 224, patch_size: int = 32,
                 width: int = 768, layers: int = 12, heads: int = 12, mlp_ratio: float = 4.0,
                 quick_gelu: bool = False, pooling: str = "transformer", temporal_layers: int = 1) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        if image_size % patch_size:
            raise ValueError(f"image_size ({image_size}) must be a multiple of patch_size ({patch_size})")
        if width % heads:
            raise ValueError(f"width ({width}) must be a multiple of heads ({heads})")
        require_open_clip()
        from open_clip.transformer import QuickGELU, VisionTransformer

        self.image_size, self.num_frames, self.pooling = image_size, num_frames, pooling
        self.tower = VisionTransformer(image_size=image_size, patch_size=patch_size, width=width, layers=layers,
                                       heads=heads, mlp_ratio=mlp_ratio, output_dim=embed_dim,
                                       act_layer=QuickGELU if quick_gelu else nn.GELU)
        if pooling == "transformer":
            self.temporal_position = nn.Parameter(torch.randn(num_frames, embed_dim) * 0.02)
            heads_t = max(1, embed_dim // 64)
            layer = nn.TransformerEncoderLayer(embed_dim, heads_t, 4 * embed_dim, dropout=0.0, batch_first=True,
                                               norm_first=True)
            self.temporal = nn.TransformerEncoder(layer, temporal_layers, enable_nested_tensor=False)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = video.shape
        if (h, w) != (self.image_size, self.image_size):
            raise ValueError(f"frames of {h}x{w} pixels, but the image tower takes {self.image_size}x{self.image_size}")
        frames = self.tower(video.transpose(1, 2).reshape(b * t, c, h, w)).reshape(b, t, -1)  # (B, T, E)
        if self.pooling == "mean":
            return frames.mean(1)
        if t != self.num_frames:
            raise ValueError(f"clips of {t} frames, but the temporal transformer takes {self.num_frames}")
        return (frames + self.temporal(frames + self.temporal_position)).mean(1)


class BackboneEncoder(nn.Module):
    """A registered video model without its classifier, then a linear projection:
    ``(B, 3, T, H, W)`` -> ``(B, embed_dim)``.  The backbone is probed once on a clip of
    ``num_frames`` x ``size`` x ``size`` for its feature size (``ValueError`` when it cannot
    take it or does not pool to one vector per clip)."""

    def __init__(self, embed_dim: int, num_frames: int, size: int, model: str = "small3d",
                 model_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        check_model_options(model, model_kwargs or {})
        self.backbone = drop_classifier(create_model(model, num_classes=2, **(model_kwargs or {})), model)
        probe = torch.zeros(2, 3, num_frames, size, size)
        self.backbone.eval()
        try:
            with torch.no_grad():
                features = self.backbone(probe)
        except RuntimeError as exc:
            raise ValueError(f"model {model} cannot take clips of {num_frames}x{size}x{size} "
                             f"({str(exc).splitlines()[0][:120]})") from None
        self.backbone.train()
        if features.dim() != 2:
            raise ValueError(f"model {model}: without its classifier it gives {tuple(features.shape[1:])} per clip, "
                             f"not one feature vector; use a model that pools (small3d, r3d_18, ...)")
        self.projection = nn.Linear(features.shape[1], embed_dim)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.projection(self.backbone(video))


@VIDEO_ENCODERS.register("frames")
def frames_encoder(embed_dim: int, num_frames: int, size: int, patch_size: int = 32, width: int = 768, layers: int = 12,
           heads: int = 12, mlp_ratio: float = 4.0, quick_gelu: bool = False, pooling: str = "transformer",
           temporal_layers: int = 1) -> FrameEncoder:
    """CLIP's ViT image tower on every frame, pooled over time (mean, or a temporal transformer)."""
    return FrameEncoder(embed_dim, num_frames, size, patch_size, width, layers, heads, mlp_ratio, quick_gelu,
                        pooling, temporal_layers)


@VIDEO_ENCODERS.register("backbone")
def backbone_encoder(embed_dim: int, num_frames: int, size: int, model: str = "small3d",
             model_kwargs: dict[str, Any] | None = None) -> BackboneEncoder:
    """A registered video model (``deepvideo models``) without its classifier, and a projection."""
    return BackboneEncoder(embed_dim, num_frames, size, model, model_kwargs)


class DualEncoder(nn.Module):
    """A video tower and a text tower into one space, and CLIP's learned temperature.

    ``forward(video (B, 3, T, H, W), tokens (B, L))`` gives the unit video and text embeddings
    ``(B, E)`` each and the logit scale (a scalar tensor, ``exp(logit_scale)`` capped at
    :data:`MAX_LOGIT_SCALE`).
    """

    def __init__(self, video: nn.Module, text: TextEncoder, temperature: float = 0.07) -> None:
        super().__init__()
        self.video, self.text = video, text
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / temperature)))

    def scale(self) -> torch.Tensor:
        return self.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` -> unit vectors ``(B, E)``."""
        return F.normalize(self.video(video), dim=-1)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, L)`` token ids -> unit vectors ``(B, E)``."""
        return F.normalize(self.text(tokens), dim=-1)

    def forward(self, video: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.encode_video(video), self.encode_text(tokens), self.scale()


def clip_loss(video: torch.Tensor, text: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric InfoNCE of a batch of matching pairs: ``video`` and ``text`` ``(B, E)``
    unit vectors (row ``i`` of each is a pair), ``scale`` the logit scale.  With ``S = scale *
    video @ text.T``, the mean of the cross-entropy of each row of ``S`` (video to text) and of
    each column (text to video) against the diagonal."""
    logits = scale * video @ text.T
    targets = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


@dataclass
class ClipSpec:
    """Everything that rebuilds a dual encoder and its input pipeline (stored in checkpoints).

    ``video_options`` go to the :data:`VIDEO_ENCODERS` builder ``video_encoder`` (it also gets
    ``embed_dim``, ``num_frames=clip_len`` and ``size``); ``text_options`` to
    :class:`~deepvideo.language.text.TextEncoder` (``context_length``, ``width``, ``heads``,
    ``layers``, ``mlp_ratio``, ``quick_gelu``).  Clips are ``clip_len`` frames ``frame_stride``
    apart, their short side resized to ``resize`` and cropped to ``size``, normalised with
    ``mean`` and ``std``."""

    embed_dim: int = 128
    video_encoder: str = "backbone"
    video_options: dict[str, Any] = field(default_factory=dict)
    text_options: dict[str, Any] = field(default_factory=lambda: {"context_length": 32, "width": 128, "heads": 4,
                                                                   "layers": 2})
    clip_len: int = 8
    frame_stride: int = 1
    size: int = 112
    resize: int = 128
    mean: tuple[float, ...] = CLIP_MEAN
    std: tuple[float, ...] = CLIP_STD

    def __post_init__(self) -> None:
        for name in ("embed_dim", "clip_len", "frame_stride", "size", "resize"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.resize < self.size:
            raise ValueError(f"resize ({self.resize}) must be at least size ({self.size})")
        given = sorted(set(self.video_options) & set(_SET_BY_SPEC))
        if given:
            raise ValueError(f"video option {given[0]!r} is set by the spec (embed_dim, clip_len, size), not an option")
        VIDEO_ENCODERS.check(self.video_encoder, {**dict.fromkeys(_SET_BY_SPEC, 1), **self.video_options},
                             set_by_caller=_SET_BY_SPEC)
        self.mean, self.std = tuple(self.mean), tuple(self.std)

    @property
    def context_length(self) -> int:
        return int(self.text_options.get("context_length", 77))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClipSpec:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


def build_dual_encoder(spec: ClipSpec) -> DualEncoder:
    """A fresh :class:`DualEncoder` of ``spec``."""
    video = VIDEO_ENCODERS.build(spec.video_encoder, embed_dim=spec.embed_dim, num_frames=spec.clip_len,
                                 size=spec.size, **spec.video_options)
    return DualEncoder(video, TextEncoder(spec.embed_dim, **spec.text_options))


_VISION_KEYS = {"image_size", "layers", "width", "head_width", "patch_size", "mlp_ratio"}
_TEXT_KEYS = {"context_length", "vocab_size", "width", "heads", "layers", "mlp_ratio"}


def open_clip_spec(name: str, clip_len: int = 8, pooling: str = "transformer", frame_stride: int = 1) -> ClipSpec:
    """The :class:`ClipSpec` of ``open_clip``'s model ``name`` (``ViT-B-32``, ``ViT-B-16``,
    ``ViT-B-32-quickgelu``, ...: its configuration shipped in the wheel), with a ``frames``
    video tower pooled by ``pooling``.  ``ValueError`` for an unknown name or a model whose
    towers are not a plain ViT and text transformer (ResNet, timm or Hugging Face towers)."""
    open_clip = require_open_clip()
    config = open_clip.get_model_config(name)
    if config is None:
        raise ValueError(f"unknown open_clip model {name!r}; one of {', '.join(open_clip.list_models()[:12])}, ...")
    vision, text = dict(config.get("vision_cfg", {})), dict(config.get("text_cfg", {}))
    extra = sorted(set(vision) - _VISION_KEYS) + sorted(set(text) - _TEXT_KEYS)
    if extra or not isinstance(vision.get("layers", 12), int):
        what = f"option {extra[0]!r}" if extra else "a ResNet image tower"
        raise ValueError(f"open_clip model {name}: its config uses {what}, which deepvideo's towers do not build; "
                         f"use a plain ViT model (ViT-B-32, ViT-B-16, ViT-L-14, ...)")
    width = vision.get("width", 768)
    size = vision.get("image_size", 224)
    video_options = {"patch_size": vision.get("patch_size", 16), "width": width, "layers": vision.get("layers", 12),
                     "heads": width // vision.get("head_width", 64), "mlp_ratio": vision.get("mlp_ratio", 4.0),
                     "quick_gelu": bool(config.get("quick_gelu", False)), "pooling": pooling}
    text_options = {key: text[key] for key in ("context_length", "vocab_size", "width", "heads", "layers",
                                               "mlp_ratio") if key in text}
    text_options["quick_gelu"] = bool(config.get("quick_gelu", False))
    return ClipSpec(embed_dim=config["embed_dim"], video_encoder="frames", video_options=video_options,
                    text_options=text_options, clip_len=clip_len, frame_stride=frame_stride, size=size, resize=size)


def load_clip_weights(model: DualEncoder, path: str | os.PathLike) -> DualEncoder:
    """Load a local ``open_clip``/CLIP state_dict file (``.pt``, ``.bin`` or ``.safetensors``) into
    ``model`` in place: ``visual.*`` into a ``frames`` video tower (ignored for a ``backbone``
    one, which keeps its own weights), every other key into the text tower, ``logit_scale``
    into the temperature.  Modules CLIP does not have (the temporal transformer, a backbone
    and its projection) keep their initialisation.  ``ValueError`` naming the file and the
    first missing, unexpected or wrongly shaped key (a file of another architecture)."""
    state = read_state_dict(path)
    state = {key.removeprefix("module."): value for key, value in state.items()}
    image_tower = isinstance(model.video, FrameEncoder)
    mapped: dict[str, tuple[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key.startswith("visual."):
            if image_tower:
                mapped["video.tower." + key.removeprefix("visual.")] = (key, value)
        elif key == "logit_scale":
            mapped[key] = (key, value)
        else:
            mapped["text.tower." + key] = (key, value)
    own = model.state_dict()
    loaded = ("video.tower.", "text.tower.") if image_tower else ("text.tower.",)
    for key, value in own.items():
        if not key.startswith(loaded) and key != "logit_scale":
            continue
        if key not in mapped:
            original = key.replace("video.tower.", "visual.", 1).replace("text.tower.", "", 1)
            raise ValueError(f"CLIP weights file {path}: key {original!r} is missing (the file holds another "
                             f"architecture, or is not a CLIP state_dict)")
        original, stored = mapped[key]
        if stored.shape != value.shape:
            raise ValueError(f"CLIP weights file {path}: key {original!r} has shape {tuple(stored.shape)} in the "
                             f"file but {tuple(value.shape)} in the model (another architecture)")
    for key, (original, _) in mapped.items():
        if key not in own:
            raise ValueError(f"CLIP weights file {path}: unexpected key {original!r} (not in the model: another "
                             f"architecture)")
    model.load_state_dict({key: value for key, (_, value) in mapped.items()}, strict=False)
    return model


def load_clip_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[DualEncoder, ClipSpec]:
    """The trained dual encoder of a ``deepvideo clip train`` checkpoint (in eval mode, on
    ``device``) and its :class:`ClipSpec`; :class:`CheckpointError` for another file."""
    state = load_checkpoint(path, required=("model", "clip"))
    try:
        spec = ClipSpec.from_dict(state["clip"])
        model = build_dual_encoder(spec)
        model.load_state_dict(state["model"])
    except (ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a usable video-text checkpoint ({str(exc).strip().splitlines()[0]})"
                              ) from None
    return model.to(device).eval(), spec
