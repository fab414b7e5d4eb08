"""Detections far apart in time: tracking skips the empty frames no live track needs (same
rows as running every frame), frame numbers past MAX_FRAME are refused naming file:line, and
detections past the end of a video are counted in one warning."""

from __future__ import annotations

import numpy as np
import pytest

from deepvideo.cli import main
from deepvideo.track.deepsort import DeepSort
from deepvideo.track.mot import track_detections, track_video
from deepvideo.track.motio import MAX_COORDINATE, MAX_FRAME, frames_of, read_mot, write_mot
from deepvideo.track.scenes import make_scene, noisy_detections
from deepvideo.track.sort import ByteTrack, Sort


def every_frame(dets: np.ndarray, tracker, last: int) -> np.ndarray:
    """The reference: ``tracker`` run on every frame ``1..last``."""
    by_frame = frames_of(dets)
    out = []
    for number in range(1, last + 1):
        tracks = tracker.update(by_frame.get(number, np.empty((0, 7)))[:, 2:7])
        rows = np.full((len(tracks), 10), -1.0)
        rows[:, 0], rows[:, 1], rows[:, 2:6], rows[:, 6] = number, tracks[:, 4], tracks[:, :4], 1
        out.append(rows)
    return np.concatenate(out)


def gapped_detections() -> np.ndarray:
    """A scene's detections on frames 21-32 (none before: SORT's frame count must move on), then
    the same boxes again from frame 80 and 400."""
    dets = noisy_detections(make_scene(num_objects=3, num_frames=12, size=(64, 96), seed=4, render=False).gt,
                            seed=2)
    late, later = dets.copy(), dets[dets[:, 0] <= 3].copy()
    dets[:, 0] += 20
    late[:, 0] += 79
    later[:, 0] += 399
    return np.concatenate([dets, late, later])


@pytest.mark.parametrize("make", [Sort, lambda: Sort(max_age=5, min_hits=2), ByteTrack, lambda: ByteTrack(max_age=8),
                                  DeepSort, lambda: DeepSort(max_age=4, n_init=1)],
                         ids=["sort", "sort-5-2", "bytetrack", "bytetrack-8", "deepsort", "deepsort-4-1"])
def test_skipping_empty_frames_gives_the_rows_of_every_frame(make):
    dets = gapped_detections()
    for last in (None, 420):  # up to the last detection, and past it (DeepSORT reports a missed frame)
        expected = every_frame(dets, make(), last or int(dets[:, 0].max()))
        np.testing.assert_array_equal(track_detections(dets, make(), num_frames=last), expected)


def test_a_detection_at_frame_1e8_is_tracked_at_once(tmp_path, capsys):
    box = [-1, 10, 10, 20, 40, 0.9, -1, -1, -1]
    dets = tmp_path / "dets.txt"
    write_mot(dets, np.array([[1, *box], [2, *box], [100_000_000, *box]], np.float64))
    out = tmp_path / "out.txt"
    assert main(["track", "mot", "--dets", str(dets), "--out", str(out)]) == 0
    capsys.readouterr()
    rows = read_mot(out)  # SORT: one track on frames 1-2; frame 10**8 only starts a tentative one
    assert rows[:, :2].tolist() == [[1, 1], [2, 1]]
    np.testing.assert_allclose(rows[:, 2:6], [[10, 10, 20, 40]] * 2)
    assert track_detections(read_mot(dets), Sort(min_hits=0))[:, :2].tolist() == [[1, 1], [2, 1], [100_000_000, 2]]


def test_frames_past_max_frame_are_refused_naming_the_line(tmp_path):
    dets = tmp_path / "dets.txt"
    dets.write_text(f"1,-1,10,10,20,40,0.9\n\n{MAX_FRAME + 1},-1,10,10,20,40,0.9\n")
    with pytest.raises(ValueError, match=rf"^{dets}:3: frame 1e\+09 is past MAX_FRAME = {MAX_FRAME}$"):
        read_mot(dets)
    dets.write_text("1,-1,10,10,20,40,0.9\n1e300,-1,10,10,20,40,0.9\n")
    with pytest.raises(ValueError, match=rf"^{dets}:2: frame 1e\+300 is past MAX_FRAME"):
        read_mot(dets)


def test_box_coordinates_past_the_limit_are_refused_naming_the_line(tmp_path):
    dets = tmp_path / "dets.txt"
    dets.write_text("1,-1,10,10,20,40,0.9\n2,-1,1e308,10,20,40,0.9\n")
    with pytest.raises(ValueError, match=rf"^{dets}:2: box x=1e\+308 y=10 w=20 h=40 is past MAX_COORDINATE = 1e\+07$"):
        read_mot(dets)
    dets.write_text(f"1,-1,{-MAX_COORDINATE},10,20,{MAX_COORDINATE},0.9\n")
    assert read_mot(dets)[0, 2:6].tolist() == [-MAX_COORDINATE, 10, 20, MAX_COORDINATE]


def test_detections_past_the_video_are_counted_in_one_warning(make_video, tmp_path):
    scene = make_scene(num_objects=2, num_frames=6, size=(48, 64), seed=3)
    video = make_video("scene.mp4", scene.frames)
    dets = noisy_detections(scene.gt, seed=1)
    far = dets[dets[:, 0] == 1].copy()
    far[:, 0] = 50_000_000
    with pytest.warns(UserWarning, match=rf"dets: {len(far)} detections on 1 frames past the video's last "
                                         r"frame 6 were ignored \(first: frame 50000000\)"):
        rows = track_video(video, "sort", "dets", dets=np.concatenate([dets, far]), progress=False)
    np.testing.assert_array_equal(rows, track_detections(dets, "sort", num_frames=6))
