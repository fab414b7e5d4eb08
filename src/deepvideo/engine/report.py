"""Files a run leaves for people to read: metrics CSV, training curves, confusion matrix.

Every file is written atomically (:mod:`deepvideo.io.atomic`): a reader, or a run killed
while writing, never leaves a half CSV or PNG under the final name."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from deepvideo.io.atomic import atomic_path, atomic_write_text, remove_temps  # noqa: E402

__all__ = ["plot_curves", "save_figure", "save_frame_strip", "write_confusion", "write_metrics_csv"]


def write_metrics_csv(path: str | os.PathLike, rows: Sequence[dict]) -> Path:
    """One row per epoch; columns are the union of the rows' keys in first-seen order."""
    path = Path(path)
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, text.getvalue())


def save_figure(fig: plt.Figure, path: str | os.PathLike, dpi: int) -> Path:
    """Save ``fig`` as a PNG at ``path`` atomically (a killed earlier write's temporaries
    deleted first) and close it."""
    remove_temps([path])
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return Path(path)


def plot_curves(path: str | os.PathLike, rows: Sequence[dict], title: str = "") -> Path:
    """Per epoch: the training and validation losses (left) and every other ``train_*`` and
    ``val_*`` metric, e.g. accuracies or endpoint errors (right, when there are any)."""
    epochs = [row["epoch"] for row in rows]
    columns = [key for key in rows[0] if key.startswith(("train_", "val_"))
               and isinstance(rows[0][key], (int, float))]
    losses = [key for key in columns if key.endswith("loss")]
    metrics = [key for key in columns if key not in losses]
    fig, axes = plt.subplots(1, 2 if metrics else 1, figsize=(9 if metrics else 4.5, 3.5), squeeze=False)
    for ax, keys, label in zip(axes[0], (losses, metrics), ("loss", "metric")):
        for key in keys:
            ax.plot(epochs, [row.get(key, np.nan) for row in rows], "--s" if key.startswith("val_") else "-o",
                    label=key)
        ax.set(xlabel="epoch", ylabel=label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def write_confusion(stem: str | os.PathLike, matrix: np.ndarray, classes: Sequence[str]) -> tuple[Path, Path]:
    """Write ``stem.csv`` (rows: true class, columns: predicted) and ``stem.png``."""
    stem = Path(stem)
    matrix = np.asarray(matrix)
    csv_path, png_path = stem.with_suffix(".csv"), stem.with_suffix(".png")
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["true\\pred", *classes])
    for name, row in zip(classes, matrix):
        writer.writerow([name, *row.tolist()])
    atomic_write_text(csv_path, text.getvalue())
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.2 + 0.45 * n, 1.0 + 0.45 * n))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true")
    if n <= 30:
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7,
                    color="white" if value > matrix.max() / 2 else "black")
    fig.tight_layout()
    save_figure(fig, png_path, dpi=100)
    return csv_path, png_path


def save_frame_strip(path: str | os.PathLike, rows: Sequence[tuple[str, np.ndarray]]) -> Path:
    """One row per (name, frames ``(T, H, W, 3)`` uint8): the frames side by side."""
    num_cols = max(len(frames) for _, frames in rows)
    fig, axes = plt.subplots(len(rows), num_cols, figsize=(num_cols * 0.9, len(rows) * 0.95),
                             squeeze=False)
    for r, (name, frames) in enumerate(rows):
        for c in range(num_cols):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(frames):
                ax.imshow(frames[c])
        axes[r][0].set_title(name, fontsize=7, loc="left")
    fig.tight_layout(pad=0.2)
    return save_figure(fig, path, dpi=90)
