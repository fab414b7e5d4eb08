"""Training and evaluating a temporal detector on cached clip features, through the engine.

The videos of an annotation file (ActivityNet JSON) are matched to the feature files that
``deepvideo extract-features`` wrote (``<video name>.npz`` anywhere under the feature folder),
each video becoming one sample: its features ``(T, D)`` and its segments in step units
(row ``i`` of the features covers ``[i, i + 1)`` steps, starting at its time stamp).
:class:`DetectTask` trains a detector of :data:`~deepvideo.detect.models.DETECTORS` on the
``training`` subset with the engine's one loop and validates by detection mAP (THUMOS14's
thresholds 0.3:0.1:0.7) on the ``validation`` subset.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

from deepvideo.data.datasets import EpochDataset
from deepvideo.data.features import FEATURE_SUFFIX, feature_backbone, load_features
from deepvideo.detect.annotations import Segment, VideoAnnotation, labels_of, read_activitynet
from deepvideo.detect.metrics import THUMOS_THRESHOLDS, DetectionMap, detection_map
from deepvideo.detect.models import TemporalDetector, build_detector
from deepvideo.engine import TrainConfig, fit
from deepvideo.engine.checkpoint import load_checkpoint
from deepvideo.engine.task import Step, Task

__all__ = ["DETECT_TRAINING", "DetectTask", "FeatureVideos", "Timeline", "detect_features", "evaluate_detector",
           "feature_files", "load_detector", "pad_features", "train_detector"]


@dataclass(frozen=True)
class Timeline:
    """Seconds <-> steps of one feature file: row ``i`` starts at ``origin + i * step`` s."""

    origin: float
    step: float

    @classmethod
    def of(cls, times: np.ndarray) -> "Timeline":
        """The timeline of a feature file's row times ``(N,)`` (one row: a step of 1 s)."""
        step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
        return cls(float(times[0]), step if step > 0 else 1.0)

    def to_steps(self, seconds: np.ndarray) -> np.ndarray:
        return (np.asarray(seconds, np.float64) - self.origin) / self.step

    def to_seconds(self, steps: np.ndarray) -> np.ndarray:
        return self.origin + np.asarray(steps, np.float64) * self.step


def feature_files(feature_dir: str | os.PathLike) -> dict[str, Path]:
    """``{video name: feature file}`` of every ``.npz`` under ``feature_dir`` (the name is the
    file's stem, as extract-features names it after the video); ``ValueError`` for a missing
    folder, none, or two files of one name."""
    folder = Path(feature_dir)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such feature folder (run deepvideo extract-features)")
    files: dict[str, Path] = {}
    for path in sorted(folder.rglob(f"*{FEATURE_SUFFIX}")):
        if path.stem in files:
            raise ValueError(f"{files[path.stem]} and {path}: two feature files of video {path.stem!r}")
        files[path.stem] = path
    if not files:
        raise ValueError(f"{folder}: no feature files (run deepvideo extract-features)")
    return files


class FeatureVideos(EpochDataset):
    """The annotated videos of one subset that have features, as detector samples.

    Videos without a feature file are skipped and listed in ``missing``; a feature file of
    another backbone than ``backbone`` (when given) is a ``ValueError``.  Item ``i`` is a
    training window of ``steps`` rows: ``(features (steps, D) float32, mask (steps,) bool,
    ground truth (G, 3) float32)``, the ground truth rows ``start, end, class`` in steps of
    the window (class -1 pads to the most segments of any video).  A longer video gives a
    random window, drawn afresh every epoch (``set_epoch``); a shorter one is padded.
    """

    def __init__(self, videos: Mapping[str, VideoAnnotation], files: Mapping[str, Path], classes: Sequence[str],
                 backbone: str | None = None, steps: int = 256, seed: int = 0) -> None:
        self.classes = list(classes)
        self.names = sorted(name for name in videos if name in files)
        self.missing = sorted(name for name in videos if name not in files)
        super().__init__()
        self.videos, self.steps, self.seed = videos, steps, seed
        self.features: list[np.ndarray] = []
        self.timelines: list[Timeline] = []
        for name in self.names:
            stored = feature_backbone(files[name])
            if backbone is not None and stored != backbone:
                raise ValueError(f"{files[name]} holds features of {stored!r}, not of {backbone!r} (the "
                                 f"detector's backbone): extract them again with that backbone")
            rows, times = load_features(files[name])
            self.features.append(rows.astype(np.float32))
            self.timelines.append(Timeline.of(times))
        self.most = max([len(videos[name].segments) for name in self.names] + [1])

    def __len__(self) -> int:
        return len(self.names)

    def ground_truth(self, index: int) -> np.ndarray:
        """Segments of video ``index`` as ``(G, 3)`` start, end (steps), class index."""
        timeline = self.timelines[index]
        rows = [(*timeline.to_steps([s.start, s.end]), self.classes.index(s.label))
                for s in self.videos[self.names[index]].segments]
        return np.array(rows, np.float32).reshape(-1, 3)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features, truth = self.features[index], self.ground_truth(index)
        start = 0
        if len(features) > self.steps:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            start = int(rng.integers(len(features) - self.steps + 1))
        window, mask = pad_features(features[start:start + self.steps], self.steps)
        truth[:, :2] = np.clip(truth[:, :2] - start, 0, min(self.steps, len(features) - start))
        truth = truth[truth[:, 1] - truth[:, 0] > 0.5]  # at least half a step of the action inside
        padded = np.full((self.most, 3), -1, np.float32)
        padded[:len(truth)] = truth
        return window, mask, torch.from_numpy(padded)


def pad_features(features: np.ndarray, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``features`` ``(T, D)`` zero-padded to ``(length, D)`` float32 and the mask of real rows ``(length,)``."""
    out = torch.zeros(length, features.shape[1])
    out[:len(features)] = torch.from_numpy(np.asarray(features, np.float32))
    return out, torch.arange(length) < len(features)


def detect_features(model: TemporalDetector, features: np.ndarray, timeline: Timeline, classes: Sequence[str],
                    device: torch.device | str = "cpu") -> list[Segment]:
    """The segments (seconds, best score first) that ``model`` finds in one video's
    features ``(T, D)``."""
    padded, mask = pad_features(features, -(-len(features) // model.stride) * model.stride)
    padded, mask = padded[None].to(device), mask[None].to(device)
    model.eval()
    with torch.no_grad():
        rows = model.detect(model(padded, mask), mask)[0]
    seconds = timeline.to_seconds(rows[:, :2]) if len(rows) else np.zeros((0, 2))
    return [Segment(float(s), float(e), classes[int(c)], float(score))
            for (s, e), c, score in zip(seconds, rows[:, 2], rows[:, 3])]


def evaluate_detector(model: TemporalDetector, dataset: FeatureVideos, thresholds: Sequence[float] = THUMOS_THRESHOLDS,
                      device: torch.device | str = "cpu") -> tuple[DetectionMap, dict[str, list[Segment]]]:
    """Detection mAP of ``model`` on ``dataset``'s videos and its predictions per video (the
    mAP counts the classes that ``dataset``'s ground truth has: detections of the model's other
    classes cannot be scored there and are left out of both)."""
    predictions = {name: detect_features(model, features, timeline, dataset.classes, device)
                   for name, features, timeline in zip(dataset.names, dataset.features, dataset.timelines)}
    truth = {name: dataset.videos[name] for name in dataset.names}
    present = set(labels_of(truth))
    scored = {name: [s for s in segments if s.label in present] for name, segments in predictions.items()}
    return detection_map(truth, scored, thresholds), scored


class DetectTask(Task):
    """A temporal detector on cached features for the engine (see the module docstring)."""

    name = "detect"
    samples = "videos"
    monitor = "val_map"
    higher_is_better = True

    def __init__(self, feature_dir: str | os.PathLike, annotations: str | os.PathLike, model: str = "anchor_free",
                 model_options: Mapping[str, Any] | None = None, steps: int = 256,
                 train_subset: str = "training", val_subset: str = "validation") -> None:
        self.feature_dir, self.annotations = Path(feature_dir), Path(annotations)
        self.model_name, self.model_options, self.steps = model, dict(model_options or {}), steps
        everything = read_activitynet(self.annotations)
        self.classes = labels_of(everything)
        self.files = feature_files(self.feature_dir)
        self.subsets = {subset: {n: v for n, v in everything.items() if v.subset == subset}
                        for subset in (train_subset, val_subset)}
        self.train_subset, self.val_subset = train_subset, val_subset
        if not any(name in self.files for name in self.subsets[train_subset]):
            raise ValueError(f"{self.annotations}: none of the {len(self.subsets[train_subset])} {train_subset} "
                             f"videos has a feature file in {self.feature_dir}")
        missing = sorted(name for subset in self.subsets.values() for name in subset if name not in self.files)
        if missing:
            warnings.warn(f"{self.annotations}: skipped {len(missing)} videos without a feature file in "
                          f"{self.feature_dir} (first: {missing[0]})", stacklevel=2)
        first = next(name for name in sorted(self.subsets[train_subset]) if name in self.files)
        self.backbone = feature_backbone(self.files[first])
        self.in_dim = int(load_features(self.files[first])[0].shape[1])
        stride = self.build_model().stride
        if steps % stride:
            raise ValueError(f"steps {steps} must be a multiple of {stride} (the {model} detector's pyramid)")

    def config(self) -> dict[str, Any]:
        return {"task": "detect", "model": self.model_name, "model_options": self.model_options,
                "classes": self.classes, "in_dim": self.in_dim, "backbone": self.backbone,
                "steps": self.steps, "annotations": self.annotations.name}

    def checkpoint_extras(self) -> dict[str, Any]:
        return {"detector": self.config()}

    def build_model(self) -> TemporalDetector:
        return build_detector(self.model_name, self.in_dim, len(self.classes), **self.model_options)

    def videos(self, subset: str, seed: int = 0) -> FeatureVideos:
        return FeatureVideos(self.subsets[subset], self.files, self.classes, self.backbone, self.steps, seed)

    def train_set(self, seed: int) -> FeatureVideos:
        return self.videos(self.train_subset, seed)

    def val_set(self, seed: int) -> FeatureVideos | None:
        videos = self.videos(self.val_subset)
        return videos if len(videos) else None

    def training_step(self, model: nn.Module, batch) -> Step:
        features, mask, truth = batch
        detector = getattr(model, "module", model)  # the loss lives on the detector, not on a DDP wrapper
        return Step(detector.loss(model(features, mask), truth, mask), len(features))

    def validate(self, model: nn.Module, dataset: FeatureVideos, config: TrainConfig,
                 device: torch.device) -> dict[str, float]:
        result, _ = evaluate_detector(model, dataset, device=device)
        return {"val_map": float(result.average)}


DETECT_TRAINING = TrainConfig(epochs=30, batch_size=4, lr=1e-3, optimizer="adamw", weight_decay=0.05,
                              warmup_epochs=1.0, clip_grad=1.0)


def train_detector(out_dir: str | os.PathLike, feature_dir: str | os.PathLike, annotations: str | os.PathLike,
                   model: str = "anchor_free", train: TrainConfig | None = None, resume: bool = False,
                   **task_options: Any) -> dict[str, Any]:
    """Train detector ``model`` on the features in ``feature_dir`` of the videos of
    ``annotations`` (ActivityNet JSON: ``training`` to learn, ``validation`` to choose
    ``best.pt``) through :func:`deepvideo.engine.fit`; writes ``out_dir/best.pt``, ``last.pt``,
    ``metrics.csv`` and ``curves.png``.  ``train`` defaults to :data:`DETECT_TRAINING`."""
    task = DetectTask(feature_dir, annotations, model, **task_options)
    return fit(task, train or DETECT_TRAINING, out_dir, resume=resume)


def load_detector(path: str | os.PathLike, device: torch.device | str = "cpu"
                  ) -> tuple[TemporalDetector, dict[str, Any]]:
    """The detector of a checkpoint written by :func:`train_detector` and its description
    (``classes``, ``backbone``, ``in_dim``, ``model``, ``model_options``)."""
    state = load_checkpoint(path, required=("model", "detector"))
    info = state["detector"]
    model = build_detector(info["model"], info["in_dim"], len(info["classes"]), **info["model_options"])
    model.load_state_dict(state["model"])
    return model.to(device).eval(), info

