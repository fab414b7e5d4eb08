"""Detections for tracking real videos: a MOT detection file, background subtraction, or a
torchvision detector.

Every detector is called once per frame as ``detector(frame, number) -> (M, 5)`` with the
frame ``(H, W, 3)`` uint8 RGB and its number counted from 1 (as in MOT files), and returns
rows ``x, y, w, h, score`` (pixels, top-left corner) -- what the trackers take.  They are
built by name from :data:`DETECTORS` with :func:`make_detector`:

* ``dets``, :class:`FileDetections` -- precomputed detections (MOTChallenge ``det.txt``).
* ``mog2``, :class:`MOG2Detector` -- static cameras: OpenCV's Gaussian-mixture background
  model (Zivkovic, "Improved Adaptive Gaussian Mixture Model for Background Subtraction",
  ICPR 2004) marks moving pixels; after a morphological opening (noise) and closing
  (holes), each outer contour of the foreground big enough is a box whose score is the
  fraction of it that is foreground.
* ``torchvision``, :class:`TorchvisionDetector` -- a torchvision Faster R-CNN built without
  any pretrained weights and loaded from a local state_dict file (nothing is downloaded).
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import cv2
import numpy as np
import torch
import torchvision

from deepvideo.models.weights import load_weights
from deepvideo.registry import Registry
from deepvideo.track.motio import frames_of, read_mot

__all__ = ["DETECTORS", "TORCHVISION_DETECTORS", "Detector", "FileDetections", "MOG2Detector",
           "TorchvisionDetector", "check_frame", "make_detector"]

Detector = Callable[[np.ndarray, int], np.ndarray]  # (frame, number) -> (M, 5) x, y, w, h, score
DETECTORS: Registry[Callable[..., Detector]] = Registry("detector")
TORCHVISION_DETECTORS = ("fasterrcnn_mobilenet_v3_large_320_fpn", "fasterrcnn_mobilenet_v3_large_fpn",
                         "fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "retinanet_resnet50_fpn",
                         "fcos_resnet50_fpn", "ssdlite320_mobilenet_v3_large")


def check_frame(frame: np.ndarray, name: str = "frame") -> np.ndarray:
    """``frame`` as an ``(H, W, 3)`` uint8 array; a one-line ``ValueError`` naming it otherwise."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8 or 0 in frame.shape:
        raise ValueError(f"{name} must be an (H, W, 3) uint8 RGB image, got shape {frame.shape} "
                         f"dtype {frame.dtype}")
    return frame


class FileDetections:
    """Detections read from a MOTChallenge file (or given as ``(N, >=7)`` MOT rows);
    those scoring below ``min_score`` are dropped."""

    def __init__(self, dets: str | os.PathLike | np.ndarray, min_score: float = -np.inf) -> None:
        rows = read_mot(dets) if isinstance(dets, (str, os.PathLike)) else np.asarray(dets, np.float64)
        if rows.size and (rows.ndim != 2 or rows.shape[1] < 7):
            raise ValueError(f"dets must be MOT detection rows (N, >=7) frame, id, x, y, w, h, score, ...; "
                             f"got shape {rows.shape}")
        self.by_frame = {k: v[v[:, 6] >= min_score, 2:7] for k, v in frames_of(rows).items()}
        self.last_frame = max(self.by_frame, default=0)

    def __call__(self, frame: np.ndarray | None, number: int) -> np.ndarray:
        return self.by_frame.get(number, np.empty((0, 5)))


@DETECTORS.register("dets")
def _file_detector(dets: str | os.PathLike | np.ndarray | None = None, min_score: float = -np.inf
                   ) -> FileDetections:
    """:class:`FileDetections` of ``dets``, which this detector needs."""
    if dets is None:
        raise ValueError("detector 'dets' needs a detections file (dets=...)")
    return FileDetections(dets, min_score)


@DETECTORS.register("mog2")
class MOG2Detector:
    """Moving objects in front of a static camera.  The first frame only starts the
    background model and gives no detections.

    Args:
        history: frames the background model remembers.
        var_threshold: squared Mahalanobis distance for a pixel to be foreground.
        min_area: smallest box area in pixels.
        kernel: size of the square structuring element of the opening and closing.
        detect_shadows: model shadows (they are then not foreground).
    """

    def __init__(self, history: int = 200, var_threshold: float = 16.0, min_area: int = 100,
                 kernel: int = 3, detect_shadows: bool = True) -> None:
        self.subtractor = cv2.createBackgroundSubtractorMOG2(history, var_threshold, detect_shadows)
        self.min_area = min_area
        self.kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel, kernel))
        self._started = False

    def __call__(self, frame: np.ndarray, number: int = 0) -> np.ndarray:
        mask = self.subtractor.apply(check_frame(frame))
        if not self._started:  # no background model yet: the first mask is meaningless (all
            self._started = True  # foreground for a black frame, i.e. one box over the whole frame)
            return np.empty((0, 5))
        mask = (mask == 255).astype(np.uint8)  # shadows are 127
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self.kernel)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self.kernel, iterations=2)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        rows = []
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            if w * h >= self.min_area:
                rows.append([x, y, w, h, mask[y:y + h, x:x + w].mean()])
        return np.array(rows, np.float64).reshape(-1, 5)


@DETECTORS.register("torchvision")
class TorchvisionDetector:
    """A torchvision detection model with weights from a local file.

    Args:
        weights: a state_dict file (``.pth`` or ``.safetensors``) of ``arch`` with
            ``num_classes`` classes, e.g. torchvision's COCO checkpoint saved beforehand.
        arch: a builder of ``torchvision.models.detection`` (see ``TORCHVISION_DETECTORS``).
        labels: class indices kept (COCO: 1 is person); ``None`` keeps all.
        score_threshold: smallest score kept.
    """

    def __init__(self, weights: str | os.PathLike, arch: str = "fasterrcnn_mobilenet_v3_large_320_fpn",
                 num_classes: int = 91, labels: tuple[int, ...] | None = (1,),
                 score_threshold: float = 0.5, device: str = "cpu") -> None:
        if arch not in TORCHVISION_DETECTORS:
            raise ValueError(f"arch: unknown detector {arch!r}; one of {', '.join(TORCHVISION_DETECTORS)}")
        if weights is None or not Path(weights).is_file():
            raise ValueError(f"weights: detector weights file {weights} does not exist "
                             f"(give a local state_dict of {arch}; nothing is downloaded)")
        builder = getattr(torchvision.models.detection, arch)
        model = builder(weights=None, weights_backbone=None, num_classes=num_classes)
        self.model = load_weights(model, weights).to(device).eval()
        self.labels, self.score_threshold, self.device = labels, score_threshold, device

    @torch.no_grad()
    def __call__(self, frame: np.ndarray, number: int = 0) -> np.ndarray:
        image = torch.from_numpy(np.ascontiguousarray(check_frame(frame))).permute(2, 0, 1).float().div(255)
        out = self.model([image.to(self.device)])[0]
        keep = out["scores"] >= self.score_threshold
        if self.labels is not None:
            keep &= torch.isin(out["labels"], torch.tensor(self.labels, device=out["labels"].device))
        boxes, scores = out["boxes"][keep].cpu().double().numpy(), out["scores"][keep].cpu().double().numpy()
        return np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2], scores]).reshape(-1, 5)


def make_detector(name: str | None = None, dets: str | os.PathLike | np.ndarray | None = None,
                  weights: str | os.PathLike | None = None, *, device: str = "cpu",
                  options: Mapping[str, Any] | None = None, **kwargs: Any) -> Detector:
    """A detector of :data:`DETECTORS` by name: ``"dets"`` (needs ``dets``, a MOT file),
    ``"mog2"`` or ``"torchvision"`` (needs ``weights``); ``None`` picks ``"dets"`` when
    ``dets`` is given, else ``"mog2"``.

    ``dets`` and ``weights`` when given, ``device`` where the detector runs a network, then
    ``kwargs`` and ``options`` (a mapping of further detector arguments, e.g. parsed from a
    command line; given last, they win) go to the detector's builder.  Raises ``ValueError``
    for an unknown name (naming the closest), an argument the detector does not take (listing
    those it does; ``dets`` for any but ``"dets"``, ``weights`` for any but
    ``"torchvision"``), a missing one, or a value of the wrong type (naming the argument).
    """
    if name is None:
        name = "dets" if dets is not None else "mog2"
    settings = {key: value for key, value in (("dets", dets), ("weights", weights)) if value is not None}
    if "device" in inspect.signature(DETECTORS.get(name)).parameters:
        settings["device"] = device
    settings.update(kwargs)
    settings.update(options or {})
    return DETECTORS.build(name, **settings)
