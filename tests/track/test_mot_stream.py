"""Multi-object tracking on a network stream: the same tracks as from the file, written to
the result file frame by frame as they are confirmed."""

from __future__ import annotations

import numpy as np

from deepvideo.io import write_video
from deepvideo.track.detect import make_detector
from deepvideo.track.mot import track_video
from deepvideo.track.motio import MotWriter, read_mot, write_mot

from conftest import entering_scene


def test_tracks_of_a_stream_equal_the_file_s_and_are_written_as_they_come(tmp_path, serve_bytes):
    scene = entering_scene()  # matroska: streamable over HTTP without range requests (mp4's moov is at the end)
    video = write_video(tmp_path / "enter.mkv", scene.frames, scene.fps, crf=0)
    from_file = track_video(video, progress=False)
    out = tmp_path / "live.txt"
    mog2 = make_detector("mog2")
    written_before = {}

    def detector(frame: np.ndarray, number: int) -> np.ndarray:
        written_before[number] = read_mot(out) if out.stat().st_size else np.empty((0, 10))
        return mog2(frame, number)

    rows = track_video(serve_bytes(video.read_bytes(), name="enter.mkv"), detector=detector, out=out,
                       progress=False)
    np.testing.assert_array_equal(rows, from_file)
    np.testing.assert_allclose(read_mot(out), rows, rtol=1e-9)  # written with 10 significant digits
    assert len(rows) > 0
    for number, seen in written_before.items():  # every earlier frame's tracks were already in the file
        np.testing.assert_allclose(seen, rows[rows[:, 0] < number], rtol=1e-9)


def test_mot_writer_and_write_mot_write_the_same_lines(tmp_path):
    rows = np.array([[1, 1, 10.5, 20, 5, 6, 1, -1, -1, -1], [2, 1, 11, 21, 5, 6, 0.5, -1, -1, -1]])
    with MotWriter(tmp_path / "a.txt") as writer:
        writer.write(rows[:1])
        writer.write(rows[:0])
        writer.write(rows[1:])
    write_mot(tmp_path / "b.txt", rows)
    assert (tmp_path / "a.txt").read_text() == (tmp_path / "b.txt").read_text()
    assert (tmp_path / "a.txt").read_text().splitlines()[0] == "1,1,10.5,20,5,6,1,-1,-1,-1"
