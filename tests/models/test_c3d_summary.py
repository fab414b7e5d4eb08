"""C3D against the lecture table, and the layer summary (shapes, parameters, MACs)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn
import torchvision
from torchvision.models.video import (
    MC3_18_Weights,
    MViT_V1_B_Weights,
    MViT_V2_S_Weights,
    R2Plus1D_18_Weights,
    R3D_18_Weights,
)

from deepvideo.models import create_model
from deepvideo.models.attention import NonLocalBlock
from deepvideo.models.c3d import C3D
from deepvideo.models.summary import format_summary, summarize

# The C3D table of the lecture (seeds/001): layer, output size, GMACs of the convolutions.
LECTURE_TABLE = [
    ("conv1a", (64, 16, 112, 112), 1.04), ("pool1", (64, 16, 56, 56), None),
    ("conv2a", (128, 16, 56, 56), 11.10), ("pool2", (128, 8, 28, 28), None),
    ("conv3a", (256, 8, 28, 28), 5.55), ("conv3b", (256, 8, 28, 28), 11.10),
    ("pool3", (256, 4, 14, 14), None),
    ("conv4a", (512, 4, 14, 14), 2.77), ("conv4b", (512, 4, 14, 14), 5.55),
    ("pool4", (512, 2, 7, 7), None),
    ("conv5a", (512, 2, 7, 7), 0.69), ("conv5b", (512, 2, 7, 7), 0.69),
    ("pool5", (512, 1, 3, 3), None),
    ("fc6", (4096,), None), ("fc7", (4096,), None), ("fc8", (101,), None),
]


def meta_c3d(**options) -> nn.Module:
    with torch.device("meta"):
        return create_model("c3d", num_classes=101, **options)


def test_c3d_reproduces_the_lecture_table():
    summary = summarize(meta_c3d(), (3, 16, 112, 112))
    rows = {row.name: row for row in summary.layers}
    assert list(rows) == [name for name, _, _ in LECTURE_TABLE]
    for name, shape, gmacs in LECTURE_TABLE:
        assert rows[name].output_shape == shape, name
        if gmacs is not None:
            assert round(rows[name].macs / 1e9, 2) == gmacs, name
    conv_macs = sum(row.macs for row in summary.layers if row.type == "Conv3d")
    assert round(conv_macs / 1e9, 1) == 38.5


def test_c3d_parameter_count():
    widths = [3, 64, 128, 256, 256, 512, 512, 512, 512]
    convs = sum(27 * cin * cout + cout for cin, cout in zip(widths, widths[1:]))
    fcs = (4608 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 101 + 101)
    model = meta_c3d()
    assert sum(p.numel() for p in model.parameters()) == convs + fcs
    assert summarize(model).total_params == convs + fcs


def test_sports1m_layout_pads_pool5():
    summary = summarize(meta_c3d(pool5_padding=True))
    rows = {row.name: row for row in summary.layers}
    assert rows["pool5"].output_shape == (512, 1, 4, 4)
    assert rows["fc6"].params == 8192 * 4096 + 4096


def test_c3d_trains_and_extracts_features():
    torch.manual_seed(0)
    model = create_model("c3d", num_classes=5, input_size=(16, 32, 32), fc_width=32)
    clip = torch.randn(1, 3, 16, 32, 32)
    logits = model(clip)
    assert logits.shape == (1, 5)
    logits.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())

    model.eval()
    with torch.no_grad():
        fc6, fc7 = model.features(clip, "fc6"), model.features(clip, "fc7")
        assert fc6.shape == fc7.shape == (1, 32)
        assert (fc6 >= 0).all() and (fc7 >= 0).all()  # post-ReLU activations
        torch.testing.assert_close(fc7, torch.relu(model.fc7(fc6)))
        torch.testing.assert_close(model(clip), model.fc8(fc7))
    with pytest.raises(ValueError, match="'fc5'"):
        model.features(clip, "fc5")
    with pytest.raises(ValueError, match=r"input_size \(8, 112, 112\) is too small"):
        C3D(input_size=(8, 112, 112))


def test_c3d_weights_with_other_classes_load_all_but_fc8(tmp_path):
    source = C3D(num_classes=7, input_size=(16, 32, 32), fc_width=16)
    path = tmp_path / "c3d.pth"
    torch.save(source.state_dict(), path)
    with pytest.warns(UserWarning, match="loaded all but 'fc8'"):
        model = create_model("c3d", num_classes=3, weights=path, input_size=(16, 32, 32), fc_width=16)
    assert torch.equal(model.conv5b.weight, source.conv5b.weight)
    assert torch.equal(model.fc7.weight, source.fc7.weight)
    assert model.fc8.out_features == 3


def test_stacked_frames_conv_exercise():
    """Seeds 000: 20 RGB frames stacked (60 channels) -> 15 frames (45 channels), 3x3 conv."""
    summary = summarize(nn.Conv2d(60, 45, 3, bias=False), input_shape=(60, 224, 224))
    assert summary.total_params == 24_300
    (row,) = summary.layers
    assert row.output_shape == (45, 222, 222)
    assert row.macs == 45 * 222 * 222 * 60 * 9
    assert "24,300" in format_summary(summary)


@pytest.mark.parametrize("name, weights", [("r3d_18", R3D_18_Weights), ("mc3_18", MC3_18_Weights),
                                           ("r2plus1d_18", R2Plus1D_18_Weights)])
def test_macs_match_torchvisions_published_gflops(name, weights):
    with torch.device("meta"):
        model = create_model(name)
    summary = summarize(model, (3, 16, 112, 112))
    assert round(summary.total_macs / 1e9, 3) == weights.KINETICS400_V1.meta["_ops"]
    assert summary.output_shape == (400,)


@pytest.mark.parametrize("build, weights", [
    (lambda: create_model("mvit_v2_s"), MViT_V2_S_Weights),
    (torchvision.models.video.mvit_v1_b, MViT_V1_B_Weights),  # no relative positions
])
def test_mvit_macs_match_torchvisions_published_gflops(build, weights):
    with torch.device("meta"):
        model = build()
    summary = summarize(model, (3, 16, 224, 224))
    assert summary.total_macs / 1e9 == pytest.approx(weights.KINETICS400_V1.meta["_ops"], rel=0.01)


def test_mvit_attention_counts_pooled_and_relative_position_matmuls():
    with torch.device("meta"):
        model = create_model("mvit_v2_s")
    rows = {row.name: row for row in summarize(model, (3, 16, 224, 224)).layers}
    # block 0: one head of 96 channels, queries on the 8x56x56 grid (+ class token),
    # keys/values pooled by 1x8x8 to 8x7x7; relative positions against 7 + 7 + 8 keys
    queries, keys = 1 + 8 * 56 * 56, 1 + 8 * 7 * 7
    assert rows["blocks.0.attn"].macs == 96 * (2 * queries * keys + (queries - 1) * (7 + 7 + 8))


class Mixed(nn.Module):
    """One of each counted layer type, on a (C, T, H, W) = (8, 2, 4, 4) input."""

    def __init__(self) -> None:
        super().__init__()
        self.non_local = NonLocalBlock(8)
        self.up = nn.ConvTranspose3d(8, 4, (1, 2, 2), stride=(1, 2, 2))
        self.attention = nn.MultiheadAttention(16, 2, batch_first=True)
        self.lstm = nn.LSTM(16, 6, batch_first=True)
        self.head = nn.Linear(6, 3)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.up(self.non_local(x)).reshape(1, 32, 16)  # (1, 4, 2, 8, 8) as 32 tokens
        attended, _ = self.attention(query=tokens, key=tokens, value=tokens)
        hidden, _ = self.lstm(attended)
        return self.head(self.dropout(hidden[:, -1]))


def test_summary_counts_every_layer_kind():
    model = Mixed()
    model.train()
    model.lstm.eval()
    summary = summarize(model, (8, 2, 4, 4))
    macs = {row.name: row.macs for row in summary.layers}
    n, keys = 2 * 4 * 4, 2 * 2 * 2  # positions; key positions after the 1x2x2 max-pool
    assert macs["non_local"] == 2 * n * keys * 4
    assert macs["non_local.theta"] == n * 8 * 4 and macs["non_local.out"] == n * 4 * 8
    assert macs["up"] == (8 * n) * 4 * 4  # each input value scattered to 4 channels x 2x2
    assert macs["attention"] == 32 * 16 * 16 * 4 + 2 * 32 * 32 * 16
    assert macs["lstm"] == 32 * 4 * 6 * (16 + 6)
    assert macs["head"] == 6 * 3
    assert "dropout" not in macs and "non_local.pool" in macs
    assert summary.total_macs == sum(macs.values())
    assert summary.total_params == sum(p.numel() for p in model.parameters())
    assert sum(row.params for row in summary.layers) == summary.total_params
    assert model.training and not model.lstm.training  # flags restored


def test_summary_to_dict_and_table():
    summary = summarize(create_model("small3d", num_classes=4, widths=(4, 8)), (3, 4, 16, 16))
    data = json.loads(json.dumps(summary.to_dict()))
    assert data["model"] == "Small3DCNN" and data["input_shape"] == [3, 4, 16, 16]
    assert data["output_shape"] == [4]
    assert [layer["name"] for layer in data["layers"]][:2] == ["features.0", "features.1"]
    assert data["total_macs"] == sum(layer["macs"] for layer in data["layers"]) > 0
    table = format_summary(summary)
    assert table.splitlines()[0] == "Small3DCNN: input 3 x 4 x 16 x 16 -> output 4"
    assert "features.0  Conv3d" in table and table.splitlines()[-2].startswith("Total params: ")
