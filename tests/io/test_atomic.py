"""atomic_write / atomic_path: permissions as a plain open() gives, nothing left on failure;
remove_temps deletes only the leftovers of the outputs it is given."""

from __future__ import annotations

import os
import stat

import pytest

from deepvideo.io.atomic import atomic_path, atomic_write, remove_temps


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
