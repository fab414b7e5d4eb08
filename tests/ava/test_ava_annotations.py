"""AVA CSV files, label maps and excluded timestamps: round trips, the official layouts, and the
one-line ``file:line: reason`` error of each kind of bad line."""

from __future__ import annotations

import re

import pytest

from deepvideo.ava import (
    ActionLabel,
    AvaBox,
    read_detections,
    read_excluded,
    read_groundtruth,
    read_label_map,
    write_detections,
    write_excluded,
    write_groundtruth,
    write_label_map,
)

# lines as they appear in ava_val_v2.2.csv (video, keyframe second, x1, y1, x2, y2, action, person)
GT_LINES = """\
1j20qq1JyX4,0902,0.002,0.118,0.714,0.977,12,0
1j20qq1JyX4,0902,0.002,0.118,0.714,0.977,17,0
1j20qq1JyX4,0902,0.444,0.010,0.974,0.963,12,1
-5KQ66BBWC4,1798,0.0,0.0,1.0,1.0,80,3
"""

# AVA v2.2's style (ava_action_list_v2.2_for_activitynet_2019.pbtxt)
LABEL_STYLE = """\
label {
  name: "bend/bow (at the waist)"
  label_id: 1
  label_type: PERSON_MOVEMENT
}
label {
  name: "carry/hold (an object)"
  label_id: 17
  label_type: OBJECT_MANIPULATION
}
"""

# AVA v2.1's evaluation list (ava_action_list_v2.1_for_activitynet_2018.pbtxt.txt), and one-line blocks
ITEM_STYLE = """\
item {
  name: "bend/bow (at the waist)"
  id: 1
}
item { name: "stand" id: 12 }
# a comment
item { name: "carry/hold (an object)" id: 17 }
"""


def test_read_groundtruth(tmp_path):
    path = tmp_path / "ava_val.csv"
    path.write_text(GT_LINES)
    boxes = read_groundtruth(path)
    assert len(boxes) == 4 and boxes.num_skipped == 0
    first = boxes.boxes[0]
    assert first == AvaBox("1j20qq1JyX4", 902, 0.002, 0.118, 0.714, 0.977, 12, 0)
    assert first.key == ("1j20qq1JyX4", 902) and first.score is None
    assert boxes.boxes[3].video_id == "-5KQ66BBWC4" and boxes.boxes[3].timestamp == 1798
    # ground truth without the person id column (7 fields) reads too
    path.write_text("vid,0902,0.1,0.2,0.3,0.4,5\n\n")
    assert read_groundtruth(path).boxes == [AvaBox("vid", 902, 0.1, 0.2, 0.3, 0.4, 5)]


def test_csv_round_trip(tmp_path):
    groundtruth = [AvaBox("a", 902, 0.077, 0.1, 0.5, 0.9, 12, 0), AvaBox("a", 902, 0.077, 0.1, 0.5, 0.9, 17, 0),
                   AvaBox("b-_x", 1798, 0.0, 0.0, 1.0, 1.0, 80, 7), AvaBox("c", 5, 0.1, 0.2, 0.3, 0.4, 1)]
    write_groundtruth(tmp_path / "gt.csv", groundtruth)
    text = (tmp_path / "gt.csv").read_text()
    assert text.splitlines()[0] == "a,0902,0.077,0.1,0.5,0.9,12,0"  # timestamps as %04d
    assert text.splitlines()[3] == "c,0005,0.1,0.2,0.3,0.4,1"  # no person id: 7 fields
    assert read_groundtruth(tmp_path / "gt.csv").boxes == groundtruth
    detections = [AvaBox("a", 902, 0.1, 0.2, 0.3, 0.4, 12, score=0.1 + 0.2), AvaBox("a", 903, 0.1, 0.2, 0.3, 0.4, 3,
                                                                                  score=1e-7)]
    write_detections(tmp_path / "det.csv", detections)
    assert read_detections(tmp_path / "det.csv").boxes == detections  # scores exactly (0.30000000000000004)
    with pytest.raises(ValueError, match=r"det2.csv: detection 0 \(a,0902\) has no score"):
        write_detections(tmp_path / "det2.csv", groundtruth[:1])
    assert not (tmp_path / "det2.csv").exists()


BAD_LINES = [
    ("vid,0902,0.1,0.2,0.3,0.4", "expected 8 fields video_id,timestamp,x1,y1,x2,y2,action_id,person_id (or 7 "
                                 "without person_id), got 6"),
    ("vid,0902,0.1,0.2,0.3,0.4,1,0,0", "expected 8 fields video_id,timestamp,x1,y1,x2,y2,action_id,person_id (or 7 "
                                       "without person_id), got 9"),
    ("vid,09:02,0.1,0.2,0.3,0.4,1,0", "timestamp '09:02' is not a whole number of seconds"),
    ("vid,0902,0.1,abc,0.3,0.4,1,0", "box y1 'abc' is not a number"),
    ("vid,0902,0.1,0.2,nan,0.4,1,0", "box x2 'nan' is not finite"),
    ("vid,0902,0.1,0.2,1.3,0.4,1,0", "box x2=1.3 is outside [0, 1] (AVA boxes are normalised)"),
    ("vid,0902,-0.1,0.2,0.3,0.4,1,0", "box x1=-0.1 is outside [0, 1] (AVA boxes are normalised)"),
    ("vid,0902,0.3,0.2,0.3,0.4,1,0", "box x2=0.3 is not right of x1=0.3"),
    ("vid,0902,0.1,0.5,0.3,0.4,1,0", "box y2=0.4 is not below y1=0.5"),
    ("vid,0902,0.1,0.2,0.3,0.4,1.5,0", "action id '1.5' is not an integer"),
    ("vid,0902,0.1,0.2,0.3,0.4,0,0", "action id 0 is not an integer >= 1"),
    ("vid,0902,0.1,0.2,0.3,0.4,99,0", "action id 99 is not in the label map (2 classes)"),
    ("vid,0902,0.1,0.2,0.3,0.4,1,x", "person id 'x' is not an integer"),
    (",0902,0.1,0.2,0.3,0.4,1,0", "video id '' is empty"),
]


@pytest.mark.parametrize("line, reason", BAD_LINES)
def test_bad_groundtruth_line(tmp_path, line, reason):
    path = tmp_path / "gt.csv"
    path.write_text(f"vid,0902,0.1,0.2,0.3,0.4,1,0\n{line}\n")
    with pytest.raises(ValueError) as err:
        read_groundtruth(path, labels={1: "a", 2: "b"})
    assert str(err.value) == f"{path}:2: {reason}"


@pytest.mark.parametrize("line, reason", [
    ("vid,0902,0.1,0.2,0.3,0.4,1", "expected 8 fields video_id,timestamp,x1,y1,x2,y2,action_id,score, got 7"),
    ("vid,0902,0.1,0.2,0.3,0.4,1,high", "score 'high' is not a number"),
    ("vid,0902,0.1,0.2,0.3,0.4,1,inf", "score 'inf' is not finite"),
])
def test_bad_detection_line(tmp_path, line, reason):
    path = tmp_path / "det.csv"
    path.write_text(f"\nvid,0902,0.1,0.2,0.3,0.4,1,0.5\n{line}\n")
    with pytest.raises(ValueError) as err:
        read_detections(path)
    assert str(err.value) == f"{path}:3: {reason}"


def test_skip_bad_lines(tmp_path):
    path = tmp_path / "det.csv"
    path.write_text("vid,0902,0.1,0.2,0.3,0.4,1,0.5\nvid,0902,0.5,0.2,0.3,0.4,1,0.5\n"
                    "vid,0903,0.1,0.2,0.3,0.4,1,0.25\nvid,0902,0.1,0.2,0.3,0.4,2,0.5\n")
    with pytest.warns(UserWarning, match=re.escape(f"{path}: skipped 2 bad lines (first: {path}:2: box x2=0.3 is "
                                                   "not right of x1=0.5)")):
        read = read_detections(path, labels=[1], skip_bad=True)
    assert [b.timestamp for b in read] == [902, 903]
    assert read.num_skipped == 2
    assert read.skipped[1] == f"{path}:4: action id 2 is not in the label map (1 classes)"


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such AVA ground-truth file"):
        read_groundtruth(tmp_path / "nope.csv")


def test_box_rules():
    with pytest.raises(ValueError, match=r"box y2=0.1 is not below y1=0.2"):
        AvaBox("v", 902, 0.1, 0.2, 0.3, 0.1, 1)
    with pytest.raises(ValueError, match="score nan is not a finite number"):
        AvaBox("v", 902, 0.1, 0.2, 0.3, 0.4, 1, score=float("nan"))
    with pytest.raises(ValueError, match="timestamp -1 is not a whole number of seconds >= 0"):
        AvaBox("v", -1, 0.1, 0.2, 0.3, 0.4, 1)


# ----------------------------------------------------------------------------- excluded timestamps


def test_excluded_round_trip(tmp_path):
    path = tmp_path / "excluded.csv"
    path.write_text("-5KQ66BBWC4,0902\n-5KQ66BBWC4,1798\n\n1j20qq1JyX4,0905\n")
    keys = read_excluded(path)
    assert keys == {("-5KQ66BBWC4", 902), ("-5KQ66BBWC4", 1798), ("1j20qq1JyX4", 905)}
    write_excluded(tmp_path / "out.csv", keys)
    assert (tmp_path / "out.csv").read_text() == "-5KQ66BBWC4,0902\n-5KQ66BBWC4,1798\n1j20qq1JyX4,0905\n"
    assert read_excluded(tmp_path / "out.csv") == keys


@pytest.mark.parametrize("line, reason", [("vid,0902,x", "expected 2 fields video_id,timestamp, got 3"),
                                          ("vid,9.5", "timestamp '9.5' is not a whole number of seconds")])
def test_bad_excluded_line(tmp_path, line, reason):
    path = tmp_path / "excluded.csv"
    path.write_text(f"vid,0902\n{line}\n")
    with pytest.raises(ValueError) as err:
        read_excluded(path)
    assert str(err.value) == f"{path}:2: {reason}"


# ----------------------------------------------------------------------------- label maps


def test_read_label_map_styles(tmp_path):
    (tmp_path / "v22.pbtxt").write_text(LABEL_STYLE)
    labels = read_label_map(tmp_path / "v22.pbtxt")
    assert list(labels) == [1, 17]
    assert labels[17] == ActionLabel(17, "carry/hold (an object)", "OBJECT_MANIPULATION")
    (tmp_path / "v21.pbtxt").write_text(ITEM_STYLE)
    labels = read_label_map(tmp_path / "v21.pbtxt")
    assert {k: v.name for k, v in labels.items()} == {1: "bend/bow (at the waist)", 12: "stand",
                                                      17: "carry/hold (an object)"}
    assert labels[12].label_type is None


@pytest.mark.parametrize("style", ["item", "label"])
def test_label_map_round_trip(tmp_path, style):
    labels = {1: ActionLabel(1, "bend/bow (at the waist)", "PERSON_MOVEMENT"),
              14: ActionLabel(14, 'say "hi" \\ wave', "PERSON_INTERACTION"), 80: ActionLabel(80, "watch (a person)")}
    path = write_label_map(tmp_path / "labels.pbtxt", labels, style=style)
    read = read_label_map(path)
    if style == "label":
        assert read == labels
    else:  # the item style has no label types
        assert read == {k: ActionLabel(k, v.name) for k, v in labels.items()}
    assert path.read_text().splitlines()[:3] == ([style + " {", '  name: "bend/bow (at the waist)"',
                                                  "  id: 1" if style == "item" else "  label_id: 1"])
    assert read_label_map(write_label_map(tmp_path / "names.pbtxt", {3: "stand", 5: "sit"})) == {
        3: ActionLabel(3, "stand"), 5: ActionLabel(5, "sit")}


@pytest.mark.parametrize("text, line, reason", [
    ('item {\n  name: "a"\n}\n', 1, "item block without an id (id: or label_id:)"),
    ('item {\n  id: 3\n}\n', 1, "item block without a name"),
    ('item { name: "a" id: 1 }\nitem {\n  name: "b"\n  id: 1\n}\n', 4, "id 1 is already used by 'a'"),
    ('item { name: "a" id: one }\n', 1, "id one is not an integer >= 1"),
    ('item { name: "a" id: 0 }\n', 1, "id 0 is not an integer >= 1"),
    ('item { name: "a"\n name: "b" id: 1 }\n', 2, "field 'name' is given twice in one block"),
    ('items { name: "a" id: 1 }\n', 1, "expected 'item {' or 'label {', got 'items'"),
    ('item { name: "a" id: 1\n', 1, "file ends inside a block"),
    ('item { name "a" id: 1 }\n', 1, "expected ':', got '\"a\"'"),
    ('item { name: a id: 1 }\n', 1, "name a is not a quoted string"),
    ('\n\nitem { name: "a" id: 1 } ?\n', 3, "unexpected character '?'"),
])
def test_bad_label_map(tmp_path, text, line, reason):
    path = tmp_path / "labels.pbtxt"
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        read_label_map(path)
    assert str(err.value) == f"{path}:{line}: {reason}"


def test_empty_label_map(tmp_path):
    path = tmp_path / "labels.pbtxt"
    path.write_text("# nothing\n")
    with pytest.raises(ValueError, match="no 'item {...}' or 'label {...}' block, not an AVA label map"):
        read_label_map(path)
