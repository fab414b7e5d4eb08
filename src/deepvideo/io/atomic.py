"""Atomic outputs: a reader never sees a half-written file or folder, a crash leaves the old one.

An output is built under a hidden temporary name beside it, ``.<name>.<8 random
characters>.tmp``, and renamed over it when complete.  A killed process leaves that
temporary behind; :func:`remove_temps` deletes such leftovers before an output is made
again.  Outputs get the permissions a plain ``open(path, "w")`` or ``mkdir`` would give
(``0o666`` / ``0o777`` less the umask), not ``tempfile``'s owner-only ones.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

__all__ = ["atomic_path", "atomic_write", "remove_temps"]

# the temporary names made here (8 hex digits) and by tempfile.mkstemp in earlier versions
_TEMP_NAME = re.compile(r"\.(.+)\.[a-z0-9_]{8}\.tmp")


def _create_temp(path: Path, folder: bool) -> Path:
    """A new empty file (or folder) ``.<name>.<8 hex digits>.tmp`` beside ``path``, created
    exclusively with the mode the umask gives a plain ``open``/``mkdir``."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
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
def atomic_path(path: str | os.PathLike, folder: bool = False) -> Iterator[Path]:
    """``with atomic_path(path) as tmp:`` write the output at ``tmp`` (an empty file, or with
    ``folder`` an empty folder, beside ``path``); when the block ends without error, ``tmp``
    is renamed to ``path`` and the parent folder fsynced.  A file is fsynced first and
    replaces an existing ``path``; a folder's files are not fsynced (a killed process leaves
    no half output, a power cut may), and an existing non-empty folder ``path`` is not
    replaced (``OSError``).  On any error ``tmp`` is removed and ``path`` left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp(path, folder)
    try:
        yield tmp
        if not folder:
            _fsync(tmp)
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
            if match is None or match[1] not in wanted:
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
            except FileNotFoundError:  # gone meanwhile
                pass
