"""Using the joint video-text space: zero-shot classification from class names, text-to-video
and video-to-text retrieval metrics, and search.

Zero-shot classification follows CLIP (Radford et al., ICML 2021): each class name is put into
several prompt templates (``"a video of {}"``, ...), the unit text embeddings of its prompts are
averaged and renormalised into the class's embedding, and a video goes to the class of highest
cosine similarity -- no training on those labels (ActionCLIP, Wang et al. 2021, recognises
actions the same way).

Retrieval follows the MSR-VTT protocol of the video-text literature (CLIP4Clip's
``compute_metrics``): for each query, the rank of its first relevant candidate among all
candidates sorted by similarity (1 = first; ties with irrelevant candidates are broken in the
query's favour), R@K = the fraction of queries whose rank is at most K (fractions here, where
papers print percentages), and the median and mean rank.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from deepvideo.data.datasets import VideoDataset, find_videos, parse_folder
from deepvideo.data.sampling import UniformClipSampler
from deepvideo.data.transforms import build_transform
from deepvideo.language.model import ClipSpec, DualEncoder, load_clip_checkpoint
from deepvideo.language.text import Tokenizer

__all__ = ["TEMPLATES", "class_embeddings", "embed_texts", "embed_videos", "match_labels", "retrieval_metrics",
           "search_videos", "zero_shot_accuracy"]

TEMPLATES = ("a video of {}", "a video of an object {}", "a shape {}", "something {}")


def retrieval_metrics(similarity: torch.Tensor | np.ndarray, relevant: torch.Tensor | np.ndarray | Sequence[int]
                      ) -> dict[str, float]:
    """R@1, R@5, R@10, median and mean rank of ``similarity`` ``(Q, N)`` (query ``q``'s score for
    candidate ``n``).  ``relevant``: the index of each query's one correct candidate ``(Q,)``, or a
    boolean ``(Q, N)`` matrix (several correct candidates: a video's captions); a query's rank is
    1 + the number of irrelevant candidates scoring strictly above its best relevant one."""
    scores = np.asarray(similarity.detach().cpu() if isinstance(similarity, torch.Tensor) else similarity, float)
    if scores.ndim != 2 or not scores.size:
        raise ValueError(f"similarity must be a non-empty (queries, candidates) matrix, got shape {scores.shape}")
    relevant = np.asarray(relevant.cpu() if isinstance(relevant, torch.Tensor) else relevant)
    if relevant.ndim == 1:
        if len(relevant) != len(scores) or relevant.min() < 0 or relevant.max() >= scores.shape[1]:
            raise ValueError(f"relevant: need one candidate index in [0, {scores.shape[1]}) per query "
                             f"({len(scores)}), got {len(relevant)}")
        mask = np.zeros(scores.shape, bool)
        mask[np.arange(len(scores)), relevant] = True
    else:
        mask = relevant.astype(bool)
        if mask.shape != scores.shape or not mask.any(axis=1).all():
            raise ValueError(f"relevant: a {scores.shape} mask with a relevant candidate in every row is needed")
    best = np.where(mask, scores, -np.inf).max(axis=1)
    ranks = 1 + (np.where(mask, -np.inf, scores) > best[:, None]).sum(axis=1)
    return {"r1": float(np.mean(ranks <= 1)), "r5": float(np.mean(ranks <= 5)), "r10": float(np.mean(ranks <= 10)),
            "median_rank": float(np.median(ranks)), "mean_rank": float(np.mean(ranks)),
            "queries": int(scores.shape[0]), "candidates": int(scores.shape[1])}


@torch.no_grad()
def embed_videos(model: DualEncoder, spec: ClipSpec, paths: Sequence[str | os.PathLike],
                 device: str | torch.device = "cpu", batch_size: int = 16,
                 progress: bool = False) -> tuple[torch.Tensor, list[Path], list[Path]]:
    """Unit embeddings ``(N, E)`` of the centre clip of each video (``spec``'s evaluation
    pipeline), the ``N`` videos embedded and those skipped (undecodable: warned about)."""
    paths = [Path(path) for path in paths]
    transform = build_transform(False, spec.size, spec.resize, spec.mean, spec.std)
    dataset = VideoDataset([(path, 0) for path in paths], ["video"], UniformClipSampler(spec.clip_len, 1,
                           spec.frame_stride), transform)
    rows, used, position = [], [], 0
    model.eval()
    for clips, _, index in tqdm(DataLoader(dataset, batch_size=batch_size), desc="embedding videos", unit="batch",
                                disable=not progress, leave=False):
        requested = torch.arange(position, position + len(index))
        position += len(index)
        keep = index == requested  # an undecodable video's item is another video: left out
        if keep.any():
            rows.append(model.encode_video(clips[keep].to(device)).cpu())
            used += [paths[i] for i in requested[keep].tolist()]
    skipped = [path for path in paths if path not in set(used)]
    return (torch.cat(rows) if rows else torch.zeros(0, spec.embed_dim)), used, skipped


@torch.no_grad()
def embed_texts(model: DualEncoder, tokenizer: Tokenizer, texts: Sequence[str], device: str | torch.device = "cpu"
                ) -> torch.Tensor:
    """Unit text embeddings ``(N, E)``."""
    model.eval()
    return model.encode_text(tokenizer(texts).to(device)).cpu()


def class_embeddings(model: DualEncoder, tokenizer: Tokenizer, labels: Sequence[str],
                     templates: Sequence[str] = TEMPLATES, device: str | torch.device = "cpu") -> torch.Tensor:
    """CLIP's zero-shot classifier ``(C, E)``: per label, the renormalised mean of the unit
    embeddings of ``template.format(label)`` over ``templates``."""
    if not labels:
        raise ValueError("labels: the list is empty; give one text per class")
    if not templates or any("{}" not in template for template in templates):
        raise ValueError(f"templates: need one or more, each with a {{}} for the label, got {list(templates)}")
    prompts = [template.format(label) for label in labels for template in templates]
    embeddings = embed_texts(model, tokenizer, prompts, device).reshape(len(labels), len(templates), -1).mean(1)
    return torch.nn.functional.normalize(embeddings, dim=-1)


def match_labels(labels: Sequence[str], folders: Sequence[str]) -> list[str]:
    """The label text of each class folder, from ``labels``: ``FOLDER=TEXT`` items, or a plain
    ``TEXT`` that names exactly one folder (equal to it, or one of its words is the folder name:
    ``moving left`` for ``left``).  ``ValueError`` naming the item or folder for an empty list,
    an empty, unmatched, ambiguous or repeated item, or a folder left without a label."""
    items = [label.strip() for label in labels]
    if not items:
        raise ValueError("labels: the list is empty; give one text per class folder, e.g. 'moving left,moving right'")
    texts: dict[str, str] = {}
    for item in items:
        folder, sep, text = item.partition("=")
        if sep:
            folder, text = folder.strip(), text.strip()
            if folder not in folders:
                raise ValueError(f"labels: {item!r} names the folder {folder!r}, not one of {', '.join(folders)}")
        else:
            text = item
            words = item.replace("_", " ").split()
            found = [name for name in folders if name == item or name in words]
            if len(found) != 1:
                why = "no class folder" if not found else f"several class folders ({', '.join(found)})"
                raise ValueError(f"labels: {item!r} names {why} of {', '.join(folders)}; write FOLDER=TEXT")
            folder = found[0]
        if not text:
            raise ValueError(f"labels: {item!r} has no text")
        if folder in texts:
            raise ValueError(f"labels: two labels for the folder {folder!r} ({texts[folder]!r}, {text!r})")
        texts[folder] = text
    missing = [name for name in folders if name not in texts]
    if missing:
        raise ValueError(f"labels: no label for the class folder {missing[0]!r} ({len(missing)} without one)")
    return [texts[name] for name in folders]


def zero_shot_accuracy(checkpoint: str | os.PathLike, data: str | os.PathLike, labels: Sequence[str],
                       templates: Sequence[str] = TEMPLATES, device: str = "cpu", batch_size: int = 16,
                       progress: bool = False) -> dict[str, Any]:
    """Zero-shot video accuracy of a trained dual encoder on the labelled folder ``data``
    (``data/<class>/<video>``), each class named by its text in ``labels`` (:func:`match_labels`)
    and classified from the prompts ``templates``.  Returns ``accuracy``, ``videos``,
    ``chance`` (1 / classes), ``per_class`` ``{folder: accuracy}``, ``labels`` ``{folder: text}``
    and ``skipped`` (undecodable videos)."""
    if not labels:
        raise ValueError("labels: the list is empty; give one text per class folder")
    samples, folders = parse_folder(data)
    texts = match_labels(labels, folders)
    model, spec = load_clip_checkpoint(checkpoint, device)
    videos, used, skipped = embed_videos(model, spec, [path for path, _ in samples], device, batch_size, progress)
    if not used:
        raise ValueError(f"{data}: none of the {len(samples)} videos could be decoded")
    truth = dict((Path(path), label) for path, label in samples)
    targets = torch.tensor([truth[path] for path in used])
    classifier = class_embeddings(model, Tokenizer(spec.context_length), texts, templates, device)
    predicted = (videos @ classifier.T).argmax(1)
    correct = predicted == targets
    per_class = {folder: float(correct[targets == c].float().mean()) for c, folder in enumerate(folders)
                 if (targets == c).any()}
    return {"accuracy": float(correct.float().mean()), "videos": len(used), "chance": 1 / len(folders),
            "per_class": per_class, "labels": dict(zip(folders, texts)), "skipped": skipped}


def search_videos(checkpoint: str | os.PathLike, videos: str | os.PathLike, query: str, top: int = 5,
                  device: str = "cpu", batch_size: int = 16, progress: bool = False) -> dict[str, Any]:
    """The ``top`` videos under ``videos`` (recursively) closest to the text ``query``:
    ``{"results": [(path, cosine similarity), ...] best first, "searched": N, "skipped": [...]}``."""
    if not query.strip():
        raise ValueError("query: empty; give words describing the video")
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    paths = find_videos(videos)
    if not paths:
        raise ValueError(f"{videos}: no videos found")
    model, spec = load_clip_checkpoint(checkpoint, device)
    embeddings, used, skipped = embed_videos(model, spec, paths, device, batch_size, progress)
    if skipped:
        warnings.warn(f"{videos}: skipped {len(skipped)} undecodable videos (first: {skipped[0]})", stacklevel=2)
    if not used:
        raise ValueError(f"{videos}: none of the {len(paths)} videos could be decoded")
    scores = embeddings @ embed_texts(model, Tokenizer(spec.context_length), [query], device)[0]
    order = scores.argsort(descending=True)[:top]
    return {"results": [(used[int(i)], float(scores[i])) for i in order], "searched": len(used), "skipped": skipped}
