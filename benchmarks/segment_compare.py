"""Two trained segmenters compared on the built-in set: the paired test difference with a
bootstrap interval, and the test-time choices (threshold, flip averaging) swept on val only.

    OMP_NUM_THREADS=2 python benchmarks/segment_compare.py A/best.pt B/best.pt --data ROOT
        [--resamples 10000]

``ROOT`` is a set of ``make_segment_dataset`` (``benchmarks/segment.py`` writes it as
``/tmp/deepvideo-bench-segment/data_<train>_<val>_<test>``).  Prints, on the ``test``
sequences, J&F of A and B per sequence paired: how many A wins and loses, the mean
difference A - B and its 95% bootstrap interval (``--resamples`` resamples of the
sequences, seed 0); then, on the ``val`` sequences only (the choices are made there, never on
test), J&F of each checkpoint at probability thresholds 0.3-0.7, without and with averaging
the probabilities of the horizontally mirrored clip (flow mirrored with it).  Asserts nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from deepvideo.segment.train import (
    evaluate_masks,
    load_davis,
    load_segmenter,
    network_flows,
    predict_probabilities,
    segmenter,
    square,
)

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)


def mirrored_probabilities(checkpoint: Path, sequences: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{name: (probabilities, probabilities of the mirrored clip mirrored back)}``, each ``(T, H, W)``."""
    model, info = load_segmenter(checkpoint)
    out = {}
    for name, (frames, _) in sequences.items():
        small = square(frames, info["size"])
        flows = network_flows(small) if info["flow"] else None
        mirrored = None
        if flows is not None:
            mirrored = flows[..., ::-1].copy()
            mirrored[:, 0] *= -1  # x flow changes sign in a mirrored frame
        prob = predict_probabilities(model, small, info["clip_len"], flows)
        back = predict_probabilities(model, small[:, :, ::-1].copy(), info["clip_len"], mirrored)[:, :, ::-1]
        out[name] = (prob, back)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="checkpoint A (e.g. unet_transformer's best.pt)")
    parser.add_argument("b", type=Path, help="checkpoint B (e.g. unet's best.pt)")
    parser.add_argument("--data", type=Path, required=True, help="the set both were trained on")
    parser.add_argument("--resamples", type=int, default=10000)
    args = parser.parse_args()

    test = load_davis(args.data, "test")
    scores = [{key: row["J&F-Mean"] for key, row in evaluate_masks(test, segmenter(path))[0].per_object().items()}
              for path in (args.a, args.b)]
    diff = np.array([scores[0][key] - scores[1][key] for key in sorted(scores[0])])
    rng = np.random.default_rng(0)
    means = [rng.choice(diff, len(diff)).mean() for _ in range(args.resamples)]
    print(f"test, {len(diff)} objects: A wins {(diff > 0).sum()}, loses {(diff < 0).sum()}; mean J&F A - B "
          f"{diff.mean():+.4f}, 95% bootstrap interval [{np.percentile(means, 2.5):+.4f}, "
          f"{np.percentile(means, 97.5):+.4f}]")

    val = load_davis(args.data, "val")
    name_of = {id(frames): name for name, (frames, _) in val.items()}
    for label, path in (("A", args.a), ("B", args.b)):
        probabilities = mirrored_probabilities(path, val)
        for mirror in (False, True):
            cells = []
            for threshold in THRESHOLDS:
                def masks(frames: np.ndarray) -> np.ndarray:
                    prob, back = probabilities[name_of[id(frames)]]
                    return (((prob + back) / 2 if mirror else prob) > threshold).astype(np.uint8)
                cells.append(f"{threshold}: {evaluate_masks(val, masks)[0].global_table()['J&F-Mean']:.3f}")
            print(f"val {label}{' + mirrored' if mirror else ''}: J&F at threshold " + ", ".join(cells))


if __name__ == "__main__":
    main()
