"""Pretext tasks: what a network learns to predict from unlabelled video alone.

Each task turns a window of a video's decoded frames into a sample whose label comes from
the video itself, and puts a small head on a registered video model whose classifier was
removed (the *backbone*: ``(B, 3, T, H, W) -> (B, D)``).  The backbone is what a user
keeps: ``deepvideo train --init RUN/best.pt`` starts a classifier from it.

=============  ==============================================  ==========================
task           sample -> label                                  backbone input
=============  ==============================================  ==========================
``shuffle``    3 frames in order or not (2)                     single frames (a 2D model)
``order``      3 clips in one of 3! orders (6)                  clips (a 3D model)
``arrow``      a clip played forward or backward (2)            clips (a 3D model)
``speed``      a clip at 1x, 2x, 4x or 8x frame stride (4)      clips (a 3D model)
``contrastive`` two clips of one video among other videos'      clips (any model)
=============  ==============================================  ==========================

Shortcut defences: with ``defences`` (the default) every clip -- every frame for
``shuffle`` -- of a sample gets its own random crop position and its own colour jitter
(:class:`~deepvideo.data.transforms.ColorJitter`), so that crop borders, lens effects and
colour drift cannot tell clips or frames apart; without them the clips of a sample share
one crop and no jitter.  What each task can still exploit is in its docstring.

Layouts: ``shuffle`` inputs ``(3, 3, 1, H, W)`` per sample (frames, channels, time=1,
height, width), ``order`` ``(3, 3, T, H, W)`` (clips in the shuffled order),
``contrastive`` ``(2, 3, T, H, W)``, ``arrow`` and ``speed`` ``(3, T, H, W)``; a batch
adds ``B`` in front.
"""

from __future__ import annotations

import itertools
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from deepvideo.data.transforms import (
    KINETICS_MEAN,
    KINETICS_STD,
    ColorJitter,
    Normalize,
    RandomCrop,
    ResizeShort,
    ToTensor,
)
from deepvideo.registry import Registry

__all__ = ["PRETEXT_TASKS", "Augment", "Pretext", "list_pretext_tasks"]

PRETEXT_TASKS: Registry[Callable[..., "Pretext"]] = Registry("pretext task")


def list_pretext_tasks() -> list[str]:
    return sorted(PRETEXT_TASKS)


class Augment:
    """The per-clip training pipeline of a pretext sample: frames ``(T, H, W, 3)`` uint8 ->
    ``(3, T, size, size)`` float32: short side to ``resize``, a random ``size`` crop, colour
    jitter (with ``defences``), normalisation.  :meth:`views` applies it to several clips at
    once: each on its own with ``defences``, else one crop for all and no jitter."""

    def __init__(self, size: int, resize: int, defences: bool = True, jitter: float = 0.4,
                 mean: tuple[float, ...] = KINETICS_MEAN, std: tuple[float, ...] = KINETICS_STD) -> None:
        self.resize, self.crop = ResizeShort(resize), RandomCrop(size)
        self.to_tensor, self.normalize = ToTensor(), Normalize(mean, std)
        self.jitter = ColorJitter(jitter, jitter, jitter) if defences and jitter > 0 else None
        self.defences = defences

    def __call__(self, frames: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        clip = self.to_tensor(self.crop(self.resize(frames), rng))
        if self.jitter is not None:
            clip = self.jitter(clip, rng)
        return self.normalize(clip)

    def views(self, clips: list[np.ndarray], rng: np.random.Generator) -> torch.Tensor:
        """Clips (each ``(T, H, W, 3)``, all of one length) -> ``(K, 3, T, size, size)``."""
        if self.defences:
            return torch.stack([self(clip, rng) for clip in clips])
        joined = self(np.concatenate(clips), rng)  # one crop for every clip
        return torch.stack(joined.split(len(clips[0]), dim=1))


class Pretext:
    """A pretext task: ``span`` frames of a video -> ``(inputs, label)``, a head on the
    backbone's ``D`` features, and the loss.

    Subclasses set ``name``, ``temporal`` (True: the task needs a backbone that sees the
    order of frames) and ``single_frames`` (True: the backbone takes one frame at a time),
    and define :attr:`span`, :meth:`sample`, :meth:`head` and, unless the input is one clip
    per sample, :meth:`features`.
    """

    name = "pretext"
    temporal = True
    single_frames = False

    @property
    def span(self) -> int:
        """Consecutive frames of a video one sample is drawn from."""
        raise NotImplementedError

    @property
    def clip_frames(self) -> int:
        """Frames of one backbone input (1 for single frames)."""
        raise NotImplementedError

    def sample(self, frames: np.ndarray, augment: Augment, rng: np.random.Generator) -> tuple[torch.Tensor, int]:
        """``frames (span, H, W, 3)`` uint8 -> ``(inputs, label)`` (layouts: module docstring)."""
        raise NotImplementedError

    def head(self, dim: int) -> nn.Module:
        """The head on ``D = dim`` backbone features."""
        raise NotImplementedError

    def features(self, backbone: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        """Backbone features of a batch: ``(B, 3, T, H, W) -> (B, D)`` (one clip per sample);
        tasks with several clips per sample return ``(B, K, D)``."""
        return backbone(inputs)

    def loss(self, output: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean loss, number of correct predictions)`` of a batch of head outputs."""
        output = output.float()
        return F.cross_entropy(output, labels), (output.argmax(1) == labels).sum()

    def options(self) -> dict:
        """The task's options, as given to its builder (stored in checkpoints)."""
        raise NotImplementedError


def _per_clip(backbone: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Shared-weight (siamese) features of several clips per sample: ``(B, K, ...) -> (B, K, D)``."""
    b, k = inputs.shape[:2]
    return backbone(inputs.flatten(0, 1)).view(b, k, -1)


def motion_profile(frames: np.ndarray) -> np.ndarray:
    """Per-frame motion ``(N,)`` of frames ``(N, H, W, 3)`` uint8: the mean absolute
    difference of each frame's grey image from the previous one, at most 64 px wide
    (the first frame gets the second's)."""
    step = max(1, frames.shape[2] // 64)
    grey = frames[:, ::step, ::step].astype(np.float32).mean(-1)
    diff = np.abs(np.diff(grey, axis=0)).mean((1, 2))
    return np.concatenate([diff[:1], diff]) if len(diff) else np.zeros(len(frames), np.float32)


@PRETEXT_TASKS.register("shuffle")
class Shuffle(Pretext):
    """Shuffle & Learn (Misra, Zitnick & Hebert, "Shuffle and Learn: Unsupervised Learning
    using Temporal Order Verification", ECCV 2016): is a tuple of three frames in temporal
    order?

    Five frames ``a < b < c < d < e`` are drawn from a high-motion window of ``window``
    frames (the paper ranks windows by optical-flow magnitude; here a window among those of
    the ``span`` read is chosen with probability proportional to its frame-difference
    motion, :func:`motion_profile`).  Positives are ``(b, c, d)`` or, as in the paper, the
    reverse ``(d, c, b)``; negatives ``(b, a, d)`` or ``(b, e, d)``; half of the samples
    are positive.  A siamese 2D network (one backbone, shared weights) embeds each frame;
    the three embeddings, concatenated, feed a two-layer classifier.

    Still exploitable: the middle frame of a negative lies outside ``[b, d]``, so a model
    that measures how far apart frames are (appearance change grows with time) can answer
    without knowing the direction of time -- that is the cue the paper wants it to learn.
    """

    name = "shuffle"
    temporal = False
    single_frames = True

    def __init__(self, window: int = 8, search: int = 2, hidden: int = 256) -> None:
        if window < 5:
            raise ValueError(f"window must be at least 5 frames (five distinct frames a < b < c < d < e), got {window}")
        if search < 1:
            raise ValueError(f"search must be at least 1, got {search}")
        self.window, self.search, self.hidden = window, search, hidden

    def options(self) -> dict:
        return {"window": self.window, "search": self.search, "hidden": self.hidden}

    @property
    def span(self) -> int:
        return self.window * self.search

    @property
    def clip_frames(self) -> int:
        return 1

    def sample(self, frames: np.ndarray, augment: Augment, rng: np.random.Generator) -> tuple[torch.Tensor, int]:
        motion = motion_profile(frames)
        starts = np.arange(len(frames) - self.window + 1)
        weight = np.array([motion[s + 1:s + self.window].sum() for s in starts]) + 1e-6
        start = int(rng.choice(starts, p=weight / weight.sum()))
        a, b, c, d, e = np.sort(rng.choice(self.window, size=5, replace=False)) + start
        positive = bool(rng.random() < 0.5)
        if positive:
            order = (b, c, d) if rng.random() < 0.5 else (d, c, b)
        else:
            order = (b, a, d) if rng.random() < 0.5 else (b, e, d)
        inputs = augment.views([frames[i:i + 1] for i in order], rng)
        return inputs, int(positive)

    def features(self, backbone: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        return _per_clip(backbone, inputs).flatten(1)

    def head(self, dim: int) -> nn.Module:
        return nn.Sequential(nn.Linear(3 * dim, self.hidden), nn.ReLU(inplace=True), nn.Linear(self.hidden, 2))


PERMUTATIONS = list(itertools.permutations(range(3)))


class PairwiseOrder(nn.Module):
    """VCOP's head: every pair ``(i < j)`` of clip features concatenated through one shared
    layer, the pairs' outputs concatenated, then a linear layer over the ``n!`` orders.
    Input ``(B, n, D)``; output ``(B, n!)``."""

    def __init__(self, dim: int, clips: int = 3, hidden: int = 512, dropout: float = 0.5) -> None:
        super().__init__()
        self.pairs = list(itertools.combinations(range(clips), 2))
        self.pair = nn.Sequential(nn.Linear(2 * dim, hidden), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden * len(self.pairs), len(list(itertools.permutations(range(clips)))))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        pairs = [self.pair(torch.cat([features[:, i], features[:, j]], dim=1)) for i, j in self.pairs]
        return self.fc(self.dropout(torch.cat(pairs, dim=1)))


@PRETEXT_TASKS.register("order")
class Order(Pretext):
    """Clip order prediction, VCOP (Xu et al., "Self-supervised Spatiotemporal Learning via
    Video Clip Order Prediction", CVPR 2019): three clips of ``clip_len`` frames (every
    ``stride``-th), ``gap`` frames apart, shown in one of the 3! = 6 orders; the class is
    the order.  One 3D backbone embeds each clip; :class:`PairwiseOrder` classifies.

    Still exploitable: with defences off, clips share a crop, so a slow drift of the whole
    picture (camera pan, exposure) orders them without looking at what moves.
    """

    name = "order"

    def __init__(self, clip_len: int = 4, stride: int = 1, gap: int = 1, hidden: int = 512) -> None:
        if clip_len < 2 or stride < 1 or gap < 0:
            raise ValueError(f"order needs clip_len >= 2, stride >= 1, gap >= 0; got {clip_len}, {stride}, {gap}")
        self.clip_len, self.stride, self.gap, self.hidden = clip_len, stride, gap, hidden

    def options(self) -> dict:
        return {"clip_len": self.clip_len, "stride": self.stride, "gap": self.gap, "hidden": self.hidden}

    @property
    def clip_frames(self) -> int:
        return self.clip_len

    @property
    def _clip_span(self) -> int:
        return (self.clip_len - 1) * self.stride + 1

    @property
    def span(self) -> int:
        return 3 * self._clip_span + 2 * self.gap

    def sample(self, frames: np.ndarray, augment: Augment, rng: np.random.Generator) -> tuple[torch.Tensor, int]:
        starts = [k * (self._clip_span + self.gap) for k in range(3)]
        clips = [frames[s:s + self._clip_span:self.stride] for s in starts]
        label = int(rng.integers(len(PERMUTATIONS)))
        return augment.views([clips[i] for i in PERMUTATIONS[label]], rng), label

    def features(self, backbone: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        return _per_clip(backbone, inputs)

    def head(self, dim: int) -> nn.Module:
        return PairwiseOrder(dim, 3, self.hidden)


@PRETEXT_TASKS.register("arrow")
class Arrow(Pretext):
    """Arrow of time (Wei et al., "Learning and Using the Arrow of Time", CVPR 2018): is a
    clip of ``clip_len`` frames (every ``stride``-th) played forward (0) or backward (1)?

    Still exploitable: anything irreversible that is not motion (a fade, compression
    artefacts that trail keyframes); the paper blacks out such cues.  Where the footage is
    time-symmetric (a video and its reverse equally likely, as in the built-in motion
    dataset, whose classes come in reversed pairs) the task cannot be solved at all.
    """

    name = "arrow"

    def __init__(self, clip_len: int = 8, stride: int = 1) -> None:
        if clip_len < 2 or stride < 1:
            raise ValueError(f"arrow needs clip_len >= 2 and stride >= 1, got {clip_len}, {stride}")
        self.clip_len, self.stride = clip_len, stride

    def options(self) -> dict:
        return {"clip_len": self.clip_len, "stride": self.stride}

    @property
    def clip_frames(self) -> int:
        return self.clip_len

    @property
    def span(self) -> int:
        return (self.clip_len - 1) * self.stride + 1

    def sample(self, frames: np.ndarray, augment: Augment, rng: np.random.Generator) -> tuple[torch.Tensor, int]:
        backward = int(rng.random() < 0.5)
        clip = frames[::self.stride][::-1] if backward else frames[::self.stride]
        return augment(np.ascontiguousarray(clip), rng), backward

    def head(self, dim: int) -> nn.Module:
        return nn.Linear(dim, 2)


@PRETEXT_TASKS.register("speed")
class Speed(Pretext):
    """Playback speed (SpeedNet, Benaim et al., CVPR 2020; PRP, Yao et al., CVPR 2020): a
    clip of ``clip_len`` frames taken every ``s``-th frame for ``s`` in ``speeds``; the
    class is the index of ``s``.

    Still exploitable: the amount of change between frames grows with ``s`` whatever moves,
    so the task is learnt from how much changes before what moves; per-clip jitter does not
    hide it (it is the signal).
    """

    name = "speed"

    def __init__(self, clip_len: int = 4, speeds: tuple[int, ...] = (1, 2, 4, 8)) -> None:
        speeds = tuple(int(s) for s in speeds)
        if clip_len < 2 or len(speeds) < 2 or min(speeds) < 1 or len(set(speeds)) != len(speeds):
            raise ValueError(f"speed needs clip_len >= 2 and two or more distinct positive speeds, got "
                             f"{clip_len}, {list(speeds)}")
        self.clip_len, self.speeds = clip_len, speeds

    def options(self) -> dict:
        return {"clip_len": self.clip_len, "speeds": list(self.speeds)}

    @property
    def clip_frames(self) -> int:
        return self.clip_len

    @property
    def span(self) -> int:
        return (self.clip_len - 1) * max(self.speeds) + 1

    def sample(self, frames: np.ndarray, augment: Augment, rng: np.random.Generator) -> tuple[torch.Tensor, int]:
        label = int(rng.integers(len(self.speeds)))
        step = self.speeds[label]
        start = int(rng.integers(len(frames) - (self.clip_len - 1) * step))
        return augment(frames[start:start + (self.clip_len - 1) * step + 1:step], rng), label

    def head(self, dim: int) -> nn.Module:
        return nn.Linear(dim, len(self.speeds))


@PRETEXT_TASKS.register("contrastive")
class Contrastive(Pretext):
    """Contrastive clips (InfoNCE; CVRL, Qian et al., CVPR 2021, a video SimCLR): two clips
    of one video, each ``clip_len`` frames (every ``stride``-th) at its own random time in
    the ``span`` read, are positives; the other clips of the batch are negatives.  A
    projection head (two layers, to ``projection`` dims) maps backbone features to the
    unit sphere; the loss is the symmetric NT-Xent with ``temperature``.  Accuracy: how
    often a clip's most similar other clip is its positive.  Negatives come from the batch
    of one process (not gathered across DDP processes).

    Still exploitable: per-video appearance (background, colours) identifies a video's two
    clips without looking at motion; per-clip crops and jitter reduce it, and are the
    reason CVRL's augmentations are strong.
    """

    name = "contrastive"
    temporal = False

    def __init__(self, clip_len: int = 8, stride: int = 1, span: int = 16, projection: int = 128,
                 temperature: float = 0.1) -> None:
        if clip_len < 1 or stride < 1 or not temperature > 0:
            raise ValueError(f"contrastive needs clip_len >= 1, stride >= 1 and a positive temperature, got "
                             f"{clip_len}, {stride}, {temperature}")
        self.clip_len, self.stride, self.projection, self.temperature = clip_len, stride, projection, temperature
        self._span = max(span, (clip_len - 1) * stride + 1)

    def options(self) -> dict:
        return {"clip_len": self.clip_len, "stride": self.stride, "span": self._span,
                "projection": self.projection, "temperature": self.temperature}

    @property
    def clip_frames(self) -> int:
        return self.clip_len

    @property
    def span(self) -> int:
        return self._span

    def sample(self, frames: np.ndarray, augment: Augment, rng: np.random.Generator) -> tuple[torch.Tensor, int]:
        length = (self.clip_len - 1) * self.stride + 1
        starts = rng.integers(len(frames) - length + 1, size=2)
        return augment.views([frames[s:s + length:self.stride] for s in starts], rng), 0

    def features(self, backbone: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        return _per_clip(backbone, inputs)

    def head(self, dim: int) -> nn.Module:
        return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, self.projection))

    def loss(self, output: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """NT-Xent over the ``2B`` clips of a batch: ``output (B, 2, P)`` projections."""
        b = output.shape[0]
        z = F.normalize(output.float().transpose(0, 1).reshape(2 * b, -1), dim=1)  # view 1 then view 2
        similarity = z @ z.t() / self.temperature
        similarity.fill_diagonal_(float("-inf"))
        targets = torch.arange(2 * b, device=z.device).roll(b)  # clip i's positive is i + b (mod 2b)
        correct = (similarity.argmax(1) == targets).sum() / 2  # per sample: the mean of its two clips
        return F.cross_entropy(similarity, targets), correct
