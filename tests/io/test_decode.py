"""VideoReader: metadata, exact random access on every sample video, bad input."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import av
import numpy as np
import pytest

from deepvideo.io import VideoDecodeError, VideoReader, read_video, write_video

from conftest import moving_square_frames, real_videos

VIDEOS = real_videos()


def pyav_frames(path: Path, keep=None):
    """Independent reference: plain PyAV sequential decode, ``to_ndarray("rgb24")``.

    Yields ``(index, frame)`` for every frame (the frame is None when ``keep`` is given and
    does not contain the index, so that long videos need not be held in memory).
    """
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            yield i, (frame.to_ndarray(format="rgb24") if keep is None or i in keep else None)


def index_sets(reader: VideoReader, rng: np.random.Generator) -> list[np.ndarray]:
    """Random sets, clips, repeats, unsorted indices, keyframe boundaries, the last frame."""
    n = reader.num_frames
    clip = min(16, n)
    sets = [rng.integers(0, n, 8),  # unsorted, maybe repeated
            np.sort(rng.choice(n, min(6, n), replace=False)),  # sparse sorted
            np.arange(s := int(rng.integers(0, n - clip + 1)), s + clip),  # a clip
            np.arange(n - clip, n),  # the clip that ends the video
            np.array([n - 1, 0, n - 1, n // 2, n // 2]),  # repeats, backwards seeks
            np.array([n - 1])]
    for key in reader.keyframes[1:]:  # frames either side of each keyframe
        sets.append(np.array([key - 1, key, min(key + 1, n - 1)]))
    return sets


@pytest.mark.parametrize("video", VIDEOS, ids=[v.name for v in VIDEOS])
def test_random_access_equals_sequential_decode(video: Path) -> None:
    """Every read equals an independent sequential PyAV decode, bit for bit.

    The reference converts with ``to_ndarray("rgb24")``, so this also states how exact the
    reader's colour conversion is: mean and max difference 0 on every sample video
    (BT.601 and BT.709, h264 and mpeg4, mp4 / fragmented mp4 / avi).
    """
    rng = np.random.default_rng(zlib.crc32(video.name.encode()))
    with VideoReader(video, threads=2) as reader:
        sets = index_sets(reader, rng)
        wanted = set(np.concatenate(sets).tolist())
        reference, sequential = {}, iter(reader)
        count = 0
        for i, frame in pyav_frames(video):
            ours = next(sequential)  # the reader's own sequential decode, in lockstep
            assert np.array_equal(ours, frame), f"{video.name}: sequential frame {i} differs"
            if i in wanted:
                reference[i] = frame
            count = i + 1
        assert next(sequential, None) is None
        assert reader.num_frames == count
        for indices in sets:
            frames = reader.read(indices)
            assert frames.shape == (len(indices), reader.height, reader.width, 3)
            assert frames.dtype == np.uint8
            for k, j in enumerate(indices.tolist()):
                assert np.array_equal(frames[k], reference[j]), f"{video.name}: frame {j} of {indices}"


@pytest.mark.parametrize("video", VIDEOS, ids=[v.name for v in VIDEOS])
def test_metadata_matches_container(video: Path) -> None:
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        codec, rate = stream.codec_context.name, float(stream.average_rate or stream.guessed_rate)
        width, height = stream.codec_context.width, stream.codec_context.height
    with VideoReader(video) as reader:
        assert (reader.codec, reader.width, reader.height) == (codec, width, height)
        assert reader.fps == pytest.approx(rate)
        times = reader.frame_times
        assert len(times) == reader.num_frames and times[0] == 0 and np.all(np.diff(times) > 0)
        assert reader.duration == pytest.approx(reader.num_frames / reader.fps, rel=0.05)
        assert reader.keyframes[0] == 0 and np.all(np.diff(reader.keyframes) > 0)
        assert len(reader) == reader.num_frames and video.name in repr(reader)


def test_read_time_selects_frames_by_timestamp(make_video) -> None:
    frames = moving_square_frames(30)
    path = make_video("clip.mp4", frames, fps=10, keyframe_interval=6)
    with VideoReader(path) as reader:
        assert np.allclose(reader.frame_times, np.arange(30) / 10)
        clip = reader.read_time(1.0, 1.5)
        assert np.array_equal(clip, reader.read(np.arange(10, 15)))
        assert reader.index_at(1.26) == 12 and reader.index_at(99.0) == 29
        with pytest.raises(ValueError, match="clip.mp4"):
            reader.read_time(2.0, 1.0)


@pytest.mark.parametrize("name,codec", [("clip.mkv", "libx264"), ("clip.avi", "libx264"),
                                        ("clip.avi", "mpeg4"), ("clip.mp4", "mpeg4")])
def test_random_access_in_generated_containers(make_video, name: str, codec: str) -> None:
    """Matroska (pts labels, keyframe-only index) and AVI (decode-order labels) with short GOPs."""
    path = make_video(name, moving_square_frames(40), fps=10, codec=codec, keyframe_interval=7)
    reference = np.stack([f for _, f in pyav_frames(path)])
    with VideoReader(path, threads=2) as reader:
        assert reader.num_frames == 40
        assert reader.keyframes.tolist() == list(range(0, 40, 7))
        for indices in index_sets(reader, np.random.default_rng(3)):
            assert np.array_equal(reader.read(indices), reference[indices]), indices
    assert np.array_equal(read_video(path), reference)


class CountingContainer:
    """Wraps a PyAV container and counts the packets read from it."""

    def __init__(self, container) -> None:
        self.container, self.packets = container, 0

    def demux(self, *args, **kwargs):
        for packet in self.container.demux(*args, **kwargs):
            self.packets += packet.size > 0
            yield packet

    def __getattr__(self, name: str):
        return getattr(self.container, name)


def test_read_decodes_from_the_keyframe_not_the_whole_file(make_video) -> None:
    path = make_video("long.mp4", moving_square_frames(120), keyframe_interval=30)
    with VideoReader(path, threads=1) as reader:
        reader._container = counter = CountingContainer(reader._container)
        reader.read(np.arange(95, 100))  # keyframe 90: decode 90..99 plus B-frame lookahead
        assert 10 <= counter.packets <= 16
        counter.packets = 0
        reader.read([10, 100])  # two runs: from keyframe 0 to 10, from keyframe 90 to 100
        assert 8 + 8 <= counter.packets <= 11 + 11 + 12  # drained once frame 10 (packet 8) is in


# -- bad input ------------------------------------------------------------------------

def expect_error(path: Path, cause: str, error: type[Exception] = VideoDecodeError) -> str:
    """Opening and reading ``path`` raises ``error`` whose message names the file and ``cause``."""
    with pytest.raises(error) as info:
        with VideoReader(path) as reader:
            reader.read(np.arange(reader.num_frames))
    message = str(info.value)
    assert path.name in message and cause in message, message
    assert "\n" not in message
    return message


def faststart_copy(source: Path, target: Path) -> Path:
    """Remux ``source`` with the moov index before the data, as streaming mp4s have it."""
    with av.open(str(source)) as src, av.open(str(target), "w", format="mp4",
                                              options={"movflags": "faststart"}) as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(video=0):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    return target


def test_missing_empty_and_non_video_files(tmp_path: Path) -> None:
    expect_error(tmp_path / "absent.mp4", "no such file")
    (tmp_path / "empty.mp4").write_bytes(b"")
    expect_error(tmp_path / "empty.mp4", "empty file")
    (tmp_path / "notes.mp4").write_text("this is a text file, not a video\n" * 20)
    expect_error(tmp_path / "notes.mp4", "not a readable video")
    (tmp_path / "gt.txt").write_text("".join(f"{k},1,75,1,5,16,1,-1,-1,-1\n" for k in range(1, 200)))
    expect_error(tmp_path / "gt.txt", "a text file, not a video")  # FFmpeg would open it (tty demuxer)


def test_audio_only_file(tmp_path: Path) -> None:
    path = tmp_path / "speech.m4a"
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        for k in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                               layout="mono")
            frame.sample_rate, frame.pts = 16000, k * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    expect_error(path, "no video stream")


def test_truncated_files(tmp_path: Path, shared_data: Path) -> None:
    videos = shared_data / "videos"
    data = (videos / "mmaction2__demo.mp4").read_bytes()  # moov index after the data
    (tmp_path / "first_half.mp4").write_bytes(data[:len(data) // 2])
    expect_error(tmp_path / "first_half.mp4", "moov atom not found")

    streaming = faststart_copy(videos / "mmaction2__demo.mp4", tmp_path / "streaming.mp4")
    with VideoReader(streaming) as reader:
        assert reader.num_frames == 280
    data = streaming.read_bytes()
    (tmp_path / "cut_in_mdat.mp4").write_bytes(data[:int(len(data) * 0.6)])
    expect_error(tmp_path / "cut_in_mdat.mp4", "truncated")
    with av.open(str(streaming)) as container:  # cut exactly after packet 150
        packet = [p for p in container.demux(video=0) if p.size][150]
    (tmp_path / "cut_at_packet.mp4").write_bytes(data[:packet.pos + packet.size])
    expect_error(tmp_path / "cut_at_packet.mp4", "index lists 280 frames, the file holds 151")

    for name in ["opencvtut__car_traffic_small.mp4", "mmaction2__test.avi", "opencvtut__vtest.avi"]:
        data = (videos / name).read_bytes()  # fragmented mp4, AVI cut inside and between chunks
        (tmp_path / f"half_{name}").write_bytes(data[:len(data) // 2])
        expect_error(tmp_path / f"half_{name}", "truncated")


def test_edit_list_trim_is_not_truncation(tmp_path: Path, shared_data: Path) -> None:
    """An mp4 whose edit list shows only part of its samples is complete, not truncated."""
    data = bytearray((shared_data / "videos" / "mmaction2__demo.mp4").read_bytes())
    at = data.index(b"elst") + 12  # version-0 entry: segment duration, media time, rate
    (duration,) = struct.unpack(">I", data[at:at + 4])
    data[at:at + 4] = struct.pack(">I", duration // 2)
    path = tmp_path / "trimmed.mp4"
    path.write_bytes(bytes(data))
    reference = [f for _, f in pyav_frames(path)]
    with VideoReader(path) as reader:
        assert reader.num_frames == len(reference) == 140
        assert np.array_equal(reader.read([139, 0]), np.stack([reference[139], reference[0]]))


def test_index_out_of_range_names_the_file(make_video) -> None:
    path = make_video("short.mp4", moving_square_frames(12))
    with VideoReader(path) as reader:
        for bad in ([12], [0, 99], [-1]):
            with pytest.raises(IndexError, match=r"short\.mp4.*out of range") as info:
                reader.read(bad)
            assert str(bad[-1]) in str(info.value)
        assert reader.read([]).shape == (0, 64, 64, 3)


def test_written_video_reads_back_through_read_video(tmp_path: Path) -> None:
    frames = moving_square_frames(10)
    path = write_video(tmp_path / "square.mp4", frames, fps=5, codec="libx264rgb", crf=0)
    assert np.array_equal(read_video(path), frames)


def zeroed_packet(source: Path, target: Path, packet: int) -> Path:
    """A copy of ``source`` with the bytes of one video packet zeroed (they decode to nothing)."""
    data = bytearray(source.read_bytes())
    with av.open(str(source)) as container:
        pos, size = [(p.pos, p.size) for p in container.demux(video=0) if p.size][packet]
    data[pos:pos + size] = bytes(size)
    target.write_bytes(bytes(data))
    return target


def test_iteration_that_ends_or_skips_early_raises(tmp_path: Path, make_video) -> None:
    """MPEG-2 drops a frame whose packet is zeros without an error: iteration says so, as read does."""
    good = make_video("clip.mov", moving_square_frames(12, 48), codec="mpeg2video", threads=1)
    with VideoReader(good) as reader:
        assert len(list(reader)) == 12
    for packet, message in [(11, "decoding stopped at frame 11 of 12"), (6, "frame 6 could not be decoded")]:
        with VideoReader(zeroed_packet(good, tmp_path / f"bad{packet}.mov", packet)) as reader:
            assert reader.num_frames == 12
            with pytest.raises(VideoDecodeError, match=rf"bad{packet}\.mov: {message} \(corrupt or truncated"):
                list(reader)
            with pytest.raises(VideoDecodeError, match=rf"frame {packet} could not be decoded"):
                reader.read(np.arange(12))


def test_open_gives_up_after_the_probe_limit(tmp_path: Path, monkeypatch) -> None:
    """An AVI header followed by zeros makes FFmpeg's AVI demuxer scan the whole file for its
    streams (a 4 GB file: over 4 minutes); opening gives up after OPEN_SECONDS (0.5 s here).
    The file is sparse: it takes no disk space."""
    header = write_video(tmp_path / "small.avi", moving_square_frames(4, 32), fps=10, codec="mpeg4").read_bytes()
    path = tmp_path / "zeros.avi"
    with open(path, "wb") as fh:
        fh.write(header[:2048])
        fh.truncate(512 << 20)
    monkeypatch.setattr("deepvideo.io.decode.OPEN_SECONDS", 0.5)
    expect_error(path, "no video stream found within 0.5 s of probing (probe limit OPEN_SECONDS")


# -- the in-process frame index cache -------------------------------------------------

def test_reopening_an_unchanged_file_reuses_its_frame_index(make_video, monkeypatch) -> None:
    """A reopened file skips the demuxing pass; a rewritten one is indexed again; a file changed
    less than INDEX_CACHE_MIN_AGE ago is not cached (coarse timestamps could hide a rewrite)."""
    from deepvideo.io import decode

    cache = decode.IndexCache(max_frames=1000)
    monkeypatch.setattr(decode, "INDEX_CACHE", cache)
    calls = []
    index = VideoReader._index
    monkeypatch.setattr(VideoReader, "_index", lambda self: calls.append(self.path) or index(self))
    path = make_video("clip.mp4", moving_square_frames(30), keyframe_interval=6)
    with VideoReader(path) as reader:  # written just now: too recent to cache
        reference = reader.read(np.arange(30))
    assert len(calls) == 1 and len(cache) == 0

    monkeypatch.setattr(decode, "INDEX_CACHE_MIN_AGE", 0.0)
    readers = []
    for _ in range(2):
        with VideoReader(path, threads=2) as reader:
            readers.append((reader.num_frames, reader.keyframes.tolist(), reader.frame_times.tolist()))
            assert np.array_equal(reader.read([29, 3, 3, 17]), reference[[29, 3, 3, 17]])
    assert len(calls) == 2 and len(cache) == 1 and readers[0] == readers[1]

    make_video("clip.mp4", moving_square_frames(20), keyframe_interval=5)  # same path, new content
    with VideoReader(path) as reader:
        assert reader.num_frames == 20 and reader.keyframes.tolist() == [0, 5, 10, 15]
    assert len(calls) == 3 and len(cache) == 2


def test_index_cache_evicts_the_least_recently_used_beyond_its_frame_budget() -> None:
    from deepvideo.io.decode import FrameIndex, IndexCache

    cache = IndexCache(max_frames=10)
    entries = {k: FrameIndex(True, list(range(4)), [0], [0]) for k in [(1,), (2,), (3,)]}
    cache.put((1,), entries[(1,)])
    cache.put((2,), entries[(2,)])
    assert cache.get((1,)) is entries[(1,)]  # (1,) is now the most recently used
    cache.put((3,), entries[(3,)])  # 12 frames > 10: evicts (2,)
    assert cache.get((2,)) is None and cache.get((1,)) is entries[(1,)] and cache.get((3,)) is entries[(3,)]
    cache.put((4,), FrameIndex(True, list(range(11)), [0], [0]))  # larger than the whole budget
    assert cache.get((4,)) is None and len(cache) == 2
    assert cache.get(None) is None
    cache.clear()
    assert len(cache) == 0
