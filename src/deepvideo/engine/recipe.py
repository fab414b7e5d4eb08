"""What a run is made of: the data source and the model/clip recipe stored in checkpoints.

A :class:`Recipe` holds everything needed to rebuild a trained model and its test-time
input pipeline from a checkpoint alone (model name and options, class names, input
modality, clip length, frame stride, crop size, normalisation).  A :class:`DataSpec` says
where the videos, their labels and (for the flow and rgb+flow modalities) their optical
flow are.
"""

from __future__ import annotations

import inspect
import math
import os
import reprlib
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, get_type_hints

import numpy as np
import torch.nn as nn

from deepvideo.data import datasets
from deepvideo.data.cache import FrameCache, resize_step
from deepvideo.data.features import FEATURE_SUFFIX, FeatureOpener, features_to_clip, load_features
from deepvideo.data.flipswap import FlipSwap, swap_table
from deepvideo.data.sampling import ClipSampler, RandomClipSampler, UniformClipSampler
from deepvideo.data.transforms import (
    KINETICS_MEAN,
    KINETICS_STD,
    build_flow_transform,
    build_pair_transform,
    build_transform,
)
from deepvideo.engine.checkpoint import CheckpointError, load_checkpoint
from deepvideo.models import create_model, list_models
from deepvideo.models.registry import check_model_options, describe_type, model_builder, model_inputs, type_matches
from deepvideo.registry import Registry

__all__ = ["DATA_FORMATS", "DataSpec", "MODALITIES", "RGB_FLOW", "Recipe", "feature_dim", "load_trained",
           "per_class", "stratified_holdout"]

# builders (spec, subset, classes, **common) -> dataset; info: needs, the DataSpec fields they read
DATA_FORMATS: Registry[Callable[..., datasets.VideoDataset]] = Registry("data format")
SUBSETS = ("train", "val", "test")
RGB_FLOW = "rgb+flow"
MODALITIES = ("rgb", "flow", "features", RGB_FLOW)
PAIR_INPUTS = ("rgb", "flow")


@dataclass
class Recipe:
    """Model and clip settings; ``to_dict``/``from_dict`` round-trip through checkpoints.

    ``modality="rgb"``: clips of ``clip_len`` frames ``(3, T, H, W)``, normalised by
    ``mean``/``std``.  ``"flow"``: stacks of ``clip_len`` optical-flow fields ``(2, L, H, W)``
    (consecutive at ``frame_stride`` 1, else every ``frame_stride``-th field; a temporal
    stream's input, see :func:`build_flow_transform`), divided
    by ``flow_scale`` pixels after mean-flow subtraction.  ``"features"``: sequences of
    ``clip_len`` cached feature rows as ``(D, T, 1, 1)`` clips (:mod:`deepvideo.data.features`)
    for a temporal head; crops and normalisation do not apply.

    ``"rgb+flow"`` (only for models registered with inputs ``("rgb", "flow")``:
    ``two_stream``, ``two_stream_i3d``): pairs ``(rgb (3, T, H, W), flow (2, T, H, W))``,
    ``T = clip_len``, aligned in time.  One set of indices ``s, s + d, ..., s + (T - 1) d``
    (``d = frame_stride``) is sampled among the video's ``N - 1`` flow fields; the RGB clip
    is video frames at those indices and the flow stack the fields at the same indices,
    field ``i`` being the flow from frame ``i`` to ``i + 1``: both start at frame ``s``
    (``two_stream``'s spatial stream sees frame ``s + (T // 2) d``, inside the stack's span).
    Both get the same crop and the same flip (``dx`` negated); see
    :func:`~deepvideo.data.transforms.build_pair_transform`.

    ``flip_swap``: pairs of class names, e.g. ``[("left", "right")]``, whose labels trade
    places when a training clip is mirrored (:class:`~deepvideo.data.flipswap.FlipSwap`).
    """

    model: str
    classes: list[str]
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    clip_len: int = 16
    frame_stride: int = 1
    size: int = 112
    resize: int | None = 128
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    flip: bool = True
    test_clips: int = 5
    modality: str = "rgb"
    flow_scale: float = 20.0
    flip_swap: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {', '.join(MODALITIES)}, got {self.modality!r}")
        if self.modality in ("flow", RGB_FLOW) and self.resize is None:
            raise ValueError(f"resize: the {self.modality} modality needs it (resizing scales the flow vectors)")
        check_model_options(self.model, self.model_kwargs)
        _check_model_modality(self.model, self.modality, self.model_kwargs, self.clip_len)
        for name in ("clip_len", "frame_stride", "size", "test_clips"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.resize is not None and self.resize < self.size:
            raise ValueError(f"resize ({self.resize}) must be at least size ({self.size})")
        if not all(math.isfinite(v) for v in (*self.mean, *self.std, self.flow_scale)):
            raise ValueError(f"mean, std and flow_scale must be finite, got {self.mean}, {self.std}, {self.flow_scale}")
        if min(self.std) <= 0 or self.flow_scale <= 0:
            raise ValueError(f"std and flow_scale must be positive, got {self.std}, {self.flow_scale}")
        self.flip_swap = [tuple(pair) for pair in self.flip_swap]
        if self.flip_swap and (not self.flip or self.modality == "features"):
            raise ValueError("flip_swap needs flip=True and clips of frames or flow (not features)")
        if any(len(pair) != 2 or pair[0] == pair[1] for pair in self.flip_swap):
            raise ValueError(f"flip_swap: pairs of two different class names, got {self.flip_swap}")

    @classmethod
    def for_data(cls, data: "DataSpec", model: str, model_kwargs: dict[str, Any] | None = None,
                 **settings: Any) -> "Recipe":
        """A recipe (no classes yet: training fills them) for ``model`` on ``data``, with the
        model options its input implies unless given: a temporal stream (``flow`` and
        ``rgb+flow`` modalities) takes the whole stack, ``flow_frames = clip_len``; a feature
        head (``features`` modality) takes ``feature_dim`` from the first file in
        ``data.feature_dir``."""
        kwargs = dict(model_kwargs or {})
        modality, clip_len = settings.get("modality", "rgb"), settings.get("clip_len", cls.clip_len)
        options = inspect.signature(model_builder(model)).parameters
        if modality in ("flow", RGB_FLOW) and "flow_frames" in options:
            kwargs.setdefault("flow_frames", clip_len)
        if modality == "features" and "feature_dim" in options and "feature_dim" not in kwargs:
            kwargs["feature_dim"] = feature_dim(data.feature_dir)
        return cls(model=model, classes=[], model_kwargs=kwargs, **settings)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def build_model(self) -> nn.Module:
        return create_model(self.model, num_classes=self.num_classes, **self.model_kwargs)

    def sampler(self, train: bool, num_clips: int | None = None) -> ClipSampler:
        """Training: one random clip; testing: ``num_clips`` (default ``test_clips``) uniform clips."""
        if train:
            return RandomClipSampler(self.clip_len, stride=self.frame_stride)
        return UniformClipSampler(self.clip_len, num_clips or self.test_clips, stride=self.frame_stride)

    def transform(self, train: bool):
        """The input pipeline of ``modality`` (training or test time).  With ``flip_swap``
        the flips happen after it (:class:`~deepvideo.data.flipswap.FlipSwap`)."""
        flip = self.flip and not self.flip_swap
        if self.modality == "features":
            return features_to_clip
        if self.modality == RGB_FLOW:
            return build_pair_transform(train, size=self.size, resize=self.resize, mean=self.mean,
                                        std=self.std, flip=flip, flow_scale=self.flow_scale)
        if self.modality == "flow":
            return build_flow_transform(train, size=self.size, resize=self.resize, flip=flip,
                                        scale=self.flow_scale)
        return build_transform(train, size=self.size, resize=self.resize, mean=self.mean, std=self.std,
                               flip=flip)

    def dataset(self, data: "DataSpec", subset: str, train: bool, seed: int = 0,
                num_clips: int | None = None, cache: str = "none", cache_dir: str | os.PathLike | None = None,
                log: Callable[[str], None] | None = None) -> datasets.VideoDataset:
        """``data``'s ``subset`` with this recipe's sampler, transform and modality; the
        classes are the recipe's (or, while ``classes`` is empty, the data's own).  Training
        clips of a recipe with ``flip_swap`` are flipped with their labels swapped.

        ``cache`` (``"auto"``, ``"ram"``, ``"disk"`` in ``cache_dir``, or ``"none"``): decode and
        resize the videos once, now, into a :class:`~deepvideo.data.cache.FrameCache` (the same
        clips, see :mod:`deepvideo.data.cache`); ``log`` receives a line naming the subset, the
        mode used and its size (``"train cache: ram (auto), 15.7 MB ..."``).  Only the rgb
        modality's frames are cached: ``"ram"`` or ``"disk"`` with another modality is a
        ``ValueError``, ``"auto"`` caches nothing."""
        dataset = data.build(subset, self.sampler(train, num_clips), self.transform(train), seed=seed,
                             classes=self.classes or None, modality=self.modality)
        swaps = swap_table(self.flip_swap, dataset.classes) if train and self.flip_swap else None  # checked first
        if cache != "none" and self.modality != "rgb":
            if cache != "auto":
                raise ValueError(f"cache {cache}: only the rgb modality's frames are cached, not {self.modality}'s "
                                 f"(use cache none)")
            summary = f"none (auto: the {self.modality} modality's inputs are not cached)"
        elif cache != "none":
            frames = FrameCache(cache, resize_step(dataset.transform), cache_dir, base=dataset.opener)
            summary = frames.fill(dataset.paths)
            dataset.opener = frames
        else:
            summary = "none (every epoch decodes its videos)"
        if log is not None:
            log(f"{subset} cache: {summary}")
        return FlipSwap(dataset, swaps, self.modality, seed=seed) if swaps is not None else dataset

    def to_dict(self) -> dict[str, Any]:
        state = asdict(self)
        state["mean"], state["std"] = list(self.mean), list(self.std)
        state["flip_swap"] = [list(pair) for pair in self.flip_swap]
        return state

    @classmethod
    def from_dict(cls, state: Any) -> "Recipe":
        """The recipe ``to_dict`` gave (unknown keys ignored); ``ValueError`` naming the field
        that is missing, of the wrong type (lists stand for tuples) or of a bad value."""
        if not isinstance(state, dict):
            raise ValueError(f"a recipe is a dict of settings, got {reprlib.repr(state)}")
        hints = get_type_hints(cls)
        for spec in fields(cls):
            if spec.name not in state:
                if spec.default is MISSING and spec.default_factory is MISSING:
                    raise ValueError(f"field {spec.name} is missing")
            elif not type_matches(state[spec.name], hints[spec.name]):
                raise ValueError(f"field {spec.name}={reprlib.repr(state[spec.name])}: expected "
                                 f"{describe_type(hints[spec.name])}")
        kwargs = {spec.name: state[spec.name] for spec in fields(cls) if spec.name in state}
        for name in ("mean", "std"):
            if name in kwargs:
                kwargs[name] = tuple(kwargs[name])
        kwargs["flip_swap"] = [tuple(pair) for pair in kwargs.get("flip_swap", [])]
        return cls(**kwargs)


def _check_model_modality(model: str, modality: str, model_kwargs: dict[str, Any], clip_len: int) -> None:
    """A two-input (rgb, flow) model needs the rgb+flow modality, and only such a model takes
    it; its ``flow_frames`` option (if any) must be ``clip_len``, the fields per stack."""
    pair = model_inputs(model) == PAIR_INPUTS
    if pair and modality != RGB_FLOW:
        raise ValueError(f"model {model} takes (rgb, flow) pairs: use modality {RGB_FLOW} "
                         f"(got modality {modality})")
    if not pair and modality == RGB_FLOW:
        pairs = ", ".join(n for n in list_models() if model_inputs(n) == PAIR_INPUTS)
        raise ValueError(f"modality {RGB_FLOW} needs a model taking (rgb, flow) pairs ({pairs}); "
                         f"model {model} takes one clip")
    if not pair:
        return
    option = inspect.signature(model_builder(model)).parameters.get("flow_frames")
    flow_frames = model_kwargs.get("flow_frames", option.default) if option is not None else clip_len
    if flow_frames != clip_len:
        raise ValueError(f"model {model}: option flow_frames={flow_frames} must equal clip_len "
                         f"{clip_len} (the flow stack has clip_len fields)")


@dataclass
class DataSpec:
    """Where the labelled videos are, laid out as ``format``: a name of :data:`DATA_FORMATS`,
    whose builder (below) describes the layout and reads the fields it needs.

    Optical flow (for a recipe of the flow or rgb+flow modality): ``flow_dir`` is the cache that
    ``deepvideo flow-extract --data ROOT --out FLOW_DIR`` wrote, mirroring ``root``; without
    it flow is computed on the fly with ``flow_method`` (``flow_weights`` for learned ones).
    Features (for the features modality): ``feature_dir`` is what ``deepvideo
    extract-features --data ROOT --out FEATURE_DIR`` wrote.

    Validation held out from training (for data stored as train/test only): ``val_split``
    is the fraction of each class's training videos that form the "val" subset instead
    (stratified by class, drawn with the dataset seed); ``val_videos`` lists them once
    chosen (a run stores them in ``val_split.txt`` and reuses them on resume).

    Few labels: ``train_per_class`` keeps that many training videos of each class (all of a
    class with fewer), drawn with the dataset seed: the setting in which pretraining pays.
    """

    format: str = "folder"
    root: str | None = None
    splits: str | None = None
    split: int = 1
    csv: str | None = None
    lists: dict[str, str] = field(default_factory=dict)
    flow_dir: str | None = None
    flow_method: str = "farneback"
    flow_weights: str | None = None
    feature_dir: str | None = None
    val_split: float = 0.0
    val_videos: list[str] | None = None
    train_per_class: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.val_split < 1:
            raise ValueError(f"val_split must be in [0, 1), got {self.val_split}")
        if self.train_per_class is not None and self.train_per_class < 1:
            raise ValueError(f"train_per_class must be at least 1, got {self.train_per_class}")
        for name in DATA_FORMATS.info(self.format)["needs"]:
            if getattr(self, name) is None:
                raise ValueError(f"format {self.format} needs {name}")

    def build(self, subset: str, sampler: ClipSampler, transform, seed: int = 0,
              classes: list[str] | None = None, modality: str = "rgb") -> datasets.VideoDataset:
        """The dataset of one subset ("train", "val" or "test") serving ``modality``'s data:
        decoded frames for "rgb", flow fields (:mod:`deepvideo.flow.dataset`) for "flow",
        aligned ``(frames, flow fields)`` pairs (:class:`~deepvideo.flow.dataset.RGBFlowReader`)
        for "rgb+flow", cached feature rows for "features"."""
        if subset not in SUBSETS:
            raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
        common = dict(sampler=sampler, transform=transform, seed=seed)
        if modality in ("flow", RGB_FLOW):
            from deepvideo.flow.dataset import FlowOpener

            common["opener"] = FlowOpener(self.flow_dir, self.root, self.flow_method, self.flow_weights,
                                          frames=modality == RGB_FLOW)
        elif modality == "features":
            if self.feature_dir is None:
                raise ValueError("the features modality needs --feature-dir (see deepvideo extract-features)")
            common["opener"] = FeatureOpener(self.feature_dir, self.root)
        if self.val_split and subset in ("train", "val"):
            dataset = self._held_out(subset, classes, common)
        else:
            dataset = DATA_FORMATS.get(self.format)(self, subset, classes, **common)
        if subset == "train" and self.train_per_class is not None:
            return _subset(dataset, per_class(dataset.labels, self.train_per_class, seed), common)
        return dataset

    def _held_out(self, subset: str, classes: list[str] | None, common: dict[str, Any]) -> datasets.VideoDataset:
        """The training videos minus (``"train"``) or only (``"val"``) the held-out ones."""
        full = DATA_FORMATS.get(self.format)(self, "train", classes, **common)
        if self.val_videos is None:
            self.val_videos = [str(full.paths[i]) for i in stratified_holdout(full.labels, self.val_split,
                                                                              common["seed"])]
        held = set(self.val_videos)
        keep = [i for i, path in enumerate(full.paths) if (str(path) in held) == (subset == "val")]
        missing = held - {str(path) for path in full.paths}
        if missing:
            raise ValueError(f"val_videos: {sorted(missing)[0]} is not a training video (of {len(missing)})")
        return _subset(full, keep, common)


def _subset(full: datasets.VideoDataset, keep: list[int], common: dict[str, Any]) -> datasets.VideoDataset:
    """The videos ``keep`` of ``full`` (with their time ranges), read as ``common`` says."""
    ranges = [full.time_ranges[i] for i in keep] if full.time_ranges is not None else None
    return datasets.VideoDataset([(full.paths[i], full.labels[i]) for i in keep], full.classes,
                                 time_ranges=ranges, **common)


def per_class(labels: list[int], count: int, seed: int = 0) -> list[int]:
    """Indices of ``count`` samples of each class (all of a class with fewer), drawn with
    ``seed``; sorted."""
    rng = np.random.default_rng([seed, count])
    chosen: list[int] = []
    for label in sorted(set(labels)):
        members = [i for i, value in enumerate(labels) if value == label]
        chosen += rng.permutation(members)[:count].tolist()
    return sorted(chosen)


def stratified_holdout(labels: list[int], fraction: float, seed: int = 0) -> list[int]:
    """Indices of ``fraction`` of each class's samples (rounded, at least one of a class with
    two or more, never all of a class), drawn with ``seed``; sorted."""
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for label in sorted(set(labels)):
        members = [i for i, value in enumerate(labels) if value == label]
        count = min(len(members) - 1, max(1, round(fraction * len(members))))
        chosen += rng.permutation(members)[:count].tolist()
    return sorted(chosen)


@DATA_FORMATS.register("folder", needs=("root",))
def _folder(spec: DataSpec, subset: str, classes: list[str] | None, **common) -> datasets.VideoDataset:
    """``root/{train,val,test}/<class>/<video>`` (what ``deepvideo synth`` writes)."""
    folder = Path(spec.root) / subset
    if not folder.is_dir():
        hint = ("; to hold out part of train/ for validation set val_split" if subset == "val" else "")
        raise ValueError(f"{folder}: no such folder (the folder format expects "
                         f"{spec.root}/{{train,val,test}}/<class>/<video>{hint})")
    return datasets.folder_dataset(folder, classes=classes, **common)


@DATA_FORMATS.register("list", needs=())
def _list(spec: DataSpec, subset: str, classes: list[str] | None, **common) -> datasets.VideoDataset:
    """``lists={"train": file, ...}`` of "path label" lines, paths under ``root``."""
    if subset not in spec.lists:
        raise ValueError(f"no list file for the {subset} subset (--{subset}-list)")
    return datasets.list_dataset(spec.lists[subset], root=spec.root, classes=classes, **common)


@DATA_FORMATS.register("ucf101", needs=("root", "splits"))
def _ucf101(spec: DataSpec, subset: str, classes: list[str] | None, **common) -> datasets.VideoDataset:
    """Videos under ``root``, official split files in ``splits``, split number ``split``;
    "val" and "test" both mean the official test list."""
    return datasets.ucf101(spec.root, spec.splits, split=spec.split, train=subset == "train", **common)


@DATA_FORMATS.register("hmdb51", needs=("root", "splits"))
def _hmdb51(spec: DataSpec, subset: str, classes: list[str] | None, **common) -> datasets.VideoDataset:
    """As ``ucf101``: videos under ``root``, official split files in ``splits``, split ``split``."""
    return datasets.hmdb51(spec.root, spec.splits, split=spec.split, train=subset == "train", **common)


@DATA_FORMATS.register("kinetics", needs=("root", "csv"))
def _kinetics(spec: DataSpec, subset: str, classes: list[str] | None, **common) -> datasets.VideoDataset:
    """A csv (label, youtube_id, time_start, time_end, split), videos under ``root``."""
    return datasets.kinetics_csv(spec.csv, spec.root, split=subset, **common)


def feature_dim(feature_dir: str | None) -> int:
    """The feature size of the first feature file in ``feature_dir`` (from ``deepvideo
    extract-features``)."""
    if feature_dir is None:
        raise ValueError("feature_dir: the features modality needs the folder extract-features wrote")
    first = next(iter(sorted(Path(feature_dir).rglob(f"*{FEATURE_SUFFIX}"))), None)
    if first is None:
        raise ValueError(f"feature_dir {feature_dir}: no feature files (run deepvideo extract-features)")
    return int(load_features(first)[0].shape[1])


def load_trained(path: str | Path, device: str = "cpu") -> tuple[Recipe, nn.Module]:
    """Rebuild a trained model and its recipe from a checkpoint written by ``train``.

    Raises :class:`CheckpointError` naming ``path`` and the field for a checkpoint that is not
    one, or whose recipe or weights are not valid (checked before any weight is allocated)."""
    state = load_checkpoint(path, required=("model", "recipe"))
    if not isinstance(state["model"], dict):
        raise CheckpointError(f"{path}: field model: expected a state dict of weights, got "
                              f"{reprlib.repr(state['model'])}")
    try:
        recipe = Recipe.from_dict(state["recipe"])
        model = recipe.build_model()
    except ValueError as exc:
        raise CheckpointError(f"{path}: invalid recipe: {exc}") from None
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit {recipe.model} "
                              f"({str(exc).splitlines()[1].strip()})") from None
    return recipe, model.to(device).eval()
