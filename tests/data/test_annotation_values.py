"""Values in annotation files checked when they are read: labels in range, finite times of a
sane size, UTF-8 text; every error is one line naming ``file:line`` (or the file and video)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepvideo.data.datasets import (
    MAX_CLASSES,
    VideoDataset,
    parse_kinetics_csv,
    parse_list_file,
    parse_ucf101,
)
from deepvideo.detect.annotations import MAX_SECONDS, read_activitynet, read_results, read_thumos14


def error(call, *args, **kwargs) -> str:
    """The one-line message of the ``ValueError`` that ``call(*args, **kwargs)`` raises."""
    with pytest.raises(ValueError) as err:
        call(*args, **kwargs)
    message = str(err.value)
    assert "\n" not in message, message
    return message


# ---------------------------------------------------------------------------- list files


def test_a_list_label_past_the_class_count_is_refused_when_the_dataset_is_built(tmp_path):
    lst = tmp_path / "labels.txt"
    lst.write_text("a.mp4 0\nb.mp4 2\nc.mp4 5000000\n")
    assert error(parse_list_file, lst) == (
        f"{lst}:3: label 5000000 outside [0, {MAX_CLASSES}) (labels are 0-based class indices, "
        f"at most MAX_CLASSES = {MAX_CLASSES} classes)")
    assert error(parse_list_file, lst, classes=["a", "b", "c"]) == (
        f"{lst}:3: label 5000000 outside [0, 3) (the dataset has 3 classes)")
    lst.write_text(f"a.mp4 0\nb.mp4 {MAX_CLASSES - 1}\n")
    assert len(parse_list_file(lst)[1]) == MAX_CLASSES


@pytest.mark.parametrize("label", ["-1", "\u0663", "\u00b2", "1.0", "1" * 40, "0x1"])
def test_list_labels_must_be_small_ascii_integers(tmp_path, label):
    lst = tmp_path / "labels.txt"
    lst.write_text(f"a.mp4 0\nb.mp4 {label}\n", encoding="utf-8")
    assert error(parse_list_file, lst).startswith(f"{lst}:2: ")


def test_video_dataset_refuses_more_than_max_classes():
    classes = [str(i) for i in range(MAX_CLASSES + 1)]
    assert "more than MAX_CLASSES" in error(VideoDataset, [("a.mp4", 0)], classes, None, None)


def test_list_files_are_read_as_utf8_with_bom_and_any_newline(tmp_path):
    lst = tmp_path / "labels.txt"
    lst.write_bytes(b"\xef\xbb\xbfa.mp4 0\r\nb\xc3\xa9.mp4 1\rc.mp4 1\n")
    samples, classes = parse_list_file(lst)
    assert [(p.name, label) for p, label in samples] == [("a.mp4", 0), ("b\u00e9.mp4", 1), ("c.mp4", 1)]
    lst.write_bytes(b"a.mp4 0\nb\xe9.mp4 1\n")
    assert error(parse_list_file, lst).startswith(f"{lst}:2: not UTF-8 text")


def test_ucf101_label_that_is_not_an_ascii_number_names_the_line(tmp_path):
    (tmp_path / "classInd.txt").write_text("1 Alpha\n2 Beta\n")
    (tmp_path / "trainlist01.txt").write_text("Alpha/a.avi 1\nBeta/b.avi \u00b2\n", encoding="utf-8")
    assert error(parse_ucf101, tmp_path, tmp_path).startswith(f"{tmp_path / 'trainlist01.txt'}:2: expected")


# ---------------------------------------------------------------------------- Kinetics csv

HEADER = "label,youtube_id,time_start,time_end,split\n"


@pytest.mark.parametrize("start, end", [("1", "inf"), ("nan", "2"), ("-inf", "2"), ("1", "1e300"),
                                        ("-1", "2"), ("3", "2"), ("1", "1e400"), ("1", "")])
def test_kinetics_times_must_be_finite_and_ordered(tmp_path, start, end):
    csv_file = tmp_path / "k.csv"
    csv_file.write_text(f"{HEADER}a,id0,0,10,train\na,id1,{start},{end},train\n")
    assert error(parse_kinetics_csv, csv_file, tmp_path) == (
        f"{csv_file}:3: expected 0 <= time_start < time_end <= {MAX_SECONDS:g} seconds, got "
        f"time_start={start!r} time_end={end!r}")


def test_kinetics_short_row_and_non_utf8_name_the_line(tmp_path):
    csv_file = tmp_path / "k.csv"
    csv_file.write_text(f"{HEADER}a,id0,0,10,train\na,id1,0,10\n")
    assert error(parse_kinetics_csv, csv_file, tmp_path).startswith(f"{csv_file}:3: expected label, youtube_id")
    csv_file.write_bytes(f"\ufeff{HEADER}a,id0,0,10,train\n".encode() + b"caf\xe9,id1,0,10,train\n")
    assert error(parse_kinetics_csv, csv_file, tmp_path).startswith(f"{csv_file}:3: not UTF-8 text")
    csv_file.write_text(f"\ufeff{HEADER}a,id0,0,{MAX_SECONDS:g},train\n", encoding="utf-8")
    assert parse_kinetics_csv(csv_file, tmp_path)[2] == [None]  # the BOM is no part of the header


# ---------------------------------------------------------------------------- detection annotations


def activitynet(tmp_path: Path, **entry) -> Path:
    video = {"subset": "validation", "duration": 20.0, "annotations": [{"segment": [1, 2], "label": "a"}], **entry}
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"database": {"v": video}}))
    return path


@pytest.mark.parametrize("entry, fragment", [
    ({"annotations": [{"segment": [0, 1e300], "label": "a"}]}, "annotation 0: segment [0, 1e+300] has a time beyond"),
    ({"annotations": [{"segment": [0, 10 ** 400], "label": "a"}]}, "annotation 0: segment [0, 1000000000"),
    ({"annotations": [{"segment": [0, 1], "label": "  "}]}, "annotation 0: label '  ' is not a name"),
    ({"duration": 1e12}, "duration 1000000000000.0 is not a number >= 0 and <= MAX_SECONDS"),
])
def test_activitynet_huge_numbers_and_blank_labels(tmp_path, entry, fragment):
    path = activitynet(tmp_path, **entry)
    message = error(read_activitynet, path)
    assert message.startswith(f"{path}: video 'v'") and fragment in message and len(message) < 300, message


def test_activitynet_integer_too_long_to_read(tmp_path):
    path = tmp_path / "gt.json"
    path.write_text('{"database": {"v": {"subset": "val", "duration": ' + "9" * 5000 + "}}}")
    assert error(read_activitynet, path).startswith(f"{path}: not readable JSON (Exceeds the limit")


def test_results_huge_score_and_time(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"results": {"v": [{"label": "a", "score": 10 ** 400, "segment": [1, 2]}]}}))
    message = error(read_results, path)
    assert message.startswith(f"{path}: video 'v', detection 0: score 1000") and message.endswith("... is not finite")
    path.write_text(json.dumps({"results": {"v": [{"label": "a", "score": 0.5, "segment": [-1e200, 2]}]}}))
    assert "detection 0: segment [-1e+200, 2] has a time beyond MAX_SECONDS" in error(read_results, path)


def test_thumos_huge_time_and_non_utf8_name_the_line(tmp_path):
    path = tmp_path / "Jump_val.txt"
    path.write_text("video_1 1.5 2.5\nvideo_1 3 1e300\n")
    assert error(read_thumos14, tmp_path, "val").startswith(f"{path}:2: segment [3, 1e+300] has a time beyond")
    path.write_bytes(b"video_1 1.5 2.5\n\nvid\xe9o 3 4\n")
    assert error(read_thumos14, tmp_path, "val").startswith(f"{path}:3: not UTF-8 text")
    path.write_bytes(b"\xef\xbb\xbfvideo_1 1.5 2.5\n")
    assert list(read_thumos14(tmp_path, "val")) == ["video_1"]
