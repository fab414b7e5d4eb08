"""Single-object tracking end to end: annotated sequences, training pairs, training of
SiamFC and GOTURN, weights files, and tracking a video file.

Sequences are frames ``(T, H, W, 3)`` uint8 RGB with one box ``(x, y, w, h)`` per frame:
rendered in memory by the built-in motion dataset (``synthetic_sequences``) or read from
a dataset folder written by ``make_motion_dataset`` (``load_annotated_videos``: videos
plus ``annotations/<split>.csv``).  Weights are safetensors files that carry the tracker
kind and its configuration in their metadata, written atomically.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from tqdm import tqdm

from deepvideo.data.synthetic import MOTION_CLASSES, SyntheticConfig, render_video, video_rng
from deepvideo.engine import Step, Task, TrainConfig, fit
from deepvideo.engine.task import GeneratedSet
from deepvideo.io import VideoReader, read_video
from deepvideo.io.atomic import atomic_write
from deepvideo.io.encode import VideoWriter
from deepvideo.registry import Registry
from deepvideo.track.goturn import GOTURNConfig, GOTURNNet, GOTURNTracker, goturn_example
from deepvideo.track.ope import check_box
from deepvideo.track.siamfc import (
    SiamFCConfig,
    SiamFCNet,
    SiamFCTracker,
    crop_and_resize,
    logistic_labels,
    logistic_loss,
    to_tensor,
)

__all__ = ["GOTURNTask", "PIXEL_CONFIG", "SiamFCTask", "TRACKERS", "TrackerTask", "TrackSequence", "goturn_batch",
           "goturn_pair",
           "load_annotated_videos", "load_tracker_net", "make_tracker", "save_tracker_net", "siamfc_batch",
           "siamfc_example", "synthetic_sequences", "track_frames", "track_video", "train_goturn", "train_siamfc",
           "train_sot"]

# the training-free SiamFC: raw-pixel embedding (stride 1), so small crops and x4 upsampling
PIXEL_CONFIG = SiamFCConfig(width=0, exemplar_size=31, search_size=63, response_up=4)


class TrackSequence(NamedTuple):
    """One annotated sequence: ``frames`` ``(T, H, W, 3)`` uint8, ``boxes`` ``(T, 4)``
    float64 ``(x, y, w, h)``, and a ``name``."""

    frames: np.ndarray
    boxes: np.ndarray
    name: str


def synthetic_sequences(count: int, num_frames: int = 32, size: int = 64, split: str = "train",
                        seed: int = 0) -> list[TrackSequence]:
    """``count`` sequences of the built-in motion dataset rendered in memory (the motion
    classes in turn: translations, rotations, scale changes); ``split`` and ``seed`` pick
    independent videos, so train and test sequences never coincide."""
    config = SyntheticConfig(num_frames=num_frames, size=size, seed=seed)
    sequences = []
    for i in range(count):
        cls = MOTION_CLASSES[i % len(MOTION_CLASSES)]
        frames, boxes = render_video(cls, video_rng(config, split, cls, i // len(MOTION_CLASSES)), config)
        sequences.append(TrackSequence(frames, boxes.astype(np.float64), f"{split}/{cls}_{i}"))
    return sequences


def load_annotated_videos(root: str | os.PathLike, split: str = "train") -> list[TrackSequence]:
    """Every video of ``root/annotations/<split>.csv`` (columns video,label,frame,x,y,w,h;
    video paths relative to ``root``) with its per-frame boxes.  A missing file or a video
    whose frame count differs from its rows raises an error naming it."""
    root = Path(root)
    table = root / "annotations" / f"{split}.csv"
    if not table.is_file():
        raise FileNotFoundError(f"{table}: no annotation file for split {split!r}")
    rows: dict[str, dict[int, list[float]]] = defaultdict(dict)
    with open(table, newline="") as fh:
        for number, row in enumerate(csv.DictReader(fh), start=2):
            try:
                rows[row["video"]][int(row["frame"])] = [float(row[k]) for k in "xywh"]
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"{table}:{number}: expected video,label,frame,x,y,w,h") from None
    sequences = []
    for video, boxes in rows.items():
        frames = read_video(root / video)
        if sorted(boxes) != list(range(len(frames))):
            raise ValueError(f"{table}: {video} has {len(frames)} frames but boxes for frames "
                             f"{min(boxes)}..{max(boxes)} ({len(boxes)} rows)")
        sequences.append(TrackSequence(frames, np.array([boxes[t] for t in range(len(frames))]), video))
    return sequences


def _frame_pair(sequences: Sequence[TrackSequence], rng: np.random.Generator, max_gap: int
                ) -> tuple[TrackSequence, int, int]:
    """A random sequence and two frame indices at most ``max_gap`` apart (``i <= j``)."""
    seq = sequences[rng.integers(len(sequences))]
    i = int(rng.integers(len(seq.frames)))
    j = int(min(len(seq.frames) - 1, i + rng.integers(0, max_gap + 1)))
    return seq, i, j


def siamfc_example(sequences: Sequence[TrackSequence], config: SiamFCConfig, rng: np.random.Generator,
                   max_gap: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """One SiamFC training pair: the exemplar ``(3, Z, Z)`` from frame ``i`` and the search
    crop ``(3, X, X)`` from frame ``j`` (``0 <= j - i <= max_gap``), both centred on the
    target and scaled so that the exemplar region has the paper's fixed context area."""
    seq, i, j = _frame_pair(sequences, rng, max_gap)
    crops = []
    for frame, box, side in ((seq.frames[i], seq.boxes[i], config.exemplar_size),
                             (seq.frames[j], seq.boxes[j], config.search_size)):
        pad = config.context * (box[2] + box[3])
        region = np.sqrt((box[2] + pad) * (box[3] + pad)) * side / config.exemplar_size
        crops.append(to_tensor(crop_and_resize(frame, box[:2] + box[2:] / 2, (region, region), side)[None])[0])
    return crops[0], crops[1]


def siamfc_batch(sequences: Sequence[TrackSequence], batch_size: int, config: SiamFCConfig,
                 rng: np.random.Generator, max_gap: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` pairs of :func:`siamfc_example`: exemplars ``(B, 3, Z, Z)`` and search
    crops ``(B, 3, X, X)``."""
    exemplars, searches = zip(*(siamfc_example(sequences, config, rng, max_gap) for _ in range(batch_size)))
    return torch.stack(exemplars), torch.stack(searches)


def goturn_pair(sequences: Sequence[TrackSequence], config: GOTURNConfig, rng: np.random.Generator,
                max_gap: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One GOTURN training example (``goturn_example``) from frames ``0 <= j - i <= max_gap``
    (``j = i``: the paper's still-image examples): the previous crop and the current crop
    ``(3, S, S)`` and the target ``(4,)``."""
    seq, i, j = _frame_pair(sequences, rng, max_gap)
    previous, current, target = goturn_example(seq.frames[i], seq.boxes[i], seq.frames[j], seq.boxes[j],
                                               config.input_size, rng)
    return to_tensor(previous[None])[0], to_tensor(current[None])[0], torch.from_numpy(target)


def goturn_batch(sequences: Sequence[TrackSequence], batch_size: int, config: GOTURNConfig,
                 rng: np.random.Generator, max_gap: int = 1
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``batch_size`` examples of :func:`goturn_pair`: previous crops, current crops
    ``(B, 3, S, S)`` and targets ``(B, 4)``."""
    parts = zip(*(goturn_pair(sequences, config, rng, max_gap) for _ in range(batch_size)))
    previous, current, targets = map(torch.stack, parts)
    return previous, current, targets


def save_tracker_net(path: str | os.PathLike, net: SiamFCNet | GOTURNNet) -> Path:
    """Write ``net``'s state_dict as safetensors (atomically), with the tracker kind and
    its config in the metadata so that ``load_tracker_net`` rebuilds it."""
    kind = _kind(net)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    data = save(state, metadata={"tracker": kind, "config": net.config.to_json()})
    return atomic_write(path, lambda fh: fh.write(data))


def load_tracker_net(path: str | os.PathLike) -> SiamFCNet | GOTURNNet:
    """Rebuild a network saved by ``save_tracker_net``; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    try:
        with safe_open(str(path), "pt") as fh:
            meta = fh.metadata() or {}
            state = {key: fh.get_tensor(key) for key in fh.keys()}
        kind, config = meta["tracker"], json.loads(meta["config"])
    except (SafetensorError, OSError, ValueError, KeyError):
        raise ValueError(f"{path}: not a deepvideo tracker weights file (safetensors with "
                         f"'tracker' and 'config' metadata)") from None
    if kind not in TRACKERS:
        raise ValueError(f"{path}: unknown tracker kind {kind!r}")
    info = TRACKERS.info(kind)
    net = info["net"](info["config"](**config))
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        detail = [line.strip() for line in str(exc).splitlines() if line.strip()][-1]
        raise ValueError(f"{path}: weights do not fit the {kind} config stored with them ({detail})"
                         ) from None
    return net


class TrackerTask(Task):
    """Training pairs for a single-object tracker's network, for the engine: examples of
    ``example`` (:func:`siamfc_example`, :func:`goturn_pair`) drawn afresh every epoch
    (``pairs_per_epoch`` of them); validation, when ``val_sequences`` are given, on examples
    of those.  Subclasses set the network, its config, the example and the loss."""

    net_type: type[torch.nn.Module]
    config_type: type

    def __init__(self, sequences: Sequence[TrackSequence], config=None, max_gap: int = 1,
                 pairs_per_epoch: int = 800, val_sequences: Sequence[TrackSequence] | None = None) -> None:
        if not sequences:
            raise ValueError("sequences: no annotated sequences to train on")
        self.net_config = config or self.config_type()
        self.sequences, self.max_gap, self.pairs_per_epoch = sequences, max_gap, pairs_per_epoch
        self.val_sequences = val_sequences

    def example(self, sequences: Sequence[TrackSequence], rng: np.random.Generator):
        raise NotImplementedError

    def config(self) -> dict:
        return {"task": self.name, "config": json.loads(self.net_config.to_json()), "max_gap": self.max_gap,
                "pairs_per_epoch": self.pairs_per_epoch, "sequences": [s.name for s in self.sequences]}

    def build_model(self) -> torch.nn.Module:
        return self.net_type(self.net_config)

    def train_set(self, seed: int) -> GeneratedSet:
        return GeneratedSet(partial(self.example, self.sequences), self.pairs_per_epoch, seed)

    def val_set(self, seed: int) -> GeneratedSet | None:
        if not self.val_sequences:
            return None
        return GeneratedSet(partial(self.example, self.val_sequences), max(1, self.pairs_per_epoch // 4), seed + 1)


class SiamFCTask(TrackerTask):
    """SiamFC (Bertinetto et al. 2016): pairs of :func:`siamfc_example`, the logistic loss on
    the score map against the paper's +1/-1 labels within ``radius``."""

    name, net_type, config_type = "siamfc", SiamFCNet, SiamFCConfig

    def __init__(self, sequences: Sequence[TrackSequence], config: SiamFCConfig | None = None, max_gap: int = 8,
                 pairs_per_epoch: int = 400, val_sequences: Sequence[TrackSequence] | None = None) -> None:
        super().__init__(sequences, config, max_gap, pairs_per_epoch, val_sequences)
        if self.net_config.width == 0:
            raise ValueError("config.width: 0 is the training-free pixel embedding; nothing to train")
        net = SiamFCNet(self.net_config)
        self.labels = logistic_labels(net.response_size, self.net_config.radius, net.total_stride)

    def example(self, sequences: Sequence[TrackSequence], rng: np.random.Generator):
        return siamfc_example(sequences, self.net_config, rng, self.max_gap)

    def training_step(self, model: torch.nn.Module, batch) -> Step:
        exemplars, searches = batch
        scores = model(exemplars, searches)
        return Step(logistic_loss(scores, self.labels.to(scores.device)), len(exemplars))


class GOTURNTask(TrackerTask):
    """GOTURN (Held et al. 2016): examples of :func:`goturn_pair`, the L1 loss on the
    predicted box corners."""

    name, net_type, config_type = "goturn", GOTURNNet, GOTURNConfig

    def example(self, sequences: Sequence[TrackSequence], rng: np.random.Generator):
        return goturn_pair(sequences, self.net_config, rng, self.max_gap)

    def training_step(self, model: torch.nn.Module, batch) -> Step:
        previous, current, targets = batch
        return Step(torch.nn.functional.l1_loss(model(previous, current).float(), targets), len(targets))


TRACKERS: Registry = Registry("single-object tracker")


@TRACKERS.register("siamfc", net=SiamFCNet, config=SiamFCConfig, task=SiamFCTask,
                   training=TrainConfig(epochs=6, batch_size=8, lr=1e-3, optimizer="adam", weight_decay=5e-4,
                                        warmup_epochs=0, clip_grad=None))
def siamfc_tracker(net: SiamFCNet | None = None, device: str = "cpu") -> SiamFCTracker:
    """SiamFC with trained ``net``; without it the training-free pixel embedding (template
    matching)."""
    return SiamFCTracker(net or SiamFCNet(PIXEL_CONFIG), device)


@TRACKERS.register("goturn", net=GOTURNNet, config=GOTURNConfig, task=GOTURNTask,
                   training=TrainConfig(epochs=6, batch_size=16, lr=1e-3, optimizer="adam", weight_decay=5e-4,
                                        warmup_epochs=0, clip_grad=None))
def goturn_tracker(net: GOTURNNet | None = None, device: str = "cpu") -> GOTURNTracker:
    """GOTURN with trained ``net`` (it has no training-free form)."""
    if net is None:
        raise ValueError("weights: GOTURN needs a trained weights file (see train_goturn)")
    return GOTURNTracker(net, device)


def _kind(net: torch.nn.Module) -> str:
    """The registered tracker whose network ``net`` is."""
    return next(name for name in TRACKERS if isinstance(net, TRACKERS.info(name)["net"]))


def train_sot(tracker: str, sequences: Sequence[TrackSequence], out_dir: str | os.PathLike,
              config: SiamFCConfig | GOTURNConfig | None = None, max_gap: int | None = None,
              pairs_per_epoch: int | None = None, train: TrainConfig | None = None, resume: bool = False,
              val_sequences: Sequence[TrackSequence] | None = None) -> tuple[SiamFCNet | GOTURNNet, dict]:
    """Train ``tracker``'s network (``"siamfc"`` or ``"goturn"``) through the engine's one
    loop (:func:`deepvideo.engine.fit`) and write ``out_dir/weights.safetensors``
    (:func:`save_tracker_net`) beside the run's ``last.pt``, ``metrics.csv`` and ``curves.png``.

    ``train`` defaults to Adam (weight decay 5e-4), cosine decay, 6 epochs of
    ``pairs_per_epoch`` pairs (default 400 for SiamFC at batch 8, 800 for GOTURN at batch
    16: 50 steps per epoch).  ``resume=True`` continues a killed run exactly.  Returns the
    network (eval mode, on the CPU) and :func:`~deepvideo.engine.fit`'s result.
    """
    TRACKERS.get(tracker)  # an unknown name: "did you mean"
    task_type, default = TRACKERS.info(tracker)["task"], TRACKERS.info(tracker)["training"]
    options = {key: value for key, value in (("max_gap", max_gap), ("pairs_per_epoch", pairs_per_epoch))
               if value is not None}
    task = task_type(sequences, config, val_sequences=val_sequences, **options)
    result = fit(task, train or default, out_dir, resume=resume)
    net = result["model"].cpu().eval()
    save_tracker_net(Path(out_dir) / "weights.safetensors", net)
    return net, result


def train_siamfc(sequences: Sequence[TrackSequence], out_dir: str | os.PathLike, config: SiamFCConfig | None = None,
                 **options) -> tuple[SiamFCNet, dict]:
    """:func:`train_sot` for SiamFC."""
    return train_sot("siamfc", sequences, out_dir, config, **options)


def train_goturn(sequences: Sequence[TrackSequence], out_dir: str | os.PathLike, config: GOTURNConfig | None = None,
                 **options) -> tuple[GOTURNNet, dict]:
    """:func:`train_sot` for GOTURN."""
    return train_sot("goturn", sequences, out_dir, config, **options)


def make_tracker(tracker: str = "siamfc", weights: str | os.PathLike | None = None,
                 device: str = "cpu") -> SiamFCTracker | GOTURNTracker:
    """A registered tracker (:data:`TRACKERS`) with the network in ``weights``.  Without
    ``weights``, ``siamfc`` is the training-free pixel-embedding SiamFC (template matching);
    ``goturn`` needs trained weights."""
    build = TRACKERS.get(tracker)
    net = None
    if weights is not None:
        net = load_tracker_net(weights)
        if _kind(net) != tracker:
            raise ValueError(f"weights: {weights} holds a {_kind(net)} network, not {tracker}")
    return build(net, device)


def _track(tracker: SiamFCTracker | GOTURNTracker, frames: Iterable[np.ndarray], box: Sequence[float]
           ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(frame, box)`` per frame, the first box being ``box`` itself (the OPE convention)."""
    for t, frame in enumerate(frames):
        if t == 0:
            tracker.init(frame, box)
            yield frame, np.asarray(box, dtype=np.float64)
        else:
            yield frame, np.asarray(tracker.update(frame), dtype=np.float64)


def track_frames(tracker: SiamFCTracker | GOTURNTracker, frames: Iterable[np.ndarray],
                 box: Sequence[float], progress: bool = False, total: int | None = None
                 ) -> np.ndarray:
    """Run ``tracker`` over ``frames`` (``(H, W, 3)`` uint8 each) from ``box`` on the first
    one: ``(T, 4)`` boxes, the first being ``box`` itself (the OPE convention)."""
    frames = tqdm(frames, total=total, desc="tracking", unit="frame", disable=not progress)
    return np.array([b for _, b in _track(tracker, frames, box)]).reshape(-1, 4)


def _draw(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    x, y, w, h = box
    return cv2.rectangle(frame.copy(), (int(round(x)), int(round(y))),
                         (int(round(x + w)) - 1, int(round(y + h)) - 1), (255, 40, 40), 2)


def track_video(video: str | os.PathLike, box: Sequence[float], tracker: str = "siamfc",
                weights: str | os.PathLike | None = None, progress: bool = True,
                out_video: str | os.PathLike | None = None, device: str = "cpu") -> np.ndarray:
    """Track the object at ``box`` ``(x, y, w, h)`` on the first frame of ``video``
    through the whole file, decoding frame by frame with ``VideoReader``: ``(T, 4)``
    boxes.  ``out_video`` also writes the frames with the box drawn, as they are tracked.
    A bad ``box`` (``w <= 0``, outside the frame) raises ``ValueError``."""
    runner = make_tracker(tracker, weights, device)
    with VideoReader(video) as reader, contextlib.ExitStack() as stack:
        check_box(box, reader.width, reader.height)
        sink = (stack.enter_context(VideoWriter(out_video, reader.fps, reader.width, reader.height))
                if out_video is not None else None)
        frames = tqdm(reader, total=reader.num_frames, desc="tracking", unit="frame", disable=not progress)
        boxes = []
        for frame, found in _track(runner, frames, box):
            boxes.append(found)
            if sink is not None:
                sink.write(_draw(frame, found))
    boxes = np.array(boxes).reshape(-1, 4)
    return boxes
