"""T3D (Diba et al. 2017): stage shapes, Temporal Transition Layer, parameters, training,
and the 2D -> 3D supervision-transfer objective."""

from __future__ import annotations

import csv
import json

import pytest
import torch
import torch.nn as nn
import torchvision

from deepvideo.cli import main
from deepvideo.models import create_model
from deepvideo.models.summary import summarize
from deepvideo.models.t3d import (
    PAPER_TTL_DEPTHS,
    T3D,
    SupervisionTransfer,
    TemporalTransitionLayer,
    correspondence_pairs,
    transfer_loss,
)

from conftest import assert_forward_backward

BLOCKS = {"t3d_121": (6, 12, 24, 16), "t3d_169": (6, 12, 32, 32)}


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def meta_model(name: str, num_classes: int = 400) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, num_classes=num_classes)


def derived_params(blocks, k=32, init=64, bn_size=4, ttl_width=128, depths=PAPER_TTL_DEPTHS,
                   classes=400) -> int:
    """Parameter count derived layer by layer: every BatchNorm has 2 per channel, convs have
    no bias, a TTL branch of temporal depth d has a 1x1x1 (d = 1) or d x 3 x 3 kernel."""
    total = 3 * init * (3 * 7 * 7) + 2 * init  # stem conv + BN
    channels = init
    for i, layers in enumerate(blocks):
        for _ in range(layers):  # BN, 1x1x1 to bn_size*k, BN, 3x3x3 to k
            total += 2 * channels + channels * bn_size * k + 2 * bn_size * k + bn_size * k * k * 27
            channels += k
        if i < len(blocks) - 1:  # one BN + conv per TTL branch
            total += sum(2 * channels + channels * ttl_width * (1 if d == 1 else 9 * d) for d in depths[i])
            channels = ttl_width * len(depths[i])
    return total + 2 * channels + channels * classes + classes  # norm5, classifier


# --- shapes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(BLOCKS))
def test_stage_shapes_on_the_paper_input(name):
    """A 3 x 32 x 224 x 224 clip: T, H, W halve in the stem conv, the stem pool and each TTL;
    a dense block adds layers * 32 channels, a TTL outputs 3 branches * 128 channels."""
    b = BLOCKS[name]
    expected = {
        "conv0": (64, 16, 112, 112), "pool0": (64, 8, 56, 56),
        "denseblock1": (64 + 32 * b[0], 8, 56, 56), "ttl1": (384, 4, 28, 28),
        "denseblock2": (384 + 32 * b[1], 4, 28, 28), "ttl2": (384, 2, 14, 14),
        "denseblock3": (384 + 32 * b[2], 2, 14, 14), "ttl3": (384, 1, 7, 7),
        "denseblock4": (384 + 32 * b[3], 1, 7, 7), "norm5": (384 + 32 * b[3], 1, 7, 7),
    }
    model = meta_model(name)
    x = torch.zeros(1, 3, 32, 224, 224, device="meta")
    shapes = {}
    for stage, layer in model.features.named_children():
        x = layer(x)
        shapes[stage] = tuple(x.shape[1:])
    assert {k: shapes[k] for k in expected} == expected
    assert model.classifier.in_features == expected["norm5"][0]
    assert model(torch.zeros(1, 3, 32, 224, 224, device="meta")).shape == (1, 400)


def test_summary_on_the_paper_input():
    model = meta_model("t3d_121")
    summary = summarize(model, (3, 32, 224, 224))
    rows = {row.name: row for row in summary.layers}
    assert summary.output_shape == (400,)
    assert summary.total_params == derived_params(BLOCKS["t3d_121"])
    assert rows["features.ttl1.pool"].output_shape == (384, 4, 28, 28)
    # the TTL branches: 1x1x1, 3x3x3, 6x3x3 kernels from 256 to 128 channels at 8 x 56 x 56
    positions = 128 * 8 * 56 * 56
    for branch, kernel in enumerate((1, 27, 54)):
        assert rows[f"features.ttl1.branches.{branch}.conv"].macs == positions * 256 * kernel


# --- the temporal transition layer ----------------------------------------------------------

@pytest.mark.parametrize("depths", [(1, 3, 6), (1, 3, 4), (1, 2, 3, 4, 5)])
def test_ttl_output_channels_are_the_sum_of_the_branches(depths):
    torch.manual_seed(0)
    ttl = TemporalTransitionLayer(10, width=4, depths=depths)
    assert [b.conv.kernel_size for b in ttl.branches] == [(1, 1, 1) if d == 1 else (d, 3, 3) for d in depths]
    x = torch.randn(2, 10, 5, 6, 7)
    for branch in ttl.branches:  # every branch keeps T, H and W ("same" padding)
        assert branch(x).shape == (2, 4, 5, 6, 7)
    assert ttl.out_channels == 4 * len(depths)
    assert ttl(x).shape == (2, 4 * len(depths), 3, 3, 4)  # 2x2x2 pool, ceil mode


@pytest.mark.parametrize("depth", [1, 3, 4, 6])
def test_ttl_branch_sees_exactly_its_temporal_depth(depth):
    """Changing input frame t changes exactly ``depth`` output frames of a branch: the
    kernel spans ``depth`` frames (for even depths one more ahead than behind)."""
    torch.manual_seed(0)
    ttl = TemporalTransitionLayer(3, width=2, depths=(depth,)).eval()
    x = torch.rand(1, 3, 12, 5, 5) + 0.5  # positive: the branch's BN-ReLU passes it through
    changed = x.clone()
    changed[:, :, 5] += 1.0
    with torch.no_grad():
        delta = (ttl.branches[0](changed) - ttl.branches[0](x)).abs().amax(dim=(0, 1, 3, 4))
    frames = (delta > 1e-6).nonzero().flatten().tolist()
    assert frames == list(range(5 - depth // 2, 5 + (depth - 1) // 2 + 1))


# --- parameters -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(BLOCKS))
def test_parameter_count_matches_the_derivation(name):
    assert num_params(meta_model(name)) == derived_params(BLOCKS[name])
    assert num_params(meta_model(name, num_classes=101)) == derived_params(BLOCKS[name], classes=101)


def test_parameter_counts():
    """The derivation's totals (400 classes); T3D-169 adds 8 + 16 dense layers."""
    assert num_params(meta_model("t3d_121")) == 29_876_880
    assert num_params(meta_model("t3d_169")) == 38_519_184
    tiny = create_model("t3d_tiny", num_classes=5)
    assert num_params(tiny) == derived_params((2, 2, 2, 2), k=8, init=16, ttl_width=8, classes=5)


def test_dense_block_is_torchvisions_densenet_block_in_3d():
    """denseblock1 of T3D-121 has torchvision DenseNet-121's keys; its 1x1 and 3x3 kernels
    become 1x1x1 and 3x3x3 (the first block's input width, 64, is the same in both)."""
    with torch.device("meta"):
        block2d = torchvision.models.densenet121().features.denseblock1
    block3d = meta_model("t3d_121").features.denseblock1
    shapes2d = {k: tuple(v.shape) + ((v.shape[-1],) if v.dim() == 4 else ())
                for k, v in block2d.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in block3d.state_dict().items()} == shapes2d
    weights_3x3 = sum(m.weight.numel() for m in block2d.modules()
                      if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3))
    assert num_params(block3d) == num_params(block2d) + 2 * weights_3x3


# --- forward, backward, training ------------------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 3, 5, 18, 18), (2, 3, 1, 8, 8)])
def test_tiny_forward_backward(shape):
    """Odd sizes and single frames work: pools shrink an axis only while it is longer than 1."""
    torch.manual_seed(0)
    model = create_model("t3d_tiny", num_classes=4, drop_rate=0.1)
    assert_forward_backward(model, torch.randn(*shape), (2, 4))


def test_tiny_overfits_a_handful_of_clips(overfit):
    torch.manual_seed(0)
    model = create_model("t3d_tiny", num_classes=3)
    clips, labels = torch.randn(6, 3, 4, 16, 16), torch.tensor([0, 1, 2, 0, 1, 2])
    losses = overfit(model, clips, labels, steps=12, lr=1e-2)
    assert losses[-1] < 0.2 * losses[0], losses


def test_trains_and_evaluates_through_the_cli(capsys, tiny_motion_root, tmp_path):
    out = tmp_path / "run"
    code = main(["train", "--model", "t3d_tiny", "--data", str(tiny_motion_root), "--out", str(out),
                 "--epochs", "1", "--clip-len", "8", "--size", "28", "--resize", "32",
                 "--batch-size", "4", "--no-flip"])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert (out / "best.pt").is_file()
    # best.pt holds the weights training validated: on the val videos, one clip each as in
    # training, eval gives the loss and accuracy metrics.csv logged for its one epoch
    code = main(["eval", "--checkpoint", str(out / "best.pt"), "--data", str(tiny_motion_root), "--subset", "val",
                 "--clips", "1", "--json"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    metrics, (logged,) = json.loads(stdout), list(csv.DictReader(open(out / "metrics.csv")))
    assert metrics["num_videos"] == 4 and metrics["loss"] == pytest.approx(float(logged["val_loss"]), rel=1e-6)
    assert metrics["video_acc1"] == float(logged["val_video_acc"])


def test_weights_file_and_option_errors(tmp_path):
    torch.manual_seed(0)
    reference = create_model("t3d_tiny", num_classes=5).eval()
    path = tmp_path / "t3d_tiny.pth"
    torch.save(reference.state_dict(), path)
    clip = torch.randn(1, 3, 4, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(create_model("t3d_tiny", num_classes=5, weights=path).eval()(clip),
                                   reference(clip))
    with pytest.warns(UserWarning, match="loaded all but 'classifier'"):
        create_model("t3d_tiny", num_classes=7, weights=path)
    with pytest.raises(ValueError, match="missing.pth does not exist"):
        create_model("t3d_tiny", weights=tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="ttl_depths needs one tuple per transition"):
        T3D((2, 2), ttl_depths=PAPER_TTL_DEPTHS)
    with pytest.raises(ValueError, match="positive integer temporal depths"):
        T3D((2, 2), ttl_depths=((1, 0),))
    with pytest.raises(ValueError, match="drop_rate"):
        create_model("t3d_tiny", drop_rate=1.5)


# --- supervision transfer -------------------------------------------------------------------

def tiny_teacher() -> nn.Module:
    """A small 2D CNN standing in for the ImageNet network: frames -> 16 features."""
    return nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten())


def test_correspondence_pairs():
    clips = torch.randn(4, 3, 6, 8, 8)
    frames, paired, labels = correspondence_pairs(clips, torch.Generator().manual_seed(0))
    assert frames.shape == (8, 3, 8, 8) and paired.shape == (8, 3, 6, 8, 8)
    assert labels.tolist() == [1.0] * 4 + [0.0] * 4
    assert torch.equal(paired, torch.cat([clips, clips]))

    def source(frame):  # (clip, time) of the frame
        return [(i, t) for i in range(4) for t in range(6) if torch.equal(clips[i, :, t], frame)]

    positives = [source(f) for f in frames[:4]]
    negatives = [source(f) for f in frames[4:]]
    assert all(len(s) == 1 and s[0][0] == i for i, s in enumerate(positives))
    assert all(len(s) == 1 and s[0][0] != i for i, s in enumerate(negatives))
    assert sorted(s[0][0] for s in negatives) == [0, 1, 2, 3]  # every frame used once
    with pytest.raises(ValueError, match="at least 2 clips"):
        correspondence_pairs(clips[:1])


def test_supervision_transfer_trains_the_student_only():
    """The logit depends on both the frame (through the teacher) and the clip (through the
    student); gradients reach the student and the head, never the frozen teacher (weights
    and BatchNorm statistics stay as they were after optimizer steps in train mode)."""
    torch.manual_seed(0)
    teacher = tiny_teacher()
    teacher_state = {k: v.clone() for k, v in teacher.state_dict().items()}
    model = SupervisionTransfer(teacher, create_model("t3d_tiny", num_classes=2), teacher_dim=16,
                                hidden=(32,)).train()
    assert not model.teacher.training and model.student.training
    assert not any(p.requires_grad for p in model.teacher.parameters())
    clips = torch.rand(4, 3, 4, 16, 16)
    frames = clips[:, :, 0]
    with torch.no_grad():
        logits = model.eval()(frames, clips)
        assert logits.shape == (4,)
        assert not torch.allclose(model(frames.flip(0), clips), logits)  # the frame matters
        assert not torch.allclose(model(frames, clips.flip(0)), logits)  # the clip matters
    model.train()
    student_before = {k: v.clone() for k, v in model.student.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        frames, paired, labels = correspondence_pairs(clips, torch.Generator().manual_seed(0))
        with torch.no_grad():
            logits = model(frames, paired)
        loss, accuracy = transfer_loss(model, clips, torch.Generator().manual_seed(0))
        # the cross-entropy and accuracy of the model's logits on the pairs the same seed draws
        expected = nn.functional.binary_cross_entropy_with_logits(logits, labels)
        assert loss.item() == pytest.approx(expected.item(), abs=1e-6)
        assert accuracy == ((logits > 0).float() == labels).float().mean().item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in [*model.student.features.parameters(), *model.head.parameters()])
    assert all(torch.equal(v, teacher_state[k]) for k, v in model.teacher.state_dict().items())
    assert any(not torch.equal(v, student_before[k]) for k, v in model.student.state_dict().items())


def test_input_shapes_are_checked():
    model = create_model("t3d_tiny", num_classes=2)
    with pytest.raises(ValueError, match=r"^T3D: video must be \(B, 3, T, H, W\), got shape \(3, 4, 16, 16\)"):
        model(torch.zeros(3, 4, 16, 16))
    transfer = SupervisionTransfer(tiny_teacher(), model, teacher_dim=16, hidden=(8,))
    with pytest.raises(ValueError, match="SupervisionTransfer needs frames"):
        transfer(torch.zeros(3, 3, 16, 16), torch.zeros(2, 3, 4, 16, 16))
    with pytest.raises(ValueError, match=r"^clips must be \(B, 3, T, H, W\)"):
        correspondence_pairs(torch.zeros(4, 3, 16, 16))
