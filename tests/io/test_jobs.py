"""run_jobs: one clean message per undecodable video, temporaries of the outputs it makes
deleted first."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from deepvideo.io.decode import VideoDecodeError
from deepvideo.io.jobs import JobSummary, run_jobs


def work(video: Path, target: Path) -> None:
    if video.name.startswith("bad"):
        raise VideoDecodeError(f"{video}: not a readable video (moov atom not found)")
    target.write_text("done")


def dataset_api(todo, progress):
    """Stands for pack_dataset / extract_flow_dataset, whose caller the warning names."""
    return run_jobs(todo, work, JobSummary(), "test", workers=2, progress=progress)


def jobs(tmp_path, names):
    return [(tmp_path / name, tmp_path / f"{name}.out") for name in names]


def test_a_skipped_video_warns_once_naming_the_video_and_the_caller(tmp_path):
    with pytest.warns(UserWarning) as caught:
        summary = dataset_api(jobs(tmp_path, ["a.mp4", "bad.mp4", "c.mp4"]), progress=False)
    assert [str(w.message) for w in caught] == [
        f"skipped {tmp_path / 'bad.mp4'}: not a readable video (moov atom not found)"]
    assert caught[0].filename == __file__  # the line that called the dataset function
    assert summary.written == 2
    assert summary.failed == [(tmp_path / "bad.mp4", "not a readable video (moov atom not found)")]


def test_with_progress_a_skipped_video_is_one_line_above_the_bar(tmp_path, capsys):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = dataset_api(jobs(tmp_path, ["bad1.mp4", "b.mp4", "bad2.mp4"]), progress=True)
    assert caught == []
    out, err = capsys.readouterr()
    lines = [line.strip() for line in err.replace("\r", "\n").splitlines() if "skipped" in line]
    assert lines == [f"skipped {tmp_path / name}: not a readable video (moov atom not found)"
                     for name in ("bad1.mp4", "bad2.mp4")]
    assert out == "" and summary.written == 1 and len(summary.failed) == 2


def test_temporaries_of_the_outputs_to_make_are_deleted_first(tmp_path):
    todo = jobs(tmp_path, ["a.mp4"])
    (tmp_path / ".a.mp4.out.1a2b3c4d.tmp").write_bytes(b"left by a killed run")
    (tmp_path / ".done.mp4.out.1a2b3c4d.tmp").write_bytes(b"not an output of this run")
    dataset_api(todo, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".done.mp4.out.1a2b3c4d.tmp", "a.mp4.out"]


def test_a_second_job_on_the_same_folder_fails_at_once_and_touches_nothing(tmp_path):
    import fcntl
    import os

    out = tmp_path / "out"
    todo = [(tmp_path / "a.mp4", out / "x" / "a.out"), (tmp_path / "b.mp4", out / "y" / "b.out")]
    for sub in ("x", "y"):
        (out / sub).mkdir(parents=True)
    leftover = out / "x" / ".a.out.1a2b3c4d.tmp"               # the running job's temporary
    leftover.write_bytes(b"being written")
    running = os.open(out, os.O_RDONLY)                        # a job running on `out` holds its lock
    fcntl.flock(running, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        with pytest.raises(ValueError, match=f"{out}: another job is writing here now"):
            dataset_api(todo, progress=False)
        assert leftover.exists() and not (out / "x" / "a.out").exists()
    finally:
        os.close(running)
    assert dataset_api(todo, progress=False).written == 2     # once it ended
