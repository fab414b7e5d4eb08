"""atomic_write / atomic_path: permissions as a plain open() gives, nothing left on failure;
remove_temps deletes only the leftovers of the outputs it is given."""

from __future__ import annotations

import os
import stat

import pytest

from deepvideo.io.atomic import atomic_path, atomic_write, atomic_write_text, check_writable, remove_temps
from deepvideo.io.text import read_text


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_outputs_get_the_mode_a_plain_open_gives(tmp_path, umask):
    old = os.umask(umask)
    try:
        with open(tmp_path / "plain", "w"):
            pass
        (tmp_path / "plain_dir").mkdir()
        written = atomic_write(tmp_path / "sub" / "a.bin", lambda fh: fh.write(b"data"))
        with atomic_path(tmp_path / "b.txt") as tmp:
            tmp.write_text("text")
        with atomic_path(tmp_path / "folder", folder=True) as tmp:
            (tmp / "x").write_bytes(b"x")
    finally:
        os.umask(old)
    assert mode(tmp_path / "plain") == 0o666 & ~umask
    assert mode(written) == mode(tmp_path / "b.txt") == mode(tmp_path / "plain")
    assert mode(tmp_path / "folder") == mode(tmp_path / "plain_dir") == 0o777 & ~umask
    assert written.read_bytes() == b"data" and (tmp_path / "folder" / "x").read_bytes() == b"x"
    assert sorted(p.name for p in tmp_path.rglob(".*")) == []


def test_a_failure_keeps_the_old_output_and_leaves_no_temporary(tmp_path):
    target = atomic_write(tmp_path / "a.bin", lambda fh: fh.write(b"old"))

    def fail(fh):
        fh.write(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(target, fail)
    with pytest.raises(RuntimeError, match="again"), atomic_path(tmp_path / "folder", folder=True) as tmp:
        (tmp / "frame.jpg").write_bytes(b"half")
        raise RuntimeError("again")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_remove_temps_deletes_only_leftovers_of_the_given_outputs(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "clip.tar").write_bytes(b"finished")
    leftovers = [".clip.tar.0a1b2c3d.tmp",   # an atomic_write of clip.tar
                 ".clip.tar.k_9xq2ze.tmp",   # tempfile.mkstemp's names (earlier versions)
                 ".frames.5e6f7a8b.tmp"]     # a frame folder
    for name in leftovers[:2]:
        (out / name).write_bytes(b"half")
    (out / leftovers[2]).mkdir()
    (out / leftovers[2] / "img_00001.jpg").write_bytes(b"jpeg")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "keep").write_bytes(b"keep")
    (out / ".clip.tar.deadbeef.tmp").symlink_to(outside, target_is_directory=True)
    kept = [".clip.tar.notes.tmp",          # not 8 characters
            ".clip.tar.0a1b2c3d.tmp.bak",   # not a temporary name
            "clip.tar.0a1b2c3d.tmp",        # not hidden
            ".other.tar.0a1b2c3d.tmp",      # another output's, not asked for
            ".clip.tar.0A1B2C3D.tmp"]       # upper case: never made by a writer
    for name in kept:
        (out / name).write_bytes(b"user file")
    remove_temps([out / "clip.tar", out / "frames", tmp_path / "missing" / "x.tar"])
    assert sorted(p.name for p in out.iterdir()) == sorted(["clip.tar", *kept])
    assert (outside / "keep").read_bytes() == b"keep"  # a link is removed, not followed


def test_video_temporaries_keep_the_suffix_and_are_cleaned_as_leftovers(tmp_path):
    with atomic_path(tmp_path / "out.mp4", keep_suffix=True) as tmp:
        assert tmp.name.startswith(".out.mp4.") and tmp.name.endswith(".tmp.mp4")
        tmp.write_bytes(b"video")
    (tmp_path / ".out.mp4.0a1b2c3d.tmp.mp4").write_bytes(b"a killed write")
    (tmp_path / ".out.mp4.0a1b2c3d.tmp.mkv").write_bytes(b"not ours: another suffix")
    remove_temps([tmp_path / "out.mp4"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.mp4.0a1b2c3d.tmp.mkv", "out.mp4"]


def test_atomic_write_text_replaces_leftovers_and_check_writable_names_the_folder(tmp_path):
    (tmp_path / ".a.json.0a1b2c3d.tmp").write_bytes(b"half")
    atomic_write_text(tmp_path / "a.json", "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    assert check_writable(tmp_path / "new" / "run").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError, match=r"file/run: cannot write there"):
        check_writable(tmp_path / "file" / "run")


def test_read_text_names_the_file_and_line_of_a_bad_byte(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes("\ufeffa.mp4 0\nb\xe9.mp4 1\n".encode("utf-8") + b"c\xff.mp4 2\n")
    with pytest.raises(ValueError, match=r"list.txt:3: not UTF-8 text \(byte 0xff"):
        read_text(path)
    path.write_bytes("\ufeffa.mp4 0\n".encode("utf-8"))
    assert read_text(path) == "a.mp4 0\n"
