"""DeepSORT: SORT with a deep appearance metric (Wojke, Bewley and Paulus, "Simple Online
and Realtime Tracking with a Deep Association Metric", ICIP 2017).

1. Motion: each track is a Kalman filter on ``(cx, cy, aspect, h)`` (:class:`DeepSortKalman`);
   the squared Mahalanobis distance ``d1`` of a detection from a track's predicted
   measurement rules out (gates) pairs beyond the chi-square 0.95 quantile.
2. Appearance: a small CNN (:class:`EmbeddingNet`) maps a detection crop to a unit vector;
   every track keeps a gallery of its last ``nn_budget`` vectors and ``d2`` is the smallest
   cosine distance between a detection and the gallery (:class:`NearestNeighborGallery`).
   Pairs with ``d2 > max_cosine_distance`` are ruled out too.
3. Cost ``c = lambda * d1 + (1 - lambda) * d2`` (the paper uses ``lambda = 0``: the motion
   only gates).  Without an appearance encoder (or without frames) the cost is ``d1`` alone.
4. Matching cascade: tracks unmatched for fewer frames get first pick -- the Hungarian
   assignment runs once per age ``1, 2, ..., max_age`` on the detections still free -- so
   a long-lost track, whose covariance has grown, cannot steal a detection from a track
   seen a frame ago.  Then tentative tracks and tracks missed for just one frame are
   matched to the rest by IoU (``1 - IoU <= max_iou_distance``), as in SORT.
5. Track life: a track is tentative for its first ``n_init`` frames and deleted if it misses
   one of them; a confirmed track is deleted after ``max_age`` missed frames.  Confirmed
   tracks updated this frame or missed only this frame are reported (the reference app's
   rule).

The embedding is trained here as in the companion paper (Wojke and Bewley, "Deep Cosine
Metric Learning for Person Re-identification", WACV 2018): identity classification with a
cosine-softmax head on crops of tracked identities (:func:`identity_crops`,
:func:`train_embedding`), from any MOT-format ground truth with its frames or from
:mod:`deepvideo.track.scenes`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import BasicBlock

from deepvideo.engine import Step, Task, TrainConfig, fit
from deepvideo.engine.task import GeneratedSet
from deepvideo.io.atomic import atomic_write
from deepvideo.models.weights import load_weights
from deepvideo.track.detect import check_frame
from deepvideo.track.kalman import CHI2INV95, DeepSortKalman, xyah_to_xywh, xywh_to_xyah
from deepvideo.track.mot_metrics import iou_matrix
from deepvideo.track.scenes import jitter_boxes
from deepvideo.track.sort import check_detections, linear_assignment

__all__ = ["AppearanceEncoder", "DeepSort", "EmbeddingClassifier", "EmbeddingNet", "EmbeddingTask",
           "NearestNeighborGallery", "augment_crop", "crop_boxes", "identity_crops", "load_embedding",
           "renumber_identities", "save_embedding", "train_embedding"]

GATED = 1e5  # cost of a pair ruled out by a gate


# --- appearance: crops, embedding network, training -----------------------------------------

def crop_boxes(frame: np.ndarray, boxes: np.ndarray, size: tuple[int, int] = (64, 32)
               ) -> np.ndarray:
    """Crops of ``boxes`` ``(N, 4)`` ``(x, y, w, h)`` from ``frame`` ``(H, W, 3)`` uint8,
    each resized to ``size`` ``(height, width)``: ``(N, 3, height, width)`` uint8.  Boxes are
    clipped to the frame; a box wholly outside it gives a black crop."""
    frame = check_frame(frame)
    boxes = np.asarray(boxes, np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or not np.isfinite(boxes).all():
        raise ValueError(f"boxes must be a finite (N, 4) array x, y, w, h; got shape {boxes.shape}")
    height, width = size
    out = np.zeros((len(boxes), 3, height, width), np.uint8)
    for k, (x, y, w, h) in enumerate(boxes):
        x0, y0 = max(int(np.floor(x)), 0), max(int(np.floor(y)), 0)
        x1, y1 = min(int(np.ceil(x + w)), frame.shape[1]), min(int(np.ceil(y + h)), frame.shape[0])
        if x1 > x0 and y1 > y0:
            crop = cv2.resize(frame[y0:y1, x0:x1], (width, height), interpolation=cv2.INTER_AREA)
            out[k] = crop.transpose(2, 0, 1)
    return out


class EmbeddingNet(nn.Module):
    """Appearance descriptor: crops ``(N, 3, H, W)`` float in [0, 1] -> unit vectors
    ``(N, dim)``.  A small residual network (stem, three torchvision ``BasicBlock`` stages
    halving the resolution, global average pooling, linear projection), a CPU-sized
    version of the wide residual network of the DeepSORT paper.  ``crop_size`` is the
    ``(height, width)`` crops are resized to."""

    def __init__(self, dim: int = 128, width: int = 16, crop_size: tuple[int, int] = (64, 32)
                 ) -> None:
        super().__init__()
        self.dim, self.crop_size = dim, tuple(crop_size)
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        stages, channels = [], width
        for out_channels in (width, 2 * width, 4 * width):
            down = nn.Sequential(nn.Conv2d(channels, out_channels, 1, stride=2, bias=False),
                                 nn.BatchNorm2d(out_channels))
            stages.append(BasicBlock(channels, out_channels, stride=2, downsample=down))
            channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.project = nn.Linear(channels, dim)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem((crops - self.mean) / self.std))
        return F.normalize(self.project(x.mean(dim=(2, 3))), dim=1)


class CosineSoftmax(nn.Module):
    """Cosine-softmax classifier (Wojke and Bewley 2018): logits ``kappa * <w_k / |w_k|, f>``
    for unit features ``f`` ``(N, D)``, with a learned scale ``kappa``."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes, dim) * 0.01)
        self.log_scale = nn.Parameter(torch.tensor(np.log(10.0), dtype=torch.float32))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.log_scale.exp() * features @ F.normalize(self.weight, dim=1).T


def identity_crops(frames: Iterable[np.ndarray], gt: np.ndarray, size: tuple[int, int] = (64, 32),
                   max_per_identity: int = 200, jitter: float = 0.0, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Crops of the tracked identities in MOT ground truth ``gt`` ``(N, >=6)`` rows ``frame,
    id, x, y, w, h, ...`` (frames numbered from 1), taken from ``frames`` (an iterable of
    ``(H, W, 3)`` uint8 in order, e.g. a :class:`deepvideo.io.VideoReader`: frames are
    streamed, not held).  Rows with a zero confidence column (ignored boxes) are skipped;
    at most ``max_per_identity`` crops are kept per identity (a random subset).  ``jitter``
    moves box corners by that fraction of the box size (Gaussian std), so that the network
    learns from boxes as loose as a detector's.

    Returns ``crops`` ``(M, 3, height, width)`` uint8 and ``ids`` ``(M,)`` int64.
    """
    gt = np.asarray(gt, np.float64)
    if gt.shape[1] > 6:
        gt = gt[gt[:, 6] != 0]
    rng = np.random.default_rng(seed)
    keep = np.zeros(len(gt), bool)
    for identity in np.unique(gt[:, 1]):
        rows = np.flatnonzero(gt[:, 1] == identity)
        keep[rng.permutation(rows)[:max_per_identity]] = True
    gt = gt[keep]
    if jitter:
        gt[:, 2:6] = jitter_boxes(gt[:, 2:6], jitter, rng)
    crops, ids = [], []
    last = int(gt[:, 0].max()) if len(gt) else 0
    for number, frame in enumerate(frames, start=1):
        if number > last:
            break
        rows = gt[gt[:, 0] == number]
        crops.append(crop_boxes(frame, rows[:, 2:6], size))
        ids.append(rows[:, 1].astype(np.int64))
    if not crops:
        return np.empty((0, 3, *size), np.uint8), np.empty(0, np.int64)
    return np.concatenate(crops), np.concatenate(ids)


def renumber_identities(ids_per_sequence: Iterable[np.ndarray]) -> np.ndarray:
    """One array of labels ``0..K-1`` for the identities of several sequences: identity
    numbers restart in every MOT sequence, so the same number in two sequences is two
    identities."""
    out, count = [], 0
    for ids in ids_per_sequence:
        local = np.unique(ids, return_inverse=True)[1].reshape(-1)
        out.append(local + count)
        count += int(local.max(initial=-1)) + 1
    return np.concatenate(out) if out else np.empty(0, np.int64)


def augment_crop(crop: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """A crop ``(3, H, W)`` uint8 as the network trains on it: float in ``[0, 1]``, flipped
    horizontally with probability 1/2, brightness scaled by a factor in ``[0.8, 1.2)``."""
    image = torch.from_numpy(np.ascontiguousarray(crop)).float().div(255)
    if rng.random() < 0.5:
        image = image.flip(-1)
    return (image * (0.8 + 0.4 * rng.random())).clamp(0, 1)


class EmbeddingClassifier(nn.Module):
    """The embedding network with its training head: crops ``(B, 3, H, W)`` -> identity
    logits ``(B, K)`` (:class:`CosineSoftmax` over :class:`EmbeddingNet` features)."""

    def __init__(self, embedding: EmbeddingNet, num_identities: int) -> None:
        super().__init__()
        self.embedding = embedding
        self.head = CosineSoftmax(embedding.dim, num_identities)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.head(self.embedding(crops))


class EmbeddingTask(Task):
    """Re-identification training (Wojke and Bewley 2018) for the engine: cosine-softmax
    cross-entropy over the identities of ``crops`` ``(N, 3, H, W)`` uint8 (labels ``ids``
    ``(N,)``, any integers), random horizontal flips and brightness jitter.  Every epoch
    draws ``crops_per_epoch`` crops with replacement.  Validation: none (the identities
    are the classes, so there are no held-out ones to classify)."""

    name = "embedder"
    samples = "crops"

    def __init__(self, crops: np.ndarray, ids: np.ndarray, dim: int = 128, width: int = 16,
                 crops_per_epoch: int = 3200) -> None:
        if len(crops) == 0 or len(crops) != len(ids):
            raise ValueError(f"crops, ids: need crops and one id per crop, got {len(crops)} crops and "
                             f"{len(ids)} ids")
        self.classes, self.labels = np.unique(ids, return_inverse=True)
        if len(self.classes) < 2:
            raise ValueError("ids: the crops show a single identity; need at least two")
        self.crops, self.dim, self.width, self.crops_per_epoch = crops, dim, width, crops_per_epoch

    def config(self) -> dict:
        return {"task": "embedder", "dim": self.dim, "width": self.width, "crops": len(self.crops),
                "crop_size": list(self.crops.shape[2:]), "identities": len(self.classes),
                "crops_per_epoch": self.crops_per_epoch}

    def build_model(self) -> nn.Module:
        return EmbeddingClassifier(EmbeddingNet(self.dim, self.width, self.crops.shape[2:]), len(self.classes))

    def example(self, rng: np.random.Generator) -> tuple[torch.Tensor, int]:
        """A random crop, augmented, and its label."""
        index = int(rng.integers(len(self.crops)))
        return augment_crop(self.crops[index], rng), int(self.labels[index])

    def train_set(self, seed: int) -> GeneratedSet:
        return GeneratedSet(self.example, self.crops_per_epoch, seed)

    def training_step(self, model: nn.Module, batch) -> Step:
        crops, labels = batch
        logits = model(crops)
        correct = (logits.argmax(1) == labels).sum()
        return Step(F.cross_entropy(logits.float(), labels), len(labels), {"acc": correct})


EMBEDDING_TRAINING = TrainConfig(epochs=6, batch_size=64, lr=2e-3, optimizer="adam", weight_decay=0.0,
                                 warmup_epochs=0, schedule="constant", clip_grad=None)


def train_embedding(crops: np.ndarray, ids: np.ndarray, out_dir: str | os.PathLike, dim: int = 128,
                    width: int = 16, crops_per_epoch: int = 3200, train: TrainConfig | None = None,
                    resume: bool = False) -> tuple[EmbeddingNet, dict]:
    """Train an :class:`EmbeddingNet` to tell the identities of ``crops`` ``(N, 3, H, W)``
    uint8 apart (:class:`EmbeddingTask`) through the engine's one loop
    (:func:`deepvideo.engine.fit`); write ``out_dir/weights.safetensors``
    (:func:`save_embedding`) beside the run's ``last.pt``, ``metrics.csv`` and ``curves.png``.

    ``train`` defaults to Adam at a constant 2e-3, batches of 64, 6 epochs of
    ``crops_per_epoch`` crops (50 steps each).  ``resume=True`` continues a killed run
    exactly.  Returns the network (eval mode, on the CPU) and ``fit``'s result.
    """
    result = fit(EmbeddingTask(crops, ids, dim, width, crops_per_epoch), train or EMBEDDING_TRAINING,
                 out_dir, resume=resume)
    model = result["model"].embedding.cpu().eval()
    save_embedding(Path(out_dir) / "weights.safetensors", model)
    return model, result


def save_embedding(path: str | os.PathLike, model: EmbeddingNet) -> Path:
    """Write the network to a ``.safetensors`` file (atomically), its sizes in the metadata."""
    from safetensors.torch import save

    meta = {"dim": model.dim, "width": model.stem[0].out_channels, "crop_size": model.crop_size}
    data = save({k: v.contiguous() for k, v in model.state_dict().items()},
                metadata={"deepvideo_embedding": json.dumps(meta)})
    return atomic_write(path, lambda fh: fh.write(data))


def load_embedding(path: str | os.PathLike) -> EmbeddingNet:
    """Read a network written by :func:`save_embedding`; ``ValueError`` naming the file when
    it is missing, not such a file, or does not match the architecture."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"embedding file {path} does not exist")
    try:
        with safe_open(str(path), "pt") as fh:
            meta = json.loads((fh.metadata() or {})["deepvideo_embedding"])
    except Exception as exc:
        raise ValueError(f"embedding file {path} is not an embedding written by "
                         f"save_embedding ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    model = EmbeddingNet(meta["dim"], meta["width"], tuple(meta["crop_size"]))
    return load_weights(model, path).eval()


class AppearanceEncoder:
    """``encoder(frame, boxes) -> (N, dim)`` float32 unit descriptors of ``boxes`` ``(N, 4)``
    ``(x, y, w, h)`` in ``frame`` ``(H, W, 3)`` uint8, computed in batches."""

    def __init__(self, model: EmbeddingNet, device: str = "cpu", batch_size: int = 128) -> None:
        self.model, self.device, self.batch_size = model.to(device).eval(), device, batch_size

    @torch.no_grad()
    def __call__(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        crops = torch.from_numpy(crop_boxes(frame, boxes, self.model.crop_size))
        out = [self.model(chunk.to(self.device).float().div(255)).cpu()
               for chunk in crops.split(self.batch_size)]
        return torch.cat(out).numpy() if out else np.empty((0, self.model.dim), np.float32)


# --- association ------------------------------------------------------------------------------

class NearestNeighborGallery:
    """Per-track galleries of appearance descriptors and the nearest-neighbour cosine distance
    to them.  ``budget`` keeps each gallery's most recent descriptors (``None``: all)."""

    def __init__(self, budget: int | None = 100) -> None:
        self.budget = budget
        self.samples: dict[int, np.ndarray] = {}

    def partial_fit(self, features: Iterable[np.ndarray], ids: Iterable[int],
                    active: Iterable[int]) -> None:
        """Add ``features`` (``(D,)`` vectors) of tracks ``ids`` (one id per vector); forget
        tracks not in ``active``."""
        for feature, identity in zip(features, ids):
            stored = self.samples.get(int(identity))
            stored = feature[None] if stored is None else np.vstack([stored, feature])
            self.samples[int(identity)] = stored if self.budget is None else stored[-self.budget:]
        active = set(active)
        self.samples = {k: v for k, v in self.samples.items() if k in active}

    def distance(self, features: np.ndarray, ids: Iterable[int]) -> np.ndarray:
        """``(T, N)`` smallest cosine distance of each of ``features`` ``(N, D)`` (unit
        vectors) to the gallery of each track in ``ids``; 1 for an empty gallery."""
        galleries = [self.samples.get(int(identity)) for identity in ids]
        out = np.ones((len(galleries), len(features)))
        rows = [k for k, g in enumerate(galleries) if g is not None]
        if rows and len(features):  # one product with all galleries stacked, then a min per track
            stacked = np.concatenate([galleries[k] for k in rows])
            starts = np.cumsum([0] + [len(galleries[k]) for k in rows[:-1]])
            out[rows] = np.minimum.reduceat(1 - stacked @ np.asarray(features).T, starts, axis=0)
        return out


@dataclass
class _Track:
    id: int
    mean: np.ndarray  # (8,) cx, cy, a, h and velocities
    cov: np.ndarray  # (8, 8)
    hits: int = 1
    time_since_update: int = 0
    confirmed: bool = False
    features: list[np.ndarray] = field(default_factory=list)  # not yet in the gallery


class DeepSort:
    """DeepSORT tracker (defaults: the reference implementation's MOT16 settings).

    Args:
        encoder: ``encoder(frame, boxes) -> (N, D)`` descriptors (an
            :class:`AppearanceEncoder`; scaled to unit length here); ``None`` associates by
            motion alone.
        max_cosine_distance: gate on the appearance distance ``d2``.
        nn_budget: descriptors kept per track.
        max_iou_distance: largest ``1 - IoU`` of an IoU-stage match.
        max_age: missed frames before a confirmed track is deleted (and cascade depth).
        n_init: frames a track stays tentative.
        motion_weight: ``lambda`` of the cost ``lambda d1 + (1 - lambda) d2`` (paper: 0).
        min_confidence: detections scoring less are dropped.
    """

    def __init__(self, encoder: AppearanceEncoder | None = None, max_cosine_distance: float = 0.2,
                 nn_budget: int | None = 100, max_iou_distance: float = 0.7, max_age: int = 30,
                 n_init: int = 3, motion_weight: float = 0.0, min_confidence: float = 0.0
                 ) -> None:
        self.encoder = encoder
        self.max_cosine_distance, self.max_iou_distance = max_cosine_distance, max_iou_distance
        self.max_age, self.n_init, self.min_confidence = max_age, n_init, min_confidence
        self.motion_weight = motion_weight
        self.kf = DeepSortKalman()
        self.gallery = NearestNeighborGallery(nn_budget)
        self.tracks: list[_Track] = []
        self._next_id = 1

    def _gated_cost(self, tracks: list[int], z: np.ndarray, features: np.ndarray | None,
                    dets: np.ndarray) -> tuple[np.ndarray, float]:
        """Cost ``(len(tracks), len(dets))`` of the cascade and its admissible maximum."""
        picked = [self.tracks[i] for i in tracks]
        d1 = self.kf.gating_distance(np.stack([t.mean for t in picked]),
                                     np.stack([t.cov for t in picked]), z[dets])
        gated = d1 > CHI2INV95[4]
        if features is None:
            cost, max_cost = d1, CHI2INV95[4]
        else:
            d2 = self.gallery.distance(features[dets], [t.id for t in picked])
            gated |= d2 > self.max_cosine_distance
            lam = self.motion_weight
            cost = lam * d1 + (1 - lam) * d2
            max_cost = lam * CHI2INV95[4] + (1 - lam) * self.max_cosine_distance
        return np.where(gated, GATED, cost), max_cost

    def _match(self, dets: np.ndarray, features: np.ndarray | None
               ) -> tuple[list[tuple[int, int]], list[int]]:
        """Matching cascade then IoU matching: (track, detection) pairs and free detections."""
        z = xywh_to_xyah(dets[:, :4])
        free = np.arange(len(dets))
        matches: list[tuple[int, int]] = []
        confirmed = [i for i, t in enumerate(self.tracks) if t.confirmed]
        for age in range(1, self.max_age + 1):
            level = [i for i in confirmed if self.tracks[i].time_since_update == age]
            if not len(free):
                break
            if not level:
                continue
            cost, max_cost = self._gated_cost(level, z, features, free)
            pairs, _, rest = linear_assignment(cost, max_cost)
            matches += [(level[r], int(free[c])) for r, c in pairs]
            free = free[rest]
        taken = {i for i, _ in matches}
        candidates = [i for i, t in enumerate(self.tracks) if i not in taken
                      and (not t.confirmed or t.time_since_update == 1)]
        if candidates and len(free):
            boxes = xyah_to_xywh(np.stack([self.tracks[i].mean for i in candidates]))
            pairs, _, rest = linear_assignment(1 - iou_matrix(boxes, dets[free, :4]),
                                               self.max_iou_distance)
            matches += [(candidates[r], int(free[c])) for r, c in pairs]
            free = free[rest]
        return matches, free.tolist()

    def update(self, dets: np.ndarray, frame: np.ndarray | None = None) -> np.ndarray:
        """One frame: ``dets`` ``(N, 5)`` ``x, y, w, h, score`` and the ``frame`` ``(H, W, 3)``
        uint8 they come from (for appearance; optional) -> tracks ``(K, 5)`` ``x, y, w, h, id``."""
        dets = check_detections(dets)
        dets = dets[dets[:, 4] >= self.min_confidence]
        features = None
        if self.encoder is not None and frame is not None:
            features = np.asarray(self.encoder(frame, dets[:, :4]))
            if features.ndim != 2 or len(features) != len(dets):
                raise ValueError(f"encoder: gave descriptors of shape {features.shape} for {len(dets)} "
                                 f"detections; expected ({len(dets)}, D)")
            # cosine distances need unit vectors (the reference normalises them too)
            features = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
        if self.tracks:
            mean, cov = self.kf.predict(np.stack([t.mean for t in self.tracks]),
                                        np.stack([t.cov for t in self.tracks]))
            for t, m, c in zip(self.tracks, mean, cov):
                t.mean, t.cov, t.time_since_update = m, c, t.time_since_update + 1
        matches, free = self._match(dets, features)
        if matches:
            picked = [self.tracks[i] for i, _ in matches]
            rows = [j for _, j in matches]
            mean, cov = self.kf.update(np.stack([t.mean for t in picked]),
                                       np.stack([t.cov for t in picked]), xywh_to_xyah(dets[rows, :4]))
            for t, m, c, j in zip(picked, mean, cov, rows):
                t.mean, t.cov, t.time_since_update = m, c, 0
                t.hits += 1
                t.confirmed |= t.hits >= self.n_init
                if features is not None:
                    t.features.append(features[j])
        # unmatched: tentative tracks die at once, confirmed ones after max_age frames
        self.tracks = [t for t in self.tracks if t.time_since_update == 0
                       or (t.confirmed and t.time_since_update <= self.max_age)]
        if free:
            mean, cov = self.kf.initiate(xywh_to_xyah(dets[free, :4]))
            for m, c, j in zip(mean, cov, free):
                self.tracks.append(_Track(self._next_id, m, c, features=(
                    [] if features is None else [features[j]])))
                self._next_id += 1
        self._fit_gallery()
        shown = [t for t in self.tracks if t.confirmed and t.time_since_update <= 1]
        if not shown:
            return np.empty((0, 5))
        return np.column_stack([xyah_to_xywh(np.stack([t.mean for t in shown])), [t.id for t in shown]])

    def _fit_gallery(self) -> None:
        """Move confirmed tracks' new descriptors into the gallery (as the reference)."""
        confirmed = [t for t in self.tracks if t.confirmed]
        features = [f for t in confirmed for f in t.features]
        ids = [t.id for t in confirmed for _ in t.features]
        for t in confirmed:
            t.features = []
        self.gallery.partial_fit(features, ids, [t.id for t in confirmed])
