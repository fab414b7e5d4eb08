"""The one training loop with any task: a custom task, TensorBoard, --amp auto, --val-split."""

from __future__ import annotations

import csv
import shutil
import warnings

import pytest
import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

from deepvideo.cli import main
from deepvideo.engine import DataSpec, Recipe, Step, Task, TrainConfig, fit, train
from deepvideo.engine import device as device_module
from deepvideo.engine.device import cpu_has_native_bf16, resolve_amp
from deepvideo.engine.recipe import stratified_holdout


class LineTask(Task):
    """Fit ``y = 3 x - 2`` with one linear unit: a task of a dozen lines."""

    name = "line"

    def config(self) -> dict:
        return {"task": "line"}

    def build_model(self) -> nn.Module:
        return nn.Linear(1, 1)

    def _points(self, seed: int, n: int) -> TensorDataset:
        x = torch.randn(n, 1, generator=torch.Generator().manual_seed(seed))
        return TensorDataset(x, 3 * x - 2)

    def train_set(self, seed: int) -> TensorDataset:
        return self._points(seed, 64)

    def val_set(self, seed: int) -> TensorDataset:
        return self._points(seed + 1, 16)

    def training_step(self, model: nn.Module, batch) -> Step:
        x, y = batch
        error = (model(x) - y).abs()
        return Step((error ** 2).mean(), len(x), {"mae": error.sum()})


def test_a_custom_task_trains_through_fit(tmp_path):
    config = TrainConfig(epochs=8, batch_size=8, lr=0.1, optimizer="sgd", weight_decay=0, warmup_epochs=0,
                         progress=False)
    result = fit(LineTask(), config, tmp_path)
    model = result["model"]
    assert model.weight.item() == pytest.approx(3, abs=0.05) and model.bias.item() == pytest.approx(-2, abs=0.05)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert list(rows[0])[:4] == ["epoch", "lr", "train_loss", "train_mae"]
    assert float(rows[-1]["val_loss"]) < 1e-3 < float(rows[0]["val_loss"])
    assert result["monitor"] == "val_loss" and result["best"] == min(float(r["val_loss"]) for r in rows)
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert torch.load(tmp_path / "best.pt", weights_only=True)["task"] == {"task": "line"}


def test_accumulation_matches_a_larger_batch(tmp_path):
    """2 batches of 8 accumulated take the same steps as batches of 16 (mean losses, SGD)."""
    base = dict(epochs=2, lr=0.05, optimizer="sgd", momentum=0.0, weight_decay=0, warmup_epochs=0,
                clip_grad=None, progress=False)
    task = LineTask()
    task.train_set = lambda seed: torch.utils.data.Subset(LineTask()._points(seed, 64), range(64))
    whole = fit(task, TrainConfig(batch_size=16, **base), tmp_path / "a")["model"]
    # the sampler's permutation is the same; consecutive pairs of 8 make up each 16
    accumulated = fit(task, TrainConfig(batch_size=8, accumulate=2, **base), tmp_path / "b")["model"]
    torch.testing.assert_close(accumulated.weight, whole.weight)
    torch.testing.assert_close(accumulated.bias, whole.bias)


def test_tensorboard_gets_the_metrics_csv_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = TrainConfig(epochs=3, batch_size=16, lr=0.1, optimizer="sgd", progress=False, tensorboard=True)
    fit(LineTask(), config, tmp_path)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    for key in ("train_loss", "val_loss", "train_mae", "lr", "input_wait"):
        scalars = events.Scalars(key)
        assert [s.step for s in scalars] == [1, 2, 3]
        assert [s.value for s in scalars] == pytest.approx([float(r[key]) for r in rows], rel=1e-6)


def test_amp_auto_and_the_bf16_warning(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert cpu_has_native_bf16.__wrapped__(str(cpuinfo)) is False
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n")
    assert cpu_has_native_bf16.__wrapped__(str(cpuinfo)) is True
    cpu = torch.device("cpu")
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: False)
    assert resolve_amp("auto", cpu) == "none"
    with pytest.warns(UserWarning, match="without native bf16 .no AVX512_BF16 or AMX_BF16"):
        assert resolve_amp("bf16", cpu) == "bf16"
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: True)
    assert resolve_amp("auto", cpu) == "bf16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_amp("bf16", cpu) == "bf16" and resolve_amp("none", cpu) == "none"
    with pytest.raises(ValueError, match="amp must be one of none, bf16, fp16, auto, got 'fp8'"):
        resolve_amp("fp8", cpu)


def test_stratified_holdout_takes_a_share_of_every_class():
    labels = [0] * 10 + [1] * 4 + [2] * 2
    held = stratified_holdout(labels, 0.25, seed=3)
    counts = [sum(labels[i] == c for i in held) for c in range(3)]
    assert counts == [2, 1, 1]  # round(2.5) = 2, round(1) = 1, at least one but never all
    assert held == stratified_holdout(labels, 0.25, seed=3) != stratified_holdout(labels, 0.25, seed=4)


def _train_test_only(tiny_motion_root, tmp_path):
    root = tmp_path / "data"
    for split in ("train", "test"):
        shutil.copytree(tiny_motion_root / split, root / split)
    return root


def test_val_split_holds_out_training_videos_and_resume_reuses_them(tiny_motion_root, tmp_path, capsys):
    root = _train_test_only(tiny_motion_root, tmp_path)
    recipe = Recipe(model="small3d", classes=[], model_kwargs={"widths": [4, 8]}, clip_len=6, size=28, resize=32,
                    test_clips=2)
    config = TrainConfig(epochs=1, batch_size=4, progress=False)
    with pytest.raises(ValueError, match="data/val: no such folder .*set val_split"):
        train(recipe, DataSpec(root=str(root)), config, tmp_path / "run")
    data = DataSpec(root=str(root), val_split=0.34)
    train(recipe, data, config, tmp_path / "run")
    held = (tmp_path / "run" / "val_split.txt").read_text().splitlines()
    assert len(held) == 4 and {p.split("/")[-2] for p in held} == {"left", "right"}  # 2 of 6 per class
    # resume reads the file back (here: a list that the seed would not choose, to tell them apart)
    other = sorted(str(p) for p in (root / "train").rglob("*_5.mp4"))
    (tmp_path / "run" / "val_split.txt").write_text("".join(f"{p}\n" for p in other))
    result = train(recipe, DataSpec(root=str(root), val_split=0.34), config, tmp_path / "run", resume=True)
    assert (tmp_path / "run" / "val_split.txt").read_text().splitlines() == other
    assert len(result["history"]) == 1
    # the CLI names its flag
    code = main(["train", "--model", "small3d", "--model-opt", "widths=[4,8]", "--data", str(root), "--out",
                 str(tmp_path / "cli"), "--epochs", "1", "--clip-len", "6", "--size", "28", "--resize", "32"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "set --val-split" in err
