"""Atomic outputs: a reader never sees a half-written file or folder, a crash leaves the old one.

An output is built under a hidden temporary name beside it, ``.<name>.<8 random
characters>.tmp`` (``.tmp.mp4`` for a video, whose container FFmpeg picks by suffix), and
renamed over it when complete.  A killed process leaves that temporary behind;
:func:`remove_temps` deletes such leftovers before an output is made again.

Tests choose where a process dies: with ``DEEPVIDEO_KILL_BEFORE_RENAME=<name>`` in the
environment, a process kills itself (SIGKILL) when its output named ``<name>`` is complete
but not yet renamed into place, the last moment a non-atomic writer could be caught.

Outputs get the permissions a plain ``open(path, "w")`` or ``mkdir`` would give (``0o666``
/ ``0o777`` less the umask), not ``tempfile``'s owner-only ones.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import shutil
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

__all__ = ["KILL_BEFORE_RENAME", "atomic_path", "atomic_write", "atomic_write_text", "check_writable",
           "exclusive_folder", "remove_temps"]

KILL_BEFORE_RENAME = "DEEPVIDEO_KILL_BEFORE_RENAME"
# the temporary names made here (8 hex digits, optionally the output's own suffix after .tmp)
# and by tempfile.mkstemp in earlier versions
_TEMP_NAME = re.compile(r"\.(.+)\.[a-z0-9_]{8}\.tmp(\.[A-Za-z0-9]{1,8})?")


def _create_temp(path: Path, folder: bool, suffix: str = "") -> Path:
    """A new empty file (or folder) ``.<name>.<8 hex digits>.tmp<suffix>`` beside ``path``,
    created exclusively with the mode the umask gives a plain ``open``/``mkdir``."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp{suffix}"
        try:
            if folder:
                tmp.mkdir()
            else:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))
            return tmp
        except FileExistsError:
            continue


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike, folder: bool = False, keep_suffix: bool = False) -> Iterator[Path]:
    """``with atomic_path(path) as tmp:`` write the output at ``tmp`` (an empty file, or with
    ``folder`` an empty folder, beside ``path``; with ``keep_suffix`` its name ends in the
    suffix of ``path``, for writers that choose a format by it); when the block ends without
    error, ``tmp`` is renamed to ``path`` and the parent folder fsynced.  A file is fsynced first and
    replaces an existing ``path``; a folder's files are not fsynced (a killed process leaves
    no half output, a power cut may), and an existing non-empty folder ``path`` is not
    replaced (``OSError``).  On any error ``tmp`` is removed and ``path`` left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if keep_suffix and re.fullmatch(r"\.[A-Za-z0-9]{1,8}", path.suffix) else ""
    tmp = _create_temp(path, folder, suffix)
    try:
        yield tmp
        if not folder:
            _fsync(tmp)
        if os.environ.get(KILL_BEFORE_RENAME) == path.name:
            os.kill(os.getpid(), signal.SIGKILL)
        os.replace(tmp, path)
    except BaseException:
        if folder:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
    _fsync(path.parent)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(binary_file)`` on a temporary file beside ``path`` and rename it over
    ``path`` (see :func:`atomic_path`).  On any error the temporary file is removed."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        write(fh)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_write`), deleting
    first the temporaries a killed earlier write of ``path`` left."""
    remove_temps([path])
    data = text.encode("utf-8")
    return atomic_write(path, lambda fh: fh.write(data))


def check_writable(folder: str | os.PathLike) -> Path:
    """Create ``folder`` (and its parents) if needed and check that files can be created in
    it, before any work whose results would go there; an ``OSError`` naming the folder."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _create_temp(folder / "write-check", folder=False).unlink()
    except OSError as exc:
        raise OSError(f"{folder}: cannot write there ({exc.strerror or exc})") from None
    return folder


def remove_temps(paths: Iterable[str | os.PathLike]) -> None:
    """Delete the temporaries that killed atomic writes of ``paths`` left beside them: only
    entries named exactly ``.<name of one of paths>.<8 characters>.tmp``, nothing else.
    Each folder is listed once, however many of ``paths`` it holds."""
    names: dict[Path, set[str]] = {}
    for path in map(Path, paths):
        names.setdefault(path.parent, set()).add(path.name)
    for folder, wanted in names.items():
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for entry in entries:
            match = _TEMP_NAME.fullmatch(entry.name)
            if match is None or match[1] not in wanted or match[2] not in (None, Path(match[1]).suffix):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
            except FileNotFoundError:  # gone meanwhile
                pass


@contextmanager
def exclusive_folder(folder: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (made if missing; ``flock`` on the folder itself:
    no file is created) while the block runs, so that two writers of one output folder never
    delete each other's temporaries; ``ValueError`` at once when another job holds it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"{folder}: another job is writing here now; wait for it to end "
                             f"or use another output folder") from None
        yield
    finally:
        os.close(fd)  # releases the lock
