"""The README's Python snippets that read ``../shared/data`` run and print what they say.

Each such block is executed from the project root; every ``print(...)  # value`` line's
comment is the output the README promises, compared with what the block printed.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
DATA_BLOCKS = [block for block in BLOCKS if "../shared/data" in block]


def test_the_readme_has_data_snippets():
    assert len(DATA_BLOCKS) >= 1


@pytest.mark.parametrize("block", DATA_BLOCKS, ids=lambda b: b.split("\n", 1)[0][:40])
def test_snippet_prints_what_it_promises(block, monkeypatch):
    if not (ROOT.parent / "shared" / "data").is_dir():
        pytest.skip("../shared/data is absent")
    promised = [line.split("#", 1)[1].strip() for line in block.splitlines()
                if line.lstrip().startswith("print(") and "#" in line]
    assert promised, "a data snippet should promise its output in comments"
    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    assert out.getvalue().split("\n")[:-1] == promised, os.linesep + block
