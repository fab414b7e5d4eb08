"""Every command and Python snippet shown in README.md and docs/*.md runs and prints what the page shows.

How a page's fenced code blocks are treated (the convention the pages follow):

- ```` ```console ````: a terminal session. A line starting with ``$ `` is a command (it goes on
  over the next lines while it ends with ``\\`` or is an unfinished shell construct such as
  ``for ...; do``); the lines after it, up to the next ``$ ``, are what the command prints.
- ```` ```bash ```` (or ``sh``/``shell``): a script, run whole with ``bash -e``.
- ```` ```python ````: executed with ``exec``; a comment ``# prints: TEXT`` at the end of a line is
  a line of the output the snippet promises (in order).
- ```` ```text ```` right after a ``bash`` or ``python`` block (only blank lines between) is that
  block's output; any other ```` ```text ```` block is an illustration and is not run.
- ``<!-- no-run: REASON -->`` on the line before a block marks a block that must not run (a
  set-up command, a multi-GPU launch); the reason is required and there are only a few.

Checking shown output: each non-blank shown line must occur, in order, inside the lines of what
the command printed (stdout, then stderr), as a substring. In a shown line ``...`` matches any
text, and a line that is only ``...`` stands for any number of lines. Numbers that measure speed
on the machine (``12.5 samples/s``, ``input wait 40%``, ``98s``) match any number. A number with
decimals matches a printed number with as many decimals within five units of the last place
(``2.133`` matches ``2.128`` to ``2.138``: runs are seeded, but float sums differ in their last
bits from run to run and from machine to machine, and a few steps of training carry that into
the third decimal); integers match exactly.

A page's blocks run in order in one fresh working directory (``tmp/<page>/work``), so later
blocks use the files earlier ones wrote; ``../shared/data`` from there is the project's sample
data, and ``HOME`` is a fresh folder (``~/.cache/deepvideo`` lands in the sandbox). Commands
``deepvideo ARGS`` without shell syntax run in a child process of one pre-warmed Python
process (forked after importing deepvideo: the same entry point as the console script, without
paying torch's import for every command); set ``DEEPVIDEO_DOCS_FRESH=1`` to run each through
the console script instead. Anything else runs under ``bash`` with the venv's ``bin`` first on
``PATH``. Commands get one torch thread unless ``OMP_NUM_THREADS`` says otherwise (the same
numbers; a shared 2-core machine is not oversubscribed). A block that reads ``../shared/data``
is skipped when that folder is absent.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE = {"console", "bash", "sh", "shell", "python"}
KNOWN = RUNNABLE | {"text", ""}
MAX_NO_RUN = 6
COMMAND_TIMEOUT = 300
BIN = Path(sys.executable).parent
SPEED = re.compile(r"\d[\d,]*(?:\.\d+)?(?= [a-z]+/s\b)"        # 12.5 samples/s, 400 frames/s
                   r"|(?<=input wait )\d+(?=%)"                # input wait 40%
                   r"|\b\d+(?:\.\d+)?(?=\s?s\b)")              # 98s, 3.5 s
DECIMAL = re.compile(r"(?<![\d.])-?\d+\.(\d+)(?![\d.])")


# ----------------------------------------------------------------------------------- parsing


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    body: str
    no_run: str | None = None  # the reason, when marked
    output: str | None = None  # a ```text block right after (bash, python)

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.lang in RUNNABLE and self.no_run is None

    @property
    def needs_data(self) -> bool:
        return "../shared/" in self.body


def parse_blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page`` in order, ```text output blocks attached to their block."""
    lines = page.read_text().splitlines()
    blocks: list[Block] = []
    gap: list[str] = []  # the lines since the previous block
    i = 0
    while i < len(lines):
        match = re.match(r"^```(.*)$", lines[i])
        if not match:
            gap.append(lines[i])
            i += 1
            continue
        info = match.group(1).strip()
        start = i
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"{page.name}:{start + 1}: unclosed code block")
        i += 1
        lang = info.split()[0] if info else ""
        text = "\n".join(body) + "\n"
        before = [g for g in gap if g.strip()]
        marker = re.fullmatch(r"<!--\s*no-run:(.*?)-->", before[-1].strip()) if before else None
        previous = blocks[-1] if blocks else None
        if (lang == "text" and previous is not None and not before and previous.runs
                and previous.lang != "console" and previous.output is None):
            previous.output = text
        else:
            blocks.append(Block(page, start + 1, lang, text, marker.group(1).strip() if marker else None))
        gap = []
    return blocks


def python_promises(code: str) -> str:
    """The ``# prints: TEXT`` comments of a Python snippet, one line each."""
    return "".join(m.group(1).rstrip() + "\n" for m in re.finditer(r"#\s*prints:\s?(.*)$", code, flags=re.M))


def console_steps(body: str) -> list[tuple[str, str]]:
    """``(command, shown output)`` pairs of a console block."""
    steps: list[tuple[str, list[str]]] = []
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("$ "):
            if not steps:
                raise AssertionError(f"a console block must start with a '$ ' command, not {line!r}")
            steps[-1][1].append(line)
            i += 1
            continue
        command = [line[2:]]
        i += 1
        while i < len(lines) and (command[-1].endswith("\\") or _unfinished("\n".join(command))):
            command.append(lines[i])
            i += 1
        steps.append(("\n".join(command), []))
    return [(command, "\n".join(shown) + "\n") for command, shown in steps]


def _unfinished(command: str) -> bool:
    """Whether bash reads ``command`` as an unfinished construct (``for ...; do`` without ``done``)."""
    if not re.search(r"\b(do|then|case|\{)\s*$|\($", command, flags=re.M):
        return False
    check = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True)
    return "unexpected end of file" in check.stderr


# ---------------------------------------------------------------------------------- checking


def _pattern(shown: str) -> tuple[re.Pattern, list[tuple[float, float]]]:
    """A regex for one shown line, and the (value, tolerance) of each decimal number it captures."""
    parts, expected = [], []
    pieces = re.split(r"(\.\.\.)", shown)
    for k, piece in enumerate(pieces):
        if piece == "...":
            parts.append(".*?")
            continue
        speed = [(m.start(), m.end(), None) for m in SPEED.finditer(piece)]
        numbers = [(m.start(), m.end(), m) for m in DECIMAL.finditer(piece)
                   if not any(a < m.end() and m.start() < b for a, b, _ in speed)]
        last = 0
        for a, b, m in sorted(speed + numbers, key=lambda t: t[0]):
            parts.append(re.escape(piece[last:a]))
            if m is None:
                parts.append(r"\d[\d,]*(?:\.\d+)?")
            else:
                places = len(m.group(1))
                end_of_line = b == len(piece) and k == len(pieces) - 1
                parts.append(r"(-?\d+\.\d{%d})" % places + (r"(?!\d)" if end_of_line else ""))
                expected.append((float(m.group(0)), 5.001 * 10.0 ** -places))
            last = b
        parts.append(re.escape(piece[last:]))
    return re.compile("".join(parts)), expected


def output_mismatch(shown: str, actual: str) -> str | None:
    """None when every shown line occurs in order in ``actual`` (see the module docstring);
    otherwise a message naming the first shown line that was not found."""
    lines = [line.rstrip() for line in actual.splitlines()]
    at = 0
    for wanted in (line.strip() for line in shown.splitlines()):
        if not wanted or wanted == "...":
            continue
        pattern, expected = _pattern(wanted)
        for j in range(at, len(lines)):
            m = pattern.search(lines[j])
            if m and all(abs(float(got) - value) <= tol for got, (value, tol) in zip(m.groups(), expected)):
                at = j + 1
                break
        else:
            return f"shown line not found (in order) in the output: {wanted!r}"
    return None


# --------------------------------------------------------------------------------- executing


class Zygote:
    """A Python process that imported deepvideo once and forks a child per command."""

    SOURCE = r"""
import importlib, json, os, pkgutil, sys, threading, traceback
os.environ.setdefault("MPLBACKEND", "Agg")
import deepvideo
for module in pkgutil.walk_packages(deepvideo.__path__, "deepvideo."):  # torch, torchvision, cv2, ...
    try:
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    except Exception:
        pass
import matplotlib.pyplot  # noqa: F401  (the curves and confusion plots)
import torch
from deepvideo.cli import main
assert threading.active_count() == 1, "a preloaded module started a thread: forking would not be safe"
sys.stdout.write("ready\n"); sys.stdout.flush()
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(job["cwd"]); os.environ.clear(); os.environ.update(job["env"])
            null = os.open(os.devnull, os.O_RDONLY); os.dup2(null, 0)
            for fd, name in ((1, "out"), (2, "err")):
                os.dup2(os.open(job[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
            sys.argv = ["deepvideo", *job["argv"]]
            if os.environ.get("OMP_NUM_THREADS", "").isdigit():
                torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
            try:
                code = main(job["argv"]) or 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:
                traceback.print_exc()
        finally:
            try:
                sys.stdout.flush(); sys.stderr.flush()
            finally:
                os._exit(code)
    sys.stdout.write(json.dumps({"pid": pid}) + "\n"); sys.stdout.flush()
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(json.dumps({"rc": os.waitstatus_to_exitcode(status)}) + "\n"); sys.stdout.flush()
"""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", self.SOURCE], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, cwd=ROOT)
        self.buffer = b""
        line = ""
        while line != "ready":  # (a module that prints while it is imported says so first)
            line = self._read(300)
            if line is None:
                raise RuntimeError("the docs' command runner did not start")

    def _read(self, timeout: float) -> str | None:
        """The next line from the runner (unbuffered: select() must see what is not read yet)."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError(f"the docs' command runner exited ({self.proc.wait()})")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode(errors="replace").strip()

    def run(self, argv: list[str], cwd: Path, env: dict, out: Path, err: Path, timeout: float) -> int:
        job = {"argv": argv, "cwd": str(cwd), "env": env, "out": str(out), "err": str(err)}
        self.proc.stdin.write((json.dumps(job) + "\n").encode())
        self.proc.stdin.flush()
        pid = json.loads(self._read(60))["pid"]
        reply = self._read(timeout)
        if reply is None:
            os.kill(pid, signal.SIGKILL)
            self._read(60)
            return 124
        return json.loads(reply)["rc"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(30)


@dataclass
class Page:
    """One page's working directory, Python namespace and progress through its blocks."""

    path: Path
    base: Path
    blocks: list[Block]
    namespace: dict = field(default_factory=lambda: {"__name__": "docs"})
    done: int = 0
    failed: str | None = None

    @property
    def work(self) -> Path:
        return self.base / "work"

    def env(self) -> dict:
        env = dict(os.environ)
        env.update(HOME=str(self.base / "home"), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
                   MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
        env.setdefault("OMP_NUM_THREADS", "1")
        return env


class Runner:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.pages: dict[Path, Page] = {}
        self.zygote: Zygote | None = None
        self.seconds: dict[str, float] = {}

    def page(self, path: Path) -> Page:
        if path not in self.pages:
            base = self.tmp / path.stem
            (base / "work").mkdir(parents=True)
            (base / "home").mkdir()
            if SHARED.is_dir():
                (base / "shared").symlink_to(SHARED)
            self.pages[path] = Page(path, base, parse_blocks(path))
        return self.pages[path]

    def close(self):
        if self.zygote is not None:
            self.zygote.close()

    def run_block(self, page: Page, block: Block) -> None:
        start = time.perf_counter()
        try:
            if block.lang == "python":
                self._python(page, block)
            elif block.lang == "console":
                for number, (command, shown) in enumerate(console_steps(block.body)):
                    actual = self._command(page, block, command, f"{block.line}-{number}")
                    _check(block, command, shown, actual)
            else:
                actual = self._command(page, block, block.body, str(block.line))
                if block.output is not None:
                    _check(block, block.body, block.output, actual)
        finally:
            self.seconds[block.id] = time.perf_counter() - start

    def _python(self, page: Page, block: Block) -> None:
        shown = block.output if block.output is not None else python_promises(block.body)
        out = io.StringIO()
        cwd = os.getcwd()
        os.chdir(page.work)
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(block.body, block.id, "exec"), page.namespace)
        finally:
            os.chdir(cwd)
        _check(block, block.body, shown, out.getvalue())

    def _command(self, page: Page, block: Block, command: str, tag: str) -> str:
        out, err = page.base / f"{tag}.out", page.base / f"{tag}.err"
        argv = _plain_deepvideo(command)
        if argv is not None and not os.environ.get("DEEPVIDEO_DOCS_FRESH"):
            if self.zygote is None:
                self.zygote = Zygote()
            rc = self.zygote.run(argv, page.work, page.env(), out, err, COMMAND_TIMEOUT)
        else:
            with out.open("w") as o, err.open("w") as e:
                try:
                    rc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", command], cwd=page.work,
                                        env=page.env(), stdout=o, stderr=e, stdin=subprocess.DEVNULL,
                                        timeout=COMMAND_TIMEOUT).returncode
                except subprocess.TimeoutExpired:
                    rc = 124
        stdout, stderr = out.read_text(errors="replace"), err.read_text(errors="replace")
        if rc != 0:
            pytest.fail(f"{block.id}: exit status {rc}: {command}\n--- stdout\n{stdout[-3000:]}"
                        f"\n--- stderr\n{stderr[-3000:]}", pytrace=False)
        return stdout + stderr


def _plain_deepvideo(command: str) -> list[str] | None:
    """The arguments of a ``deepvideo ARGS`` command that needs no shell, else None."""
    joined = command.replace("\\\n", " ")
    unquoted = re.sub(r"'[^']*'|\"[^\"$`\\\\]*\"", "''", joined).split(" #")[0]
    if re.search(r"[|&;<>()$`*?\[\]{}~\n\\\\]", unquoted):
        return None  # shell syntax outside quotes: let bash run it
    words = shlex.split(joined, comments=True)
    return words[1:] if words and words[0] == "deepvideo" else None


def _check(block: Block, what: str, shown: str, actual: str) -> None:
    problem = output_mismatch(shown, actual)
    if problem:
        pytest.fail(f"{block.id}: {problem}\n--- ran\n{what.strip()}\n--- printed\n{actual[-4000:]}",
                    pytrace=False)


# ------------------------------------------------------------------------------------- tests

ALL_BLOCKS = [block for page in PAGES for block in parse_blocks(page)]


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    runner = Runner(tmp_path_factory.mktemp("docs"))
    yield runner
    runner.close()
    pages: dict[str, float] = {}
    for block_id, seconds in runner.seconds.items():
        pages[block_id.rsplit(":", 1)[0]] = pages.get(block_id.rsplit(":", 1)[0], 0.0) + seconds
    slowest = sorted(runner.seconds.items(), key=lambda kv: -kv[1])[:5]
    print("\ndocs blocks: %.1f s in all (%s); slowest: %s" % (
        sum(runner.seconds.values()), ", ".join(f"{k} {v:.1f} s" for k, v in pages.items()),
        ", ".join(f"{k} {v:.1f} s" for k, v in slowest)))


@pytest.mark.parametrize("block", [b for b in ALL_BLOCKS if b.runs], ids=lambda b: b.id)
def test_block_runs_and_prints_what_the_page_shows(block, runner):
    page = runner.page(block.page)
    index = page.blocks.index(block)
    # a block may build on the page's earlier blocks: run any not run yet (e.g. under -k)
    for earlier in page.blocks[page.done:index]:
        if earlier.runs and not (earlier.needs_data and not SHARED.is_dir()):
            if page.failed:
                break
            try:
                runner.run_block(page, earlier)
            except BaseException:
                page.failed = earlier.id
                raise
    page.done = max(page.done, index)
    if page.failed:
        pytest.fail(f"an earlier block of the page failed: {page.failed}", pytrace=False)
    if block.needs_data and not SHARED.is_dir():
        page.done = index + 1
        pytest.skip(f"{SHARED / 'data'} is absent")
    try:
        runner.run_block(page, block)
    except BaseException:
        page.failed = block.id
        raise
    finally:
        page.done = index + 1


def test_every_block_is_run_or_marked():
    """Code blocks are a known kind; shell sessions are console blocks (so they run); the
    blocks that do not run are marked with a reason, and there are only a few."""
    assert (ROOT / "docs" / "index.md").is_file()
    for block in ALL_BLOCKS:
        assert block.lang in KNOWN, f"{block.id}: unknown code block kind {block.lang!r}"
        if block.lang == "text":
            assert not re.search(r"^\$ ", block.body, flags=re.M), \
                f"{block.id}: a text block shows a command; make it a console block so that it runs"
        if block.lang == "python" and block.runs:
            assert ">>>" not in block.body, f"{block.id}: write '# prints:' comments, not a >>> session"
    no_run = [block for block in ALL_BLOCKS if block.no_run is not None]
    assert all(block.no_run for block in no_run), "every no-run marker needs a reason"
    assert len(no_run) <= MAX_NO_RUN, [block.id for block in no_run]
    assert sum(block.runs for block in ALL_BLOCKS) >= 20


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors for the headings of ``page``."""
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)
    return {re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
            for title in re.findall(r"^#+ (.*)$", text, flags=re.M)}


def test_every_page_is_listed_and_every_link_resolves():
    index = (ROOT / "docs" / "index.md").read_text()
    for page in PAGES[1:]:
        if page.name != "index.md":
            assert f"({page.name})" in index, f"docs/index.md does not link {page.name}"
    for page in PAGES:
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            path = page.parent / target if target else page
            assert path.exists(), f"{page.relative_to(ROOT)}: broken link {target}"
            if anchor and path.suffix == ".md":
                assert anchor in _anchors(path), f"{page.relative_to(ROOT)}: no heading #{anchor} in {target}"


@pytest.mark.parametrize(("shown", "actual", "ok"), [
    ("loss 2.133 acc 0.094", "epoch 1: loss 2.133 acc 0.094 | x", True),
    ("loss 2.133", "epoch 1: loss 2.138", True),  # decimals: within five units of the last place
    ("loss 2.133", "epoch 1: loss 2.139", False),
    ("acc 0.1250", "acc 0.125", False),  # as many decimals as shown
    ("261 boxes", "262 boxes", False),  # integers are exact
    ("0.0,0.8,1,down,0.156...", "0.0,0.8,1,down,0.156575", True),
    ("MOTA 62.7%", "MOTA 62.7%", True),
    ("a\nb", "b\na", False),  # order counts
    ("a\n...\nc", "a\nb\nc", True),
    ("epoch 1: ... | val", "epoch 1: loss 9 | val", True),
    ("| 12.5 samples/s, input wait 40%", "| 99.1 samples/s, input wait 7%", True),
    ("total 198s", "total 7s", True),
    ("acc 0.5", "", False),
])
def test_output_matching(shown, actual, ok):
    assert (output_mismatch(shown, actual) is None) is ok


def test_parsing_of_a_page(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- no-run: needs a GPU -->\n```console\n$ deepvideo a \\\n  --b\nout\n```\n\n"
                    "```python\nprint(1)  # prints: 1\n```\n\n```text\n1\n```\n\n```text\nfree\n```\n"
                    "```console\n$ for s in a b; do\n    echo $s\n  done\na\nb\n```\n")
    blocks = parse_blocks(page)
    assert [(b.lang, b.no_run, b.runs) for b in blocks] == [
        ("console", "needs a GPU", False), ("python", None, True), ("text", None, False), ("console", None, True)]
    assert console_steps(blocks[0].body) == [("deepvideo a \\\n  --b", "out\n")]
    assert blocks[1].output == "1\n" and python_promises(blocks[1].body) == "1\n"
    assert console_steps(blocks[3].body) == [("for s in a b; do\n    echo $s\n  done", "a\nb\n")]
    assert _plain_deepvideo("deepvideo a \\\n  --b   # note") == ["a", "--b"]
    assert _plain_deepvideo("deepvideo eval --pred x/{1,2}.txt") is None
    assert _plain_deepvideo("deepvideo train --model-opt 'widths=[8,16]'") == ["train", "--model-opt", "widths=[8,16]"]
    assert _plain_deepvideo("OMP_NUM_THREADS=1 deepvideo models") is None
    assert _plain_deepvideo("deepvideo models | head -3") is None
