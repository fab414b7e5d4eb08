"""README.md is the front door: short, with CI's own set-up commands and measured claims.

Its commands and snippets run in ``tests/test_docs.py`` with those of ``docs/``.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BENCHMARKS = (ROOT / "BENCHMARKS.md").read_text()


def test_the_readme_is_at_most_200_lines():
    assert len(README.splitlines()) <= 200


def test_the_readme_sets_up_as_ci_does():
    """The install and test commands shown are the ones .ci/run runs, word for word."""
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    install = [line for line in ci if line.startswith("pip install")]
    test = [line for line in ci if re.fullmatch(r"pytest\b.*", line)]
    assert install and test, ".ci/run no longer shows a pip install and a pytest line"
    setup = re.search(r"## Install and test\n(.*?)\n## ", README, flags=re.S)
    assert setup, "the README lost its 'Install and test' section"
    commands = [line.split("#")[0].strip() for block in re.findall(r"```bash\n(.*?)```", setup.group(1), flags=re.S)
                for line in block.splitlines()]
    for wanted in install:
        pip = wanted.replace(" -q", "")  # CI installs quietly
        assert any(command.endswith(pip) for command in commands), f"README does not show {pip!r}"
    for wanted in test:
        assert wanted in commands, f"README does not show {wanted!r}"


def _decode_ratios() -> list[float]:
    """The ratio column of BENCHMARKS.md's sequential-decode table (ours / FFmpeg rgb24)."""
    section = BENCHMARKS.split("**Sequential decode to RGB", 1)[1].split("\n\n", 2)[1]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line][1:]
    return [float(row.rstrip(" |").rsplit("|", 1)[1].strip(" *")) for row in rows]


def test_the_decode_claim_is_what_benchmarks_measured():
    """The README quotes the measured range and geometric mean of ours / FFmpeg's rgb24 decode
    (it once said 'at least as fast as FFmpeg', which one sample video contradicts)."""
    ratios = _decode_ratios()
    assert len(ratios) >= 5
    low, high = min(ratios), max(ratios)
    geomean = math.exp(sum(map(math.log, ratios)) / len(ratios))
    claim = re.search(r"runs at ([\d.]+)–([\d.]+)x\s+the frame rate of FFmpeg's own rgb24 decode.*?"
                      r"\(geometric mean\s+([\d.]+)", README, flags=re.S)
    assert claim, "the README no longer quotes the measured decode ratios"
    assert (float(claim.group(1)), float(claim.group(2))) == (low, high)
    assert math.isclose(float(claim.group(3)), geomean, abs_tol=0.006)
    assert f"geometric mean {float(claim.group(3)):.2f}" in BENCHMARKS
    if low < 1:  # slower on some videos: the README must say so, with the numbers
        assert "at least as fast as FFmpeg" not in README
        for ratio in (r for r in ratios if r < 1):
            assert f"{ratio:.2f}" in README, f"the README does not quote the ratio {ratio:.2f}"


def test_no_benchmark_script_shadows_a_module_it_imports():
    """``python benchmarks/X.py`` puts ``benchmarks/`` first on ``sys.path``: a script named like a
    standard-library or installed module (``ssl.py``) breaks every other script's imports."""
    from importlib.machinery import PathFinder

    folder = ROOT / "benchmarks"
    elsewhere = [entry for entry in sys.path if Path(entry or ".").resolve() != folder]
    names = sorted(path.stem for path in folder.glob("*.py"))
    found = {name: PathFinder.find_spec(name, elsewhere) for name in names}
    clashes = [name for name, spec in found.items()  # (test folders are namespace packages: no origin)
               if name in sys.stdlib_module_names or (spec is not None and spec.origin is not None)]
    assert names and clashes == [], clashes
