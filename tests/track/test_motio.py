"""MOTChallenge file reading and writing."""

from __future__ import annotations

import numpy as np
import pytest

from deepvideo.track.motio import frames_of, read_mot, read_seqinfo, write_mot


def test_read_real_gt_result_and_detections(shared_data):
    mot = shared_data / "mot"
    gt = read_mot(mot / "TUD-Campus" / "gt.txt")
    assert gt.shape == (359, 10) and gt.dtype == np.float64
    np.testing.assert_array_equal(gt[0], [1, 1, 399, 182, 121, 229, 1, -1, -1, -1])
    assert gt[:, 0].min() == 1 and gt[:, 0].max() == 71
    result = read_mot(mot / "TUD-Campus" / "test.txt")
    np.testing.assert_allclose(result[0, :6], [1, 3, 113.84, 274.5, 57.307, 130.05])
    dets = read_mot(mot / "sort_frcnn_dets" / "TUD-Campus.det.txt")
    assert (dets[:, 1] == -1).all() and 0 < dets[:, 6].min() <= dets[:, 6].max() <= 1
    # the TrackEval-layout copy holds the same boxes
    same = read_mot(mot / "mmtracking_demo_MOT15" / "train" / "TUD-Campus" / "gt" / "gt.txt")
    np.testing.assert_array_equal(gt, same)


def test_read_variants(tmp_path):
    path = tmp_path / "mixed.txt"
    path.write_bytes(b"\xef\xbb\xbf1,2,10,20,30,40\r\n\r\n2, 3, 1.5, 2.5, 3, 4, 0.9,\n3 4 5 6 7 8 1 7 0.25 1\n")
    rows = read_mot(path)
    np.testing.assert_array_equal(rows, [[1, 2, 10, 20, 30, 40, -1, -1, -1, -1],
                                         [2, 3, 1.5, 2.5, 3, 4, 0.9, -1, -1, -1],
                                         [3, 4, 5, 6, 7, 8, 1, 7, 0.25, 1]])


def test_empty_and_missing(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    assert read_mot(empty).shape == (0, 10)
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_mot(tmp_path / "nope.txt")


@pytest.mark.parametrize("line, problem", [
    ("1,2,3,4,5", "expected 6 to 10 fields"),
    ("1,2,3,4,5,6,7,8,9,10,11", "expected 6 to 10 fields"),
    ("1,2,x,4,5,6", "x 'x' is not a number"),
    ("1,2,3,4,nan,6", "w is nan"),
    ("1,2,3,4,-5,6", "negative box size"),
    ("1,2,3,4,5,-0.5", "negative box size"),
    ("0,2,3,4,5,6", "frame 0 is not an integer >= 1"),
    ("1.5,2,3,4,5,6", "frame 1.5 is not an integer"),
    ("1,2.5,3,4,5,6", "id 2.5 is not an integer"),
])
def test_malformed_line_names_file_and_line(tmp_path, line, problem):
    path = tmp_path / "bad.txt"
    path.write_text(f"1,1,0,0,10,10,1,-1,-1,-1\n\n{line}\n")
    with pytest.raises(ValueError, match=f"bad.txt:3: {problem}"):
        read_mot(path)


def test_write_round_trip(tmp_path):
    rows = np.array([[1, 3, 113.84, 274.5, 57.307, 130.05, 0.75, 4.0, 5.0, 6.0],
                     [2, 10, 1e-3, 1920.125, 0, 1080, -1, -1, -1, -1]])
    path = write_mot(tmp_path / "out" / "seq.txt", rows)
    assert path.read_text().splitlines()[0] == "1,3,113.84,274.5,57.307,130.05,0.75,-1,-1,-1"
    back = read_mot(path)
    np.testing.assert_array_equal(back[:, :7], rows[:, :7])
    assert (back[:, 7:] == -1).all()
    assert [p.name for p in path.parent.iterdir()] == ["seq.txt"]  # no temporary file left


def test_write_six_columns_and_bad_shape(tmp_path):
    path = write_mot(tmp_path / "six.txt", np.array([[4.0, 2.0, 1.0, 2.0, 3.0, 4.0]]))
    assert path.read_text() == "4,2,1,2,3,4,-1,-1,-1,-1\n"
    with pytest.raises(ValueError, match="six.txt"):
        write_mot(tmp_path / "six.txt", np.zeros((2, 5)))
    write_mot(tmp_path / "none.txt", np.empty((0, 10)))
    assert read_mot(tmp_path / "none.txt").shape == (0, 10)


def test_read_seqinfo(shared_data, tmp_path):
    folder = shared_data / "mot" / "mmtracking_demo_MOT15" / "train" / "TUD-Stadtmitte"
    assert read_seqinfo(folder) == {"name": "TUD-Stadtmitte", "seqLength": 179}
    full = tmp_path / "seqinfo.ini"
    full.write_text("[Sequence]\nname=MOT17-02-FRCNN\nimDir=img1\nframeRate=30\nseqLength=600\n"
                    "imWidth=1920\nimHeight=1080\nimExt=.jpg\n")
    info = read_seqinfo(full)
    assert info == {"name": "MOT17-02-FRCNN", "imDir": "img1", "frameRate": 30.0, "seqLength": 600,
                    "imWidth": 1920, "imHeight": 1080, "imExt": ".jpg"}
    assert isinstance(info["seqLength"], int) and isinstance(info["frameRate"], float)


@pytest.mark.parametrize("text, problem", [
    ("name=x\nseqLength=3\n", "not an ini file"),
    ("[Other]\nname=x\n", "no \\[Sequence\\] section"),
    ("[Sequence]\nname=x\n", "lacks seqLength"),
    ("[Sequence]\nname=x\nseqLength=many\n", "seqLength='many' is not an integer"),
])
def test_read_seqinfo_errors(tmp_path, text, problem):
    (tmp_path / "seqinfo.ini").write_text(text)
    with pytest.raises(ValueError, match=problem):
        read_seqinfo(tmp_path)
    with pytest.raises(FileNotFoundError, match="seqinfo.ini"):
        read_seqinfo(tmp_path / "elsewhere")


def test_frames_of_groups_in_frame_order():
    rows = np.array([[3, 1, 0, 0, 1, 1], [1, 2, 0, 0, 1, 1], [3, 5, 0, 0, 1, 1], [1, 7, 0, 0, 1, 1]], float)
    groups = frames_of(rows)
    assert list(groups) == [1, 3]
    np.testing.assert_array_equal(groups[1][:, 1], [2, 7])
    np.testing.assert_array_equal(groups[3][:, 1], [1, 5])
    assert frames_of(np.empty((0, 10))) == {}
