"""pack_dataset: mirrored outputs in every format, frames read back, bad videos counted,
resumable runs (a real killed one too), streaming mp4, permissions, resizing, a real
sample video."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import tracemalloc

import av
import numpy as np
import pytest

from deepvideo.data.pack import PACK_FORMATS, pack_dataset, pack_target, pack_video
from deepvideo.io import (
    FrameFolderReader,
    PackedReader,
    VideoReader,
    open_video,
    read_video,
    write_packed,
    write_video,
)

from conftest import moving_square_frames


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.fixture
def dataset(tmp_path):
    """``root/{a,b}/clip.mp4`` (same names in two classes) and one corrupt ``b/bad.mp4``."""
    root = tmp_path / "videos"
    videos = [write_video(root / cls / "clip.mp4", moving_square_frames(10 + 4 * i, 32, seed=i), 10)
              for i, cls in enumerate("ab")]
    bad = root / "b" / "bad.mp4"
    bad.write_bytes(b"\0\0\0\x18ftypmp42 not really a video")
    return root, [*videos, bad]


def test_pack_target_mirrors_and_names_by_format(tmp_path):
    root = tmp_path / "r"
    assert pack_target(root / "a" / "x.avi", tmp_path / "o", root) == tmp_path / "o" / "a" / "x.tar"
    assert pack_target(root / "a" / "x.avi", "o", format="mp4").as_posix() == "o/x.mp4"
    (root / "a" / "v.1").mkdir(parents=True)  # a frame folder keeps its whole name
    assert pack_target(root / "a" / "v.1", "o", root, "raw").as_posix() == "o/a/v.1.tar"
    assert pack_target(root / "a" / "v.1", "o", root, "folder").as_posix() == "o/a/v.1"
    assert pack_target("a/x.avi", "o", format="folder").as_posix() == "o/x"
    with pytest.raises(ValueError, match="is not under the videos root"):
        pack_target(tmp_path / "elsewhere.mp4", "o", root)


@pytest.mark.parametrize("format", PACK_FORMATS)
def test_every_format_reads_back_the_decoded_frames(tmp_path, dataset, format):
    root, videos = dataset
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match=r"skipped .*bad\.mp4: "):
        summary = pack_dataset(videos, out, root=root, format=format, progress=False)
    assert (summary.written, summary.skipped) == (2, 0)
    assert [v.name for v, _ in summary.failed] == ["bad.mp4"]
    for video in videos[:2]:
        target = pack_target(video, out, root, format)
        decoded = read_video(video)
        with open_video(target) as reader:
            assert reader.num_frames == len(decoded) and reader.fps == 10
            indices = np.array([len(decoded) - 1, 0, 5, 5, 2])
            got = reader.read(indices).astype(int)
        error = np.abs(got - decoded[indices])
        if format == "raw":
            assert error.max() == 0
        else:  # lossy re-encoding of frames of pure pixel noise (measured mean 4.3-7.1)
            assert error.mean() < 10
        if format == "mp4":
            with VideoReader(target) as reader:
                np.testing.assert_array_equal(reader.keyframes, np.arange(0, len(decoded), 8))
    kinds = {"jpeg": PackedReader, "raw": PackedReader, "folder": FrameFolderReader}
    if format in kinds:
        with open_video(pack_target(videos[0], out, root, format)) as reader:
            assert isinstance(reader, kinds[format])
    target = pack_target(videos[0], out, root, format)  # modes as open() / mkdir give
    assert stat.S_IMODE(target.stat().st_mode) == (0o777 if format == "folder" else 0o666) & ~umask()


def test_resumes_skipping_finished_outputs(tmp_path, dataset):
    root, videos = dataset
    out = tmp_path / "out"
    first = pack_target(videos[0], out, root)
    pack_video(videos[0], first)  # an earlier run finished this one ...
    (out / "b").mkdir()
    (out / "b" / ".clip.tar.x1y2z3w4.tmp").write_bytes(b"half")  # ... and was killed in this one
    (out / "b" / ".clip.tar.notes.tmp").write_bytes(b"a user's file")
    stamp = first.stat().st_mtime_ns
    with pytest.warns(UserWarning, match="bad.mp4"):
        summary = pack_dataset(videos, out, root=root, progress=False, workers=2)
    assert (summary.written, summary.skipped, len(summary.failed)) == (1, 1, 1)
    assert first.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in (out / "b").iterdir()) == [".clip.tar.notes.tmp", "clip.tar"]
    with pytest.warns(UserWarning, match="bad.mp4"):
        again = pack_dataset(videos, out, root=root, progress=False)
    assert (again.written, again.skipped, len(again.failed)) == (0, 2, 1)
    with pytest.raises(ValueError, match=r"clip\.tar holds jpeg frames with short side 32, not "
                                         r"raw: use another output folder"):
        pack_dataset(videos, out, root=root, format="raw", progress=False)
    with pytest.raises(ValueError, match=r"short side 32, not jpeg at 16"):
        pack_dataset(videos, out, root=root, size=16, progress=False)


_PACK_SCRIPT = textwrap.dedent("""
    import sys
    from deepvideo.data.pack import pack_dataset
    root, out = sys.argv[1:]
    videos = [f"{root}/{name}" for name in ("a/one.mp4", "b/long.mp4", "c/two.mp4")]
    pack_dataset(videos, out, root=root, format="mp4", progress=False)
""")


def test_killed_mp4_run_leaves_no_output_and_resumes_cleanly(tmp_path, make_video):
    rng = np.random.default_rng(0)
    lengths = {"a/one.mp4": 12, "b/long.mp4": 300, "c/two.mp4": 20}  # noise: slow to encode
    for name, length in lengths.items():
        make_video(f"videos/{name}", rng.integers(0, 256, (length, 96, 96, 3), np.uint8), fps=25)
    root, out = tmp_path / "videos", tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", _PACK_SCRIPT, str(root), str(out)],
                            env=dict(os.environ, OMP_NUM_THREADS="1"), stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while proc.poll() is None and time.time() < deadline:  # kill it mid-way through long.mp4
        temps = list((out / "b").glob(".long.mp4.*.tmp*")) if (out / "b").is_dir() else []
        if temps and temps[0].stat().st_size > 0:
            break
        time.sleep(0.005)
    proc.kill()
    _, stderr = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, f"not killed while encoding: {stderr.decode()[-500:]}"
    assert not (out / "b" / "long.mp4").exists() and not (out / "c").exists()
    assert len(list((out / "b").glob(".long.mp4.*.tmp*"))) == 1  # what the kill left
    summary = pack_dataset([root / name for name in lengths], out, root=root, format="mp4",
                           progress=False)
    assert (summary.written, summary.skipped, summary.failed) == (2, 1, [])
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(
        n for n in lengths)  # every output, no temporaries left
    for name, length in lengths.items():
        with VideoReader(out / name) as reader:
            assert reader.num_frames == length and len(reader.read([length - 1])) == 1
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~umask()


def test_mp4_streams_frames_and_checks_existing_outputs(tmp_path, make_video):
    rng = np.random.default_rng(1)
    video = make_video("noise.mp4", rng.integers(0, 256, (200, 64, 64, 3), np.uint8))
    tracemalloc.start()
    try:
        pack_video(video, tmp_path / "out" / "noise.mp4", "mp4")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 * 64 * 64 * 3 / 10  # a few frames at a time (was all of them, twice)
    again = pack_dataset([video], tmp_path / "out", format="mp4", progress=False)
    assert (again.written, again.skipped) == (0, 1)
    with pytest.raises(ValueError, match=r"noise\.mp4 holds h264 frames with short side 64, not mp4 at 32"):
        pack_dataset([video], tmp_path / "out", format="mp4", size=32, progress=False)
    broken = tmp_path / "out" / "noise.mp4"
    broken.write_bytes(broken.read_bytes()[:5000])  # what a kill left in earlier versions
    with pytest.raises(ValueError, match=r"noise\.mp4: not a readable video .*: delete it to pack it again"):
        pack_dataset([video], tmp_path / "out", format="mp4", progress=False)


def test_resize_short_side_and_even_sizes_for_mp4(tmp_path, make_video):
    frames = np.repeat(np.linspace(0, 255, 48 * 64 * 3).astype(np.uint8).reshape(1, 48, 64, 3), 6, 0)
    video = make_video("wide.mp4", frames)
    with open_video(pack_video(video, tmp_path / "s.tar", "raw", size=24)) as reader:
        assert (reader.height, reader.width) == (24, 32)
    with open_video(pack_video(video, tmp_path / "s.mp4", "mp4", size=25)) as reader:
        assert (reader.height, reader.width) == (24, 32)  # 25x33 made even for yuv420p
    resumed = pack_dataset([video], tmp_path / "o", format="mp4", size=25, progress=False)
    again = pack_dataset([video], tmp_path / "o", format="mp4", size=25, progress=False)
    assert (resumed.written, again.skipped) == (1, 1)  # the even size is what size=25 makes


def test_bad_options_and_clashing_outputs(tmp_path, dataset):
    root, videos = dataset
    with pytest.raises(ValueError, match="format must be one of jpeg, raw, mp4, folder"):
        pack_dataset(videos, tmp_path, format="webp")
    with pytest.raises(ValueError, match="size must be a positive integer"):
        pack_dataset(videos, tmp_path, size=0)
    with pytest.raises(ValueError, match=r"^size must be at least 2 for mp4 \(h264 in yuv420p needs even sides"):
        pack_dataset(videos, tmp_path, format="mp4", size=1)
    with pytest.raises(ValueError, match=r"would both write .*clip\.tar \(give the videos' root"):
        pack_dataset(videos, tmp_path / "out")
    with pytest.raises(ValueError, match="no videos to pack"):
        pack_dataset([], tmp_path)
    assert not (tmp_path / "out").exists()


def test_real_video_packs_and_converts_back(tmp_path, shared_data):
    video = shared_data / "videos" / "mmaction2__test.avi"  # mpeg4 320x240, 164 frames
    decoded = read_video(video)
    summary = pack_dataset([video], tmp_path / "jpeg", progress=False)
    assert summary.written == 1 and not summary.failed
    packed = tmp_path / "jpeg" / "mmaction2__test.tar"
    folder = pack_video(packed, tmp_path / "frames", "folder")  # packed -> frame folder
    assert len([f for f in os.listdir(folder) if f.endswith(".jpg")]) == len(decoded)
    indices = np.arange(100, 132, 2)
    with open_video(packed) as a, open_video(folder) as b:
        assert a.fps == b.fps == pytest.approx(25)
        clip = a.read(indices)
        assert np.abs(clip.astype(int) - decoded[indices]).mean() < 2.5  # measured 1.7
        assert np.abs(b.read(indices).astype(int) - clip).mean() < 2.5   # JPEG of a JPEG


@pytest.mark.parametrize("format", PACK_FORMATS)
def test_crafted_and_short_decoding_inputs_are_skipped_and_counted(tmp_path, format):
    """A packed file with fps 0 and a video that decodes short (a zeroed MPEG-2 packet) are
    counted as failed beside a good video: no job abort, no short output."""
    root = tmp_path / "videos"
    good = write_video(root / "good.mov", moving_square_frames(12, 32), 10, codec="mpeg2video", threads=1)
    data = bytearray(good.read_bytes())
    with av.open(str(good)) as container:
        pos, size = [(p.pos, p.size) for p in container.demux(video=0) if p.size][-1]
    data[pos:pos + size] = bytes(size)  # the last frame decodes to nothing, without an error
    (root / "short.mov").write_bytes(bytes(data))
    packed = write_packed(root / "zero_fps.tar", moving_square_frames(3, 32), 3, 10, "raw").read_bytes()
    (root / "zero_fps.tar").write_bytes(packed.replace(b'"fps": 10.0', b'"fps": 0   '))
    with pytest.warns(UserWarning) as warned:
        summary = pack_dataset(sorted(root.iterdir()), tmp_path / "out", format=format, progress=False)
    assert (summary.written, summary.skipped) == (1, 0)
    assert {video.name: reason for video, reason in summary.failed} == {
        "short.mov": "decoding stopped at frame 11 of 12 (corrupt or truncated file)",
        "zero_fps.tar": "meta.json field 'fps' must be a finite number > 0, not 0"}
    assert len(warned) == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [pack_target(good, "o", format=format).name]
