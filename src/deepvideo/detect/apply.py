"""Detecting the actions of one long video: features on the fly, the detector, segments out.

:func:`detect_video` decodes the video in chunks through the backbone the detector's
features came from (:func:`deepvideo.engine.features.video_features`: only the feature rows
stay in memory, a few kB per second of video), runs the detector on the whole sequence, and
returns the segments; with ``video_out`` it writes the video again with the action of each
moment drawn on it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from typing import Any

import torch

from deepvideo.detect.annotations import Segment
from deepvideo.detect.train import Timeline, detect_features, load_detector
from deepvideo.engine.features import build_backbone, features_name, video_features
from deepvideo.io import open_video
from deepvideo.io.draw import draw_label
from deepvideo.io.encode import VideoWriter
from deepvideo.io.stream import LiveSource

__all__ = ["detect_video", "segments_to_csv"]


def detect_video(video: str | os.PathLike, checkpoint: str | os.PathLike, backbone: str, every: int | None = None,
                 size: int | None = None, clip_len: int = 16, weights: str | os.PathLike | None = None,
                 min_score: float = 0.1,
                 video_out: str | os.PathLike | None = None, device: torch.device | str = "cpu",
                 progress: bool = False) -> dict[str, Any]:
    """The actions in ``video`` found by the detector of ``checkpoint``.

    ``backbone`` (a checkpoint file or a model name, with ``size``, ``clip_len`` and its
    ``weights`` file for a name) and ``every`` must be those the detector's training features were extracted with
    (:func:`~deepvideo.engine.features.build_backbone`); another is a ``ValueError`` naming
    both.  Returns ``{"video", "duration", "segments": [{"label", "score", "segment": [s, e]}]}``
    (seconds, best score first, scores ``>= min_score``: the ActivityNet result entry of one
    video).
    """
    model, info = load_detector(checkpoint, device)
    extractor = build_backbone(str(backbone), weights=weights, size=size, clip_len=clip_len)
    name = features_name(extractor, every)
    if name != info["backbone"]:
        raise ValueError(f"{checkpoint}: trained on features of {info['backbone']!r}; --backbone {backbone} "
                         f"gives {name!r}")
    extractor.net.to(device)
    features, times = video_features(video, extractor, every=every, device=device, progress=progress)
    segments = [s for s in detect_features(model, features, Timeline.of(times), info["classes"], device)
                if s.score >= min_score]
    if video_out is not None:
        write_labelled(video, segments, video_out)
    with open_video(video) as reader:
        duration = round(reader.duration, 3)
    return {"video": str(video), "duration": duration,
            "segments": [{"label": s.label, "score": round(s.score, 4), "segment": [round(s.start, 3), round(s.end, 3)]}
                         for s in segments]}


def write_labelled(video: str | os.PathLike, segments: list[Segment], out: str | os.PathLike) -> None:
    """``video`` again at ``out`` (h264), each frame labelled with the best-scoring segment
    that covers its time (none: unlabelled)."""
    by_score = sorted(segments, key=lambda s: -s.score)
    with LiveSource(video) as source, contextlib.ExitStack() as stack:
        sink = stack.enter_context(VideoWriter(out, source.fps, source.width, source.height))
        for frame in source:
            current = next((s for s in by_score if s.start <= frame.time < s.end), None)
            sink.write(draw_label(frame.image, f"{current.label} {current.score:.2f}" if current else ""))


def segments_to_csv(segments: list[dict[str, Any]]) -> str:
    """Rows ``start, end, label, score`` of :func:`detect_video`'s segments, with a header."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["start", "end", "label", "score"])
    for entry in segments:
        writer.writerow([*entry["segment"], entry["label"], entry["score"]])
    return out.getvalue()
