"""deepvideo pretrain on real video files through the engine, then deepvideo train --init
from its backbone: frozen (a linear probe), with its own learning rate, on few labels; and
the one-line errors for a misfit model, folder or checkpoint."""

from __future__ import annotations

import csv

import pytest
import torch

from deepvideo.cli import main
from deepvideo.engine import DataSpec, TrainConfig
from deepvideo.engine.checkpoint import load_checkpoint
from deepvideo.engine.train import build_optimizer
from deepvideo.engine.transfer import Transfer
from deepvideo.models import create_model

from conftest import one_line_error

WIDTHS = "widths=[4,8]"
CLIP = ["--size", "24", "--resize", "24"]


@pytest.fixture(scope="module")
def pretrained(tiny_motion_root, tmp_path_factory):
    """An order-task run on tiny_motion_root's 22 videos (labels ignored): 2 epochs."""
    out = tmp_path_factory.mktemp("pretrain") / "order"
    code = main(["pretrain", "--task", "order", "--task-opt", "clip_len=2", "--task-opt", "gap=0",
                 "--model", "small3d", "--model-opt", WIDTHS, "--data", str(tiny_motion_root), "--out", str(out),
                 *CLIP, "--epochs", "2", "--batch-size", "4", "--samples-per-video", "2"])
    assert code == 0
    return out


def test_pretrain_logs_the_pretext_accuracy_and_names_the_backbone(pretrained, capsys):
    rows = list(csv.DictReader(open(pretrained / "metrics.csv")))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    for row in rows:
        assert 0 <= float(row["train_acc"]) <= 1 and 0 <= float(row["val_acc"]) <= 1
    state = load_checkpoint(pretrained / "best.pt")
    assert state["backbone_prefix"] == "backbone." and state["pretext"]["task"] == "order"
    assert any(key.startswith("head.pair.") for key in state["model"])  # VCOP's pairwise head
    assert (pretrained / "curves.png").stat().st_size > 0


def train_args(root, out, *extra: str) -> list[str]:
    return ["train", "--model", "small3d", "--model-opt", WIDTHS, "--data", str(root), "--out", str(out),
            "--clip-len", "4", *CLIP, "--no-flip", "--test-clips", "1", "--epochs", "2", "--batch-size", "2", *extra]


def test_a_frozen_backbone_keeps_the_pretrained_weights(pretrained, tiny_motion_root, tmp_path):
    out = tmp_path / "probe"
    assert main(train_args(tiny_motion_root, out, "--init", str(pretrained / "best.pt"), "--freeze-backbone",
                           "--train-per-class", "2")) == 0
    backbone = {k.removeprefix("backbone."): v for k, v in load_checkpoint(pretrained / "best.pt")["model"].items()
                if k.startswith("backbone.")}
    trained = load_checkpoint(out / "last.pt")
    for key, value in trained["model"].items():
        if key.startswith("fc."):
            continue
        assert torch.equal(value, backbone[key]), key  # weights and BatchNorm statistics untouched
    fresh = create_model("small3d", num_classes=2, widths=[4, 8])
    assert not torch.equal(trained["model"]["fc.weight"], fresh.fc.weight)
    assert trained["task"]["freeze_backbone"] and trained["task"]["train_per_class"] == 2
    assert trained["history"][0]["samples_per_s"] > 0


def test_few_labels_keep_n_videos_per_class_drawn_with_the_seed(tiny_motion_root):
    def chosen(seed: int) -> list[str]:
        data = DataSpec(root=str(tiny_motion_root), train_per_class=2)
        dataset = data.build("train", sampler=lambda n, rng: [[0]], transform=None, seed=seed)
        assert sorted(dataset.labels) == [0, 0, 1, 1]
        return [path.name for path in dataset.paths]

    assert chosen(0) == chosen(0) and chosen(0) != chosen(1)


def test_backbone_learning_rate_scale(pretrained):
    model = create_model("small3d", num_classes=3, widths=[4, 8])
    transfer = Transfer(str(pretrained / "best.pt"), backbone_lr_scale=0.1)
    transfer.apply(model, "small3d")
    optimizer = build_optimizer(model, TrainConfig(lr=0.01), lambda name: transfer.lr_scale(model, "small3d", name))
    head = {id(p) for p in model.fc.parameters()}
    for group in optimizer.param_groups:
        in_head = {id(p) in head for p in group["params"]}
        assert len(in_head) == 1
        assert group["lr"] == pytest.approx(0.01 if in_head.pop() else 0.001)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))


def test_init_from_another_architecture_is_one_line(pretrained, tiny_motion_root, tmp_path, capsys):
    args = train_args(tiny_motion_root, tmp_path / "bad", "--init", str(pretrained / "best.pt"))
    args[args.index(WIDTHS)] = "widths=[4,16]"
    assert main(args) == 2
    one_line_error(capsys.readouterr().err, "best.pt: its backbone (small3d pretrained on the order pretext task) "
                   "does not fit model small3d: features.4.weight (16, 4, 3, 3, 3) has shape (8, 4, 3, 3, 3)",
                   command="train")


def test_a_task_that_does_not_fit_the_model_is_one_line(tiny_motion_root, tmp_path, capsys):
    code = main(["pretrain", "--task", "arrow", "--model", "single_frame", "--model-opt", WIDTHS,
                 "--data", str(tiny_motion_root), "--out", str(tmp_path / "x"), *CLIP])
    assert code == 2
    one_line_error(capsys.readouterr().err, "model single_frame does not see the order of frames",
                   "use a 3D model", command="pretrain")


def test_too_short_videos_are_one_line(tiny_motion_root, tmp_path, capsys):
    code = main(["pretrain", "--task", "speed", "--model", "small3d", "--model-opt", WIDTHS,
                 "--data", str(tiny_motion_root), "--out", str(tmp_path / "x"), *CLIP])
    assert code == 2
    one_line_error(capsys.readouterr().err, "0 of 22 videos have the 25 frames the speed task samples",
                   "make the task's samples shorter", command="pretrain")
