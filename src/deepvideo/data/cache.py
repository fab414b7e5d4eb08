"""Decoded-frame cache: decode and resize every training video once, then only sample from it.

On a small dataset every epoch decodes every video again, and a small model waits for its
input half of the time (``deepvideo demo``).  :class:`FrameCache` decodes each video once,
resizes its frames with the transform's own :class:`~deepvideo.data.transforms.ResizeShort`
and keeps them as ``(N, H, W, 3)`` uint8; every later epoch only samples, crops, flips and
converts.  It is an opener (``opener(path, threads) -> reader``, see
:class:`~deepvideo.data.datasets.VideoDataset`): the dataset, its sampler, its transform and
its handling of bad videos stay as they are, and random augmentation stays random per epoch
(the cache holds frames, not augmented clips).

Modes (:data:`CACHE_MODES`):

* ``"ram"``: all frames in one shared-memory tensor (below).
* ``"disk"``: one packed raw file per video (the format of ``deepvideo pack --format raw``,
  :mod:`deepvideo.io.packed`) in a cache folder, reused by later runs.  The folder records
  its settings (``deepvideo-cache.json``: resize and interpolation) and refuses to serve
  other ones (``ValueError``); each video has a ``.json`` record of its source's size and
  modification time and its frame times; a video changed since it was cached is decoded
  and cached again (counted in the summary line).
* ``"none"``: no cache, every read decodes.
* ``"auto"``: ``"ram"`` when the frames fit in :data:`RAM_SHARE` of the available memory
  (and in the free shared memory, ``/dev/shm``), else ``"none"``.  The size is estimated
  before decoding, from each video's frame count and resized frame size (``N * H * W * 3``
  bytes); reading the headers stops as soon as the running total exceeds the budget.

A cache that would not fit (``"ram"`` over the memory budget, ``"disk"`` over the free
disk space) is not made: the summary line says so and the data is decoded every epoch.

Same clips with and without the cache: the cached frames went through the transform's own
resize step, frame by frame (its kernel treats the frames of a clip independently, so this
gives the pixels that resizing a sampled clip gives); the transform's ``ResizeShort`` then
finds frames of its output size and returns them unchanged, and the sampler sees the same
frame count and frame times.  For the same seed the clips are bit-identical (tested on
generated videos and on the sample videos).

Sharing with DataLoader workers (``"ram"``): :meth:`FrameCache.fill` runs in the main process
before the DataLoader starts its workers.  It allocates one flat uint8 tensor for all videos
and moves it to shared memory (``share_memory_()``: one segment and one file descriptor,
whatever the number of videos), then decodes into it.  Workers see the same pages: a forked
worker inherits the shared mapping, a spawned one receives the segment's handle through
torch's pickling of shared tensors; nothing is copied per worker.  Readers are numpy views
of the tensor made on each ``open`` (the cache pickles only the tensor and small per-video
records), and ``read`` copies just the sampled frames.  Under ``torchrun`` every process
fills its own copy, so the budget is divided by ``LOCAL_WORLD_SIZE``.

Videos that fail to decode while the cache is filled are remembered with their error: the
cache's opener raises that :class:`~deepvideo.io.VideoDecodeError` again, so the dataset skips,
warns about and counts such a video exactly as without the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from tqdm import tqdm

from deepvideo.data.transforms import Compose, ResizeShort
from deepvideo.io import PackedReader, VideoDecodeError, open_video, write_packed
from deepvideo.io.atomic import atomic_write_text
from deepvideo.io.decode import checked_indices
from deepvideo.io.frames import DEFAULT_FPS

__all__ = ["CACHE_MODES", "CACHE_SETTINGS_FILE", "RAM_SHARE", "CachedReader", "FrameCache", "available_cores",
           "available_memory", "memory_budget", "resize_step"]

CACHE_MODES = ("auto", "ram", "disk", "none")
RAM_SHARE = 0.5  # "auto" caches in RAM when the frames take at most this share of the available memory
CACHE_SETTINGS_FILE = "deepvideo-cache.json"
_FORMAT, _VERSION = "deepvideo-frame-cache", 1
_CHUNK = 32  # frames decoded and resized at a time while filling
MB = 1e6

Opener = Callable[[Path, int], Any]


def available_memory() -> int:
    """Bytes of memory available to new allocations: ``MemAvailable`` of ``/proc/meminfo``
    (Linux), else the free physical pages."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, where the system has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _shared_memory_free() -> int | None:
    """Free bytes of ``/dev/shm`` (where shared tensors live on Linux); None where it is absent."""
    try:
        stat = os.statvfs("/dev/shm")
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


def memory_budget() -> int:
    """Bytes a RAM cache may take: :data:`RAM_SHARE` of :func:`available_memory`, divided among
    the processes of this machine (``LOCAL_WORLD_SIZE`` under ``torchrun``), at most the free
    shared memory."""
    copies = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    budget = int(RAM_SHARE * available_memory()) // copies
    shm = _shared_memory_free()
    return budget if shm is None else min(budget, shm // copies)


def resize_step(transform: Any) -> ResizeShort | None:
    """The transform's leading :class:`ResizeShort` (the step the cache applies once), or None
    when its first step is not one (an RGB pipeline built with ``resize=None``).

    Raises ``ValueError`` for a transform that is not a :class:`Compose` of frame steps (the
    cache holds decoded RGB frames: flow, rgb+flow and feature pipelines cannot use it)."""
    if not isinstance(transform, Compose) or not transform.transforms:
        raise ValueError(f"only RGB frame pipelines can be cached, not {transform!r}")
    first = transform.transforms[0]
    return first if type(first) is ResizeShort else None


@dataclass
class _Entry:
    """What the cache knows of one video: its resized frames' shape ``(N, H, W)``, timing, and
    where the frames are (``offset`` in the RAM tensor, or ``file`` in the cache folder)."""

    shape: tuple[int, int, int]
    frame_times: np.ndarray
    fps: float
    duration: float
    offset: int = 0
    file: str = ""

    @property
    def nbytes(self) -> int:
        n, h, w = self.shape
        return n * h * w * 3


class CachedReader:
    """A cached video's frames ``(N, H, W, 3)`` uint8 with the reader interface a
    :class:`~deepvideo.data.datasets.VideoDataset` uses: ``path`` (the source video),
    ``num_frames``, ``width``, ``height``, ``fps``, ``duration``, ``frame_times`` (the
    source's), ``read(indices) -> (T, H, W, 3)`` uint8 (a copy), context manager."""

    codec = "cached"

    def __init__(self, path: Path, frames: np.ndarray, entry: _Entry) -> None:
        self.path, self.frames = path, frames
        self.num_frames, self.height, self.width = frames.shape[:3]
        self.frame_times, self.fps, self.duration = entry.frame_times, entry.fps, entry.duration

    def read(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as ``(T, H, W, 3)`` uint8.
        Raises ``IndexError`` for an index outside ``[0, num_frames)``."""
        return self.frames[checked_indices(indices, self.num_frames, self.path)]

    def __len__(self) -> int:
        return self.num_frames

    def close(self) -> None:
        """Nothing to release (the frames belong to the cache)."""

    def __enter__(self) -> "CachedReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _CachedPackedReader(PackedReader):
    """A disk cache file read with its source video's frame times and duration."""

    def __init__(self, file: Path, entry: _Entry, threads: int) -> None:
        super().__init__(file, threads)
        if (self.num_frames, self.height, self.width) != tuple(entry.shape):
            self.close()
            raise VideoDecodeError(f"{file}: holds {self.num_frames} frames of {self.width}x{self.height}, its "
                                   f"record says {entry.shape[0]} of {entry.shape[2]}x{entry.shape[1]}: "
                                   f"delete the cache folder")
        self.frame_times, self.duration = entry.frame_times, entry.duration


class FrameCache:
    """An opener serving decoded, resized frames of videos decoded once (see the module docstring).

    Args:
        mode: one of :data:`CACHE_MODES`; :meth:`fill` settles ``"auto"`` into ``"ram"`` or
            ``"none"`` (and any mode into ``"none"`` when the cache would not fit).
        resize: the transform's :class:`ResizeShort` (:func:`resize_step`), applied once to every
            frame; None keeps the decoded size.
        cache_dir: the folder of the ``"disk"`` mode (required there, ignored otherwise).
        base: the opener of the source videos (default :func:`~deepvideo.io.open_video`).
        threads: videos decoded side by side while filling (0: one per available core).
        progress: show a progress bar while filling (after its first second).

    Before :meth:`fill`, and for the videos it was not given, the cache opens the source with
    ``base`` (as if there were no cache).
    """

    def __init__(self, mode: str, resize: ResizeShort | None, cache_dir: str | os.PathLike | None = None,
                 base: Opener = open_video, threads: int = 0, progress: bool = True) -> None:
        if mode not in CACHE_MODES:
            raise ValueError(f"must be one of {', '.join(CACHE_MODES)}, got {mode!r}")
        if mode == "disk" and cache_dir is None:
            raise ValueError("cache_dir: the disk cache needs a folder")
        if threads < 0:
            raise ValueError(f"threads must be >= 0, got {threads}")
        self.mode, self.resize, self.base = mode, resize, base
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.threads = threads or available_cores()
        self.progress = progress
        self.entries: dict[Path, _Entry] = {}
        self.errors: dict[Path, VideoDecodeError] = {}
        self.frames: torch.Tensor | None = None  # "ram": every video's frames, flat, in shared memory
        self.nbytes = 0

    def __repr__(self) -> str:
        return f"FrameCache({self.mode!r}, {len(self.entries)} videos, {self.nbytes / MB:.1f} MB)"

    @property
    def settings(self) -> dict[str, Any]:
        """What the cached frames depend on (stored in a disk cache folder)."""
        return {"format": _FORMAT, "version": _VERSION,
                "resize": self.resize.size if self.resize is not None else None,
                "interpolation": self.resize.interpolation if self.resize is not None else None}

    def _describe_resize(self) -> str:
        return f"short side {self.resize.size}" if self.resize is not None else "decoded size"

    # ------------------------------------------------------------------------- filling

    def fill(self, paths: Sequence[str | os.PathLike]) -> str:
        """Decode and cache the videos ``paths`` (in the calling process, before any DataLoader
        worker starts); returns a one-line summary: the mode used and the cache size in MB
        (``"ram (auto), 15.7 MB of decoded frames (...)"``), or why there is none.

        Raises ``ValueError`` for a disk cache folder made with other settings."""
        paths = [Path(p) for p in paths]
        if self.mode == "none":
            return "none (every epoch decodes its videos)"
        if self.mode == "disk":
            return self._fill_disk(paths)
        budget = memory_budget()
        shapes, nbytes = self._scan(paths, budget)
        asked = self.mode
        if nbytes > budget:
            self.mode = "none"
            scanned = "" if len(shapes) + len(self.errors) == len(paths) else (
                f" after {len(shapes)} of {len(paths)} videos")
            self.errors.clear()
            return (f"none ({asked}: the decoded frames would take more than {nbytes / MB:.1f} MB{scanned}, "
                    f"over the {budget / MB:.1f} MB allowed ({RAM_SHARE:.0%} of the available memory); "
                    f"every epoch decodes its videos)")
        self.mode = "ram"
        tic = time.perf_counter()
        self._fill_ram(shapes)
        return (f"ram ({asked}), {self.nbytes / MB:.1f} MB of decoded frames ({len(self.entries)} videos at "
                f"{self._describe_resize()}), filled in {time.perf_counter() - tic:.1f} s")

    def _map(self, function: Callable[[Path], Any], paths: Sequence[Path], desc: str) -> Iterator[tuple[Path, Any]]:
        """``(path, function(path))`` in order, ``self.threads`` at a time (decoders and resizing
        release the GIL), with a progress bar; a VideoDecodeError is recorded in ``errors``."""

        def run(path: Path) -> tuple[Path, Any]:
            try:
                return path, function(path)
            except VideoDecodeError as exc:
                return path, exc

        bar = tqdm(total=len(paths), desc=desc, unit="video", leave=False, disable=not self.progress, delay=1)
        pool = ThreadPoolExecutor(max(1, min(self.threads, len(paths))))
        try:
            for path, result in pool.map(run, paths):
                bar.update()
                if isinstance(result, VideoDecodeError):
                    self.errors[path] = result
                    continue
                yield path, result
        finally:  # a caller that stops early (the scan over budget) leaves the rest undone
            pool.shutdown(cancel_futures=True)
            bar.close()

    def _header(self, path: Path) -> _Entry:
        """A video's resized frame shape and timing, from its header (no frame decoded)."""
        with self.base(path, 1) as reader:
            height, width = int(reader.height), int(reader.width)
            if self.resize is not None:
                height, width = self.resize.output_size(height, width)
            return _Entry((int(reader.num_frames), height, width), np.array(reader.frame_times, np.float64),
                          float(reader.fps or DEFAULT_FPS), float(reader.duration))

    def _scan(self, paths: list[Path], budget: int) -> tuple[dict[Path, _Entry], int]:
        """Every video's :class:`_Entry` and their total bytes; stops once the total exceeds ``budget``."""
        shapes: dict[Path, _Entry] = {}
        total = 0
        for path, entry in self._map(self._header, paths, "cache: reading video headers"):
            shapes[path] = entry
            total += entry.nbytes
            if total > budget:
                break
        return shapes, total

    def _frames(self, path: Path, entry: _Entry) -> Iterator[np.ndarray]:
        """A video's frames decoded and resized, ``(n, H, W, 3)`` uint8 chunks in order; a
        VideoDecodeError when they are not the ``entry.shape`` its header announced."""
        with self.base(path, 1) as reader:
            chunk: list[np.ndarray] = []
            count = 0
            for frame in reader:
                chunk.append(frame)
                if len(chunk) == _CHUNK:
                    count += len(chunk)
                    yield self._resized(path, np.stack(chunk), entry)
                    chunk = []
            if chunk:
                count += len(chunk)
                yield self._resized(path, np.stack(chunk), entry)
        if count != entry.shape[0]:
            raise VideoDecodeError(f"{path}: decoded {count} frames, its header announced {entry.shape[0]}")

    def _resized(self, path: Path, frames: np.ndarray, entry: _Entry) -> np.ndarray:
        out = self.resize(frames) if self.resize is not None else frames
        if out.shape[1:3] != entry.shape[1:]:
            raise VideoDecodeError(f"{path}: a frame of {frames.shape[2]}x{frames.shape[1]} pixels, the video's "
                                   f"header announced another size")
        return out

    def _fill_ram(self, shapes: dict[Path, _Entry]) -> None:
        offset = 0
        for entry in shapes.values():
            entry.offset, offset = offset, offset + entry.nbytes
        # untouched pages cost nothing: share_memory_ moves the empty buffer before it is written
        self.frames = torch.empty(offset, dtype=torch.uint8).share_memory_()
        flat = self.frames.numpy()

        def decode(path: Path) -> _Entry:
            entry = shapes[path]
            at = entry.offset
            for chunk in self._frames(path, entry):
                flat[at:at + chunk.nbytes] = chunk.reshape(-1)
                at += chunk.nbytes
            return entry

        for path, entry in self._map(decode, list(shapes), "cache: decoding into RAM"):
            self.entries[path] = entry
        self.nbytes = sum(entry.nbytes for entry in self.entries.values())

    # ------------------------------------------------------------------------- disk

    def _check_folder(self) -> None:
        """Create the cache folder with this cache's settings, or check that it has them."""
        folder = self.cache_dir
        record = folder / CACHE_SETTINGS_FILE
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"cache_dir {folder}: not a folder")
        if record.is_file():
            try:
                stored = json.loads(record.read_text(encoding="utf-8"))
            except (ValueError, OSError) as exc:
                raise ValueError(f"cache_dir {folder}: unreadable {CACHE_SETTINGS_FILE} ({exc}): "
                                 f"delete the folder") from None
            if stored != self.settings:
                raise ValueError(f"cache_dir {folder}: made with resize {stored.get('resize')} "
                                 f"({stored.get('interpolation')}), this run needs resize {self.settings['resize']} "
                                 f"({self.settings['interpolation']}): use another cache folder or delete it")
            return
        if folder.is_dir() and any(folder.iterdir()):
            raise ValueError(f"cache_dir {folder}: not empty and without {CACHE_SETTINGS_FILE}: not a frame cache")
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(record, json.dumps(self.settings))

    def _target(self, path: Path) -> Path:
        """The cache file of ``path``: its name and a digest of its absolute path (unique)."""
        digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16]
        return self.cache_dir / f"{path.stem}-{digest}.tar"

    @staticmethod
    def _source(path: Path) -> dict[str, int]:
        """What identifies a version of the source: its size and modification time (a folder's
        for a frame folder)."""
        stat = path.stat()
        return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}

    def _cached(self, path: Path) -> tuple[_Entry | None, bool]:
        """The record of a cached, unchanged ``path`` (None when not cached or changed), and
        whether it was cached from another version of the video."""
        target = self._target(path)
        record = target.with_suffix(".json")
        if not (record.is_file() and target.is_file()):
            return None, False
        try:
            stored = json.loads(record.read_text(encoding="utf-8"))
            entry = _Entry(**stored["entry"])
            entry.shape, entry.frame_times = tuple(entry.shape), np.array(entry.frame_times, np.float64)
        except (ValueError, OSError, KeyError, TypeError):
            return None, False
        if not path.exists() or stored.get("source") != self._source(path):
            return None, True
        return entry, False

    def _write(self, path: Path, entry: _Entry) -> _Entry:
        """Decode, resize and write ``path``'s cache file, then its record (the record's presence
        means the file is whole)."""
        source = self._source(path)
        target = self._target(path)
        frames = (frame for chunk in self._frames(path, entry) for frame in chunk)
        write_packed(target, frames, entry.shape[0], entry.fps, codec="raw")
        entry.file = target.name
        record = {"video": str(path), "source": source,
                  "entry": {**asdict(entry), "frame_times": entry.frame_times.tolist()}}
        atomic_write_text(target.with_suffix(".json"), json.dumps(record))
        return entry

    def _fill_disk(self, paths: list[Path]) -> str:
        self._check_folder()
        todo, changed = [], 0
        for path in paths:
            entry, was_changed = self._cached(path)
            changed += was_changed
            if entry is None:
                todo.append(path)
            else:
                self.entries[path] = entry
        reused = len(self.entries)
        if todo:
            free = shutil.disk_usage(self.cache_dir).free
            shapes, nbytes = self._scan(todo, free)
            if nbytes > free:
                self.mode = "none"
                self.entries.clear()
                self.errors.clear()
                return (f"none (disk: {len(todo)} videos to cache need more than {nbytes / MB:.1f} MB, "
                        f"{self.cache_dir} has {free / MB:.1f} MB free; every epoch decodes its videos)")
            writes = self._map(lambda path: self._write(path, shapes[path]), list(shapes),
                               f"cache: writing {self.cache_dir}")
            for path, entry in writes:
                self.entries[path] = entry
        self.nbytes = sum(entry.nbytes for entry in self.entries.values())
        return (f"disk {self.cache_dir}, {self.nbytes / MB:.1f} MB ({len(self.entries)} videos at "
                f"{self._describe_resize()}: {reused} reused, {len(self.entries) - reused} written, of which {changed} "
                f"re-cached because the video changed)")

    # ------------------------------------------------------------------------- opening

    def __call__(self, path: Path, threads: int = 1) -> Any:
        """The reader of ``path``: its cached frames, or the source's ``base`` reader when the
        video is not in the cache.  Raises the VideoDecodeError met while filling the cache
        for a video that could not be decoded then."""
        path = Path(path)
        if path in self.errors:
            raise self.errors[path]
        entry = self.entries.get(path)
        if entry is None:
            return self.base(path, threads)
        if self.mode == "disk":
            return _CachedPackedReader(self.cache_dir / entry.file, entry, threads)
        n, h, w = entry.shape
        frames = self.frames[entry.offset:entry.offset + entry.nbytes].numpy().reshape(n, h, w, 3)
        return CachedReader(path, frames, entry)
