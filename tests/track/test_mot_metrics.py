"""MOT metrics against py-motmetrics and TrackEval, and on small cases worked out by hand.

Reference values below were computed by the tools themselves, in a scratch environment
outside the repo (Python 3.11.7)::

    python3.11 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install "numpy<2" motmetrics trackeval scipy pandas
    # motmetrics 1.4.0, trackeval 1.0.0 (PyPI), numpy 1.26.4, pandas 3.0.6, scipy 1.17.1

py-motmetrics, as its ``apps/eval_motchallenge.py`` evaluates (per sequence; ``OVERALL`` from
``compute_many(..., generate_overall=True)`` over both)::

    gt = mm.io.loadtxt(gt_txt, fmt="mot15-2D", min_confidence=1)
    ts = mm.io.loadtxt(test_txt, fmt="mot15-2D")
    acc = mm.utils.compare_to_groundtruth(gt, ts, "iou", distth=0.5)
    mm.metrics.create().compute(acc, metrics=[...], name="x")

TrackEval, MOTChallenge 2D boxes on the ``mmtracking_demo_MOT15/train`` layout (the same gt and
results as ``TUD-*/{gt,test}.txt``)::

    ds = dict(MotChallenge2DBox.get_default_dataset_config(), GT_FOLDER=".../mmtracking_demo_MOT15/train",
              TRACKERS_FOLDER=trk, TRACKERS_TO_EVAL=["test"], BENCHMARK="MOT15", SKIP_SPLIT_FOL=True,
              SEQ_INFO={"TUD-Campus": None, "TUD-Stadtmitte": None})  # trk/test/data/<seq>.txt = results/<seq>.txt
    metrics = [HOTA(), CLEAR({"THRESHOLD": 0.5}), Identity({"THRESHOLD": 0.5})]
    res, _ = Evaluator(eval_config).evaluate([MotChallenge2DBox(ds)], metrics)
    # HOTA-family values are np.mean(res[...][seq]["pedestrian"]["HOTA"][key]) over the 19 alphas

The same scripts were also run on 140 random sequences (sparse and crowded, float and integer
boxes, gaps, zero-marked gt, id switches, clutter): every value equalled the tools' (CLEAR MOT
and identity as py-motmetrics with the default rule, as TrackEval with ``clear_rule="trackeval"``,
HOTA as TrackEval).
"""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from deepvideo.cli import main
from deepvideo.track.mot_metrics import (
    evaluate_benchmark,
    evaluate_files,
    evaluate_mot,
    evaluate_mot_files,
    evaluate_sequences,
    evaluate_tracking,
    format_results,
    format_table,
    iou_matrix,
    read_ground_truth,
)
from deepvideo.track.motio import read_mot, write_mot
from deepvideo.track.ope import format_ope_table, write_boxes

from conftest import one_line_error

# TrackEval 1.0.0 (script above); our key -> value
TRACKEVAL = {
    "TUD-Campus": dict(HOTA=0.391397, DetA=0.418047, AssA=0.369121, DetRe=0.441577, DetPr=0.714083,
                       AssRe=0.383225, AssPr=0.75405, LocA=0.770052, MOTA=0.526462, MOTP=0.722799, IDSW=7,
                       FRAG=7, FP=13, FN=150, TP=209, MT=1, PT=6, ML=1, IDF1=0.557659, IDP=0.72973,
                       IDR=0.451253, IDTP=162, IDFP=60, IDFN=197),
    "TUD-Stadtmitte": dict(HOTA=0.397849, DetA=0.392268, AssA=0.408841, DetRe=0.413131, DetPr=0.637622,
                           AssRe=0.449219, AssPr=0.631203, LocA=0.737521, MOTA=0.564014, MOTP=0.654096, IDSW=7,
                           FRAG=6, FP=45, FN=452, TP=704, MT=5, PT=4, ML=1, IDF1=0.644619, IDP=0.81976,
                           IDR=0.531142, IDTP=614, IDFP=135, IDFN=542),
    "COMBINED": dict(HOTA=0.399957, DetA=0.397683, AssA=0.41245, DetRe=0.419871, DetPr=0.655103, AssRe=0.450665,
                     AssPr=0.692211, LocA=0.73248, MOTA=0.555116, MOTP=0.669823, IDSW=14, FRAG=13, FP=58,
                     FN=602, TP=913, MT=6, PT=10, ML=2, IDF1=0.624296, IDP=0.799176, IDR=0.512211, IDTP=776,
                     IDFP=195, IDFN=739),
}
# py-motmetrics 1.4.0 (script above); its motp is our MOTP_dist, num_objects our GT
MOTMETRICS = {
    "TUD-Campus": dict(MOTA=0.526462, MOTP_dist=0.277201, IDF1=0.557659, IDP=0.72973, IDR=0.451253, IDSW=7,
                       FRAG=7, FP=13, FN=150, TP=209, GT=359, MT=1, PT=6, ML=1, num_frames=71, IDTP=162,
                       IDFP=60, IDFN=197),
    "TUD-Stadtmitte": dict(MOTA=0.564014, MOTP_dist=0.345904, IDF1=0.644619, IDP=0.81976, IDR=0.531142, IDSW=7,
                           FRAG=6, FP=45, FN=452, TP=704, GT=1156, MT=5, PT=4, ML=1, num_frames=179, IDTP=614,
                           IDFP=135, IDFN=542),
    "COMBINED": dict(MOTA=0.555116, MOTP_dist=0.330177, IDF1=0.624296, IDP=0.799176, IDR=0.512211, IDSW=14,
                     FRAG=13, FP=58, FN=602, TP=913, GT=1515, MT=6, PT=10, ML=2, num_frames=250),
}
SEQUENCES = ("TUD-Campus", "TUD-Stadtmitte")


def check(result: dict, reference: dict) -> None:
    for key, value in reference.items():
        assert result[key] == pytest.approx(value, abs=1e-6), key


@pytest.mark.parametrize("rule", ["motmetrics", "trackeval"])
def test_real_sequences_equal_both_tools(shared_data, rule):
    mot = shared_data / "mot"
    for seq in SEQUENCES:
        result = evaluate_files(mot / seq / "gt.txt", mot / seq / "test.txt", clear_rule=rule)
        check(result, TRACKEVAL[seq])
        check(result, MOTMETRICS[seq])


def test_benchmark_layout_and_combined_row(shared_data):
    root = shared_data / "mot" / "mmtracking_demo_MOT15" / "train"
    results = evaluate_benchmark(root, root / "results")
    assert list(results) == [*SEQUENCES, "COMBINED"]
    for name, result in results.items():
        check(result, TRACKEVAL[name])
        check(result, MOTMETRICS[name])
    table = format_table(results)
    assert "TUD-Stadtmitte" in table and "55.5%" in table  # combined MOTA


def test_benchmark_missing_result_file_is_named(shared_data, tmp_path):
    root = shared_data / "mot" / "mmtracking_demo_MOT15" / "train"
    with pytest.raises(FileNotFoundError, match="TUD-Campus.txt"):
        evaluate_benchmark(root, tmp_path)


# ---------------------------------------------------------------------------------- by hand

BOX = (10.0, 20.0, 40.0, 80.0)


def rows(*lines) -> np.ndarray:
    """MOT rows ``(frame, id, x, y, w, h, conf)`` padded to 10 columns."""
    out = np.full((len(lines), 10), -1.0)
    for r, line in enumerate(lines):
        out[r, :len(line)] = line
    return out.reshape(-1, 10)


def track(track_id, frames, box=BOX, conf=1.0) -> list[tuple]:
    return [(f, track_id, *box, conf) for f in frames]


def test_iou_matrix_by_hand():
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 10]])
    b = np.array([[0, 0, 10, 20], [5, 5, 10, 10], [20, 20, 5, 5]])
    expected = [[0.5, 25 / 175, 0.0], [0.0, 0.0, 0.0]]  # a zero-area box overlaps nothing
    np.testing.assert_allclose(iou_matrix(a, b), expected)
    assert iou_matrix(np.empty((0, 4)), b).shape == (0, 3)


def test_perfect_tracker_scores_one():
    other = (100.0, 20.0, 40.0, 80.0)
    gt = rows(*track(1, range(1, 6)), *track(2, range(1, 6), other))
    pred = rows(*track(7, range(1, 6)), *track(9, range(1, 6), other))
    r = evaluate_mot(gt, pred)
    for key in ("MOTA", "MOTP", "IDF1", "IDP", "IDR", "HOTA", "DetA", "AssA", "LocA", "Rcll", "Prcn"):
        assert r[key] == pytest.approx(1.0), key
    assert (r["TP"], r["GT"], r["FP"], r["FN"], r["IDSW"], r["FRAG"]) == (10, 10, 0, 0, 0, 0)
    assert (r["MT"], r["PT"], r["ML"], r["num_frames"]) == (2, 0, 0, 5)
    assert r["MOTP_dist"] == pytest.approx(0.0)


def test_one_identity_switch():
    gt = rows(*track(1, range(1, 5)))
    pred = rows(*track(1, [1, 2]), *track(2, [3, 4]))
    r = evaluate_mot(gt, pred)
    assert (r["IDSW"], r["TP"], r["FP"], r["FN"]) == (1, 4, 0, 0)
    assert r["MOTA"] == pytest.approx(3 / 4)  # (TP - FP - IDSW) / GT
    # the object keeps only one of the two predicted tracks: IDTP 2, IDFN 2, IDFP 2
    assert (r["IDTP"], r["IDFN"], r["IDFP"]) == (2, 2, 2)
    assert r["IDF1"] == pytest.approx(0.5)
    # every box matched at every alpha (DetA 1); each match's tracks overlap in 2 of 4 + 2 - 2 boxes
    assert r["DetA"] == pytest.approx(1.0) and r["AssA"] == pytest.approx(0.5)
    assert r["HOTA"] == pytest.approx(np.sqrt(0.5))


def test_one_fragmentation():
    gt = rows(*track(1, range(1, 6)))
    pred = rows(*track(1, [1, 2, 4, 5]))
    r = evaluate_mot(gt, pred)
    assert (r["FRAG"], r["IDSW"], r["TP"], r["FN"], r["FP"]) == (1, 0, 4, 1, 0)
    assert r["MOTA"] == pytest.approx(0.8)
    assert r["IDF1"] == pytest.approx(4 / 4.5)  # IDTP 4, IDFN 1
    assert r["DetA"] == pytest.approx(0.8) and r["AssA"] == pytest.approx(0.8)
    assert r["HOTA"] == pytest.approx(0.8)
    assert r["MT"] == 1  # matched in 4 of 5 frames: at least 80 %


def test_all_missed():
    gt = rows(*track(1, range(1, 4)), *track(2, range(2, 6), (200.0, 0.0, 30.0, 30.0)))
    r = evaluate_mot(gt, np.empty((0, 10)))
    assert r["MOTA"] == 0.0 and r["FN"] == r["GT"] == 7 and r["TP"] == 0 and r["FP"] == 0
    assert (r["ML"], r["MT"], r["PT"]) == (2, 0, 0)
    assert r["IDF1"] == 0.0 and r["HOTA"] == 0.0 and r["DetA"] == 0.0


def test_false_positives_only():
    r = evaluate_mot(np.empty((0, 10)), rows(*track(3, [1, 2])))
    assert (r["FP"], r["GT"], r["IDFP"]) == (2, 0, 2)
    assert r["MOTA"] == -2.0  # TrackEval's max(1, GT) denominator


def test_zero_marked_gt_is_ignored():
    gt = rows(*track(1, [1, 2]), *track(2, [1, 2], (200.0, 0.0, 30.0, 30.0), conf=0.0))
    pred = rows(*track(5, [1, 2]), *track(6, [1, 2], (200.0, 0.0, 30.0, 30.0)))
    r = evaluate_mot(gt, pred)
    assert (r["GT"], r["TP"], r["FN"]) == (2, 2, 0)
    assert r["FP"] == 2  # the boxes on the ignored object are not excused in MOT15 evaluation


def test_iou_threshold_is_inclusive():
    gt = rows((1, 1, 0, 0, 10, 10, 1))
    pred = rows((1, 1, 0, 0, 10, 20, 1))  # IoU exactly 0.5
    assert evaluate_mot(gt, pred)["TP"] == 1
    assert evaluate_mot(gt, pred, iou_threshold=0.6)["TP"] == 0


def test_clear_keeps_a_valid_correspondence():
    """Frame 2 offers a better box (IoU 0.9) from another track, but the established match
    (IoU 0.55) still passes: CLEAR keeps it, no switch, and MOTP averages 1.0 and 0.55."""
    gt = rows((1, 1, 0, 0, 100, 100, 1), (2, 1, 0, 0, 100, 100, 1))
    pred = rows((1, 1, 0, 0, 100, 100, 1), (2, 1, 0, 0, 100, 55, 1), (2, 2, 0, 0, 100, 90, 1))
    r = evaluate_mot(gt, pred)
    assert (r["IDSW"], r["TP"], r["FP"]) == (0, 2, 1)
    assert r["MOTP"] == pytest.approx((1.0 + 0.55) / 2)


def test_rules_differ_where_the_tools_do(tmp_path):
    """A case where the tools disagree.  Object 1 is matched to track 1 in frame 1, not annotated
    in frame 2 (object 2 is), and in frame 3 track 1 (IoU 0.6) and track 3 (IoU 0.9) cover it.
    py-motmetrics carries the frame-1 correspondence over; TrackEval only carries over from the
    previous frame, so it takes track 3 (a switch) and counts a fragmentation.  Values from the
    tools (scripts in the module docstring, SEQ_INFO seqLength 3):
    py-motmetrics: mota 0.666667, motp 0.266667, num_switches 0, num_fragmentations 0, idf1 0.857143;
    TrackEval: MOTA 0.333333, MOTP 0.833333, IDSW 1, Frag 1, IDF1 0.857143, HOTA 0.697371,
    DetA 0.535088, AssA 1.0, LocA 0.831579."""
    gt = write_mot(tmp_path / "gt.txt", rows((1, 1, 0, 0, 100, 100, 1), (2, 2, 300, 0, 50, 100, 1),
                                              (3, 1, 0, 0, 100, 100, 1)))
    pred = write_mot(tmp_path / "pred.txt", rows((1, 1, 0, 0, 100, 60, 1), (2, 2, 300, 0, 50, 100, 1),
                                                  (3, 1, 0, 0, 100, 60, 1), (3, 3, 0, 0, 100, 90, 1)))
    hota = dict(IDF1=0.857143, HOTA=0.697371, DetA=0.535088, AssA=1.0, LocA=0.831579)
    check(evaluate_files(gt, pred), dict(MOTA=0.666667, MOTP_dist=0.266667, IDSW=0, FRAG=0, **hota))
    check(evaluate_files(gt, pred, clear_rule="trackeval"), dict(MOTA=0.333333, MOTP=0.833333, IDSW=1, FRAG=1,
                                                                 **hota))


def test_mostly_tracked_boundary_per_rule():
    gt = rows(*track(1, range(1, 6)))
    pred = rows(*track(1, range(1, 5)))  # matched in exactly 80 % of its frames
    assert evaluate_mot(gt, pred)["MT"] == 1  # py-motmetrics: >= 0.8
    r = evaluate_mot(gt, pred, clear_rule="trackeval")
    assert (r["MT"], r["PT"]) == (0, 1)  # TrackEval: > 0.8


def test_combined_sums_counts():
    a = (rows(*track(1, range(1, 5))), rows(*track(1, [1, 2]), *track(2, [3, 4])))
    b = (rows(*track(1, range(1, 6))), rows(*track(1, [1, 2, 4, 5])))
    results = evaluate_sequences({"a": a, "b": b})
    combined = results["COMBINED"]
    assert combined["GT"] == 9 and combined["IDSW"] == 1 and combined["FRAG"] == 1
    assert combined["MOTA"] == pytest.approx((8 - 0 - 1) / 9)
    assert combined["IDF1"] == pytest.approx(6 / (6 + 0.5 * 2 + 0.5 * 3))


def test_bad_inputs():
    gt = rows(*track(1, [1, 2]))
    with pytest.raises(ValueError, match="pred: frame 1 has id 4 more than once"):
        evaluate_mot(gt, rows(*track(4, [1, 1])))
    with pytest.raises(ValueError, match="iou_threshold"):
        evaluate_mot(gt, gt, iou_threshold=0.0)
    with pytest.raises(ValueError, match="clear_rule"):
        evaluate_mot(gt, gt, clear_rule="other")
    with pytest.raises(ValueError, match=r"gt: MOT rows must be an \(N, >=7\) array"):
        evaluate_mot(gt[:, :6], gt)


# ---------------------------------------------------------------------------------- files without boxes

BOXES = "1,1,10,20,40,80,1,-1,-1,-1\n2,1,10,20,40,80,1,-1,-1,-1\n"
GT_LINES = BOXES + "2,2,200,0,30,30,0,-1,-1,-1\n"  # and an ignored box


@pytest.mark.parametrize("text", ["", "\n \n", "\ufeff"])
def test_empty_ground_truth_file_is_an_error(tmp_path, text):
    """An array without gt boxes evaluates (test_false_positives_only); a gt *file* without one
    is refused, as MOTA and recall divide by its box count."""
    gt, pred = tmp_path / "gt.txt", tmp_path / "pred.txt"
    gt.write_text(text, encoding="utf-8")
    pred.write_text(GT_LINES)
    message = re.escape(f"{gt}: ground truth holds no boxes (empty file), so MOTA and recall are undefined")
    with pytest.raises(ValueError, match=message):
        read_ground_truth(gt)
    with pytest.raises(ValueError, match=message):
        evaluate_files(gt, pred)


def test_wholly_zero_marked_ground_truth_file_is_an_error(tmp_path):
    gt = tmp_path / "gt.txt"
    gt.write_text("1,1,10,20,40,80,0\n2,1,10,20,40,80,0\n")
    with pytest.raises(ValueError, match=r"gt\.txt: all 2 ground-truth boxes have conf 0 \(ignored\)"):
        evaluate_files(gt, gt)


def test_empty_result_file_evaluates(tmp_path):
    """A tracker that output nothing: every gt box a miss, MOTA = 1 - FN / GT = 0."""
    gt, pred = tmp_path / "gt.txt", tmp_path / "pred.txt"
    gt.write_text(GT_LINES)
    pred.write_text("")
    np.testing.assert_array_equal(read_ground_truth(gt)[:, 6], [1, 1, 0])
    r = evaluate_files(gt, pred)
    assert (r["GT"], r["FN"], r["TP"], r["FP"], r["IDSW"]) == (2, 2, 0, 0, 0)  # the conf-0 box is not counted
    assert r["MOTA"] == 0.0 and r["Rcll"] == 0.0 and r["IDF1"] == 0.0 and r["HOTA"] == 0.0
    assert (r["MT"], r["PT"], r["ML"], r["num_frames"]) == (0, 0, 1, 2)


def test_benchmark_with_an_empty_ground_truth_names_it(shared_data, tmp_path):
    root = tmp_path / "train"
    shutil.copytree(shared_data / "mot" / "mmtracking_demo_MOT15" / "train", root)
    (root / "TUD-Stadtmitte" / "gt" / "gt.txt").write_text("")
    with pytest.raises(ValueError, match=r"TUD-Stadtmitte[/\\]gt[/\\]gt\.txt: ground truth holds no boxes"):
        evaluate_benchmark(root, root / "results")


# ---------------------------------------------------------------------------------- `deepvideo track eval`

def track_eval(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["track", "eval", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def mot_files(tmp_path):
    """A 2-box ground truth (plus an ignored box), an empty result, an empty gt, a perfect result."""
    files = {name: tmp_path / f"{name}.txt" for name in ("gt", "none", "empty_gt", "good")}
    files["gt"].write_text(GT_LINES)
    files["none"].write_text("")
    files["empty_gt"].write_text("")
    files["good"].write_text(BOXES)
    return files


def test_cli_empty_ground_truth_exits_with_one_line(capsys, mot_files):
    code, out, err = track_eval(capsys, "--gt", str(mot_files["empty_gt"]), "--pred", str(mot_files["good"]))
    assert code == 2 and out == ""
    one_line_error(err, f"{mot_files['empty_gt']}: ground truth holds no boxes", "MOTA and recall are undefined",
                   command="track eval")
    # among several sequences too: the empty one is named, nothing is printed
    code, out, err = track_eval(capsys, "--gt", str(mot_files["gt"]), str(mot_files["empty_gt"]),
                                "--pred", str(mot_files["good"]), str(mot_files["good"]), "--json")
    assert code == 2 and out == ""
    one_line_error(err, f"{mot_files['empty_gt']}: ground truth holds no boxes", command="track eval")


def test_cli_empty_result_still_evaluates(capsys, mot_files):
    code, out, err = track_eval(capsys, "--gt", str(mot_files["gt"]), "--pred", str(mot_files["none"]), "--json")
    assert code == 0, err
    (r,) = json.loads(out).values()
    assert (r["GT"], r["FN"], r["TP"], r["FP"], r["MOTA"], r["Rcll"]) == (2, 2, 0, 0, 0.0, 0.0)
    second = shutil.copy(mot_files["gt"], mot_files["gt"].with_name("second.txt"))
    code, out, err = track_eval(capsys, "--gt", str(mot_files["gt"]), str(second),
                                "--pred", str(mot_files["none"]), str(mot_files["good"]), "--json")
    assert code == 0, err
    results = json.loads(out)
    assert results["second"]["MOTA"] == 1.0
    combined = results["COMBINED"]
    assert (combined["GT"], combined["TP"], combined["FN"]) == (4, 2, 2)
    assert combined["MOTA"] == pytest.approx(1 - 2 / 4)


@pytest.mark.parametrize("line, problem", [
    ("2,1,10,20,40", "expected 6 to 10 fields (frame,id,x,y,w,h[,conf,x,y,z]), got 5"),
    ("2,1,10,20,forty,80,1", "w 'forty' is not a number"),
])
@pytest.mark.parametrize("bad", ["--gt", "--pred"])
def test_cli_malformed_line_names_file_and_line(capsys, mot_files, tmp_path, line, problem, bad):
    malformed = tmp_path / "malformed.txt"
    malformed.write_text(f"1,1,10,20,40,80,1\n\n{line}\n")
    gt, pred = (malformed, mot_files["good"]) if bad == "--gt" else (mot_files["gt"], malformed)
    code, out, err = track_eval(capsys, "--gt", str(gt), "--pred", str(pred))
    assert code == 2 and out == ""
    one_line_error(err, f"{malformed}:3: {problem}", command="track eval")


@pytest.mark.parametrize("bad", ["--gt", "--pred"])
def test_cli_missing_file_is_named(capsys, mot_files, tmp_path, bad):
    missing = tmp_path / "missing.txt"
    gt, pred = (missing, mot_files["good"]) if bad == "--gt" else (mot_files["gt"], missing)
    code, out, err = track_eval(capsys, "--gt", str(gt), "--pred", str(pred))
    assert code == 2 and out == ""
    one_line_error(err, f"{missing}: no such", command="track eval")


# ---------------------------------------------------------------------------------- files of either kind

def test_evaluate_mot_files_names_sequences_and_combines(mot_files, tmp_path):
    gt, good, none = mot_files["gt"], mot_files["good"], mot_files["none"]
    scene = shutil.copy(gt, tmp_path / "scene.gt.txt")
    folder = tmp_path.name  # gt.txt says nothing: its folder names the sequence
    assert evaluate_mot_files(gt, good) == {folder: evaluate_files(gt, good)}  # one file: no COMBINED row
    results = evaluate_mot_files([scene, gt], [good, none])
    assert list(results) == ["scene", folder, "COMBINED"]
    assert results == evaluate_sequences({"scene": (read_ground_truth(scene), read_mot(good)),
                                          folder: (read_ground_truth(gt), read_mot(none))})
    assert (results["COMBINED"]["TP"], results["COMBINED"]["FN"], results["COMBINED"]["MOTA"]) == (2, 2, 0.5)
    with pytest.raises(ValueError, match=r"^pred: 1 files for 2 ground-truth files$"):
        evaluate_mot_files([scene, gt], [good])
    with pytest.raises(ValueError, match=r"^gt: one benchmark folder \(<seq>/gt/gt\.txt\) or MOT files, not both$"):
        evaluate_mot_files([tmp_path, gt], [tmp_path, good])


def test_evaluate_mot_files_of_a_benchmark_folder(shared_data):
    root = shared_data / "mot" / "mmtracking_demo_MOT15" / "train"
    assert evaluate_mot_files(root, root / "results") == evaluate_benchmark(root, root / "results")


def test_evaluate_tracking_tells_box_files_from_mot_files(mot_files, tmp_path):
    gt, good = mot_files["gt"], mot_files["good"]
    mot = evaluate_tracking(gt, good)
    assert mot == evaluate_mot_files(gt, good) and mot[tmp_path.name]["MOTA"] == 1.0
    boxes = write_boxes(tmp_path / "square" / "groundtruth.txt", [[1, 2, 10, 10], [3, 2, 10, 10]])
    sot = evaluate_tracking([boxes], [boxes])
    assert sot == {"square": {"success": pytest.approx(100 * 20 / 21), "precision": 100.0, "norm_precision": 100.0}}
    xyxy = write_boxes(tmp_path / "square" / "xyxy.txt", [[1, 2, 11, 12], [3, 2, 13, 12]])
    assert evaluate_tracking(boxes, xyxy, pred_format="xyxy") == sot
    assert format_results(sot) == format_ope_table(sot) and format_results(mot) == format_table(mot)
    assert format_results(sot).splitlines()[1].split() == ["square", "95.24", "100.00", "100.00"]
    for kwargs, message in [(dict(gt=[gt, gt], pred=[good]), "pred: 1 files for 2 ground-truth files"),
                            (dict(gt=gt, pred=good, kind="box"), "kind: 'auto', 'mot' or 'sot', got 'box'"),
                            (dict(gt=tmp_path, pred=tmp_path, kind="sot"),
                             "gt: kind 'sot' takes box files, not folders"),
                            (dict(gt=gt, pred=good, kind="sot"), f"{gt}:1: expected 4 numbers x,y,w,h")]:
        with pytest.raises(ValueError) as info:
            evaluate_tracking(**kwargs)
        assert str(info.value).startswith(message)
