"""The fuzz test: a seeded 600 mutated videos and packed files (``benchmarks/fuzz.py``) read in
a worker process with a time limit and a memory cap may only read fully or raise
``VideoDecodeError``: no crash, hang, foreign exception or silent short read."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import numpy as np

from deepvideo.io import write_video

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz.py"
spec = importlib.util.spec_from_file_location("fuzz", SCRIPT)
fuzz = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fuzz)


def test_mutated_files_read_fully_or_raise_video_decode_error(tmp_path):
    outcomes, mutants, seeds = fuzz.fuzz(tmp_path, n=600, seed=0, timeout=30, memory_gb=2)
    assert all(outcomes[path]["outcome"] == "full" for path in seeds)  # the seeds themselves read
    failures = [f"{path.name} ({mutants[path]}): {result['outcome']}: {result['detail']}"
                for path, result in outcomes.items() if result["outcome"] not in fuzz.ALLOWED]
    assert not failures, "\n".join(failures)
    counts = Counter(outcomes[path]["outcome"] for path in mutants)
    assert counts["error"] > 100 and counts["full"] > 50  # the mutations reach both outcomes
    assert {path.suffix for path in mutants} == {".mp4", ".avi", ".mkv", ".webm", ".mov", ".tar"}


class ShortReader:
    """A reader whose iteration ends one frame early without an error."""
    num_frames, height, width = 3, 2, 2

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def __iter__(self):
        return iter(np.zeros((2, 2, 2, 3), np.uint8))


def test_the_harness_reports_short_reads_and_crashes(tmp_path, monkeypatch):
    """The classifier can fail: a silent short read and a worker that cannot survive its memory
    cap are not allowed outcomes."""
    good = write_video(tmp_path / "good.mp4", np.zeros((4, 16, 16, 3), np.uint8), fps=10, threads=1)
    assert fuzz.read_fully(str(good)) == {"outcome": "full", "detail": "4 frames"}
    assert fuzz.read_fully(str(tmp_path / "missing.mp4"))["outcome"] == "error"
    results = fuzz.run([good, tmp_path / "missing.mp4"], timeout=30, memory_gb=0.05)
    assert [result["outcome"] for result in results.values()] == ["crash", "crash"]
    monkeypatch.setattr("deepvideo.io.open_video", lambda path, threads: ShortReader())
    assert fuzz.read_fully(str(good)) == {"outcome": "short", "detail": "2 of 3 frames, no error"}
