"""Training and evaluating an actor action detector on AVA-format data, through the engine.

A sample is one keyframe ``(video_id, timestamp)`` of an AVA ground-truth file: the clip of
the model's ``clip_len`` frames centred on the keyframe's frame (edge frames repeated where the
video is too short), the actors' boxes at the keyframe (one per ``person_id``, or per distinct
box when the file has none) and their multi-hot actions.  :class:`AvaTask` trains a model of
:data:`~deepvideo.ava.model.AVA_MODELS` with the engine's one loop and validates by AVA's
frame-mAP@0.5 with the ground-truth boxes (AVA's "GT boxes" protocol): every box gets a score
for every class.  Videos are found by name (``<video_id>.<ext>`` anywhere under the video
folder); keyframes of missing videos are skipped and counted.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from deepvideo.ava.annotations import AvaBox, read_excluded, read_groundtruth, read_label_map
from deepvideo.ava.metrics import frame_map
from deepvideo.ava.model import ActorActionHead, build_ava_model
from deepvideo.data.datasets import BadVideoWarning, EpochDataset, find_videos
from deepvideo.data.transforms import KINETICS_MEAN, KINETICS_STD, Compose, Normalize, ResizeShort, ToTensor
from deepvideo.engine import TrainConfig, fit
from deepvideo.engine.checkpoint import load_checkpoint
from deepvideo.engine.task import Step, Task
from deepvideo.io import VideoDecodeError, VideoTooShortError, open_video

__all__ = ["AVA_TRAINING", "AvaTask", "Keyframe", "KeyframeSet", "action_detections", "clip_at", "clip_transform",
           "evaluate_ava", "keyframes_of", "load_ava_model", "rois", "score_boxes", "train_ava", "video_files"]

def video_files(folder: str | os.PathLike) -> dict[str, Path]:
    """``{video_id: path}`` of the videos anywhere under ``folder`` (those
    :func:`~deepvideo.data.datasets.find_videos` finds; a file's stem is its id).  Two videos
    of one id are a ``ValueError`` naming both."""
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"{root}: no such video folder")
    found: dict[str, Path] = {}
    for path in find_videos(root):
        video_id = path.stem if path.is_file() else path.name
        if video_id in found:
            raise ValueError(f"{root}: two videos of id {video_id!r} ({found[video_id]} and {path}); AVA names a "
                             f"video by its file name without the extension")
        found[video_id] = path
    return found


class Keyframe:
    """The actors of one keyframe: ``boxes`` ``(N, 4)`` normalised ``x1, y1, x2, y2`` and
    their action ids (a set per actor)."""

    def __init__(self, video_id: str, timestamp: int) -> None:
        self.video_id, self.timestamp = video_id, timestamp
        self.boxes: list[tuple[float, float, float, float]] = []
        self.actions: list[set[int]] = []
        self.ids: list[Any] = []

    def add(self, box: AvaBox) -> None:
        actor = box.person_id if box.person_id is not None else box.box
        if actor not in self.ids:
            self.ids.append(actor)
            self.boxes.append(box.box)
            self.actions.append(set())
        self.actions[self.ids.index(actor)].add(box.action_id)


def keyframes_of(boxes: Iterable[AvaBox], excluded: set[tuple[str, int]] | None = None) -> list[Keyframe]:
    """Ground-truth rows grouped into keyframes (file order), without the ``excluded`` ones."""
    frames: dict[tuple[str, int], Keyframe] = {}
    for box in boxes:
        if excluded and box.key in excluded:
            continue
        if box.key not in frames:
            frames[box.key] = Keyframe(*box.key)
        frames[box.key].add(box)
    return list(frames.values())


def clip_at(reader: Any, timestamp: float, clip_len: int) -> np.ndarray:
    """The ``clip_len`` frames ``(T, H, W, 3)`` uint8 centred on the frame shown at ``timestamp``
    seconds (the keyframe is frame ``clip_len // 2``); edge frames repeat past either end.
    :class:`VideoTooShortError` for a keyframe before the video's start (a wrong time offset)
    or after its end."""
    if timestamp < 0:
        raise VideoTooShortError(f"{reader.path}: keyframe at {timestamp} s is before the video's start (is the "
                                 f"time offset right?)")
    if timestamp >= reader.duration:
        raise VideoTooShortError(f"{reader.path}: keyframe at {timestamp} s is past the video's end "
                                 f"({reader.duration:.2f} s)")
    centre = reader.index_at(timestamp)
    indices = np.clip(np.arange(clip_len) - clip_len // 2 + centre, 0, reader.num_frames - 1)
    return reader.read(indices)


def clip_transform(size: int | None) -> Compose:
    """Frames ``(T, H, W, 3)`` uint8 -> the model's input ``(3, T, H', W')`` float32: the short
    side resized to ``size`` (``None``: as decoded), Kinetics-normalised."""
    return Compose(([ResizeShort(size)] if size else []) + [ToTensor(), Normalize(KINETICS_MEAN, KINETICS_STD)])


class KeyframeSet(EpochDataset):
    """The keyframes of an AVA ground truth whose video is found, as training samples.

    Item ``i``: ``(clip (3, T, H, W) float32 normalised, boxes (A, 4) normalised, labels
    (A, K) float32 multi-hot over ``classes``, valid (A,) bool)``, ``A`` being the most actors
    of any keyframe (padding rows invalid).  ``size`` resizes the short side (``None``: as
    decoded).  With ``flip_swap`` (pairs of class ids; ``()`` for none) a sample is mirrored
    left-right with probability 1/2, its boxes mirrored and the classes of each pair swapped
    (seeded by ``seed``, the epoch and the index).  A keyframe at ``timestamp`` is the frame
    shown at ``timestamp - time_offset`` seconds of its video (AVA's keyframes 902-1798 name
    seconds of the movie; its 15-minute videos start at 900: ``time_offset=900``).  Keyframes
    whose video is missing are left out and counted in ``missing``; a keyframe whose clip cannot be read (a corrupt or
    truncated video, a keyframe past its end) is skipped with a :class:`BadVideoWarning`,
    flagged (``bad_indices``, in shared memory: DataLoader workers count too) and replaced by
    another keyframe drawn from the sample's seed."""

    def __init__(self, keyframes: Sequence[Keyframe], videos: Mapping[str, Path], classes: Sequence[int],
                 clip_len: int, size: int | None = None, flip_swap: Sequence[tuple[int, int]] | None = None,
                 seed: int = 0, time_offset: int = 0) -> None:
        self.keyframes = [k for k in keyframes if k.video_id in videos]
        self.missing = sorted({k.video_id for k in keyframes if k.video_id not in videos})
        self.videos, self.classes, self.clip_len = videos, list(classes), clip_len
        self.column = {c: i for i, c in enumerate(self.classes)}
        self.mirror = None if flip_swap is None else torch.arange(len(self.classes))
        for a, b in flip_swap or ():
            self.mirror[[self.column[a], self.column[b]]] = torch.tensor([self.column[b], self.column[a]])
        super().__init__()
        self.seed, self.time_offset = seed, time_offset
        self.bad = torch.zeros(len(self.keyframes), dtype=torch.bool).share_memory_()
        self.most = max([len(k.boxes) for k in self.keyframes] + [1])
        self.transform = clip_transform(size)

    def mark_bad(self, indices: Sequence[int]) -> None:
        self.bad[list(indices)] = True

    def bad_indices(self) -> list[int]:
        return torch.nonzero(self.bad).flatten().tolist()

    def readable_clip(self, index: int, rng: np.random.Generator) -> tuple[int, torch.Tensor]:
        """The clip of keyframe ``index``, or of a replacement drawn with ``rng`` when its video
        cannot be read: ``(the keyframe used, clip)``."""
        while True:
            if not self.bad[index]:
                try:
                    return index, self.clip(index)
                except VideoDecodeError as exc:
                    self.bad[index] = True
                    warnings.warn(f"{self.videos[self.keyframes[index].video_id]}: keyframe "
                                  f"{self.keyframes[index].timestamp} cannot be read, skipped and replaced "
                                  f"({type(exc).__name__}: {exc})", BadVideoWarning, stacklevel=3)
            if bool(self.bad.all()):
                raise VideoDecodeError(f"none of the {len(self)} keyframes could be read "
                                       f"(first video: {self.videos[self.keyframes[0].video_id]})")
            index = int(rng.integers(len(self)))

    def __len__(self) -> int:
        return len(self.keyframes)

    def clip(self, index: int) -> torch.Tensor:
        keyframe = self.keyframes[index]
        with open_video(self.videos[keyframe.video_id]) as reader:
            return self.transform(clip_at(reader, keyframe.timestamp - self.time_offset, self.clip_len))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng((self.seed, self.epoch, index))
        index, clip = self.readable_clip(index, rng)
        keyframe = self.keyframes[index]
        boxes = torch.zeros(self.most, 4)
        labels = torch.zeros(self.most, len(self.classes))
        boxes[:len(keyframe.boxes)] = torch.tensor(keyframe.boxes, dtype=torch.float32)
        for row, actions in enumerate(keyframe.actions):
            for action in actions:
                if action in self.column:
                    labels[row, self.column[action]] = 1.0
        if self.mirror is not None and rng.random() < 0.5:
            clip, labels = clip.flip(-1), labels[:, self.mirror]
            boxes = torch.stack([1 - boxes[:, 2], boxes[:, 1], 1 - boxes[:, 0], boxes[:, 3]], dim=1)
        return clip, boxes, labels, torch.arange(self.most) < len(keyframe.boxes)


def rois(boxes: torch.Tensor, valid: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Normalised boxes ``(B, A, 4)`` of the ``valid`` ``(B, A)`` actors as RoIAlign's ``(N, 5)``
    rows ``batch index, x1, y1, x2, y2`` in pixels of ``height`` x ``width`` frames."""
    index = torch.arange(len(boxes), device=boxes.device)[:, None].expand(valid.shape)[valid]
    scale = torch.tensor([width, height, width, height], dtype=boxes.dtype, device=boxes.device)
    return torch.cat([index[:, None].to(boxes.dtype), boxes[valid] * scale], dim=1)


def score_boxes(model: ActorActionHead, clip: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Action probabilities ``(N, K)`` of the normalised ``boxes`` ``(N, 4)`` of one ``clip``
    ``(3, T, H, W)``."""
    if not len(boxes):
        return torch.zeros(0, model.head[-1].out_features)
    valid = torch.ones(1, len(boxes), dtype=torch.bool, device=clip.device)
    with torch.no_grad():
        return torch.sigmoid(model(clip[None], rois(boxes[None], valid, *clip.shape[-2:])))


def action_detections(video_id: str, timestamp: int, boxes: np.ndarray, scores: np.ndarray,
                      classes: Sequence[int], ids: Sequence[int] | None = None) -> list[AvaBox]:
    """AVA detection rows: every box ``(N, 4)`` with its score ``(N, K)`` for every class (and
    its actor's id, when ``ids`` gives them)."""
    ids = ids if ids is not None else [None] * len(boxes)
    return [AvaBox(video_id, timestamp, *map(float, box), int(cls), person, float(score))
            for box, row, person in zip(np.asarray(boxes), np.asarray(scores), ids) for cls, score in zip(classes, row)]


def evaluate_ava(model: ActorActionHead, dataset: KeyframeSet, labels: Mapping[int, Any],
                 device: torch.device | str = "cpu", progress: bool = False) -> tuple[dict[str, Any], list[AvaBox]]:
    """Frame-mAP@0.5 of ``model`` on ``dataset``'s keyframes with their ground-truth boxes
    (AVA's GT-box protocol) and the detections it made.  A keyframe whose clip cannot be read
    is counted in a :class:`BadVideoWarning` and its boxes stay in the ground truth, missed."""
    model.eval()
    detections, truth, unread = [], [], []
    for index, keyframe in enumerate(tqdm(dataset.keyframes, desc="ava eval", unit="keyframe", disable=not progress)):
        truth += [AvaBox(keyframe.video_id, keyframe.timestamp, *box, action, person_id=person)
                  for person, (box, actions) in enumerate(zip(keyframe.boxes, keyframe.actions))
                  for action in sorted(actions)]
        try:
            clip = dataset.clip(index).to(device)
        except VideoDecodeError as exc:  # its boxes stay in the ground truth, undetected
            unread.append(str(exc))
            continue
        scores = score_boxes(model, clip, torch.tensor(keyframe.boxes, dtype=torch.float32, device=device))
        detections += action_detections(keyframe.video_id, keyframe.timestamp, keyframe.boxes, scores.cpu().numpy(),
                                        dataset.classes)
    if unread:
        warnings.warn(f"{len(unread)} keyframes could not be read and count as missed (first: {unread[0]})",
                      BadVideoWarning, stacklevel=2)
    return frame_map(truth, detections, labels, progress=progress), detections


class AvaTask(Task):
    """An actor action detector on AVA-format data for the engine (see the module docstring)."""

    name = "ava"
    samples = "keyframes"
    monitor = "val_map"
    higher_is_better = True

    def __init__(self, videos: str | os.PathLike, train_csv: str | os.PathLike, label_map: str | os.PathLike,
                 val_csv: str | os.PathLike | None = None, model: str = "roi3d",
                 model_options: Mapping[str, Any] | None = None, size: int | None = None,
                 excluded: str | os.PathLike | None = None, flip: bool = False,
                 flip_swap: Sequence[tuple[str, str]] = (), time_offset: int = 0) -> None:
        self.labels = read_label_map(label_map)
        self.classes = list(self.labels)
        ids = {label.name: label.id for label in self.labels.values()}
        unknown = [name for pair in flip_swap for name in pair if name not in ids]
        if unknown:
            raise ValueError(f"flip_swap: {unknown[0]!r} is not an action of {label_map}")
        self.flip_swap = [[ids[a], ids[b]] for a, b in flip_swap] if flip or flip_swap else None
        self.model_name, self.model_options, self.size = model, dict(model_options or {}), size
        self.time_offset = time_offset
        self.clip_len = self.build_model().clip_len
        self.files = video_files(videos)
        skip = read_excluded(excluded) if excluded else set()
        self.train_frames = keyframes_of(read_groundtruth(train_csv, self.labels, skip_bad=True), skip)
        self.val_frames = keyframes_of(read_groundtruth(val_csv, self.labels, skip_bad=True), skip) if val_csv else []
        self.paths = {"videos": str(videos), "train": str(train_csv), "val": str(val_csv),
                      "excluded": str(excluded) if excluded else None}
        found = self.dataset(self.train_frames)
        if not len(found):
            raise ValueError(f"{train_csv}: none of its {len(self.train_frames)} keyframes has its video in {videos}")
        missing = sorted(set(found.missing) | set(self.dataset(self.val_frames).missing))
        if missing:
            warnings.warn(f"{videos}: skipped the keyframes of {len(missing)} videos that are not there "
                          f"(first: {missing[0]})", stacklevel=2)

    def dataset(self, keyframes: Sequence[Keyframe], flip_swap: Sequence[tuple[int, int]] | None = None,
                seed: int = 0) -> KeyframeSet:
        return KeyframeSet(keyframes, self.files, self.classes, self.clip_len, self.size, flip_swap, seed,
                           self.time_offset)

    def config(self) -> dict[str, Any]:
        return {"task": "ava", "model": self.model_name, "model_options": self.model_options, "size": self.size,
                "classes": self.classes, "names": [self.labels[c].name for c in self.classes],
                "flip_swap": self.flip_swap,
                # only when set, so that runs from before these options resume
                **({"time_offset": self.time_offset} if self.time_offset else {}),
                **({"excluded": self.paths["excluded"]} if self.paths["excluded"] else {})}

    def checkpoint_extras(self) -> dict[str, Any]:
        return {"ava": self.config()}

    def build_model(self) -> ActorActionHead:
        return build_ava_model(self.model_name, len(self.classes), **self.model_options)

    def train_set(self, seed: int) -> KeyframeSet:
        return self.dataset(self.train_frames, self.flip_swap, seed)

    def val_set(self, seed: int) -> KeyframeSet | None:
        found = self.dataset(self.val_frames)
        return found if len(found) else None

    def training_step(self, model: nn.Module, batch) -> Step:
        clip, boxes, labels, valid = batch
        logits = model(clip, rois(boxes, valid, *clip.shape[-2:]))
        return Step(F.binary_cross_entropy_with_logits(logits, labels[valid]), len(clip))

    def validate(self, model: nn.Module, dataset: KeyframeSet, config: TrainConfig,
                 device: torch.device) -> dict[str, float]:
        result, _ = evaluate_ava(getattr(model, "module", model), dataset, self.labels, device)
        return {"val_map": result["mAP"]}


AVA_TRAINING = TrainConfig(epochs=20, batch_size=8, lr=2e-3, optimizer="adamw", weight_decay=0.05,
                           warmup_epochs=1.0, clip_grad=1.0)


def train_ava(out_dir: str | os.PathLike, videos: str | os.PathLike, train_csv: str | os.PathLike,
              label_map: str | os.PathLike, val_csv: str | os.PathLike | None = None, model: str = "roi3d",
              train: TrainConfig | None = None, resume: bool = False, **task_options: Any) -> dict[str, Any]:
    """Train ``model`` on the keyframes of ``train_csv`` (AVA ground truth; videos found by
    name under ``videos``; classes of ``label_map``), choosing ``best.pt`` by frame-mAP on
    ``val_csv``, through :func:`deepvideo.engine.fit`; writes ``out_dir/best.pt``, ``last.pt``,
    ``metrics.csv`` and ``curves.png``.  ``train`` defaults to :data:`AVA_TRAINING`."""
    task = AvaTask(videos, train_csv, label_map, val_csv, model, **task_options)
    return fit(task, train or AVA_TRAINING, out_dir, resume=resume)


def load_ava_model(path: str | os.PathLike, device: torch.device | str = "cpu"
                   ) -> tuple[ActorActionHead, dict[str, Any]]:
    """The model of a checkpoint written by :func:`train_ava` and its description
    (``classes``, ``names``, ``model``, ``model_options``, ``size``, ``time_offset``)."""
    state = load_checkpoint(path, required=("model", "ava"))
    info = {"time_offset": 0, **state["ava"]}
    model = build_ava_model(info["model"], len(info["classes"]), **info["model_options"])
    model.load_state_dict(state["model"])
    return model.to(device).eval(), info

