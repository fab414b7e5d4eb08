"""What a run is made of: the data source and the model/clip recipe stored in checkpoints.

A :class:`Recipe` holds everything needed to rebuild a trained model and its test-time
input pipeline from a checkpoint alone (model name and options, class names, input
modality, clip length, frame stride, crop size, normalisation).  A :class:`DataSpec` says
where the videos, their labels and (for the flow and rgb+flow modalities) their optical
flow are.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch.nn as nn

from deepvideo.data import datasets
from deepvideo.data.sampling import ClipSampler, RandomClipSampler, UniformClipSampler
from deepvideo.data.features import FeatureOpener, features_to_clip
from deepvideo.data.transforms import (KINETICS_MEAN, KINETICS_STD, build_flow_transform, build_pair_transform,
                                       build_transform)
from deepvideo.engine.checkpoint import CheckpointError, load_checkpoint
from deepvideo.models import create_model, list_models
from deepvideo.models.registry import model_builder, model_inputs

__all__ = ["Recipe", "DataSpec", "DATA_FORMATS", "MODALITIES", "RGB_FLOW", "load_trained"]

DATA_FORMATS = ("folder", "list", "ucf101", "hmdb51", "kinetics")
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

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"--modality must be one of {', '.join(MODALITIES)}, got {self.modality!r}")
        if self.modality in ("flow", RGB_FLOW) and self.resize is None:
            raise ValueError(f"the {self.modality} modality needs --resize (resizing scales the flow vectors)")
        _check_model_modality(self.model, self.modality, self.model_kwargs, self.clip_len)
        for name in ("clip_len", "frame_stride", "size", "test_clips"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.resize is not None and self.resize < self.size:
            raise ValueError(f"resize ({self.resize}) must be at least size ({self.size})")

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
        """The input pipeline of ``modality`` (training or test time)."""
        if self.modality == "features":
            return features_to_clip
        if self.modality == RGB_FLOW:
            return build_pair_transform(train, size=self.size, resize=self.resize, mean=self.mean,
                                        std=self.std, flip=self.flip, flow_scale=self.flow_scale)
        if self.modality == "flow":
            return build_flow_transform(train, size=self.size, resize=self.resize, flip=self.flip,
                                        scale=self.flow_scale)
        return build_transform(train, size=self.size, resize=self.resize, mean=self.mean, std=self.std,
                               flip=self.flip)

    def dataset(self, data: "DataSpec", subset: str, train: bool, seed: int = 0,
                num_clips: int | None = None) -> datasets.VideoDataset:
        """``data``'s ``subset`` with this recipe's sampler, transform and modality; the
        classes are the recipe's (or, while ``classes`` is empty, the data's own)."""
        return data.build(subset, self.sampler(train, num_clips), self.transform(train), seed=seed,
                          classes=self.classes or None, modality=self.modality)

    def to_dict(self) -> dict[str, Any]:
        state = asdict(self)
        state["mean"], state["std"] = list(self.mean), list(self.std)
        return state

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> "Recipe":
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in state.items() if k in known}
        kwargs["mean"], kwargs["std"] = tuple(kwargs["mean"]), tuple(kwargs["std"])
        return cls(**kwargs)


def _check_model_modality(model: str, modality: str, model_kwargs: dict[str, Any], clip_len: int) -> None:
    """A two-input (rgb, flow) model needs the rgb+flow modality, and only such a model takes
    it; its ``flow_frames`` option (if any) must be ``clip_len``, the fields per stack."""
    pair = model_inputs(model) == PAIR_INPUTS
    if pair and modality != RGB_FLOW:
        raise ValueError(f"--model {model} takes (rgb, flow) pairs: use --modality {RGB_FLOW} "
                         f"(got --modality {modality})")
    if not pair and modality == RGB_FLOW:
        pairs = ", ".join(n for n in list_models() if model_inputs(n) == PAIR_INPUTS)
        raise ValueError(f"--modality {RGB_FLOW} needs a model taking (rgb, flow) pairs ({pairs}); "
                         f"--model {model} takes one clip")
    if not pair:
        return
    option = inspect.signature(model_builder(model)).parameters.get("flow_frames")
    flow_frames = model_kwargs.get("flow_frames", option.default) if option is not None else clip_len
    if flow_frames != clip_len:
        raise ValueError(f"--model {model}: option flow_frames={flow_frames} must equal --clip-len "
                         f"{clip_len} (the flow stack has clip_len fields)")


@dataclass
class DataSpec:
    """Where the labelled videos are.

    - ``folder``: ``root/{train,val,test}/<class>/<video>`` (what ``deepvideo synth`` writes).
    - ``list``: ``lists={"train": file, ...}`` of "path label" lines, paths under ``root``.
    - ``ucf101`` / ``hmdb51``: videos under ``root``, official split files in ``splits``,
      split number ``split``; "val" and "test" both mean the official test list.
    - ``kinetics``: a csv (label, youtube_id, time_start, time_end, split), videos under ``root``.

    Optical flow (for a recipe of the flow or rgb+flow modality): ``flow_dir`` is the cache that
    ``deepvideo flow-extract --data ROOT --out FLOW_DIR`` wrote, mirroring ``root``; without
    it flow is computed on the fly with ``flow_method`` (``flow_weights`` for learned ones).
    Features (for the features modality): ``feature_dir`` is what ``deepvideo
    extract-features --data ROOT --out FEATURE_DIR`` wrote.
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

    def __post_init__(self) -> None:
        if self.format not in DATA_FORMATS:
            raise ValueError(f"--format must be one of {', '.join(DATA_FORMATS)}, got {self.format!r}")
        needs = {"folder": ("root",), "list": (), "ucf101": ("root", "splits"),
                 "hmdb51": ("root", "splits"), "kinetics": ("root", "csv")}[self.format]
        for name in needs:
            if getattr(self, name) is None:
                option = "--data" if name == "root" else f"--{name}"
                raise ValueError(f"--format {self.format} needs {option}")

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
        if self.format == "folder":
            folder = Path(self.root) / subset
            if not folder.is_dir():
                raise ValueError(f"{folder}: no such folder (--format folder expects "
                                 f"{self.root}/{{train,val,test}}/<class>/<video>)")
            return datasets.folder_dataset(folder, classes=classes, **common)
        if self.format == "list":
            if subset not in self.lists:
                raise ValueError(f"no list file for the {subset} subset (--{subset}-list)")
            return datasets.list_dataset(self.lists[subset], root=self.root, classes=classes, **common)
        if self.format in ("ucf101", "hmdb51"):
            build = datasets.ucf101 if self.format == "ucf101" else datasets.hmdb51
            return build(self.root, self.splits, split=self.split, train=subset == "train", **common)
        return datasets.kinetics_csv(self.csv, self.root, split=subset, **common)


def load_trained(path: str | Path, device: str = "cpu") -> tuple[Recipe, nn.Module]:
    """Rebuild a trained model and its recipe from a checkpoint written by ``train``."""
    state = load_checkpoint(path, required=("model", "recipe"))
    recipe = Recipe.from_dict(state["recipe"])
    model = recipe.build_model()
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit {recipe.model} "
                              f"({str(exc).splitlines()[1].strip()})") from None
    return recipe, model.to(device).eval()
