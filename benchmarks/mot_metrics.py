"""MOT evaluation: ``deepvideo.track.mot_metrics`` against py-motmetrics and TrackEval.

For each case the three evaluate the same files in this process (each reading them itself):
py-motmetrics computes CLEAR MOT and the identity measures, TrackEval HOTA, CLEAR and
Identity, ours all of them (with ``clear_rule`` set to the tool's).  The script prints the time
of each (best of ``--rounds``), our speed-up over each tool, and the largest difference between
our values and each tool's (MOTA, MOTP, IDF1, IDSW, FRAG, MT, ... and for TrackEval HOTA, DetA,
AssA, LocA).

Cases: the MOT15 sequences TUD-Campus and TUD-Stadtmitte with the tracker results shipped in
``shared/data/mot`` (evaluated together, as one benchmark split), and a synthetic sequence of
MOT17 size (600 frames, ~20,000 boxes) written to a temporary MOTChallenge layout.

The reference tools are not dependencies of deepvideo.  One way to get them beside the
project's environment (py-motmetrics 1.4 calls ``np.asfarray``, gone in NumPy 2: this script
puts it back before importing it)::

    python3.11 -m venv /tmp/benchenv
    echo "$PWD/.venv/lib/python3.11/site-packages" > /tmp/benchenv/lib/python3.11/site-packages/main.pth
    echo "$PWD/src" >> /tmp/benchenv/lib/python3.11/site-packages/main.pth
    /tmp/benchenv/bin/pip install --no-deps motmetrics==1.4.0 trackeval==1.0.0 pandas xmltodict \
        tabulate python-dateutil six
    /tmp/benchenv/bin/python benchmarks/mot_metrics.py [--rounds N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from deepvideo.track.mot_metrics import evaluate_sequences
from deepvideo.track.motio import read_mot, write_mot

from machine import cpu_model  # benchmarks/machine.py

if not hasattr(np, "asfarray"):  # py-motmetrics 1.4 on NumPy 2
    np.asfarray = lambda a, dtype=np.float64: np.asarray(a, dtype=dtype)

import motmetrics as mm  # noqa: E402
import trackeval  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mot"
TRACKER = "ours"
MOTMETRICS_NAMES = {"mota": "MOTA", "motp": "MOTP_dist", "idf1": "IDF1", "num_switches": "IDSW",
                    "num_fragmentations": "FRAG", "num_false_positives": "FP", "num_misses": "FN",
                    "mostly_tracked": "MT", "partially_tracked": "PT", "mostly_lost": "ML"}
TRACKEVAL_NAMES = {("HOTA", k): k for k in ("HOTA", "DetA", "AssA", "LocA")}
TRACKEVAL_NAMES.update({("CLEAR", "MOTA"): "MOTA", ("CLEAR", "MOTP"): "MOTP", ("CLEAR", "IDSW"): "IDSW",
                        ("CLEAR", "Frag"): "FRAG", ("CLEAR", "MT"): "MT", ("Identity", "IDF1"): "IDF1"})


def synthetic_split(root: Path, frames: int = 600, objects: int = 60, seed: int = 0) -> None:
    """Write ``root/gt/SYNTH/{seqinfo.ini,gt/gt.txt}`` and ``root/trk/<TRACKER>/data/SYNTH.txt``:
    pedestrians walking for a while each, and a noisy tracker that drops boxes, switches ids and
    adds clutter."""
    rng = np.random.default_rng(seed)
    gt, pred, next_id = [], [], 1
    for obj in range(1, objects + 1):
        start = int(rng.integers(1, frames - 20))
        end = min(frames, start + int(rng.integers(20, 400)))
        box = np.array([rng.uniform(0, 1800), rng.uniform(0, 900), rng.uniform(30, 90), rng.uniform(80, 240)])
        velocity = rng.normal(0, 3, 2)
        track_id, next_id = next_id, next_id + 1
        for t in range(start, end + 1):
            box[:2] += velocity + rng.normal(0, 1, 2)
            gt.append([t, obj, *box, 1 if rng.random() > 0.03 else 0])
            if rng.random() < 0.01:
                track_id, next_id = next_id, next_id + 1
            if rng.random() > 0.15:
                pred.append([t, track_id, *(box + rng.normal(0, 0.08, 4) * box[[2, 3, 2, 3]]), 1])
    for t in range(1, frames + 1):
        for k in range(int(rng.poisson(2))):
            pred.append([t, 100_000 + t * 10 + k, rng.uniform(0, 1800), rng.uniform(0, 900), 50, 150, 1])
    write_mot(root / "gt" / "SYNTH" / "gt" / "gt.txt", np.array(gt))
    write_mot(root / "trk" / TRACKER / "data" / "SYNTH.txt", np.array(sorted(pred, key=lambda r: r[0])))
    (root / "gt" / "SYNTH" / "seqinfo.ini").write_text(f"[Sequence]\nname=SYNTH\nseqLength={frames}\n")


def run_motmetrics(pairs: list[tuple[Path, Path]]) -> dict:
    accs = [mm.utils.compare_to_groundtruth(mm.io.loadtxt(gt, fmt="mot15-2D", min_confidence=1),
                                            mm.io.loadtxt(pred, fmt="mot15-2D"), "iou", distth=0.5)
            for gt, pred in pairs]
    summary = mm.metrics.create().compute_many(accs, metrics=list(MOTMETRICS_NAMES), generate_overall=True,
                                               names=[str(pred) for _, pred in pairs])
    return {ours: float(summary.loc["OVERALL", name]) for name, ours in MOTMETRICS_NAMES.items()}


def run_trackeval(gt_folder: Path, trackers: Path, seqs: list[str]) -> dict:
    config = trackeval.Evaluator.get_default_eval_config()
    config.update(USE_PARALLEL=False, PRINT_RESULTS=False, PRINT_CONFIG=False, OUTPUT_SUMMARY=False,
                  OUTPUT_DETAILED=False, PLOT_CURVES=False, TIME_PROGRESS=False)
    dataset = trackeval.datasets.MotChallenge2DBox.get_default_dataset_config()
    dataset.update(GT_FOLDER=str(gt_folder), TRACKERS_FOLDER=str(trackers), TRACKERS_TO_EVAL=[TRACKER],
                   BENCHMARK="MOT15", SKIP_SPLIT_FOL=True, SEQ_INFO={s: None for s in seqs}, PRINT_CONFIG=False)
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
               trackeval.metrics.Identity({"PRINT_CONFIG": False})]
    with contextlib.redirect_stdout(io.StringIO()):
        results, _ = trackeval.Evaluator(config).evaluate([trackeval.datasets.MotChallenge2DBox(dataset)], metrics)
    row = results["MotChallenge2DBox"][TRACKER]["COMBINED_SEQ"]["pedestrian"]
    return {ours: float(np.mean(row[group][name])) for (group, name), ours in TRACKEVAL_NAMES.items()}


def run_ours(pairs: list[tuple[Path, Path]], clear_rule: str) -> dict:
    sequences = {str(pred): (read_mot(gt), read_mot(pred)) for gt, pred in pairs}
    return evaluate_sequences(sequences, clear_rule=clear_rule)["COMBINED"]


def best_time(fn: Callable[[], dict], rounds: int) -> tuple[float, dict]:
    times, out = [], {}
    for _ in range(rounds):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def bench(name: str, gt_folder: Path, trackers: Path, seqs: list[str], rounds: int) -> None:
    """Time each tool and ours (with the tool's CLEAR rule) on ``gt_folder/<seq>/gt/gt.txt``
    against ``trackers/<TRACKER>/data/<seq>.txt``."""
    pairs = [(gt_folder / s / "gt" / "gt.txt", trackers / TRACKER / "data" / f"{s}.txt") for s in seqs]
    boxes = sum(len(read_mot(gt)) + len(read_mot(pred)) for gt, pred in pairs)
    for tool, run, rule in (("py-motmetrics", lambda: run_motmetrics(pairs), "motmetrics"),
                            ("TrackEval", lambda: run_trackeval(gt_folder, trackers, seqs), "trackeval")):
        seconds, ref = best_time(run, rounds)
        t_ours, ours = best_time(lambda: run_ours(pairs, rule), rounds)
        worst = max(ref, key=lambda k: abs(ours[k] - ref[k]))
        print(f"{name:<28}{boxes:>8}{tool:>15}{1000 * seconds:>10.0f}{1000 * t_ours:>10.0f}"
              f"{seconds / t_ours:>9.1f}x   {abs(ours[worst] - ref[worst]):.1e} ({worst})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; python {platform.python_version()}, "
          f"NumPy {np.__version__}, py-motmetrics {mm.__version__}, TrackEval {trackeval.__version__}")
    print("ours runs with each tool's CLEAR rule; times include reading the files (best of "
          f"{args.rounds})")
    print(f"{'case':<28}{'boxes':>8}{'tool':>15}{'tool ms':>10}{'ours ms':>10}{'speed-up':>10}   "
          f"max |ours - tool| (metric)")
    train = DATA / "mmtracking_demo_MOT15" / "train"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "tud" / TRACKER).mkdir(parents=True)
        (tmp / "tud" / TRACKER / "data").symlink_to(train / "results")
        bench("MOT15 TUD-Campus+Stadtmitte", train, tmp / "tud", ["TUD-Campus", "TUD-Stadtmitte"], args.rounds)
        synthetic_split(tmp / "synth")
        bench("synthetic 600 frames", tmp / "synth" / "gt", tmp / "synth" / "trk", ["SYNTH"], args.rounds)


if __name__ == "__main__":
    main()
