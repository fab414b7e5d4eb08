"""ActivityNet / THUMOS14 annotation files and ActivityNet result files: round trips and the
one-line errors of malformed input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepvideo.detect import (
    Segment,
    VideoAnnotation,
    labels_of,
    read_activitynet,
    read_results,
    read_thumos14,
    read_thumos14_ambiguous,
    write_activitynet,
    write_results,
)


def one_line(err: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(err.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


VIDEOS = {
    "sJFgo9H6zNo": VideoAnnotation("sJFgo9H6zNo", 139.042, "validation", [Segment(0.0, 48.58, "Fun sliding down"),
                                                                          Segment(86.87, 87.93, "Fun sliding down")]),
    "V1zhqaGFY2A": VideoAnnotation("V1zhqaGFY2A", 136.98, "training", [Segment(1.5, 30.0, "Beach soccer")]),
    "no_duration": VideoAnnotation("no_duration", None, "validation", [Segment(0.1 + 0.2, 1 / 3, "Beach soccer")]),
    "test_video": VideoAnnotation("test_video", 40.0, "testing", []),
    # kept as they are, like ActivityNet v1.3's own: a zero-length segment and one past the duration
    "odd": VideoAnnotation("odd", 10.0, "validation", [Segment(0.0, 0.0, "Beach soccer"),
                                                       Segment(9.0, 10.06, "Fun sliding down")]),
}


def test_activitynet_round_trip(tmp_path):
    path = write_activitynet(tmp_path / "sub" / "gt.json", VIDEOS, version="VERSION 1.3")
    assert path == tmp_path / "sub" / "gt.json"
    document = json.loads(path.read_text())
    assert document["version"] == "VERSION 1.3" and document["taxonomy"] == []
    assert "duration" not in document["database"]["no_duration"]
    assert document["database"]["sJFgo9H6zNo"]["annotations"][0] == {"segment": [0.0, 48.58],
                                                                      "label": "Fun sliding down"}
    videos = read_activitynet(path)
    assert videos == VIDEOS and list(videos) == list(VIDEOS)
    assert list(read_activitynet(path, "validation")) == ["sJFgo9H6zNo", "no_duration", "odd"]
    assert list(read_activitynet(path, "testing")) == ["test_video"]
    assert labels_of(videos) == ["Beach soccer", "Fun sliding down"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["gt.json"]  # no temporary left


def test_activitynet_reads_the_official_layout(tmp_path):
    path = tmp_path / "activity_net.v1-3.min.json"
    path.write_text(json.dumps({"version": "VERSION 1.3", "taxonomy": [{"parentName": "Root", "nodeName": "Sports",
                                                                         "nodeId": 1, "parentId": 0}],
                                "database": {"sJFgo9H6zNo": {"subset": "validation", "resolution": "640x360",
                                                             "duration": 139, "url": "https://youtu.be/x",
                                                             "annotations": [{"segment": [0, 48.58],
                                                                              "label": "Fun sliding down"}]}}}))
    assert read_activitynet(path) == {"sJFgo9H6zNo": VideoAnnotation("sJFgo9H6zNo", 139.0, "validation",
                                                                     [Segment(0.0, 48.58, "Fun sliding down")])}


def database_with(**entry) -> dict:
    video = {"subset": "validation", "duration": 20.0, "annotations": [{"segment": [1, 2], "label": "a"}]}
    return {"version": "1", "database": {"vid1": {**video, **entry}}}


@pytest.mark.parametrize("document, fragments", [
    ("{not json", ["not JSON"]),
    ("", ["empty file"]),
    ([1, 2], ["no 'database' object"]),
    ({"version": "1"}, ["no 'database' object"]),
    (database_with(annotations=[{"segment": [5, 4], "label": "a"}]), ["'vid1', annotation 0", "ends before it starts"]),
    (database_with(annotations=[{"segment": [-1, 4], "label": "a"}]), ["'vid1', annotation 0", "starts before 0"]),
    (database_with(annotations=[{"segment": [1, 4]}]), ["'vid1', annotation 0: no 'label'"]),
    (database_with(annotations=[{"segment": [1, 4], "label": 3}]), ["'vid1', annotation 0: label 3 is not a name"]),
    (database_with(annotations=[{"label": "a"}]), ["'vid1', annotation 0: no 'segment'"]),
    (database_with(annotations=[{"segment": [1], "label": "a"}]), ["is not two finite numbers"]),
    (database_with(annotations=[{"segment": ["1", 2], "label": "a"}]), ["is not two finite numbers"]),
    (database_with(annotations=None), ["video 'vid1': no 'annotations' list"]),
    (database_with(subset=None), ["video 'vid1': no 'subset'"]),
    (database_with(duration=-3), ["video 'vid1': duration -3 is not a number >= 0"]),
    ({"database": {"vid1": []}}, ["video 'vid1': not an object"]),
])
def test_activitynet_errors(tmp_path, document, fragments):
    path = tmp_path / "gt.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    with pytest.raises(ValueError) as err:
        read_activitynet(path)
    one_line(err, str(path), *fragments)


def test_activitynet_unknown_subset_and_missing_file(tmp_path):
    path = write_activitynet(tmp_path / "gt.json", VIDEOS)
    with pytest.raises(ValueError) as err:
        read_activitynet(path, "val")
    one_line(err, str(path), "no video of subset 'val' (subsets: testing, training, validation)")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        read_activitynet(tmp_path / "missing.json")


def test_write_activitynet_refuses_what_it_cannot_read_back(tmp_path):
    with pytest.raises(ValueError) as err:
        write_activitynet(tmp_path / "gt.json", {"x": VideoAnnotation("x", 5.0, "validation", [Segment(-1, 2, "a")])})
    one_line(err, "video 'x'", "starts before 0")
    with pytest.raises(ValueError, match="video 'x': the annotation is named 'y'"):
        write_activitynet(tmp_path / "gt.json", {"x": VideoAnnotation("y", 5.0, "validation", [])})
    assert not (tmp_path / "gt.json").exists()


# ----------------------------------------------------------------------------- THUMOS14


def thumos_folder(root: Path) -> Path:
    folder = root / "TH14_Temporal_annotations_validation"
    folder.mkdir()
    (folder / "BaseballPitch_val.txt").write_text("video_validation_0000051 67.5 75.9\n"
                                                  "video_validation_0000051  82.1 86.2 \n\n"
                                                  "video_validation_0000052 2.0 5.0\n")
    (folder / "CliffDiving_val.txt").write_text("video_validation_0000052\t10.0\t12.5\r\n")
    (folder / "Ambiguous_val.txt").write_text("video_validation_0000051 60.0 62.0\nvideo_validation_0000001 0 1\n")
    (folder / "BaseballPitch_test.txt").write_text("video_test_0000001 1 2\n")
    return folder


def test_read_thumos14(tmp_path):
    folder = thumos_folder(tmp_path)
    videos = read_thumos14(folder, "val")
    assert list(videos) == ["video_validation_0000051", "video_validation_0000052"]
    assert videos["video_validation_0000051"] == VideoAnnotation(
        "video_validation_0000051", None, "val",
        [Segment(67.5, 75.9, "BaseballPitch"), Segment(82.1, 86.2, "BaseballPitch")])
    assert videos["video_validation_0000052"].segments == [Segment(2.0, 5.0, "BaseballPitch"),
                                                           Segment(10.0, 12.5, "CliffDiving")]
    assert labels_of(videos) == ["BaseballPitch", "CliffDiving"]  # Ambiguous is no class
    assert labels_of(read_thumos14(folder, "test")) == ["BaseballPitch"]
    durations = {"video_validation_0000051": 80.0, "video_validation_0000052": 20.5}
    timed = read_thumos14(folder, "val", durations)
    assert timed["video_validation_0000051"].duration == 80.0  # 82.1-86.2 lies past it: kept, as THUMOS14 has some
    assert timed["video_validation_0000052"].duration == 20.5
    assert read_thumos14_ambiguous(folder, "val") == {"video_validation_0000001": [Segment(0, 1, "Ambiguous")],
                                                      "video_validation_0000051": [Segment(60, 62, "Ambiguous")]}
    assert read_thumos14_ambiguous(folder, "test") == {}


@pytest.mark.parametrize("line, fragment", [
    ("video_validation_0000051 67.5", "BaseballPitch_val.txt:2: expected 3 fields 'video start end', got 2"),
    ("video_validation_0000051 67.5 75.9 1", "BaseballPitch_val.txt:2: expected 3 fields"),
    ("video_validation_0000051 6x.5 75.9", "BaseballPitch_val.txt:2: start '6x.5' or end '75.9' is not a number"),
    ("video_validation_0000051 nan 75.9", "BaseballPitch_val.txt:2: start 'nan' or end '75.9' is not finite"),
    ("video_validation_0000051 75.9 67.5", "BaseballPitch_val.txt:2: segment [75.9, 67.5] ends before it starts"),
    ("video_validation_0000051 -1 67.5", "BaseballPitch_val.txt:2: segment [-1, 67.5] starts before 0"),
])
def test_thumos14_line_errors(tmp_path, line, fragment):
    folder = thumos_folder(tmp_path)
    (folder / "BaseballPitch_val.txt").write_text(f"video_validation_0000052 2.0 5.0\n{line}\n")
    with pytest.raises(ValueError) as err:
        read_thumos14(folder, "val")
    one_line(err, str(folder / "BaseballPitch_val.txt"), fragment)
    (folder / "Ambiguous_val.txt").write_text(f"\n{line}\n")
    with pytest.raises(ValueError) as err:
        read_thumos14_ambiguous(folder, "val")
    one_line(err, str(folder / "Ambiguous_val.txt") + ":2:")


def test_thumos14_folder_errors(tmp_path):
    folder = thumos_folder(tmp_path)
    with pytest.raises(ValueError) as err:
        read_thumos14(folder, "validation")
    one_line(err, str(folder), "no THUMOS14 class file <class>_validation.txt (subsets found: test, val)")
    with pytest.raises(ValueError) as err:
        read_thumos14(folder, "val", {"video_validation_0000051": 80.0})
    one_line(err, str(folder / "BaseballPitch_val.txt") + ":4: no duration given for video 'video_validation_0000052'")
    with pytest.raises(FileNotFoundError, match="elsewhere"):
        read_thumos14(tmp_path / "elsewhere", "val")
    only_ambiguous = tmp_path / "only"
    only_ambiguous.mkdir()
    (only_ambiguous / "Ambiguous_test.txt").write_text("v 1 2\n")
    with pytest.raises(ValueError, match="no THUMOS14 class file <class>_test.txt"):
        read_thumos14(only_ambiguous, "test")


# ----------------------------------------------------------------------------- results


RESULTS = {
    "sJFgo9H6zNo": [Segment(0.5, 40.25, "Fun sliding down", 0.9), Segment(-0.5, 3.0, "Beach soccer", 0.1 + 0.2)],
    "empty": [],
    "other": [Segment(3.0, 7.0, "Beach soccer", float(np.float32(0.7))), Segment(1 / 3, 2 / 3, "Beach soccer", 1e-9)],
}


def test_results_round_trip(tmp_path):
    path = write_results(tmp_path / "results.json", RESULTS, version="VERSION 1.3")
    document = json.loads(path.read_text())
    assert set(document) == {"version", "results", "external_data"} and document["external_data"] == {}
    assert document["results"]["sJFgo9H6zNo"][0] == {"label": "Fun sliding down", "score": 0.9,
                                                     "segment": [0.5, 40.25]}
    results = read_results(path)
    assert results == RESULTS and list(results) == list(RESULTS)  # exact: no score ties made by rounding
    assert results["other"][0].score == float(np.float32(0.7))


def results_with(detection) -> dict:
    return {"version": "1", "results": {"vid1": [{"label": "a", "score": 0.5, "segment": [1, 2]}, detection]}}


@pytest.mark.parametrize("document, fragments", [
    ("", ["empty file"]),
    ("  \n", ["empty file"]),
    ("[1, 2", ["not JSON"]),
    ({"version": "1"}, ["no 'results' object"]),
    ({"results": {"vid1": {"label": "a"}}}, ["video 'vid1': detections are not a list"]),
    (results_with({"score": 0.5, "segment": [1, 2]}), ["video 'vid1', detection 1: no 'label'"]),
    (results_with({"label": "a", "segment": [1, 2]}), ["video 'vid1', detection 1: no 'score'"]),
    (results_with({"label": "a", "score": "high", "segment": [1, 2]}), ["detection 1: score 'high' is not finite"]),
    (results_with({"label": "a", "score": 0.5}), ["video 'vid1', detection 1: no 'segment'"]),
    (results_with({"label": "a", "score": 0.5, "segment": [2, 1]}), ["detection 1: segment [2, 1] does not end after"]),
    (results_with({"label": "a", "score": 0.5, "segment": [2, 2]}), ["detection 1: segment [2, 2] does not end after"]),
    (results_with({"label": "a", "score": 0.5, "segment": [1, None]}), ["is not two finite numbers"]),
    (results_with("detection"), ["video 'vid1', detection 1: no 'segment'"]),
])
def test_results_errors(tmp_path, document, fragments):
    path = tmp_path / "results.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    with pytest.raises(ValueError) as err:
        read_results(path)
    one_line(err, str(path), *fragments)


def test_results_writer_and_segment_checks(tmp_path):
    with pytest.raises(ValueError) as err:
        write_results(tmp_path / "r.json", {"v": [Segment(2.0, 2.0, "a", 0.5)]})
    one_line(err, str(tmp_path / "r.json"), "video 'v', detection 0: segment [2, 2] does not end after it starts")
    assert not (tmp_path / "r.json").exists()
    with pytest.raises(FileNotFoundError, match="missing.json"):
        read_results(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="end is before start"):
        Segment(3.0, 2.0, "a")
    with pytest.raises(ValueError, match="not finite"):
        Segment(0.0, 2.0, "a", float("nan"))


def test_segments_past_the_duration_are_kept_and_counted(tmp_path):
    path = tmp_path / "anno.json"
    path.write_text(json.dumps({"database": {
        "a": {"subset": "testing", "duration": 10.0, "annotations": [{"segment": [8.0, 10.4], "label": "x"},
                                                                      {"segment": [1.0, 2.0], "label": "x"}]},
        "b": {"subset": "testing", "duration": 5.0, "annotations": [{"segment": [4.0, 6.0], "label": "y"}]}}}))
    with pytest.warns(UserWarning, match=r"anno\.json: 2 segments end past their video's duration \(first: 'a' "
                                         r"\[8, 10\.4\] of 10 s\); kept"):
        videos = read_activitynet(path)
    assert [s.end for s in videos["a"].segments] == [10.4, 2.0]
