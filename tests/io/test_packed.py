"""Packed videos: exact (raw) and bounded (jpeg) round trips, a valid tar, streaming writes,
open_video dispatch, truncated / foreign / short inputs."""

from __future__ import annotations

import errno
import io
import json
import os
import struct
import tarfile
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest

from deepvideo.io import (
    FrameFolderReader,
    PackedReader,
    VideoDecodeError,
    VideoReader,
    open_video,
    read_video,
    write_packed,
)

from conftest import moving_square_frames, real_videos


@pytest.fixture
def frames() -> np.ndarray:
    return moving_square_frames(num_frames=20, size=40, seed=1)


def test_raw_round_trip_is_bit_exact(tmp_path, frames):
    path = write_packed(tmp_path / "v.tar", iter(frames), len(frames), fps=12.5, codec="raw")
    rng = np.random.default_rng(0)
    with PackedReader(path) as reader:
        assert (reader.num_frames, reader.width, reader.height, reader.codec) == (20, 40, 40, "raw")
        assert reader.fps == 12.5 and reader.duration == pytest.approx(1.6)
        np.testing.assert_array_equal(reader.keyframes, np.arange(20))
        for indices in (rng.integers(0, 20, 10), [19, 0, 19, 7, 7], np.arange(20)):
            np.testing.assert_array_equal(reader.read(indices), frames[np.asarray(indices)])
        np.testing.assert_array_equal(np.stack(list(reader)), frames)
        np.testing.assert_array_equal(reader.read_time(0.4, 0.6), frames[5:8])


def test_jpeg_round_trip_and_tar_layout(tmp_path, frames):
    frames = np.stack([cv2.GaussianBlur(f, (0, 0), 1.5) for f in frames])  # natural-image-like
    path = write_packed(tmp_path / "v.tar", frames, len(frames), fps=10, codec="jpeg", quality=90)
    with open_video(path, threads=2) as reader:
        assert isinstance(reader, PackedReader) and reader.codec == "jpeg"
        ours = reader.read([3, 17, 3, 0])
    # each frame is the JPEG OpenCV writes at that quality, decoded the same way
    _, jpeg = cv2.imencode(".jpg", frames[17][..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    np.testing.assert_array_equal(ours[1], cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[..., ::-1])
    assert np.abs(ours.astype(int) - frames[[3, 17, 3, 0]]).mean() < 3  # measured 1.9
    # a plain tar: meta.json, index.npy, then the frames; extracted, a frame folder
    with tarfile.open(path) as tar:
        names = tar.getnames()
        assert names[:3] == ["meta.json", "index.npy", "000000.jpg"] and len(names) == 22
        assert tar.extractfile("000017.jpg").read() == jpeg.tobytes()
        index = np.load(io.BytesIO(tar.extractfile("index.npy").read()))
        assert index.shape == (20, 2) and index[17, 1] == jpeg.size
        tar.extractall(tmp_path / "folder", filter="data")
    with FrameFolderReader(tmp_path / "folder") as folder:
        assert folder.fps == 10 and folder.num_frames == 20
        np.testing.assert_array_equal(folder.read([3, 17, 3, 0]), ours)


def test_open_video_dispatch(tmp_path, make_video, frames):
    video = make_video("clip.mp4")
    with open_video(video) as reader:
        assert isinstance(reader, VideoReader)
    packed = write_packed(tmp_path / "p.tar", frames, len(frames), 10, "raw")
    with open_video(packed) as reader:
        assert isinstance(reader, PackedReader)
    with pytest.raises(VideoDecodeError, match="no such file"):
        open_video(tmp_path / "missing.tar")


def test_writing_streams_and_reading_holds_only_the_clip(tmp_path):
    """Peak memory while writing or reading does not grow with the video's length."""
    frame = np.full((64, 64, 3), 7, np.uint8)

    def peak_bytes(num_frames: int) -> tuple[int, int]:
        path = tmp_path / f"{num_frames}.tar"
        tracemalloc.start()
        write_packed(path, (frame for _ in range(num_frames)), num_frames, 25, "raw")
        write_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        with PackedReader(path) as reader:
            reader.read(np.arange(8))
        read_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return write_peak, read_peak

    short, long = peak_bytes(10), peak_bytes(400)  # the long video: 4.9 MB of frames
    assert long[0] < short[0] + 100_000 and long[1] < short[1] + 100_000
    assert long[0] < 1_000_000


def test_bad_inputs_give_one_line_errors(tmp_path, frames):
    with pytest.raises(VideoDecodeError, match=r"got 20 frames to pack, expected 25"):
        write_packed(tmp_path / "short.tar", frames, 25, 10)
    assert not list(tmp_path.iterdir())  # nothing left behind, not even a temp file
    with pytest.raises(ValueError, match=r"frames must be \(H, W, 3\) uint8"):
        write_packed(tmp_path / "f.tar", frames.astype(np.float32), 20, 10)
    with pytest.raises(ValueError, match="codec must be one of jpeg, raw"):
        write_packed(tmp_path / "c.tar", frames, 20, 10, codec="png")

    good = write_packed(tmp_path / "good.tar", frames, len(frames), 10, "jpeg").read_bytes()
    (tmp_path / "empty.tar").write_bytes(b"")
    (tmp_path / "cut.tar").write_bytes(good[: len(good) // 2])
    with tarfile.open(tmp_path / "foreign.tar", "w") as tar:
        tar.add(tmp_path / "empty.tar", arcname="hello.txt")
    (tmp_path / "noise.tar").write_bytes(np.random.default_rng(0).bytes(4096))
    with tarfile.open(tmp_path / "no_index.tar", "w") as tar:  # meta.json, then an empty index.npy
        with tarfile.open(tmp_path / "good.tar") as packed:
            tar.addfile(packed.getmember("meta.json"), packed.extractfile("meta.json"))
        tar.addfile(tarfile.TarInfo("index.npy"), io.BytesIO())
    cases = {"empty.tar": "truncated packed file", "cut.tar": "truncated packed file \\(index.npy entry 9 ends at",
             "foreign.tar": "not a packed video \\(expected tar member 'meta.json'",
             "noise.tar": "not a packed video", "no_index.tar": "not a packed video \\(bad index.npy"}
    for name, message in cases.items():
        with pytest.raises(VideoDecodeError, match=rf"{name}: {message}"):
            PackedReader(tmp_path / name)
    # a frame's bytes damaged after packing: that read fails, naming file and frame
    damaged = bytearray(good)
    with PackedReader(tmp_path / "good.tar") as reader:
        offset, size = reader._index[4]
    damaged[offset:offset + size] = b"\0" * size
    (tmp_path / "damaged.tar").write_bytes(damaged)
    with PackedReader(tmp_path / "damaged.tar") as reader:
        assert reader.read([3]).shape == (1, 40, 40, 3)
        with pytest.raises(VideoDecodeError, match=r"damaged\.tar: frame 4: not a readable image"):
            reader.read([3, 4])
        with pytest.raises(IndexError, match="frame index 20 out of range"):
            reader.read([20])


@pytest.mark.parametrize("video", real_videos()[:2], ids=lambda p: p.name)
def test_real_video_packs_exactly(tmp_path, shared_data, video):
    """Raw packing of a real video keeps every decoded frame, bit for bit."""
    with VideoReader(video) as reader:
        path = write_packed(tmp_path / "v.tar", reader, reader.num_frames, reader.fps, "raw")
        fps = reader.fps
    decoded = read_video(video)
    rng = np.random.default_rng(5)
    with PackedReader(path) as packed:
        assert packed.num_frames == len(decoded) and packed.fps == fps
        for start in rng.integers(0, len(decoded) - 16, 3):
            clip = np.arange(start, start + 32, 2) % len(decoded)
            np.testing.assert_array_equal(packed.read(clip), decoded[clip])


def with_meta(packed: bytes, meta: bytes) -> bytes:
    """``packed`` with its meta.json member's data replaced by ``meta`` (header rewritten)."""
    size = tarfile.TarInfo.frombuf(packed[:512], "utf-8", "strict").size
    info = tarfile.TarInfo("meta.json")
    info.size, info.mode = len(meta), 0o644
    rest = packed[512 + size + -size % 512:]
    return info.tobuf(tarfile.USTAR_FORMAT) + meta + b"\0" * (-len(meta) % 512) + rest


def test_crafted_metadata_is_refused_naming_the_field(tmp_path, frames):
    """Every meta.json field is checked on opening: types (a bool is not an int), ranges, a
    finite fps > 0, frame sizes under MAX_FRAME_PIXELS, a frame count the file can hold."""
    good = write_packed(tmp_path / "good.tar", frames[:4], 4, 10, "raw").read_bytes()
    base = {"format": "deepvideo-packed", "version": 1, "codec": "raw", "fps": 10.0, "width": 40,
            "height": 40, "num_frames": 4}
    cases = [({"fps": 0}, "field 'fps' must be a finite number > 0, not 0"),
             ({"fps": -25.0}, "field 'fps' must be a finite number > 0, not -25.0"),
             ({"fps": float("nan")}, "field 'fps' must be a finite number > 0, not nan"),
             ({"fps": float("inf")}, "field 'fps' must be a finite number > 0, not inf"),
             ({"fps": True}, "field 'fps' must be a finite number > 0, not True"),
             ({"fps": "25"}, "field 'fps' must be a finite number > 0, not '25'"),
             ({"width": -40}, "field 'width' must be an integer >= 1, not -40"),
             ({"height": 40.0}, "field 'height' must be an integer >= 1, not 40.0"),
             ({"num_frames": True}, "field 'num_frames' must be an integer >= 1, not True"),
             ({"num_frames": 0}, "field 'num_frames' must be an integer >= 1, not 0"),
             ({"num_frames": 10**12}, "field 'num_frames' is 1000000000000, more than a file of"),
             ({"width": 10**6, "height": 10**6}, "fields 'width' x 'height' = 1000000x1000000, over the "
                                                 "frame limit of 67108864 pixels"),
             ({"version": "1"}, "field 'version' must be an integer >= 1, not '1'"),
             ({"version": 2}, "packed video version 2 codec 'raw'; this reader knows version 1"),
             ({"codec": ["raw"]}, "field 'codec' must be a string, not \\['raw'\\]"),
             ({"format": "other"}, "not a packed video \\(meta.json field 'format' is not"),
             ({"fps": [[[[[[[[1]]]]]]]]}, r"field 'fps' must be .*, not \[\[\[\[\[\[\[\.\.\.\]\]\]\]\]\]\]$")]
    cases = [(json.dumps({**base, **change}).encode(), message) for change, message in cases]
    cases += [(b"[" * 30_000, "not a packed video \\(bad meta.json: maximum recursion depth exceeded"),
              (b" " * 100_000, "tar member 'meta.json' of 100000 bytes \\(a packed video's has 0 to 65536\\)"),
              (b'{"format": "\xff"}', "not a packed video \\(bad meta.json: 'utf-8' codec can't decode"),
              (b"[1, 2]", "not a packed video \\(meta.json field 'format' is not"),
              (json.dumps({k: v for k, v in base.items() if k != "fps"}).encode(), "meta.json lacks field 'fps'")]
    for meta, message in cases:
        (tmp_path / "v.tar").write_bytes(with_meta(good, meta))
        with pytest.raises(VideoDecodeError, match=rf"v\.tar: (meta\.json )?{message}"):
            PackedReader(tmp_path / "v.tar")


def test_crafted_index_and_frames_are_refused(tmp_path, frames, monkeypatch):
    """The index must be the writer's (N, 2) uint64 array with every frame inside the file; a
    JPEG frame's header is checked before it is decoded; read errors name the file."""
    path = write_packed(tmp_path / "good.tar", frames[:4], 4, 10, "raw")
    good = path.read_bytes()
    with tarfile.open(path) as tar:
        member = tar.getmember("index.npy")
    at, size = member.offset_data, member.size
    entries = at + size - 4 * 16  # the (4, 2) uint64 data after the npy header
    huge = tarfile.TarInfo("index.npy")
    huge.size = 8**11 - 1  # the largest a ustar header holds

    def patched(offset: int, data: bytes) -> Path:
        out = tmp_path / "v.tar"
        out.write_bytes(good[:offset] + data + good[offset + len(data):])
        return out

    cases = [(entries + 16 * 2, struct.pack("<Q", 2**64 - 1),
              r"truncated packed file \(index.npy entry 2 ends at byte 18446744073709556415"),
             (entries + 16 * 3 + 8, struct.pack("<Q", 2**63), "index.npy entry 3 .* is not a raw frame"),
             (entries + 16, struct.pack("<Q", 0), r"index.npy entry 1 \(offset 0, length 4800\) is not a raw"),
             (at, good[at:at + 10] + b"{'descr': '<i8'",
              "not a packed video \\(bad index.npy: not the \\(N, 2\\) uint64 array"),
             (at, b"\x93NUMPY\x01\x00\xff\xff", "not a packed video \\(bad index.npy"),
             (good.index(b"(4, 2)", at), b"(5, 2)", "index.npy holds 5 entries in .* 'num_frames' is 4"),
             (member.offset, huge.tobuf(tarfile.USTAR_FORMAT), "tar member 'index.npy' of 8589934591 bytes"),
             (member.offset, b"\xff" * 100, "not a packed video \\(expected tar member 'index.npy'")]
    for offset, data, message in cases:
        with pytest.raises(VideoDecodeError, match=rf"v\.tar: {message}"):
            PackedReader(patched(offset, data))

    jpeg = write_packed(tmp_path / "j.tar", frames[:3], 3, 10, "jpeg")
    with PackedReader(jpeg) as reader:
        offset = int(reader._index[1, 0])
    data = bytearray(jpeg.read_bytes())
    sof = data.index(b"\xff\xc0", offset)  # baseline frame header: length, precision, H, W
    data[sof + 5:sof + 9] = struct.pack(">HH", 60000, 60000)
    jpeg.write_bytes(data)
    with PackedReader(jpeg) as reader:
        with pytest.raises(VideoDecodeError, match=r"j\.tar: frame 1 is 60000x60000, the video 40x40"):
            reader.read([1])
        def failing(*args: object) -> bytes:
            raise OSError(errno.EIO, "I/O error")

        monkeypatch.setattr(os, "pread", failing)
        with pytest.raises(VideoDecodeError, match=r"j\.tar: cannot be read \(I/O error\)"):
            reader.read([0])
    with pytest.raises(VideoDecodeError, match=r"good\.tar: cannot be read \(I/O error\)"):
        PackedReader(path)
