"""Map-style video datasets: one item per video, one or more clips sampled from it.

:class:`VideoDataset` is the one generic dataset.  Item ``i`` opens video ``i``, asks the
clip sampler for ``(K, clip_len)`` frame indices, decodes all of them in one
:meth:`VideoReader.read <deepvideo.io.VideoReader.read>` call, and applies the transform
to each clip.  It returns ``(clip, label, video_index)`` with ``clip`` ``(C, T, H, W)``
float32 for one view and ``(K, C, T, H, W)`` for several (clips times transform views).
A reader whose ``read`` gives a tuple of arrays (the ``(frames, flow)`` pairs of
:class:`deepvideo.flow.dataset.RGBFlowReader`) makes ``clip`` a tuple of such tensors,
one per part (``(rgb (3, T, H, W), flow (2, L, H, W))`` for a two-stream network).

The builders parse the usual annotation formats into ``(samples, classes)`` with a pure
``parse_*`` function (testable without any video) and wrap the result:

* :func:`folder_dataset`: ``root/<class>/<video>``, classes sorted.
* :func:`list_dataset`: a text file of ``path label`` lines.
* :func:`ucf101`: the official ``classInd.txt`` / ``trainlist0N.txt`` / ``testlist0N.txt``.
* :func:`hmdb51`: the official ``<class>_test_splitN.txt`` files.
* :func:`kinetics_csv`: the Kinetics csv (``label,youtube_id,time_start,time_end,split``).

Labels are checked when a dataset is built, not when a metric first meets them: a list file's
label must lie in ``[0, len(classes))`` or, without a class list, below :data:`MAX_CLASSES`;
Kinetics time ranges must be finite with ``0 <= time_start < time_end <= MAX_SECONDS``.

Randomness is keyed on ``(seed, epoch, index)``, so an item is the same whatever the
number of DataLoader workers or the order they run in.  A video that cannot be decoded
is skipped with a :class:`BadVideoWarning`, replaced by another video and counted in a
shared-memory flag tensor that the main process can read after workers have set it.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from deepvideo.io import PACKED_SUFFIX, VideoDecodeError, VideoTooShortError, is_frame_folder, open_video
from deepvideo.io.open import AnyReader
from deepvideo.io.text import read_text

if TYPE_CHECKING:
    from deepvideo.data.sampling import ClipSampler

__all__ = [
    "BadVideoWarning", "EpochDataset", "MAX_CLASSES", "MAX_SECONDS", "VIDEO_EXTENSIONS", "VideoDataset", "find_videos",
    "folder_dataset", "hmdb51", "kinetics_csv", "list_dataset", "parse_folder", "parse_hmdb51",
    "parse_kinetics_csv", "parse_list_file", "parse_ucf101", "ucf101",
]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg",
                    ".ogv", ".flv", ".wmv", ".3gp")
MAX_CLASSES = 100_000  # most classes a dataset may have (a stray label would otherwise size the model)
MAX_SECONDS = 1_000_000.0  # latest time of a Kinetics row (over 11 days: longer than any video)

Samples = list[tuple[Path, int]]
Frames = np.ndarray | tuple[np.ndarray, ...]
Clip = torch.Tensor | tuple[torch.Tensor, ...]
Transform = Callable[[Frames, np.random.Generator], Clip]
PathLike = str | os.PathLike
Opener = Callable[[Path, int], AnyReader]


class BadVideoWarning(UserWarning):
    """A video was skipped because it could not be decoded."""


class EpochDataset(Dataset):
    """A dataset whose samples depend on the epoch (``self.epoch``, set by the engine through
    ``set_epoch``).  The number lives in shared memory, so that setting it in the main process
    reaches persistent DataLoader workers (forked or spawned) too.  Subclasses call
    ``super().__init__()``."""

    def __init__(self) -> None:
        self.shared_epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        return int(self.shared_epoch)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's random stream (reaches persistent workers too)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.shared_epoch.fill_(epoch)


class VideoDataset(EpochDataset):
    """Videos with labels; item ``i`` is ``(clip, label, video_index)``.

    Args:
        samples: ``(path, label)`` pairs, labels in ``[0, len(classes))``.
        classes: class names; ``classes[label]`` names a label.
        sampler: a clip sampler, ``sampler(num_frames, rng) -> (K, clip_len)`` int64
            frame indices (see :mod:`deepvideo.data.sampling`).
        transform: ``transform(frames, rng)`` maps one clip's ``(T, H, W, 3)`` uint8
            frames to a ``(C, T, H, W)`` float32 tensor, or ``(V, C, T, H, W)`` for a
            multi-view transform (see :func:`deepvideo.data.transforms.build_transform`);
            for a tuple-reading opener (below), the tuple of the clip's parts to a tuple of
            such tensors (:func:`~deepvideo.data.transforms.build_pair_transform`).
        seed: base seed (non-negative); item ``i`` in epoch ``e`` draws from
            ``np.random.default_rng([seed, e, i])``.
        time_ranges: per sample ``(start, end)`` seconds or ``None``; frames are sampled
            only from ``[start, end)`` (an untrimmed Kinetics video, for example).
        decode_threads: decoder threads per item (1 suits DataLoader workers).
        opener: ``opener(path, threads)`` returns the context-managed reader of a video
            (``num_frames``, ``frame_times``, ``duration``, ``read(indices)``); default
            :func:`~deepvideo.io.open_video` (video files, frame folders, packed videos).  A
            reader of other per-frame data (the optical flow of
            :class:`deepvideo.flow.dataset.FlowOpener`, say) makes the same dataset serve
            that data; its ``read`` gives what ``transform`` takes.  A ``read`` that returns
            a tuple of ``(N, ...)`` arrays (:class:`~deepvideo.flow.dataset.RGBFlowReader`'s
            ``(frames, flow)``) gives each clip to ``transform`` as the tuple of its parts,
            all at the same sampled indices.

    The returned clip is ``(C, T, H, W)`` when the sampler gives one clip and the
    transform one view, else ``(K, C, T, H, W)`` with all clips' views along ``K``; for a
    transform that returns a tuple of tensors, a tuple of such tensors, stacked part by part.
    ``video_index`` is the index of the video actually used (a replacement's index when
    video ``i`` could not be decoded).

    A video whose reader raises :class:`VideoDecodeError` (missing, corrupt, truncated, or
    :class:`VideoTooShortError`: no frame in its time range) is skipped with a
    :class:`BadVideoWarning` naming the file and the cause, flagged so that it is never
    tried again, and replaced by a video drawn from ``default_rng([seed, e, i, 0])``; the
    ``k``-th replacement samples its clip with ``default_rng([seed, e, i, k])``.  Flags
    live in shared memory, so :meth:`bad_videos` and :attr:`num_bad` in the main process
    count what DataLoader workers found.  Any other exception (a bug in the sampler, the
    transform or the opener) propagates.
    """

    def __init__(self, samples: Sequence[tuple[PathLike, int]], classes: Sequence[str],
                 sampler: ClipSampler, transform: Transform, seed: int = 0,
                 time_ranges: Sequence[tuple[float, float] | None] | None = None,
                 decode_threads: int = 1, opener: Opener | None = None) -> None:
        if not samples:
            raise ValueError("VideoDataset: no samples")
        if seed < 0:
            raise ValueError(f"VideoDataset: seed must be >= 0, got {seed}")
        self.paths = [Path(path) for path, _ in samples]
        self.labels = [int(label) for _, label in samples]
        self.classes = list(classes)
        if len(self.classes) > MAX_CLASSES:
            raise ValueError(f"VideoDataset: {len(self.classes)} classes, more than MAX_CLASSES ({MAX_CLASSES})")
        for path, label in zip(self.paths, self.labels):
            if not 0 <= label < len(self.classes):
                raise ValueError(f"{path}: label {label} outside [0, {len(self.classes)})")
        if time_ranges is not None and len(time_ranges) != len(samples):
            raise ValueError(f"VideoDataset: {len(time_ranges)} time ranges for "
                             f"{len(samples)} samples")
        self.time_ranges = list(time_ranges) if time_ranges is not None else None
        self.sampler = sampler
        self.transform = transform
        self.seed = int(seed)
        self.decode_threads = decode_threads
        self.opener = opener or open_video
        # Shared memory: workers (forked or spawned) and the main process see one copy.
        self._bad = torch.zeros(len(samples), dtype=torch.bool).share_memory_()
        super().__init__()

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return (f"VideoDataset({len(self)} videos, {len(self.classes)} classes, "
                f"sampler={self.sampler!r})")

    @property
    def num_bad(self) -> int:
        """How many videos were found undecodable so far (in any worker)."""
        return int(self._bad.sum())

    def mark_bad(self, indices: Sequence[int]) -> None:
        """Flag videos as unreadable without trying them (e.g. when resuming a run)."""
        self._bad[list(indices)] = True

    def bad_indices(self) -> list[int]:
        """Indices of the videos found undecodable so far (in any worker)."""
        return torch.nonzero(self._bad).flatten().tolist()

    def bad_videos(self) -> list[Path]:
        """Paths of the videos found undecodable so far (in any worker)."""
        return [self.paths[i] for i in self.bad_indices()]

    def __getitem__(self, index: int) -> tuple[Clip, int, int]:
        """``(clip, label, video_index)``: clip ``(C,T,H,W)`` or ``(K,C,T,H,W)`` float32 (or a
        tuple of those, one per part of a tuple-reading opener)."""
        if not 0 <= index < len(self):
            raise IndexError(f"video index {index} out of range ({len(self)} videos)")
        key = [self.seed, self.epoch, index]
        target, rng = index, np.random.default_rng(key)
        tried: set[int] = set()
        chooser = None
        while (clips := self._read_clips(target, rng)) is None:
            tried.add(target)
            if bool(self._bad.all()):
                raise VideoDecodeError(f"none of the {len(self)} videos could be decoded "
                                       f"(first: {self.paths[0]})")
            chooser = chooser or np.random.default_rng([*key, 0])
            while target in tried:  # bad videos are bad for every worker: deterministic
                target = int(chooser.integers(len(self)))
            rng = np.random.default_rng([*key, len(tried)])
        return self.make_item(clips, target, rng)

    def make_item(self, clips: list[Frames], target: int, rng: np.random.Generator) -> tuple[Any, int, int]:
        """The item made of video ``target``'s sampled ``clips`` (decoded frames): by default
        ``(the transformed clips stacked, its label, target)``.  A subclass that builds other
        samples from the same reads (a self-supervised pretext task) overrides this."""
        views = [self.transform(clip, rng) for clip in clips]
        return _stack_views(views), self.labels[target], target

    def _read_clips(self, i: int, rng: np.random.Generator) -> list[Frames] | None:
        """Video ``i``'s ``K`` sampled clips (each ``(clip_len, H, W, 3)`` uint8, or the tuple of
        a tuple-reading opener's parts); None if it is bad."""
        if self._bad[i]:
            return None
        try:
            with self.opener(self.paths[i], self.decode_threads) as reader:
                first, count = self._frame_span(i, reader)
                indices = np.asarray(self.sampler(count, rng), dtype=np.int64) + first
                # One read for all clips: the reader decodes each wanted frame once.
                frames = reader.read(indices.reshape(-1))
        except VideoDecodeError as exc:
            self._mark_bad(i, exc)
            return None
        if isinstance(frames, tuple):
            parts = [part.reshape(*indices.shape, *part.shape[1:]) for part in frames]
            return list(zip(*parts))
        return list(frames.reshape(*indices.shape, *frames.shape[1:]))

    def _frame_span(self, i: int, reader: AnyReader) -> tuple[int, int]:
        """First frame and frame count of the part of video ``i`` to sample from."""
        span = self.time_ranges[i] if self.time_ranges is not None else None
        if span is None:
            return 0, reader.num_frames
        lo, hi = np.searchsorted(reader.frame_times, span, side="left").tolist()
        if hi <= lo:
            raise VideoTooShortError(f"{reader.path}: no frame in [{span[0]}, {span[1]}) s (the video has "
                                     f"{reader.num_frames} frames, {reader.duration:.2f} s)")
        return lo, hi - lo

    def _mark_bad(self, i: int, exc: BaseException) -> None:
        """Flag video ``i`` and warn (once: a flagged video is never opened again)."""
        self._bad[i] = True
        cause = str(exc).removeprefix(f"{self.paths[i]}: ")
        warnings.warn(f"{self.paths[i]}: cannot be decoded, skipped and replaced "
                      f"({type(exc).__name__}: {cause})", BadVideoWarning, stacklevel=4)


def _stack_views(views: list[Clip]) -> Clip:
    """Clips' views (each ``(C,T,H,W)`` or ``(V,C,T,H,W)``) -> ``(C,T,H,W)`` or ``(K,C,T,H,W)``;
    tuples of such tensors are stacked part by part."""
    if isinstance(views[0], tuple):
        return tuple(_stack_views(list(part)) for part in zip(*views))
    clip = torch.cat([v.unsqueeze(0) if v.dim() == 4 else v for v in views])
    return clip[0] if len(clip) == 1 else clip


# ---------------------------------------------------------------------------- parsing


def _lines(path: Path, comments: bool = False) -> Iterator[tuple[int, str]]:
    """``(line number, stripped text)`` of a text file, skipping blank lines and, with
    ``comments``, lines starting with ``#`` (not in the official split files: HMDB51
    has videos named ``#20_Rhythm_clap_u_nm_np1_fr_goo_0.avi``)."""
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    # universal newlines (as open() reads text): CRLF and CR files read alike
    for number, line in enumerate(io.StringIO(read_text(path), newline=None), start=1):
        text = line.strip()
        if text and not (comments and text.startswith("#")):
            yield number, text


def _integer(text: str) -> int | None:
    """``text`` as an integer when it is one in ASCII digits (optional sign, at most 18 digits)."""
    return int(text) if re.fullmatch(r"[+-]?[0-9]{1,18}", text) else None


def parse_folder(root: PathLike, extensions: Sequence[str] = VIDEO_EXTENSIONS,
                 classes: Sequence[str] | None = None) -> tuple[Samples, list[str]]:
    """Class-per-folder tree ``root/<class>/**/<video>``: ``(samples, sorted classes)``.

    ``classes`` fixes the class list (the training set's, so that a validation tree that
    lacks a class keeps the same labels); a folder not in it is a ``ValueError``.

    Videos (searched recursively) are the files whose suffix is in ``extensions``
    (case-insensitive), packed videos (``.tar``, see ``deepvideo pack``) and frame folders
    (folders of images, one per frame); hidden class folders and files
    (``.ipynb_checkpoints``, macOS ``._clip.mp4``) are left out.  Raises ``ValueError``
    for a missing root or one without videos.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: no such folder")
    folders = sorted(d.name for d in root.iterdir() if d.is_dir() and d.name[0] != ".")
    if classes is None:
        classes = folders
    elif unknown := sorted(set(folders) - set(classes)):
        raise ValueError(f"{root / unknown[0]}: folder is not one of the {len(classes)} "
                         f"given classes")
    samples = [(path, label) for label, name in enumerate(classes)
               for path in find_videos(root / name, extensions)]
    if not samples:
        raise ValueError(f"{root}: no videos ({', '.join(sorted(_video_suffixes(extensions)))}) in "
                         f"class folders root/<class>/")
    return samples, list(classes)


def _video_suffixes(extensions: Sequence[str]) -> set[str]:
    """``extensions`` as lower-case suffixes with the dot, plus the packed suffix."""
    return {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions} | {PACKED_SUFFIX}


def find_videos(folder: PathLike, extensions: Sequence[str] = VIDEO_EXTENSIONS) -> list[Path]:
    """Every source :func:`~deepvideo.io.open_video` reads under ``folder`` (recursively),
    sorted: files whose suffix is in ``extensions`` (case-insensitive), packed videos
    (``.tar``) and frame folders (:func:`~deepvideo.io.is_frame_folder`; their images are
    frames, not searched further).  ``folder`` itself is never taken as a frame folder;
    hidden files and folders are left out."""
    folder, suffixes = Path(folder), _video_suffixes(extensions)
    found = []
    for parent, dirs, files in os.walk(folder):
        here = Path(parent)
        if here != folder and is_frame_folder(here):
            found.append(here)
            dirs.clear()
            continue
        dirs[:] = [d for d in dirs if d[0] != "."]
        found += [here / f for f in files if f[0] != "." and Path(f).suffix.lower() in suffixes]
    return sorted(found)


def parse_list_file(list_file: PathLike, root: PathLike | None = None,
                    classes: Sequence[str] | None = None) -> tuple[Samples, list[str]]:
    """A list of ``path label`` lines (integer 0-based label): ``(samples, classes)``.

    Relative paths are taken from ``root`` (default: the list file's folder); a path may
    hold spaces (the label is the last field).  Blank lines and ``#`` comment lines are
    skipped (write ``./#name.mp4`` for a file whose name starts with ``#``).  ``classes``
    defaults to ``["0", ..., str(max label)]``.  Raises ``ValueError`` naming the file
    and line for a malformed line or a label outside ``[0, len(classes))`` (without
    ``classes``: outside ``[0, MAX_CLASSES)``).
    """
    list_file = Path(list_file)
    root = Path(root) if root is not None else list_file.parent
    limit = len(classes) if classes is not None else MAX_CLASSES
    samples = []
    for number, text in _lines(list_file, comments=True):
        parts = text.rsplit(maxsplit=1)
        label = _integer(parts[1]) if len(parts) == 2 else None
        if label is None:
            raise ValueError(f"{list_file}:{number}: expected 'path label', got {text!r}")
        if not 0 <= label < limit:
            has = (f"the dataset has {limit} classes" if classes is not None else
                   f"labels are 0-based class indices, at most MAX_CLASSES = {MAX_CLASSES} classes")
            raise ValueError(f"{list_file}:{number}: label {label} outside [0, {limit}) ({has})")
        samples.append((root / parts[0], label))
    if not samples:
        raise ValueError(f"{list_file}: no entries")
    if classes is None:
        classes = [str(i) for i in range(max(label for _, label in samples) + 1)]
    return samples, list(classes)


def _check_split(split: int) -> None:
    if split not in (1, 2, 3):
        raise ValueError(f"split must be 1, 2 or 3, got {split}")


def parse_ucf101(root: PathLike, split_dir: PathLike, split: int = 1, train: bool = True
                 ) -> tuple[Samples, list[str]]:
    """UCF101 official split files -> ``(samples, classes)`` with 0-based labels.

    ``split_dir`` holds ``classInd.txt`` (``"1 ApplyEyeMakeup"``, 1-based),
    ``trainlist0N.txt`` (``"ApplyEyeMakeup/v_..._c01.avi 1"``, 1-based label) and
    ``testlist0N.txt`` (path only: the label comes from the class folder).  Videos are
    at ``root/<class>/<video>``.  CRLF line endings are accepted.
    """
    _check_split(split)
    split_dir, root = Path(split_dir), Path(root)
    index_file = split_dir / "classInd.txt"
    classes: list[str] = []
    for number, text in _lines(index_file):
        parts = text.split()
        if len(parts) != 2 or parts[0] != str(len(classes) + 1):
            raise ValueError(f"{index_file}:{number}: expected '{len(classes) + 1} "
                             f"ClassName', got {text!r}")
        classes.append(parts[1])
    label_of = {name: label for label, name in enumerate(classes)}
    list_file = split_dir / f"{'train' if train else 'test'}list{split:02d}.txt"
    samples = []
    for number, text in _lines(list_file):
        parts = text.split()
        folder = parts[0].split("/")[0] if "/" in parts[0] else None
        index = _integer(parts[1]) if len(parts) == 2 else None
        if index is not None and 1 <= index <= len(classes):
            label = index - 1
            if folder is not None and label_of.get(folder, label) != label:
                raise ValueError(f"{list_file}:{number}: label {parts[1]} is not the index "
                                 f"of class folder {folder!r} in {index_file}")
        elif len(parts) == 1 and folder in label_of:
            label = label_of[folder]
        else:
            raise ValueError(f"{list_file}:{number}: expected '<Class>/<video> [1-based label]' "
                             f"with a class of {index_file}, got {text!r}")
        samples.append((root / parts[0], label))
    if not samples:
        raise ValueError(f"{list_file}: no entries")
    return samples, classes


def parse_hmdb51(root: PathLike, split_dir: PathLike, split: int = 1, train: bool = True
                 ) -> tuple[Samples, list[str]]:
    """HMDB51 official split files -> ``(samples, sorted classes)``.

    ``split_dir`` holds ``<class>_test_split<N>.txt`` with lines ``"video.avi 1|2|0"``
    (1 = train, 2 = test, 0 = unused).  Videos are at ``root/<class>/<video>``.
    """
    _check_split(split)
    split_dir, root = Path(split_dir), Path(root)
    suffix = f"_test_split{split}.txt"
    files = {f.name.removesuffix(suffix): f
             for f in (split_dir.glob(f"*{suffix}") if split_dir.is_dir() else [])}
    if not files:
        raise ValueError(f"{split_dir}: no HMDB51 split files '<class>{suffix}'")
    classes = sorted(files)  # by class name: "climb" before "climb_stairs"
    wanted = "1" if train else "2"
    samples = []
    for label, name in enumerate(classes):
        split_file = files[name]
        for number, text in _lines(split_file):
            parts = text.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise ValueError(f"{split_file}:{number}: expected 'video.avi 0|1|2', "
                                 f"got {text!r}")
            if parts[1] == wanted:
                samples.append((root / name / parts[0], label))
    if not samples:
        raise ValueError(f"{split_dir}: no videos marked {'train (1)' if train else 'test (2)'} "
                         f"in the split {split} files")
    return samples, classes


_KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")


def parse_kinetics_csv(csv_file: PathLike, root: PathLike, split: str | None = None
                       ) -> tuple[Samples, list[str], list[tuple[float, float] | None]]:
    """Kinetics csv -> ``(samples, sorted classes, time_ranges)``.

    The csv has the header ``label,youtube_id,time_start,time_end,split`` (extra columns
    are ignored); ``split`` keeps only the rows of that split.  Classes are the sorted
    labels of every row of the file, so train and validation files agree.

    Each row's video is looked up, first match wins, as

    1. a trimmed clip ``<id>_<start:06d>_<end:06d>.mp4`` (ActivityNet crawler name) at
       ``root/<split>/<label>/``, ``root/<split>/<label with _ for spaces>/``,
       ``root/<split>/`` or ``root/``: the file already is the action, no time range;
    2. the full YouTube video ``root/<id>.mp4``: its time range is
       ``[time_start, time_end)`` seconds.

    A row with neither keeps the first trimmed-clip path (the builder reports missing
    files).  Raises ``ValueError`` naming the file and line for a missing column, a row
    without label, youtube_id or split, or a time range that is not two numbers with
    ``0 <= time_start < time_end <= MAX_SECONDS`` (``inf`` and ``nan`` are refused).
    """
    csv_file, root = Path(csv_file), Path(root)
    if not csv_file.is_file():
        raise ValueError(f"{csv_file}: no such file")
    rows = []
    reader = csv.DictReader(io.StringIO(read_text(csv_file), newline=""))
    missing = [c for c in _KINETICS_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"{csv_file}:1: header lacks {', '.join(missing)} (expected "
                         f"{','.join(_KINETICS_COLUMNS)})")
    for row in reader:
        where = f"{csv_file}:{reader.line_num}"
        if not row["label"] or not row["youtube_id"] or row["split"] is None:
            raise ValueError(f"{where}: expected label, youtube_id, time_start, time_end and split, "
                             f"got {','.join(v for v in row.values() if isinstance(v, str))!r}")
        try:
            start, end = float(row["time_start"]), float(row["time_end"])
        except (TypeError, ValueError):
            start = end = math.nan
        if not 0 <= start < end <= MAX_SECONDS:
            raise ValueError(f"{where}: expected 0 <= time_start < time_end <= {MAX_SECONDS:g} seconds, got "
                             f"time_start={row['time_start']!r} time_end={row['time_end']!r}")
        rows.append((row["label"], row["youtube_id"], start, end, row["split"]))
    if not rows:
        raise ValueError(f"{csv_file}: no entries")
    classes = sorted({label for label, *_ in rows})
    label_of = {name: i for i, name in enumerate(classes)}
    samples, time_ranges = [], []
    for label, youtube_id, start, end, row_split in rows:
        if split is not None and row_split != split:
            continue
        name = f"{youtube_id}_{int(start):06d}_{int(end):06d}.mp4"
        clips = [root / row_split / label / name, root / row_split / label.replace(" ", "_") / name,
                 root / row_split / name, root / name]
        full = root / f"{youtube_id}.mp4"
        clip = next((p for p in clips if p.is_file()), None)
        if clip is None and full.is_file():
            samples.append((full, label_of[label]))
            time_ranges.append((start, end))
        else:
            samples.append((clip or clips[0], label_of[label]))
            time_ranges.append(None)
    if not samples:
        raise ValueError(f"{csv_file}: no rows of split {split!r}")
    return samples, classes, time_ranges


# --------------------------------------------------------------------------- builders


def _present(samples: Samples, time_ranges: list | None, source: Path
             ) -> tuple[Samples, list | None]:
    """Drop listed videos that do not exist, with one warning; all missing is an error."""
    keep = [i for i, (path, _) in enumerate(samples) if path.exists()]
    if not keep:
        raise ValueError(f"{source}: none of the {len(samples)} listed videos exists "
                         f"(first: {samples[0][0]})")
    if len(keep) < len(samples):
        first = next(p for p, _ in samples if not p.exists())
        warnings.warn(f"{source}: {len(samples) - len(keep)} of {len(samples)} listed videos "
                      f"are missing and skipped (first: {first})", BadVideoWarning, stacklevel=3)
    return ([samples[i] for i in keep],
            [time_ranges[i] for i in keep] if time_ranges is not None else None)


def folder_dataset(root: PathLike, classes: Sequence[str] | None = None, *,
                   sampler: ClipSampler, transform: Transform,
                   extensions: Sequence[str] = VIDEO_EXTENSIONS, **kw) -> VideoDataset:
    """:class:`VideoDataset` over ``root/<class>/<video>`` (see :func:`parse_folder`).

    ``kw`` goes to :class:`VideoDataset` (``seed``, ``decode_threads``, ``opener``).
    """
    samples, classes = parse_folder(root, extensions, classes)
    return VideoDataset(samples, classes, sampler, transform, **kw)


def list_dataset(list_file: PathLike, root: PathLike | None = None,
                 classes: Sequence[str] | None = None, *, sampler: ClipSampler,
                 transform: Transform, **kw) -> VideoDataset:
    """:class:`VideoDataset` over a ``path label`` list (see :func:`parse_list_file`)."""
    samples, classes = parse_list_file(list_file, root, classes)
    samples, _ = _present(samples, None, Path(list_file))
    return VideoDataset(samples, classes, sampler, transform, **kw)


def ucf101(root: PathLike, split_dir: PathLike, split: int = 1, train: bool = True, *,
           sampler: ClipSampler, transform: Transform, **kw) -> VideoDataset:
    """UCF101 (101 classes) over ``root/<class>/<video>.avi`` (see :func:`parse_ucf101`)."""
    samples, classes = parse_ucf101(root, split_dir, split, train)
    samples, _ = _present(samples, None, Path(split_dir))
    return VideoDataset(samples, classes, sampler, transform, **kw)


def hmdb51(root: PathLike, split_dir: PathLike, split: int = 1, train: bool = True, *,
           sampler: ClipSampler, transform: Transform, **kw) -> VideoDataset:
    """HMDB51 (51 classes) over ``root/<class>/<video>.avi`` (see :func:`parse_hmdb51`)."""
    samples, classes = parse_hmdb51(root, split_dir, split, train)
    samples, _ = _present(samples, None, Path(split_dir))
    return VideoDataset(samples, classes, sampler, transform, **kw)


def kinetics_csv(csv_file: PathLike, root: PathLike, split: str | None = None, *,
                 sampler: ClipSampler, transform: Transform, **kw) -> VideoDataset:
    """Kinetics from its csv (see :func:`parse_kinetics_csv` for the file layouts)."""
    samples, classes, time_ranges = parse_kinetics_csv(csv_file, root, split)
    samples, time_ranges = _present(samples, time_ranges, Path(csv_file))
    return VideoDataset(samples, classes, sampler, transform, time_ranges=time_ranges, **kw)
