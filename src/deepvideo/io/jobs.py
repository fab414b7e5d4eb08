"""Resumable per-video jobs over a dataset: one output file (or folder) for each video.

``deepvideo pack``, ``flow-extract`` and ``extract-features`` turn every video into one
output under an output folder, named by :func:`output_path`.  :func:`plan_outputs` pairs
the videos with their outputs (refusing two videos that would write the same one) and
splits off those already written; :func:`run_jobs` works through the rest with a progress
bar, in threads, and skips (with a one-line message, counted in the :class:`JobSummary`)
the videos that cannot be decoded.
"""

from __future__ import annotations

import os
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from tqdm import tqdm

from deepvideo.io.atomic import exclusive_folder, remove_temps
from deepvideo.io.decode import VideoDecodeError

__all__ = ["JobSummary", "output_path", "plan_outputs", "run_jobs"]


@dataclass
class JobSummary:
    """What a dataset job did: outputs written, outputs found already done, and
    ``(video, reason)`` for every video that could not be decoded."""

    written: int = 0
    skipped: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)


def output_path(video: str | os.PathLike, out_dir: str | os.PathLike, root: str | os.PathLike | None,
                suffix: str) -> Path:
    """Where a job puts ``video``'s output: ``out_dir/<name>``, or with ``root`` the video's
    path under ``root`` mirrored into ``out_dir`` (``root/a/b.mp4 -> out_dir/a/b<suffix>``).

    ``suffix`` replaces a video file's suffix and is appended to a frame folder's name (whose
    dots are part of the name); an empty ``suffix`` keeps a frame folder's name as it is.
    Raises ``ValueError`` for a video outside ``root``.
    """
    video = Path(video)
    relative = Path(video.name)
    if root is not None:
        absolute, root = Path(os.path.abspath(video)), Path(os.path.abspath(root))
        if not absolute.is_relative_to(root):
            raise ValueError(f"{video} is not under the videos root {root}")
        relative = absolute.relative_to(root)
    if video.is_dir():
        return Path(out_dir) / relative.with_name(relative.name + suffix)
    return Path(out_dir) / relative.with_suffix(suffix)


def plan_outputs(videos: Iterable[Path], output_of: Callable[[Path], Path], mirrored: bool,
                 check_done: Callable[[Path, Path], None] | None = None
                 ) -> tuple[list[tuple[Path, Path]], int]:
    """``(video, output)`` pairs still to do, and how many outputs exist already.

    ``output_of(video)`` names each output; ``mirrored`` says whether it mirrors the
    videos' sub-folders (only then do equal file names not collide).  ``check_done(video,
    output)`` may raise for an existing output that another run's settings wrote.
    """
    todo, done, seen = [], 0, {}
    for video in videos:
        target = output_of(video)
        if target in seen:
            hint = "" if mirrored else " (give the videos' root folder to mirror their sub-folders)"
            raise ValueError(f"{seen[target]} and {video} would both write {target}{hint}")
        seen[target] = video
        if not target.exists():
            todo.append((video, target))
            continue
        if check_done is not None:
            check_done(video, target)
        done += 1
    return todo, done


def run_jobs(todo: list[tuple[Path, Path]], work: Callable[[Path, Path], None], summary: JobSummary,
             desc: str, workers: int = 0, progress: bool = True) -> JobSummary:
    """Run ``work(video, output)`` for every pair of ``todo``, counting into ``summary``.

    The folder holding all the outputs is locked meanwhile, so a second job on it fails at
    once (``ValueError``) instead of racing this one; then the temporaries that killed atomic
    writes of these outputs left are deleted (:func:`~deepvideo.io.atomic.remove_temps`).
    ``workers`` threads work side by side
    (decoders and encoders release the GIL); 0 works in the calling thread.  A
    :class:`VideoDecodeError` skips its video, recorded in ``summary.failed`` as ``(video,
    reason)`` and reported once as ``skipped <video>: <reason>``: a line above the progress
    bar when it is shown, else a ``UserWarning``.
    """
    def attempt(job: tuple[Path, Path]) -> str | None:
        try:
            work(*job)
        except VideoDecodeError as exc:
            return str(exc).removeprefix(f"{job[0]}: ")
        return None

    folder = os.path.commonpath([output.parent for _, output in todo]) if todo else None
    with exclusive_folder(folder) if folder else nullcontext():
        remove_temps(output for _, output in todo)
        return _run(todo, attempt, summary, desc, workers, progress)


def _run(todo: list[tuple[Path, Path]], attempt: Callable[[tuple[Path, Path]], str | None],
         summary: JobSummary, desc: str, workers: int, progress: bool) -> JobSummary:
    bar = tqdm(total=len(todo) + summary.skipped, initial=summary.skipped, desc=desc, unit="video",
               disable=not progress)
    with ThreadPoolExecutor(max(workers, 1)) as pool:
        errors = (pool.map if workers > 0 else map)(attempt, todo)
        for (video, _), error in zip(todo, errors):
            if error is None:
                summary.written += 1
            else:
                if progress:
                    bar.write(f"skipped {video}: {error}", file=sys.stderr)
                else:
                    warnings.warn(f"skipped {video}: {error}", stacklevel=4)
                summary.failed.append((video, error))
                bar.set_postfix(failed=len(summary.failed))
            bar.update()
    bar.close()
    return summary
