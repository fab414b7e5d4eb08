"""The caption file format and its bad-input errors, and the captioned motion dataset: what its
captions say, held-out combinations, resuming."""

from __future__ import annotations

import csv

import pytest

from deepvideo.language import CaptionedConfig, make_captioned_motion_dataset, parse_captions
from deepvideo.language.data import colour_name, describe


def test_caption_file_gives_several_captions_per_video_in_order(make_video, tmp_path):
    (tmp_path / "sub").mkdir()
    first, second = make_video("a.mp4"), make_video("sub/b.mp4")
    captions = tmp_path / "captions.tsv"
    captions.write_text(f"# video<TAB>caption\n{first.name}\ta red square moving left\n\n"
                        f"sub/b.mp4\t a star \n{first.name}\tthe square slides left\n")
    parsed = parse_captions(captions, first.parent)
    assert parsed == {first: ["a red square moving left", "the square slides left"], second: ["a star"]}


@pytest.mark.parametrize("text, message", [
    ("a.mp4 a caption without a tab\n", r"captions.tsv:1: expected 'video<TAB>caption'"),
    ("a.mp4\t   \n", r"captions.tsv:1: expected 'video<TAB>caption'"),
    ("# only a comment\n", r"captions.tsv: no captions"),
])
def test_bad_caption_lines_name_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "captions.tsv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        parse_captions(path, tmp_path)


def test_missing_videos_are_counted_and_listed(make_video, tmp_path):
    present = make_video("a.mp4")
    path = tmp_path / "captions.tsv"
    path.write_text("".join(f"{name}\tcaption\n" for name in ("a.mp4", "gone1.mp4", "gone2.mp4", "gone1.mp4",
                                                               "gone3.mp4", "gone4.mp4")))
    with pytest.raises(ValueError, match=r"captions.tsv: 4 of the 5 videos it names are missing under .*"
                                         r"gone1.mp4, .*gone2.mp4, .*gone3.mp4, \.\.\.\)$"):
        parse_captions(path, present.parent)
    with pytest.raises(ValueError, match="caption file .*nothing.tsv does not exist"):
        parse_captions(tmp_path / "nothing.tsv", tmp_path)


def test_colour_names():
    assert [colour_name(c) for c in ((230, 20, 20), (20, 200, 30), (30, 40, 220), (240, 230, 40), (10, 10, 10),
                                     (240, 240, 240), (128, 128, 128))] == \
        ["red", "green", "blue", "yellow", "black", "white", "grey"]


def test_captioned_motion_dataset_describes_what_moves_and_holds_out_combinations(tmp_path):
    holdout = (("star", "left"), ("square", "grow"))
    config = CaptionedConfig(train=20, val=2, test=4, holdout=holdout, num_frames=4, size=16, captions=3)
    root = make_captioned_motion_dataset(tmp_path / "ds", config, progress=False)
    rows = list(csv.DictReader(open(root / "annotations.csv")))
    assert len(rows) == 26
    seen = {(row["shape"], row["motion"]) for row in rows if row["split"] != "test"}
    held = {(row["shape"], row["motion"]) for row in rows if row["split"] == "test"}
    assert held == set(holdout) and not seen & set(holdout)
    captions = parse_captions(root / "captions" / "test.tsv", root)
    assert len(captions) == 4 and all(len(texts) == 3 and len(set(texts)) == 3 for texts in captions.values())
    for row in rows:
        if row["split"] == "test":
            texts = captions[root / row["video"]]
            direction = {"left": "left", "grow": "closer"}[row["motion"]]
            words = f"{row['size']} {row['colours']} {row['shape']}"
            assert texts[0] == f"a {words} moving {direction} on a noisy background"
            assert (root / row["video"]).parent.name == row["motion"]
    stamp = {path: path.stat().st_mtime_ns for path in root.rglob("*.mp4")}
    assert make_captioned_motion_dataset(root, config, progress=False) == root  # complete: nothing rewritten
    assert {path: path.stat().st_mtime_ns for path in root.rglob("*.mp4")} == stamp
    with pytest.raises(ValueError, match="made with another config"):
        make_captioned_motion_dataset(root, CaptionedConfig(train=3, num_frames=4, size=16), progress=False)


def test_describe_names_shape_size_colours_and_direction():
    from types import SimpleNamespace

    video = SimpleNamespace(diameter=0.25, colours=[(30, 40, 220), (230, 20, 20)], shape="ell")
    assert describe(video, "rotate_ccw") == {"size": "small", "colours": "red and blue", "shape": "L shape",
                                             "motion": "rotate_ccw", "direction": "anticlockwise"}
    same = SimpleNamespace(diameter=0.45, colours=[(30, 40, 220), (20, 30, 200)], shape="star")
    assert describe(same, "grow")["colours"] == "blue" and describe(same, "grow")["size"] == "large"


def test_config_refuses_unknown_combinations():
    with pytest.raises(ValueError, match=r"holdout: \('circle', 'left'\)"):
        CaptionedConfig(holdout=(("circle", "left"),))
