"""End to end: train -> kill -> resume -> evaluate on real (generated) videos."""

from __future__ import annotations

import csv
import time

import pytest
import torch

from deepvideo.engine import DataSpec, Recipe, TrainConfig, evaluate, load_checkpoint, train
from deepvideo.engine.recipe import load_trained
from deepvideo.engine.train import _InputWait

TINY = {"widths": [4, 8]}


def tiny_recipe() -> Recipe:
    return Recipe(model="small3d", classes=[], model_kwargs=dict(TINY), clip_len=6, size=28,
                  resize=None, flip=False, test_clips=2)


def test_train_writes_metrics_curves_and_checkpoints(tiny_motion_root, tmp_path):
    data = DataSpec(format="folder", root=str(tiny_motion_root))
    config = TrainConfig(epochs=2, batch_size=4, lr=1e-2, progress=False)
    result = train(tiny_recipe(), data, config, tmp_path)
    assert len(result["history"]) == 2
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "samples_per_s", "bad_videos",
            "input_wait"} <= set(rows[0])
    # no workers: every batch is decoded while the model waits, a real share of the epoch
    assert all(0.0 < row["input_wait"] < 1.0 for row in result["history"])
    assert (tmp_path / "curves.png").stat().st_size > 1000
    state = load_checkpoint(tmp_path / "last.pt", required=("model", "optimizer", "scheduler", "epoch", "rng"))
    assert state["epoch"] == 2 and state["recipe"]["classes"] == ["left", "right"]
    recipe, model = load_trained(tmp_path / "best.pt")
    test_set = data.build("test", recipe.sampler(False), recipe.transform(False))
    metrics = evaluate(model, test_set, batch_size=4)
    assert metrics["num_videos"] == 6 and metrics["num_clips"] == 12
    confusion = metrics["confusion"]  # 3 test videos a class; video accuracy is the diagonal's share
    assert [sum(row) for row in confusion] == [3, 3]
    assert metrics["video_acc1"] == (confusion[0][0] + confusion[1][1]) / 6
    # best.pt holds the weights of the epoch it was saved at: on the val videos, one clip each
    # as in training, they give that epoch's logged val loss and accuracy
    saved = next(row for row in result["history"] if row[result["monitor"]] == result["best"])
    val = evaluate(model, recipe.dataset(data, "val", train=False, num_clips=1), batch_size=4)
    assert val["loss"] == pytest.approx(saved["val_loss"], rel=1e-6)
    assert val["video_acc1"] == saved["val_video_acc"]


@pytest.fixture(scope="module")
def fp32_epoch(tiny_motion_root, tmp_path_factory) -> tuple[dict, dict]:
    """One epoch of ``tiny_recipe`` in full precision: its metrics row and trained weights."""
    out = tmp_path_factory.mktemp("fp32")
    torch.set_num_threads(2)  # as the tests that compare with it (a module fixture runs before theirs)
    data = DataSpec(format="folder", root=str(tiny_motion_root))
    row = train(tiny_recipe(), data, TrainConfig(epochs=1, batch_size=4, lr=1e-2, progress=False), out)["history"][0]
    return row, load_checkpoint(out / "last.pt")["model"]


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_trains_on_the_cpu(tiny_motion_root, tmp_path, amp, fp32_epoch):
    data = DataSpec(format="folder", root=str(tiny_motion_root))
    config = TrainConfig(epochs=1, batch_size=4, lr=1e-2, amp=amp, progress=False)
    row = train(tiny_recipe(), data, config, tmp_path)["history"][0]
    state = load_checkpoint(tmp_path / "last.pt", required=("scaler",))
    # the fp32 run's losses, to within half-precision rounding (measured: <= 6e-4 apart);
    # skipped steps would miss (an untrained epoch's train loss is ~0.016 higher), NaNs too
    fp32_row, fp32_weights = fp32_epoch
    assert row["train_loss"] == pytest.approx(fp32_row["train_loss"], abs=5e-3)
    assert row["val_loss"] == pytest.approx(fp32_row["val_loss"], abs=5e-3)
    assert any(not torch.equal(w, fp32_weights[k]) for k, w in state["model"].items())  # it did round
    scaler = state["scaler"]
    assert (scaler["scale"] > 1) if amp == "fp16" else scaler == {}  # fp16 scales its gradients


def test_input_wait_counts_only_the_wait_for_a_batch():
    wait = _InputWait(torch.device("cpu"))
    start = time.perf_counter()
    wait.ask()
    time.sleep(0.05)
    wait.got()
    stepped = time.perf_counter()
    time.sleep(0.05)  # the step itself: not waiting
    assert 0.05 <= wait.seconds() <= stepped - start


class _Event:
    """A CUDA event's two methods that ``_InputWait`` uses: recorded at ``ms``, passed or not."""

    def __init__(self, ms: float, passed: bool = True) -> None:
        self.ms, self.passed = ms, passed

    def query(self) -> bool:
        return self.passed

    def elapsed_time(self, later: "_Event") -> float:
        return later.ms - self.ms


def test_input_wait_on_cuda_sums_the_gpu_gaps_it_has_passed():
    wait = _InputWait(torch.device("cpu"))
    # (asked, got) pairs: gaps of 5 ms and 20 ms the GPU has passed, then one still queued
    wait.events = [_Event(0), _Event(5), _Event(100), _Event(120), _Event(200), _Event(230, passed=False)]
    wait._fold()
    assert wait.waited == pytest.approx(0.025) and len(wait.events) == 2   # only the queued pair is held
    wait.events[1].passed = True
    wait._fold()
    assert wait.waited == pytest.approx(0.055) and wait.events == []


def test_training_learns_motion(tiny_motion_root, tmp_path):
    """A 3D CNN separates left from right motion on the tiny dataset."""
    data = DataSpec(format="folder", root=str(tiny_motion_root))
    config = TrainConfig(epochs=6, batch_size=4, lr=1e-2, weight_decay=0.0, warmup_epochs=0, progress=False)
    result = train(tiny_recipe(), data, config, tmp_path)
    losses = [row["train_loss"] for row in result["history"]]
    assert losses[-1] < losses[0] * 0.8


def test_bad_video_is_skipped_and_counted(tiny_motion_root, tmp_path):
    root = tmp_path / "data"
    for split in ("train", "val"):
        for cls in ("left", "right"):
            (root / split / cls).mkdir(parents=True)
            for video in sorted((tiny_motion_root / split / cls).glob("*.mp4"))[:2]:
                (root / split / cls / video.name).write_bytes(video.read_bytes())
    (root / "train" / "left" / "broken.mp4").write_text("not a video")
    (root / "val" / "right" / "broken_val.mp4").write_text("not a video either")
    data = DataSpec(format="folder", root=str(root))
    with pytest.warns(UserWarning) as caught:
        result = train(tiny_recipe(), data, TrainConfig(epochs=2, batch_size=2, progress=False), tmp_path / "run")
    assert [row["bad_videos"] for row in result["history"]] == [1, 0]   # counted in the epoch that met it
    messages = [str(w.message) for w in caught]
    assert any("epoch 1: skipped 1 unreadable videos" in m and "broken.mp4" in m for m in messages)
    val_reports = [m for m in messages if "validation skipped" in m]    # reported once, not every epoch
    assert len(val_reports) == 1 and "epoch 1: validation skipped 1 unreadable videos" in val_reports[0]
    assert "broken_val.mp4" in val_reports[0]


def test_resume_refuses_another_recipe(tiny_motion_root, tmp_path):
    data = DataSpec(format="folder", root=str(tiny_motion_root))
    train(tiny_recipe(), data, TrainConfig(epochs=1, batch_size=4, progress=False), tmp_path)
    other = tiny_recipe()
    other.model_kwargs = {"widths": [4, 16]}
    with pytest.raises(ValueError, match="another model_kwargs"):
        train(other, data, TrainConfig(epochs=2, batch_size=4, progress=False), tmp_path, resume=True)


def test_evaluate_counts_a_replaced_video_once(tiny_motion_root, tmp_path):
    root = tmp_path / "data"
    for cls in ("left", "right"):
        (root / "test" / cls).mkdir(parents=True)
        for video in sorted((tiny_motion_root / "test" / cls).glob("*.mp4"))[:2]:
            (root / "test" / cls / video.name).write_bytes(video.read_bytes())
    (root / "test" / "left" / "zz_broken.mp4").write_text("not a video")
    recipe = tiny_recipe()
    recipe.classes = ["left", "right"]
    test_set = DataSpec(format="folder", root=str(root)).build("test", recipe.sampler(False), recipe.transform(False))
    with pytest.warns(UserWarning, match="zz_broken"):
        metrics = evaluate(recipe.build_model(), test_set, batch_size=2)
    assert metrics["num_videos"] == 4 and metrics["num_clips"] == 4 * recipe.test_clips
    assert len(metrics["bad_videos"]) == 1
