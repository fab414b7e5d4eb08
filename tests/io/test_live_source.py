"""LiveSource: the frames of a file or a network stream in order, paced files, streams that
break off, and one-line errors for sources that cannot be opened."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from deepvideo.io import read_video
from deepvideo.io.stream import LiveSource, StreamError, source_kind

from conftest import free_port, real_videos


def test_frames_equal_a_full_decode(make_video):
    path = make_video("clip.mp4", fps=25)
    expected = read_video(path)
    with LiveSource(path) as source:
        assert (source.width, source.height, source.fps, source.num_frames) == (64, 64, 25.0, 24)
        frames = list(source)
    assert [f.index for f in frames] == list(range(24)) and source.frames == 24 and source.stopped is None
    np.testing.assert_array_equal(np.stack([f.image for f in frames]), expected)
    np.testing.assert_allclose([f.time for f in frames], np.arange(24) / 25, atol=1e-6)


def test_a_real_video_streams_whole():
    videos = [v for v in real_videos() if v.name == "mmaction2__test.avi"]
    if not videos:
        pytest.skip("../shared/data/videos/mmaction2__test.avi is absent")
    with LiveSource(videos[0]) as source:
        frames = [f.image for f in source]
    np.testing.assert_array_equal(np.stack(frames), read_video(videos[0]))


def test_realtime_never_delivers_a_frame_before_its_time(make_video):
    with LiveSource(make_video("clip.mp4", fps=50), realtime=True) as source:
        frames = list(source)
    arrived = np.array([f.arrived for f in frames]) - frames[0].arrived
    assert np.all(arrived >= np.array([f.time for f in frames]) - 1e-3)


def test_stop_from_another_thread_ends_the_iteration(make_video):
    with LiveSource(make_video("clip.mp4", fps=10), realtime=True) as source:
        seen = []
        for frame in source:
            seen.append(frame.index)
            if frame.index == 2:
                threading.Thread(target=source.stop).start()
    assert seen[:3] == [0, 1, 2] and len(seen) < 24 and source.stopped is None


def test_an_http_stream_and_one_that_breaks_off(make_video, serve_bytes):
    noise = np.random.default_rng(0).integers(0, 256, (48, 64, 64, 3), dtype=np.uint8)
    path = make_video("clip.mkv", frames=noise, fps=25)  # ~250 kB: more than FFmpeg's read-ahead
    data = path.read_bytes()
    with LiveSource(serve_bytes(data), timeout=5) as source:
        assert source.kind == "url" and source.num_frames is None
        frames = [f.image for f in source]
    np.testing.assert_array_equal(np.stack(frames), read_video(path))
    url = serve_bytes(data, cut=len(data) // 2)
    with LiveSource(url, timeout=5) as source:
        count = sum(1 for _ in source)
    assert 0 < count < 48
    assert source.stopped.startswith(f"{url}: the stream broke off after {count} frames (")
    assert "\n" not in source.stopped


def test_sources_that_cannot_be_opened_are_one_line_errors(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 50)
    port = free_port()
    cases = [(tmp_path / "missing.mp4", "missing.mp4: no such file"),
             ("7", "7: no such camera (/dev/video7 does not exist)"),
             ("/dev/video9", "/dev/video9: no such camera"),
             (text, "notes.mp4: not a readable video ("),
             (f"http://127.0.0.1:{port}/live", f"http://127.0.0.1:{port}/live: cannot open the url (")]
    for source, message in cases:
        with pytest.raises(StreamError) as info:
            LiveSource(source, timeout=2)
        assert message in str(info.value) and "\n" not in str(info.value)


def test_a_silent_stream_times_out():
    port = free_port()
    with pytest.raises(StreamError, match=rf"udp://127.0.0.1:{port}: cannot open the url \(no answer within 0.5 s\)"):
        LiveSource(f"udp://127.0.0.1:{port}", timeout=0.5)


def test_source_kinds():
    assert source_kind("0") == ("camera", "/dev/video0", "v4l2")
    assert source_kind("/dev/video2") == ("camera", "/dev/video2", "v4l2")
    assert source_kind("rtsp://cam.local/live")[0] == "url" and source_kind("UDP://1.2.3.4:5")[0] == "url"
    assert source_kind("clips/a.mp4") == ("file", "clips/a.mp4", None)
