"""Clip transforms: decoder frames ``(T, H, W, 3)`` uint8 -> clip tensor ``(C, T, H, W)`` float32.

Every transform is a callable ``t(frames, rng=None)``; ``rng`` is a
``numpy.random.Generator`` (None draws fresh entropy), so a pipeline is deterministic
under a seed.  A random transform draws once per call: every frame of a clip gets the
same crop and the same flip.

Geometry runs on uint8 frames, before any float conversion: converting full-resolution
frames to float and resizing them costs four times the memory traffic and is where many
video pipelines lose their speed (``benchmarks/pipeline.py``).  Only :class:`ToTensor`
converts to float, on the cropped clip.  Resizing (:func:`resize_frames`) is antialiased
bilinear by default (torchvision's ``resize(antialias=True)`` on uint8, exactly), or
OpenCV's ``INTER_AREA`` / ``INTER_LINEAR`` with ``interpolation="area"``.

Layouts: the numpy transforms accept ``(..., H, W, C)`` arrays and treat the leading axes
(time, views) alike.  :class:`ThreeCrop` stacks its views in front:
``(T, H, W, 3) -> (3, T, h, w, 3)``; later transforms keep the view axis, :class:`ToTensor`
turns ``(V, T, H, W, C)`` into ``(V, C, T, H, W)`` and :class:`Normalize` works on the
channel axis ``-4``.  A dataset returns such a sample whole, a batch is then
``(B, V, C, T, H, W)``: flatten ``B * V`` for the model and average the scores over ``V``.

A crop larger than the frame first resizes the frame up (aspect ratio kept, bilinear) until
the crop fits, so a small video never stops an epoch; :func:`build_transform`
rejects ``resize < size``, a configuration that would always do that.

Optical-flow stacks for a temporal stream go through :func:`build_flow_transform`:
``(L, H, W, 2)`` float32 ``(dx, dy)`` pixels -> ``(2, L, size, size)`` float32.  The same
crops apply; resizing also scales the vectors (:class:`FlowResizeShort`), a flip also
negates ``dx`` (:class:`FlowHorizontalFlip`), and :class:`FlowToTensor` subtracts each
field's mean displacement (Simonyan & Zisserman's camera-motion compensation) and divides
by a scale.

A two-stream pair ``(frames (T, H, W, 3) uint8, flow (L, H, W, 2) float32)`` goes through
:func:`build_pair_transform`: both get the same crop box and the same flip
(:class:`PairedTransform`), then their own finishing, giving ``(rgb (3, T, s, s), flow
(2, L, s, s))``.
"""

from __future__ import annotations

import copy
import math
from typing import Callable, Sequence

import cv2
import numpy as np
import torch

from deepvideo.data.sampling import ensure_rng, positive_int

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "INTERPOLATIONS", "KINETICS_MEAN", "KINETICS_STD",
           "CenterCrop", "ColorJitter", "Compose", "HorizontalFlip", "Normalize", "RandomCrop",
           "RandomResizedCrop", "ResizeShort", "ThreeCrop", "ToTensor", "build_transform",
           "resize_frames", "FlowHorizontalFlip", "FlowResizeShort", "FlowToTensor",
           "build_flow_transform", "PairedTransform", "build_pair_transform"]

# Per-channel RGB statistics of the torchvision video models (Kinetics-400) and of ImageNet.
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATIONS = ("bilinear", "area")

Transform = Callable[..., "np.ndarray | torch.Tensor"]


def _pair(name: str, size: int | Sequence[int]) -> tuple[int, int]:
    """``size`` (int or (height, width)) as a (height, width) pair of positive ints."""
    if isinstance(size, (int, np.integer)):
        return (positive_int(name, size),) * 2
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise ValueError(f"{name} must be an int or a (height, width) pair, got {size!r}")
    return positive_int(name, size[0]), positive_int(name, size[1])


def _interpolation(value: str) -> str:
    if value not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {value!r}")
    return value


def resize_frames(frames: np.ndarray, height: int, width: int,
                  interpolation: str = "bilinear") -> np.ndarray:
    """Resize every frame of ``(..., H, W, C)`` to ``(..., height, width, C)``, same dtype.

    ``interpolation``:

    * ``"bilinear"``: antialiased bilinear, ``torch.nn.functional.interpolate(...,
      antialias=True)`` on the channels-last frames; identical to torchvision's
      ``resize(antialias=True)`` on uint8 tensors.
    * ``"area"``: ``cv2.resize`` per frame, ``INTER_AREA`` when the output has fewer
      pixels, ``INTER_LINEAR`` otherwise.  As fast at integer shrink factors, 4-10x
      slower at the others (OpenCV's generic area path).

    Returns ``frames`` itself when the size already matches.
    """
    *lead, h, w, c = frames.shape
    if (h, w) == (height, width):
        return frames
    if interpolation == "area":
        flag = cv2.INTER_AREA if height * width < h * w else cv2.INTER_LINEAR
        out = np.empty((*lead, height, width, c), frames.dtype)
        for i in np.ndindex(*lead):
            out[i] = cv2.resize(frames[i], (width, height), interpolation=flag).reshape(
                height, width, c)
        return out
    _interpolation(interpolation)
    # interpolate's fast uint8 kernel wants dense channels-last input: copy crops and flips
    x = torch.from_numpy(np.ascontiguousarray(frames)).reshape(-1, h, w, c).permute(0, 3, 1, 2)
    x = torch.nn.functional.interpolate(x, size=(height, width), mode="bilinear",
                                        antialias=True, align_corners=False)
    return x.permute(0, 2, 3, 1).numpy().reshape(*lead, height, width, c)


def _fit(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Frames resized up (aspect kept, bilinear) so that a ``height x width`` crop fits;
    else unchanged."""
    h, w = frames.shape[-3:-1]
    if h >= height and w >= width:
        return frames
    scale = max(height / h, width / w)
    return resize_frames(frames, max(height, round(h * scale)), max(width, round(w * scale)))


def _crop(frames: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    return frames[..., top:top + height, left:left + width, :]


def _centre(extent: int, crop: int) -> int:
    """Offset of a centred crop, rounded as torchvision's ``center_crop`` does."""
    return int(round((extent - crop) / 2))


class ResizeShort:
    """Resize ``(..., H, W, C)`` frames so that the short side is ``size``.

    The long side becomes ``int(size * long / short)``, as in torchvision's ``Resize(int)``;
    ``interpolation`` as in :func:`resize_frames`.  Frames already of the output size are
    returned unchanged (the same array): resizing is idempotent, so frames resized once and
    cached (:mod:`deepvideo.data.cache`) go through the same pipeline untouched.
    """

    def __init__(self, size: int, interpolation: str = "bilinear") -> None:
        self.size = positive_int("size", size)
        self.interpolation = _interpolation(interpolation)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """``(height, width)`` of a ``height x width`` frame after this resize."""
        if height <= width:
            return self.size, int(self.size * width / height)
        return int(self.size * height / width), self.size

    def __call__(self, frames: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        return resize_frames(frames, *self.output_size(*frames.shape[-3:-1]), self.interpolation)

    def __repr__(self) -> str:
        return f"ResizeShort({self.size}, interpolation={self.interpolation!r})"


class CenterCrop:
    """The centre ``size`` (int or (h, w)) crop of ``(..., H, W, C)`` frames (a view)."""

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _pair("size", size)

    def __call__(self, frames: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        h, w = self.size
        frames = _fit(frames, h, w)
        height, width = frames.shape[-3:-1]
        return _crop(frames, _centre(height, h), _centre(width, w), h, w)

    def __repr__(self) -> str:
        return f"CenterCrop({self.size})"


class RandomCrop:
    """A ``size`` crop of ``(..., H, W, C)`` frames at a uniform random position, the same
    for every frame (a view)."""

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _pair("size", size)

    def __call__(self, frames: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = ensure_rng(rng)
        h, w = self.size
        frames = _fit(frames, h, w)
        height, width = frames.shape[-3:-1]
        top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        return _crop(frames, top, left, h, w)

    def __repr__(self) -> str:
        return f"RandomCrop({self.size})"


class ThreeCrop:
    """Three ``size`` crops along the long side (left, centre, right of a landscape frame;
    top, centre, bottom of a portrait one), centred on the short side:
    ``(..., H, W, C) -> (3, ..., h, w, C)``."""

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _pair("size", size)

    def boxes(self, height: int, width: int) -> list[tuple[int, int]]:
        """(top, left) of the three crops in a frame of ``height x width`` (crop fits)."""
        h, w = self.size
        if width >= height:
            return [(_centre(height, h), left) for left in (0, _centre(width, w), width - w)]
        return [(top, _centre(width, w)) for top in (0, _centre(height, h), height - h)]

    def __call__(self, frames: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        h, w = self.size
        frames = _fit(frames, h, w)
        return np.stack([_crop(frames, top, left, h, w)
                         for top, left in self.boxes(*frames.shape[-3:-1])])

    def __repr__(self) -> str:
        return f"ThreeCrop({self.size})"


class RandomResizedCrop:
    """torchvision's ``RandomResizedCrop`` with one box for every frame of the clip.

    A box of ``scale`` times the frame area and aspect ratio (width / height) log-uniform in
    ``ratio`` (10 tries, else the largest centred box whose ratio is in range), resized to
    ``size`` (``interpolation`` as in :func:`resize_frames`):
    ``(..., H, W, C) -> (..., h, w, C)``.
    """

    def __init__(self, size: int | Sequence[int], scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3),
                 interpolation: str = "bilinear") -> None:
        self.size = _pair("size", size)
        self.interpolation = _interpolation(interpolation)
        for name, (lo, hi) in (("scale", scale), ("ratio", ratio)):
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must be (min, max) with 0 < min <= max, got {(lo, hi)}")
        self.scale, self.ratio = tuple(scale), tuple(ratio)

    def box(self, height: int, width: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """(top, left, box height, box width) in a ``height x width`` frame."""
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target_area = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = int(rng.integers(0, height - h + 1))
                return top, int(rng.integers(0, width - w + 1)), h, w
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, int(round(width / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            w, h = int(round(height * self.ratio[1])), height
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, frames: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        top, left, h, w = self.box(*frames.shape[-3:-1], ensure_rng(rng))
        return resize_frames(_crop(frames, top, left, h, w), *self.size, self.interpolation)

    def __repr__(self) -> str:
        return (f"RandomResizedCrop({self.size}, scale={self.scale}, ratio={self.ratio}, "
                f"interpolation={self.interpolation!r})")


class HorizontalFlip:
    """Mirror ``(..., H, W, C)`` frames left-right with probability ``p`` (whole clip)."""

    def __init__(self, p: float = 0.5) -> None:
        if not 0 <= p <= 1:
            raise ValueError(f"p must lie in [0, 1], got {p!r}")
        self.p = p

    def __call__(self, frames: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        return frames[..., ::-1, :] if ensure_rng(rng).random() < self.p else frames

    def __repr__(self) -> str:
        return f"HorizontalFlip(p={self.p})"


class ToTensor:
    """uint8 frames ``(..., T, H, W, C)`` -> float32 tensor ``(..., C, T, H, W)``.

    ``scale="01"`` maps 0..255 to [0, 1], ``"pm1"`` to [-1, 1].  One pass: the layout
    change and the float conversion happen in the same copy.
    """

    SCALES = ("01", "pm1")

    def __init__(self, scale: str = "01") -> None:
        if scale not in self.SCALES:
            raise ValueError(f"scale must be one of {self.SCALES}, got {scale!r}")
        self.scale = scale

    def __call__(self, frames: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        if frames.dtype != np.uint8 or frames.ndim < 4:
            raise ValueError(f"ToTensor expects (..., T, H, W, C) uint8 frames, "
                             f"got shape {frames.shape} {frames.dtype}")
        # a flipped 1-pixel-wide clip counts as contiguous for NumPy but keeps its negative stride
        frames = np.ascontiguousarray(frames) if min(frames.strides) >= 0 else frames.copy()
        source = torch.from_numpy(frames).movedim(-1, -4)
        out = torch.empty(source.shape, dtype=torch.float32).copy_(source)
        return out.div_(255.0) if self.scale == "01" else out.div_(127.5).sub_(1.0)

    def __repr__(self) -> str:
        return f"ToTensor(scale={self.scale!r})"


class ColorJitter:
    """Random brightness, contrast and saturation of a clip ``(..., 3, T, H, W)`` float in
    [0, 1] (after :class:`ToTensor`, before :class:`Normalize`), the same for every frame.

    Each factor is uniform in ``[1 - s, 1 + s]`` for its strength ``s``, applied in a random
    order as torchvision's ``ColorJitter``: brightness scales the values, contrast blends
    with the clip's mean grey, saturation with each pixel's grey (BT.601 luma weights).
    The result is clamped to [0, 1].  Self-supervised pretext tasks apply it to each clip
    or frame of a sample on its own, so that colour cannot tell the clips apart.
    """

    LUMA = (0.299, 0.587, 0.114)

    def __init__(self, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4) -> None:
        for name, value in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            if not 0 <= value < 1:
                raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation
        self._luma = torch.tensor(self.LUMA).view(3, 1, 1, 1)

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        if clip.ndim < 4 or clip.shape[-4] != 3:
            raise ValueError(f"ColorJitter expects (..., 3, T, H, W), got shape {tuple(clip.shape)}")
        rng = ensure_rng(rng)
        for step in rng.permutation(3):
            strength = (self.brightness, self.contrast, self.saturation)[step]
            factor = float(rng.uniform(1 - strength, 1 + strength))
            if step == 0:
                clip = clip * factor
                continue
            grey = (clip * self._luma).sum(-4, keepdim=True)
            clip = torch.lerp(grey.mean() if step == 1 else grey, clip, factor)
        return clip.clamp_(0, 1)

    def __repr__(self) -> str:
        return (f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, "
                f"saturation={self.saturation})")


class Normalize:
    """``(x - mean) / std`` per channel of a ``(..., C, T, H, W)`` float tensor (new tensor)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        if len(mean) != len(std) or not len(mean):
            raise ValueError(f"mean and std need one value per channel, got {len(mean)} "
                             f"and {len(std)}")
        if min(std) <= 0:
            raise ValueError(f"std must be positive, got {tuple(std)}")
        self.mean, self.std = tuple(map(float, mean)), tuple(map(float, std))
        self._mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1, 1)

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        if clip.ndim < 4 or clip.shape[-4] != len(self.mean):
            raise ValueError(f"Normalize expects (..., C, T, H, W) with C={len(self.mean)}, "
                             f"got shape {tuple(clip.shape)}")
        return clip.sub(self._mean).div_(self._std)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class Compose:
    """Apply transforms in order, all drawing from the same generator."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, frames: np.ndarray,
                 rng: np.random.Generator | None = None) -> np.ndarray | torch.Tensor:
        rng = ensure_rng(rng)
        for t in self.transforms:
            frames = t(frames, rng)
        return frames

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(map(repr, self.transforms)) + "])"


def _geometry(train: bool, crop: tuple[int, int], resize: int | None, flip: bool,
              random_resized: bool, three_crop: bool, interpolation: str, flow: bool) -> list[Transform]:
    """The resize / crop / flip steps shared by the RGB and flow pipelines (``flow``: the
    vector-aware :class:`FlowResizeShort` and :class:`FlowHorizontalFlip`)."""
    steps: list[Transform] = []
    if resize is not None:
        steps.append((FlowResizeShort if flow else ResizeShort)(resize, interpolation))
    if train:
        steps.append(RandomResizedCrop(crop, interpolation=interpolation) if random_resized
                     else RandomCrop(crop))
        if flip:
            steps.append(FlowHorizontalFlip() if flow else HorizontalFlip())
    else:
        steps.append(ThreeCrop(crop) if three_crop else CenterCrop(crop))
    return steps


def _rgb_finish(scale: str, mean: Sequence[float] | None, std: Sequence[float] | None) -> list[Transform]:
    """:class:`ToTensor` then, unless ``mean`` and ``std`` are None, :class:`Normalize`."""
    if (mean is None) != (std is None):
        raise ValueError("mean and std must both be given or both be None")
    return [ToTensor(scale)] + ([Normalize(mean, std)] if mean is not None else [])


def _check_sizes(size: int | Sequence[int], resize: int | None) -> tuple[int, int]:
    crop = _pair("size", size)
    if resize is not None and positive_int("resize", resize) < max(crop):
        raise ValueError(f"resize ({resize}) must be at least the crop size ({size})")
    return crop


def build_transform(train: bool, size: int = 112, resize: int | None = 128,
                    mean: Sequence[float] | None = KINETICS_MEAN,
                    std: Sequence[float] | None = KINETICS_STD, scale: str = "01",
                    flip: bool = True, random_resized: bool = False,
                    three_crop: bool = False, interpolation: str = "bilinear") -> Compose:
    """The standard clip pipeline: ``(T, H, W, 3)`` uint8 -> ``(3, T, size, size)`` float32.

    Training: resize the short side to ``resize`` (skipped when None), a random ``size``
    crop (``RandomResizedCrop`` when ``random_resized``), a horizontal flip when ``flip``.
    Evaluation: resize, the centre crop, or three crops when ``three_crop`` (output
    ``(3, 3, T, size, size)``).  Then :class:`ToTensor` with ``scale`` and, unless
    ``mean`` and ``std`` are None, :class:`Normalize`.  Options of the other mode
    (``flip``, ``random_resized`` in evaluation; ``three_crop`` in training) are ignored,
    so one set of options serves both.  ``interpolation``: see :func:`resize_frames`.

    Raises:
        ValueError: a bad size, ``resize < size``, an unknown scale or interpolation, or
            bad mean/std.
    """
    crop = _check_sizes(size, resize)
    finish = _rgb_finish(scale, mean, std)
    return Compose(_geometry(train, crop, resize, flip, random_resized, three_crop, interpolation,
                             flow=False) + finish)


# ------------------------------------------------------------------------ optical flow


class FlowResizeShort(ResizeShort):
    """:class:`ResizeShort` for flow fields ``(..., H, W, 2)`` float32: the vectors are
    scaled with the image (``dx`` by the width ratio, ``dy`` by the height ratio)."""

    def __call__(self, flow: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        h, w = flow.shape[-3:-1]
        out = super().__call__(flow, rng)
        if out is flow:
            return flow
        ratio = np.array([out.shape[-2] / w, out.shape[-3] / h], dtype=np.float32)
        return out * ratio

    def __repr__(self) -> str:
        return "Flow" + super().__repr__()


class FlowHorizontalFlip(HorizontalFlip):
    """:class:`HorizontalFlip` for flow fields ``(..., H, W, 2)``: mirrored fields also point
    the other way, so ``dx`` changes sign."""

    def __call__(self, flow: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        out = super().__call__(flow, rng)
        return out if out is flow else out * np.array([-1.0, 1.0], dtype=np.float32)

    def __repr__(self) -> str:
        return "Flow" + super().__repr__()


class FlowToTensor:
    """Flow ``(..., L, H, W, 2)`` float32 pixels -> ``(..., 2, L, H, W)`` float32.

    With ``subtract_mean`` each field's mean ``(dx, dy)`` is removed first (global camera
    motion, Simonyan & Zisserman 2014, section 3.1); values are then divided by ``scale``
    (pixels; the default 20 maps the usual flow clipping bound to ±1).
    """

    def __init__(self, scale: float = 20.0, subtract_mean: bool = True) -> None:
        if not scale > 0:
            raise ValueError(f"flow scale must be positive, got {scale!r}")
        self.scale, self.subtract_mean = float(scale), subtract_mean

    def __call__(self, flow: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        if flow.ndim < 4 or flow.shape[-1] != 2:
            raise ValueError(f"FlowToTensor expects (..., L, H, W, 2) flow, got shape {flow.shape}")
        out = torch.from_numpy(np.ascontiguousarray(flow, dtype=np.float32)).movedim(-1, -4)
        if self.subtract_mean:
            out = out - out.mean(dim=(-2, -1), keepdim=True)
        return out.div(self.scale).contiguous()

    def __repr__(self) -> str:
        return f"FlowToTensor(scale={self.scale}, subtract_mean={self.subtract_mean})"


def build_flow_transform(train: bool, size: int = 112, resize: int = 128, flip: bool = True,
                         three_crop: bool = False, scale: float = 20.0,
                         subtract_mean: bool = True) -> Compose:
    """The temporal stream's pipeline: ``(L, H, W, 2)`` float32 flow ->
    ``(2, L, size, size)`` float32 (``(3, 2, L, size, size)`` with ``three_crop``).

    As :func:`build_transform`: resize the short side to ``resize`` (vectors scaled), then
    a random crop and a random flip (``dx`` negated) in training, the centre crop (or three
    crops) in evaluation; then :class:`FlowToTensor` with ``scale`` and ``subtract_mean``.
    ``resize`` is required: upsizing a field to fit a crop must scale its vectors too.
    """
    crop = _check_sizes(size, positive_int("resize", resize))
    return Compose(_geometry(train, crop, resize, flip, False, three_crop, "bilinear", flow=True)
                   + [FlowToTensor(scale, subtract_mean)])


# ------------------------------------------------------------------ RGB + flow pairs


class PairedTransform:
    """One RGB clip and its flow stack through the same geometry, then their own finishing.

    ``pair = (frames (T, H, W, 3) uint8, flow (L, H, W, 2) float32)`` of the same video
    size.  ``geometry`` is a list of ``(rgb_step, flow_step)`` twins (resize, crop, flip; see
    :func:`build_pair_transform`): before each pair the generator is copied, so both steps
    draw the same numbers from the same input size, hence the same crop box and the same
    flip (the flow twin also negates ``dx``).  Then ``rgb_finish`` and ``flow_finish`` (to
    tensors, normalisation) run on their own.  Returns ``(rgb (3, T, h, w), flow (2, L, h, w))``
    float32, or ``(V, ...)`` each for a multi-view geometry (:class:`ThreeCrop`).

    Raises ``ValueError`` when the frames and the flow fields differ in size.
    """

    def __init__(self, geometry: Sequence[tuple[Transform, Transform]], rgb_finish: Sequence[Transform],
                 flow_finish: Sequence[Transform]) -> None:
        self.geometry = [tuple(steps) for steps in geometry]
        self.rgb_finish, self.flow_finish = Compose(rgb_finish), Compose(flow_finish)

    def __call__(self, pair: tuple[np.ndarray, np.ndarray], rng: np.random.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        rgb, flow = pair
        if rgb.shape[-3:-1] != flow.shape[-3:-1]:
            raise ValueError(f"RGB frames {rgb.shape[-3:-1]} and flow fields {flow.shape[-3:-1]} "
                             f"differ in size: they cannot share one crop")
        rng = ensure_rng(rng)
        for rgb_step, flow_step in self.geometry:
            twin = copy.deepcopy(rng)
            rgb, flow = rgb_step(rgb, rng), flow_step(flow, twin)
        return self.rgb_finish(rgb, rng), self.flow_finish(flow, rng)

    def __repr__(self) -> str:
        steps = ", ".join(f"({a!r}, {b!r})" for a, b in self.geometry)
        return f"PairedTransform([{steps}], {self.rgb_finish!r}, {self.flow_finish!r})"


def build_pair_transform(train: bool, size: int = 112, resize: int = 128,
                         mean: Sequence[float] | None = KINETICS_MEAN,
                         std: Sequence[float] | None = KINETICS_STD, flip: bool = True,
                         three_crop: bool = False, flow_scale: float = 20.0,
                         subtract_mean: bool = True) -> PairedTransform:
    """The two-stream pipeline (modality ``"rgb+flow"``): ``(frames (T, H, W, 3) uint8,
    flow (L, H, W, 2) float32)`` -> ``(rgb (3, T, size, size), flow (2, L, size, size))`` float32.

    The geometry of :func:`build_transform` and :func:`build_flow_transform` (same
    ``resize``, ``size``, ``flip``, ``three_crop``) applied identically to both (see
    :class:`PairedTransform`); then the RGB clip is scaled to [0, 1] and normalised by
    ``mean``/``std``, the flow is mean-subtracted (``subtract_mean``) and divided by
    ``flow_scale`` pixels.
    """
    crop = _check_sizes(size, positive_int("resize", resize))
    twins = [_geometry(train, crop, resize, flip, False, three_crop, "bilinear", flow=flow)
             for flow in (False, True)]
    return PairedTransform(list(zip(*twins)), _rgb_finish("01", mean, std),
                           [FlowToTensor(flow_scale, subtract_mean)])
