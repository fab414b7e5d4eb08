"""write_video: keyframe placement, round trips, frame rate, argument checks."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from deepvideo.io import VideoReader, read_video, write_video

from conftest import moving_square_frames


def smooth_frames(num: int = 12, size: int = 64) -> np.ndarray:
    """Moving colour gradients ``(T, H, W, 3)`` uint8: little lost to 4:2:0 chroma."""
    y, x = np.mgrid[0:size, 0:size] / size
    return np.stack([np.stack([128 + 90 * np.sin(2 * np.pi * (x + t / num)),
                               128 + 90 * np.cos(2 * np.pi * (y - t / num)),
                               40 + 170 * x * y], -1) for t in range(num)]).round().astype(np.uint8)


def scene_cuts(num: int = 40, size: int = 64) -> np.ndarray:
    """A new random scene every 5 frames: encoders like to put keyframes on such cuts."""
    rng = np.random.default_rng(0)
    scenes = rng.integers(0, 256, (4, size // 8, size // 8, 3), dtype=np.uint8)
    scenes = scenes.repeat(8, axis=1).repeat(8, axis=2)
    return np.stack([np.roll(scenes[t // 5 % 4], t, axis=1) for t in range(num)])


def packet_keyframes(path: Path) -> list[int]:
    """Positions (decode order) of the packets the container flags as keyframes."""
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    return [i for i, p in enumerate(packets) if p.is_keyframe]


@pytest.mark.parametrize("name,codec", [("cuts.mp4", "libx264"), ("cuts.avi", "mpeg4"),
                                        ("cuts.mkv", "libx264")])
def test_keyframe_interval_puts_keyframes_exactly_every_n_frames(tmp_path, name, codec) -> None:
    path = write_video(tmp_path / name, scene_cuts(40), fps=10, codec=codec, keyframe_interval=4)
    assert packet_keyframes(path) == list(range(0, 40, 4))
    with VideoReader(path) as reader:
        assert reader.keyframes.tolist() == list(range(0, 40, 4))


def test_default_gop_is_longer(tmp_path) -> None:
    path = write_video(tmp_path / "default.mp4", moving_square_frames(40), fps=10)
    assert packet_keyframes(path) == [0]


@pytest.mark.parametrize("codec,options,mean_below,max_at_most", [
    # measured on this content: mean 0.00 / max 0, 0.40 / 2, 2.16 / 9, 2.92 / 21, 2.47 / 15
    ("libx264rgb", {"crf": 0}, 1e-9, 0),  # RGB h264, lossless: bit-exact
    ("libx264", {"crf": 0, "pix_fmt": "yuv444p"}, 0.6, 3),  # lossless YUV, RGB<->YUV rounding
    ("libx264", {"crf": 0}, 2.5, 12),  # lossless YUV, 4:2:0 chroma
    ("libx264", {}, 3.5, 30),  # crf 23
    ("mpeg4", {}, 3.0, 24),
])
def test_round_trip_is_close(tmp_path, codec, options, mean_below, max_at_most) -> None:
    frames = smooth_frames()
    path = write_video(tmp_path / "round.mp4", frames, fps=10, codec=codec, **options)
    decoded = read_video(path)
    assert decoded.shape == frames.shape
    error = np.abs(decoded.astype(np.int16) - frames)
    assert error.mean() < mean_below and error.max() <= max_at_most, (error.mean(), error.max())


def test_lossless_round_trip_of_detailed_frames(tmp_path) -> None:
    frames = moving_square_frames(16)  # per-pixel noise: 4:2:0 would lose it
    path = write_video(tmp_path / "exact.mkv", frames, fps=10, codec="libx264rgb", crf=0)
    assert np.array_equal(read_video(path), frames)


@pytest.mark.parametrize("fps,name,codec", [(10, "a.mp4", "libx264"), (29.97, "b.mp4", "libx264"),
                                            (25, "c.avi", "mpeg4"), (12.5, "d.mkv", "libx264")])
def test_fps_and_frame_count_are_kept(tmp_path, fps, name, codec) -> None:
    path = write_video(tmp_path / name, moving_square_frames(30), fps=fps, codec=codec)
    with VideoReader(path) as reader:
        assert reader.num_frames == 30
        assert reader.fps == pytest.approx(fps, rel=1e-4)
        assert reader.duration == pytest.approx(30 / fps, rel=1e-3)


@pytest.mark.parametrize("shape", [(4, 33, 64, 3), (4, 64, 31, 3)])
def test_odd_size_is_rejected_for_yuv420p(tmp_path, shape) -> None:
    path = tmp_path / "odd.mp4"
    with pytest.raises(ValueError, match=r"odd\.mp4: yuv420p .* even"):
        write_video(path, np.zeros(shape, np.uint8), fps=10)
    assert not path.exists()
    write_video(path, np.zeros(shape, np.uint8), fps=10, pix_fmt="yuv444p")  # no subsampling
    assert read_video(path).shape == shape


@pytest.mark.parametrize("frames,kwargs,message", [
    (np.zeros((2, 3, 8, 8), np.uint8), {}, "must be \\(T, H, W, 3\\) uint8"),
    (np.zeros((2, 8, 8, 3), np.float32), {}, "must be \\(T, H, W, 3\\) uint8"),
    (np.zeros((0, 8, 8, 3), np.uint8), {}, "no frames"),
    (np.zeros((2, 8, 8, 3), np.uint8), {"fps": 0}, "fps must be"),
    (np.zeros((2, 8, 8, 3), np.uint8), {"codec": "nosuchcodec"}, "no encoder 'nosuchcodec'"),
    (np.zeros((2, 8, 8, 3), np.uint8), {"codec": "mpeg4", "crf": 10}, "crf applies to"),
    (np.zeros((2, 8, 8, 3), np.uint8), {"codec": "mpeg4", "pix_fmt": "yuv444p"}, "cannot encode"),
    (np.zeros((2, 8, 8, 3), np.uint8), {"keyframe_interval": 0}, "keyframe_interval"),
])
def test_bad_arguments_raise_value_error_naming_the_file(tmp_path, frames, kwargs, message) -> None:
    path = tmp_path / "bad.mp4"
    with pytest.raises(ValueError, match=f"bad\\.mp4: .*{message}"):
        write_video(path, frames, **{"fps": 10, **kwargs})
    assert not path.exists()


def test_unknown_container_leaves_no_file(tmp_path) -> None:
    path = tmp_path / "clip.notaformat"
    with pytest.raises(ValueError, match=r"clip\.notaformat: cannot write video"):
        write_video(path, np.zeros((2, 8, 8, 3), np.uint8), fps=10)
    assert not path.exists()


def test_video_writer_streams_frames_and_pads_odd_sizes(tmp_path):
    from deepvideo.io.encode import VideoWriter

    frames = np.ascontiguousarray(smooth_frames(10)[:, :33, :41])
    with VideoWriter(tmp_path / "out.mp4", 12.5, width=41, height=33, keyframe_interval=4) as out:
        for frame in frames:
            out.write(frame)
    with VideoReader(tmp_path / "out.mp4") as reader:
        assert (reader.num_frames, reader.width, reader.height) == (10, 42, 34)  # yuv420p: even sizes
        assert reader.fps == pytest.approx(12.5)
        decoded = reader.read(range(10))
    assert np.abs(decoded[:, :33, :41].astype(int) - frames).mean() < 4           # lossy, but the frames
    edge = np.abs(decoded[:, :33, 41].astype(int) - frames[:, :, 40]).mean()      # padding replicates the edge
    assert edge < 6


def test_video_writer_leaves_no_file_on_error(tmp_path):
    from deepvideo.io.encode import VideoWriter

    with pytest.raises(RuntimeError, match="stopped"):
        with VideoWriter(tmp_path / "out.mp4", 10, width=16, height=16) as out:
            out.write(np.zeros((16, 16, 3), np.uint8))
            raise RuntimeError("stopped")
    assert not (tmp_path / "out.mp4").exists()
