"""Training and evaluating a moving-object segmenter on a DAVIS folder, through the engine.

A DAVIS root's ``ImageSets/2017/<subset>.txt`` names the sequences of a subset; each is read
whole (:func:`~deepvideo.segment.davis.read_sequence`) and its masks made binary: any object
id (but void, 255) is foreground, so DAVIS's multi-object masks and the built-in set's moving
masks alike become "moving object" vs the rest.  :class:`SegmentTask` trains a network of
:data:`~deepvideo.segment.models.SEGMENTERS` on random clips of ``clip_len`` frames of the
training subset (random start and horizontal flip, drawn afresh every epoch) with per-pixel
binary cross-entropy plus ``dice`` times the soft Dice loss, and validates by DAVIS J&F on
whole sequences of the validation subset (``val_jf`` chooses ``best.pt``).

Inputs: frames ``(T, H, W, 3)`` uint8 become a clip ``(3, T, H, W)`` of ``frames / 255``
normalised by ImageNet's mean and std, followed with ``flow=True`` by the Farneback flow of
each frame less the camera's (:func:`network_flows`: the frame's median flow subtracted, as
the baseline does; ``(2, T, H, W)`` pixels per frame).  With ``size`` every frame is resized
to ``size x size`` for the network and its masks back to the frame's size.  A whole sequence
is predicted in windows of ``clip_len`` frames (half-overlapping, probabilities averaged), its
frame padded to a multiple of the network's stride; a pixel is moving where the probability
exceeds 0.5.

J&F here is DAVIS's unsupervised evaluation of the binary masks over every frame (the
objects are the foreground of the first ground-truth frame; a sequence without one is not
scored, as in DAVIS).
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable, Mapping

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from deepvideo.data.datasets import EpochDataset
from deepvideo.data.transforms import IMAGENET_MEAN, IMAGENET_STD, resize_frames
from deepvideo.engine import TrainConfig, fit
from deepvideo.engine.checkpoint import load_checkpoint
from deepvideo.engine.task import Step, Task
from deepvideo.segment.baseline import FLOW_THRESHOLD, flow_threshold_masks, frame_flows, residual_flows
from deepvideo.segment.davis import VOID_ID, read_image_set, read_sequence
from deepvideo.segment.metrics import DavisResult, evaluate_sequences
from deepvideo.segment.models import SegmentationUNet, build_segmenter

__all__ = ["SEGMENT_TRAINING", "SegmentClips", "SegmentTask", "clip_input", "evaluate_masks", "load_davis",
           "load_segmenter", "predict_probabilities", "segment_frames", "segmenter", "train_segmenter"]

Sequences = dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (frames (T, H, W, 3) uint8, masks (T, H, W) uint8)


def square(frames: np.ndarray, size: int | None) -> np.ndarray:
    """``frames`` ``(T, H, W, 3)`` uint8 resized to ``size x size`` (area interpolation); as they are for None."""
    return frames if size is None else resize_frames(frames, size, size, "area")


def load_davis(root: str | os.PathLike, subset: str, size: int | None = None) -> Sequences:
    """``{name: (frames (T, H, W, 3) uint8, masks (T, H, W) uint8 0/1)}`` of the sequences of
    ``root/ImageSets/2017/<subset>.txt``, frames (and masks, nearest) resized to ``size x size``
    when given; the errors of :func:`~deepvideo.segment.davis.read_sequence` otherwise.  A
    sequence with frames that have no mask is skipped with a warning (an unannotated frame
    would count as all background, in training and in J&F alike)."""
    sequences, partial = {}, []
    for name in read_image_set(root, subset):
        sequence = read_sequence(root, name)
        if not sequence.annotated.all():
            partial.append(f"{name} ({int(sequence.annotated.sum())} of {len(sequence.annotated)} frames)")
            continue
        masks = ((sequence.masks > 0) & (sequence.masks != VOID_ID)).astype(np.uint8)
        if size is not None:
            masks = np.stack([cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST) for mask in masks])
        sequences[name] = (square(sequence.frames, size), masks)
    if partial:
        warnings.warn(f"{root}: skipped {len(partial)} {subset} sequences not annotated on every frame (first: "
                      f"{partial[0]})", stacklevel=2)
    return sequences


def network_flows(frames: np.ndarray) -> np.ndarray:
    """The flow channels of a network trained with ``flow=True``: ``(T, 2, H, W)`` float32, the
    Farneback flow of each frame of ``frames`` ``(T, H, W, 3)`` uint8 less the frame's median
    flow (the camera's motion), so that a still object reads about 0 under a panning camera."""
    return residual_flows(frame_flows(frames))


def clip_input(frames: np.ndarray, flows: np.ndarray | None = None) -> torch.Tensor:
    """The network input ``(C, T, H, W)`` float32 of ``frames`` ``(T, H, W, 3)`` uint8:
    ``frames / 255`` normalised by ImageNet's mean and std, then the ``flows`` ``(T, 2, H, W)``
    (pixels per frame) when given (``C`` = 3 or 5)."""
    clip = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float() / 255.0
    clip = (clip - torch.tensor(IMAGENET_MEAN).view(3, 1, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1, 1)
    if flows is not None:
        clip = torch.cat([clip, torch.from_numpy(np.ascontiguousarray(flows)).float().transpose(0, 1)])
    return clip


class SegmentClips(EpochDataset):
    """Random training clips: item ``i`` of epoch ``e`` is a clip of ``clip_len`` frames of
    sequence ``i % len(sequences)`` with a start and a horizontal flip drawn from
    ``default_rng((seed, e, i))``: ``(input (C, clip_len, H, W) float32, target (clip_len, H,
    W) float32 0/1)``.  ``sequences`` are ``(frames, masks, flows or None)``."""

    def __init__(self, sequences: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]], clip_len: int,
                 clips_per_sequence: int = 8, seed: int = 0) -> None:
        self.sequences, self.clip_len, self.clips_per_sequence = sequences, clip_len, clips_per_sequence
        super().__init__()
        self.seed = seed

    def __len__(self) -> int:
        return len(self.sequences) * self.clips_per_sequence

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng((self.seed, self.epoch, index))
        frames, masks, flows = self.sequences[index % len(self.sequences)]
        start = int(rng.integers(len(frames) - self.clip_len + 1))
        window = slice(start, start + self.clip_len)
        frames, masks = frames[window], masks[window]
        flows = None if flows is None else flows[window]
        if rng.random() < 0.5:
            frames, masks = frames[:, :, ::-1], masks[:, :, ::-1]
            if flows is not None:
                flows = flows[..., ::-1] * np.array([-1.0, 1.0], np.float32)[:, None, None]
        return clip_input(frames, flows), torch.from_numpy(np.ascontiguousarray(masks)).float()


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft Dice loss (Milletari et al. 2016) of logits and 0/1 targets ``(B, T, H, W)``, mean over the batch."""
    prob = logits.sigmoid().flatten(1)
    target = target.flatten(1)
    return (1 - (2 * (prob * target).sum(1) + 1) / (prob.sum(1) + target.sum(1) + 1)).mean()


@torch.no_grad()
def predict_probabilities(model: SegmentationUNet, frames: np.ndarray, clip_len: int, flows: np.ndarray | None = None,
                          device: torch.device | str = "cpu") -> np.ndarray:
    """Moving-object probabilities ``(T, H, W)`` float32 of a whole sequence ``frames``
    ``(T, H, W, 3)`` uint8 (``flows`` ``(T, 2, H, W)`` for a network trained with flow), in
    half-overlapping windows of ``clip_len`` frames whose probabilities are averaged."""
    model.eval()
    count = len(frames)
    clip = clip_input(frames, flows)
    height, width = clip.shape[-2:]
    stride = model.stride
    clip = F.pad(clip, (0, -width % stride, 0, -height % stride), mode="replicate")
    length = min(clip_len, count)
    starts = list(range(0, count - length + 1, max(1, length // 2)))
    if starts[-1] != count - length:
        starts.append(count - length)
    total = torch.zeros(count, *clip.shape[-2:])
    seen = torch.zeros(count, 1, 1)
    for start in starts:
        window = clip[:, start:start + length][None].to(device)
        total[start:start + length] += model(window)[0].float().sigmoid().cpu()
        seen[start:start + length] += 1
    return (total / seen)[:, :height, :width].numpy()


def segment_frames(model: SegmentationUNet, info: Mapping[str, Any], frames: np.ndarray,
                   device: torch.device | str = "cpu") -> np.ndarray:
    """Moving-object masks ``(T, H, W)`` uint8 (1 = moving) of ``frames`` ``(T, H, W, 3)``
    uint8 by the network of a checkpoint (``info`` as :func:`load_segmenter` returns it)."""
    small = square(frames, info["size"])
    flows = network_flows(small) if info["flow"] else None
    prob = predict_probabilities(model, small, info["clip_len"], flows, device)
    if prob.shape[1:] != frames.shape[1:3]:
        prob = np.stack([cv2.resize(p, (frames.shape[2], frames.shape[1]), interpolation=cv2.INTER_LINEAR)
                         for p in prob])
    return (prob > 0.5).astype(np.uint8)


def evaluate_masks(sequences: Mapping[str, tuple[np.ndarray, np.ndarray]],
                   segment: Callable[[np.ndarray], np.ndarray], progress: bool = False
                   ) -> tuple[DavisResult, dict[str, np.ndarray]]:
    """DAVIS J and F (unsupervised task, every frame) of ``segment(frames) -> masks (T, H, W)``
    on ``sequences`` (``{name: (frames, masks)}``) and the predicted masks per sequence."""
    predictions = {name: segment(frames) for name, (frames, _) in tqdm(sequences.items(), desc="segment eval",
                                                                       unit="seq", disable=not progress)}
    truth = {name: masks for name, (_, masks) in sequences.items()}
    return evaluate_sequences(truth, predictions, task="unsupervised", progress=progress), predictions


class SegmentTask(Task):
    """A moving-object segmenter on a DAVIS folder for the engine (see the module docstring)."""

    name = "segment"
    samples = "clips"
    monitor = "val_jf"
    higher_is_better = True

    def __init__(self, root: str | os.PathLike, model: str = "unet_transformer",
                 model_options: Mapping[str, Any] | None = None, clip_len: int = 8, size: int | None = None,
                 flow: bool = False, clips_per_sequence: int = 8, dice: float = 1.0,
                 train_subset: str = "train", val_subset: str = "val") -> None:
        if clip_len < 1 or clips_per_sequence < 1 or dice < 0:
            raise ValueError(f"clip_len and clips_per_sequence must be >= 1 and dice >= 0, got {clip_len}, "
                             f"{clips_per_sequence}, {dice}")
        self.root, self.model_name, self.model_options = root, model, dict(model_options or {})
        self.clip_len, self.size, self.flow = clip_len, size, flow
        self.clips_per_sequence, self.dice = clips_per_sequence, dice
        self.train_subset, self.val_subset = train_subset, val_subset
        stride = self.build_model().stride
        train = load_davis(root, train_subset, size)
        if not train:
            raise ValueError(f"{root}: no {train_subset} sequence annotated on every frame")
        short = sorted(name for name, (frames, _) in train.items() if len(frames) < clip_len)
        if short:
            warnings.warn(f"{root}: skipped {len(short)} {train_subset} sequences shorter than clip_len {clip_len} "
                          f"(first: {short[0]})", stacklevel=2)
        train = {name: seq for name, seq in train.items() if name not in short}
        if not train:
            raise ValueError(f"{root}: no {train_subset} sequence of at least {clip_len} frames")
        shapes = {frames.shape[1:3] for frames, _ in train.values()}
        if len(shapes) > 1:
            raise ValueError(f"{root}: {train_subset} frames of {len(shapes)} sizes; give size to resize them to one")
        height, width = shapes.pop()
        if height % stride or width % stride:
            raise ValueError(f"{root}: frames of {width}x{height}, not multiples of {stride} (the {model} network's "
                             f"stride); give size, a multiple of {stride}")
        self.train = [(frames, masks, network_flows(frames) if flow else None) for frames, masks in train.values()]
        self.val = load_davis(root, val_subset) if val_subset else {}  # scored at full size, as eval does

    def config(self) -> dict[str, Any]:
        return {"task": "segment", "model": self.model_name, "model_options": self.model_options,
                "clip_len": self.clip_len, "size": self.size, "flow": self.flow,
                "clips_per_sequence": self.clips_per_sequence, "dice": self.dice}

    def checkpoint_extras(self) -> dict[str, Any]:
        return {"segmenter": self.config()}

    def build_model(self) -> SegmentationUNet:
        return build_segmenter(self.model_name, 5 if self.flow else 3, **self.model_options)

    def train_set(self, seed: int) -> SegmentClips:
        return SegmentClips(self.train, self.clip_len, self.clips_per_sequence, seed)

    def val_set(self, seed: int) -> list[str] | None:
        return list(self.val) or None

    def training_step(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> Step:
        clip, target = batch
        logits = model(clip).float()
        loss = F.binary_cross_entropy_with_logits(logits, target)
        if self.dice:
            loss = loss + self.dice * dice_loss(logits, target)
        return Step(loss, len(clip))

    def validate(self, model: nn.Module, dataset: list[str], config: TrainConfig,
                 device: torch.device) -> dict[str, float]:
        network = getattr(model, "module", model)
        info = self.config()
        result, _ = evaluate_masks({name: self.val[name] for name in dataset},
                                   lambda frames: segment_frames(network, info, frames, device))
        table = result.global_table()
        return {"val_jf": table["J&F-Mean"], "val_j": table["J-Mean"], "val_f": table["F-Mean"]}


SEGMENT_TRAINING = TrainConfig(epochs=20, batch_size=4, lr=2e-3, optimizer="adamw", weight_decay=0.01,
                               warmup_epochs=1.0, clip_grad=1.0)


def train_segmenter(out_dir: str | os.PathLike, root: str | os.PathLike, model: str = "unet_transformer",
                    train: TrainConfig | None = None, resume: bool = False, **task_options: Any) -> dict[str, Any]:
    """Train segmenter ``model`` on the DAVIS folder ``root`` (``train`` subset to learn, ``val``
    to choose ``best.pt`` by J&F) through :func:`deepvideo.engine.fit`; writes ``out_dir/best.pt``,
    ``last.pt``, ``metrics.csv`` and ``curves.png``.  ``train`` defaults to :data:`SEGMENT_TRAINING`;
    ``task_options`` go to :class:`SegmentTask`."""
    return fit(SegmentTask(root, model, **task_options), train or SEGMENT_TRAINING, out_dir, resume=resume)


def load_segmenter(path: str | os.PathLike, device: torch.device | str = "cpu"
                   ) -> tuple[SegmentationUNet, dict[str, Any]]:
    """The network of a checkpoint written by :func:`train_segmenter` and its description
    (``model``, ``model_options``, ``clip_len``, ``size``, ``flow``, ...)."""
    state = load_checkpoint(path, required=("model", "segmenter"))
    info = state["segmenter"]
    model = build_segmenter(info["model"], 5 if info["flow"] else 3, **info["model_options"])
    model.load_state_dict(state["model"])
    return model.to(device).eval(), info


def segmenter(source: str | os.PathLike, device: torch.device | str = "cpu",
              threshold: float | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """``frames (T, H, W, 3) uint8 -> masks (T, H, W) uint8`` of a checkpoint file, or of the
    flow-threshold baseline when ``source`` is ``"flow"`` (with ``threshold`` px/frame, default
    :data:`~deepvideo.segment.baseline.FLOW_THRESHOLD`); ``ValueError`` for a ``threshold``
    with a checkpoint (its network decides alone)."""
    if str(source) == "flow":
        return lambda frames: flow_threshold_masks(frames, FLOW_THRESHOLD if threshold is None else threshold)
    if threshold is not None:
        raise ValueError(f"threshold: only for the flow baseline (source 'flow'), not for {source}")
    model, info = load_segmenter(source, device)
    return lambda frames: segment_frames(model, info, frames, device)
