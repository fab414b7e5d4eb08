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
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from tqdm import tqdm

from deepvideo.data.synthetic import MOTION_CLASSES, SyntheticConfig, render_video, video_rng
from deepvideo.io import VideoReader, read_video
from deepvideo.io.atomic import atomic_write
from deepvideo.io.encode import VideoWriter
from deepvideo.track.goturn import GOTURNConfig, GOTURNNet, GOTURNTracker, goturn_example
from deepvideo.track.ope import check_box
from deepvideo.track.siamfc import (SiamFCConfig, SiamFCNet, SiamFCTracker, crop_and_resize,
                                    logistic_labels, logistic_loss, to_tensor)

__all__ = ["PIXEL_CONFIG", "TRACKERS", "TrackSequence", "goturn_batch", "load_annotated_videos",
           "load_tracker_net", "make_tracker", "save_tracker_net", "siamfc_batch", "synthetic_sequences",
           "track_frames", "track_video", "train_goturn", "train_siamfc"]

TRACKERS = ("siamfc", "goturn")
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


def siamfc_batch(sequences: Sequence[TrackSequence], batch_size: int, config: SiamFCConfig,
                 rng: np.random.Generator, max_gap: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """SiamFC training pairs: exemplars ``(B, 3, Z, Z)`` from frame ``i`` and search crops
    ``(B, 3, X, X)`` from frame ``j`` (``0 <= j - i <= max_gap``), both centred on the
    target and scaled so that the exemplar region has the paper's fixed context area."""
    exemplars, searches = [], []
    for _ in range(batch_size):
        seq, i, j = _frame_pair(sequences, rng, max_gap)
        for frame, box, out, side in ((seq.frames[i], seq.boxes[i], exemplars, config.exemplar_size),
                                      (seq.frames[j], seq.boxes[j], searches, config.search_size)):
            pad = config.context * (box[2] + box[3])
            region = np.sqrt((box[2] + pad) * (box[3] + pad)) * side / config.exemplar_size
            out.append(crop_and_resize(frame, box[:2] + box[2:] / 2, (region, region), side))
    return to_tensor(np.stack(exemplars)), to_tensor(np.stack(searches))


def goturn_batch(sequences: Sequence[TrackSequence], batch_size: int, config: GOTURNConfig,
                 rng: np.random.Generator, max_gap: int = 1
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """GOTURN training examples (``goturn_example``) from frame pairs ``0 <= j - i <=
    max_gap`` (``j = i``: the paper's still-image examples): previous crops, current
    crops ``(B, 3, S, S)`` and targets ``(B, 4)``."""
    examples = [goturn_example(seq.frames[i], seq.boxes[i], seq.frames[j], seq.boxes[j],
                               config.input_size, rng)
                for seq, i, j in (_frame_pair(sequences, rng, max_gap) for _ in range(batch_size))]
    previous, current, targets = map(np.stack, zip(*examples))
    return to_tensor(previous), to_tensor(current), torch.from_numpy(targets)


def save_tracker_net(path: str | os.PathLike, net: SiamFCNet | GOTURNNet) -> Path:
    """Write ``net``'s state_dict as safetensors (atomically), with the tracker kind and
    its config in the metadata so that ``load_tracker_net`` rebuilds it."""
    kind = "siamfc" if isinstance(net, SiamFCNet) else "goturn"
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
    net = SiamFCNet(SiamFCConfig(**config)) if kind == "siamfc" else GOTURNNet(GOTURNConfig(**config))
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        detail = [line.strip() for line in str(exc).splitlines() if line.strip()][-1]
        raise ValueError(f"{path}: weights do not fit the {kind} config stored with them ({detail})"
                         ) from None
    return net


def _train(net: torch.nn.Module, loss_of_batch, steps: int, lr: float, out: str | os.PathLike | None,
           progress: bool, desc: str, device: torch.device) -> list[float]:
    """Adam with a cosine learning-rate decay over ``steps``; the loss of every step."""
    net.to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    losses = []
    bar = tqdm(range(steps), desc=desc, unit="step", disable=not progress)
    for _ in bar:
        loss = loss_of_batch()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
    net.eval()
    if out is not None:
        save_tracker_net(out, net)
    return losses


def train_siamfc(sequences: Sequence[TrackSequence], out: str | os.PathLike | None = None,
                 config: SiamFCConfig | None = None, steps: int = 300, batch_size: int = 8,
                 lr: float = 1e-3, max_gap: int = 8, seed: int = 0, progress: bool = True,
                 device: str = "cpu") -> tuple[SiamFCNet, list[float]]:
    """Train a ``SiamFCNet`` with the logistic loss on pairs from ``sequences``; save it to
    ``out`` (safetensors) when given.  Returns the network (eval mode) and the losses."""
    config = config or SiamFCConfig()
    if config.width == 0:
        raise ValueError("config.width: 0 is the training-free pixel embedding; nothing to train")
    torch.manual_seed(seed)
    rng, net, dev = np.random.default_rng(seed), SiamFCNet(config), torch.device(device)
    labels = logistic_labels(net.response_size, config.radius, net.total_stride).to(dev)

    def loss_of_batch() -> torch.Tensor:
        z, x = siamfc_batch(sequences, batch_size, config, rng, max_gap)
        return logistic_loss(net(z.to(dev), x.to(dev)), labels)

    return net, _train(net, loss_of_batch, steps, lr, out, progress, "train siamfc", dev)


def train_goturn(sequences: Sequence[TrackSequence], out: str | os.PathLike | None = None,
                 config: GOTURNConfig | None = None, steps: int = 300, batch_size: int = 16,
                 lr: float = 1e-3, max_gap: int = 1, seed: int = 0, progress: bool = True,
                 device: str = "cpu") -> tuple[GOTURNNet, list[float]]:
    """Train a ``GOTURNNet`` with the L1 loss on motion-model examples from ``sequences``;
    save it to ``out`` (safetensors) when given.  Returns the network (eval mode) and the
    losses."""
    config = config or GOTURNConfig()
    torch.manual_seed(seed)
    rng, net, dev = np.random.default_rng(seed), GOTURNNet(config), torch.device(device)

    def loss_of_batch() -> torch.Tensor:
        previous, current, targets = goturn_batch(sequences, batch_size, config, rng, max_gap)
        return torch.nn.functional.l1_loss(net(previous.to(dev), current.to(dev)), targets.to(dev))

    return net, _train(net, loss_of_batch, steps, lr, out, progress, "train goturn", dev)


def make_tracker(tracker: str = "siamfc", weights: str | os.PathLike | None = None,
                 device: str = "cpu") -> SiamFCTracker | GOTURNTracker:
    """A tracker from a weights file.  Without ``weights``, ``siamfc`` is the training-free
    pixel-embedding SiamFC (template matching); ``goturn`` needs trained weights."""
    if tracker not in TRACKERS:
        raise ValueError(f"tracker: one of {', '.join(TRACKERS)}, got {tracker!r}")
    if weights is None:
        if tracker == "goturn":
            raise ValueError("weights: GOTURN needs a trained weights file (see train_goturn)")
        return SiamFCTracker(SiamFCNet(PIXEL_CONFIG), device)
    net = load_tracker_net(weights)
    kind = "siamfc" if isinstance(net, SiamFCNet) else "goturn"
    if kind != tracker:
        raise ValueError(f"weights: {weights} holds a {kind} network, not {tracker}")
    return SiamFCTracker(net, device) if kind == "siamfc" else GOTURNTracker(net, device)


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
        check_box(box, reader.width, reader.height, "--box")
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
