"""Two-stream networks: cross-modality init, the two streams, late fusion, two-stream I3D."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from deepvideo.models import create_model, list_models
from deepvideo.models.registry import model_doc, model_inputs
from deepvideo.models.two_stream import (
    TwoStreamOutput,
    cross_modality_init,
    fuse,
    middle_frame,
    stack_flow,
    two_stream,
    two_stream_i3d,
)

WIDTHS = (4, 8)


def test_cross_modality_init_replicates_the_mean_rgb_kernel():
    torch.manual_seed(0)
    rgb = nn.Conv2d(3, 5, 3, stride=2, padding=1, bias=True)
    flow = cross_modality_init(rgb, 6)
    assert flow.weight.shape == (5, 6, 3, 3) and flow.stride == (2, 2) and flow.padding == (1, 1)
    for c in range(6):
        torch.testing.assert_close(flow.weight[:, c], rgb.weight.mean(dim=1))
    torch.testing.assert_close(flow.bias, rgb.bias)
    # identity: flow(f) - b == (rgb(s, s, s) - b) / 3 with s the channel sum of f
    f = torch.randn(2, 6, 9, 9)
    s = f.sum(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    b = rgb.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(flow(f) - b, (rgb(s) - b) / 3)
    # so a constant flow stack c gives 2L/3 times the (bias-free) response to a constant RGB c
    c = 0.7
    torch.testing.assert_close(flow(torch.full((1, 6, 5, 5), c)) - b,
                               (rgb(torch.full((1, 3, 5, 5), c)) - b) * 6 / 3)
    with pytest.raises(ValueError, match="groups"):
        cross_modality_init(nn.Conv2d(4, 4, 3, groups=2), 6)


def test_flow_stacking_order_and_middle_frame():
    flow = torch.arange(6.0).view(1, 2, 3, 1, 1)  # x: 0, 1, 2; y: 3, 4, 5
    assert stack_flow(flow).flatten().tolist() == [0, 3, 1, 4, 2, 5]  # x1, y1, x2, y2, x3, y3
    stacked = stack_flow(flow)
    assert stacked.shape == (1, 6, 1, 1) and stack_flow(stacked) is stacked
    clip = torch.arange(5.0).view(1, 1, 5, 1, 1).expand(1, 3, 5, 1, 1)
    assert middle_frame(clip).flatten().tolist() == [2, 2, 2]


def test_temporal_stream_first_conv_and_parameter_count():
    length, k = 3, 5
    model = create_model("temporal_stream", num_classes=k, flow_frames=length, widths=WIDTHS)
    assert model.net[0][0].weight.numel() == 2 * length * 3 * 3 * WIDTHS[0]
    params = (2 * length * 9 * 4 + 8) + (4 * 9 * 8 + 16) + (8 * k + k)  # conv+BN per stage, fc
    assert sum(p.numel() for p in model.parameters()) == params


def test_streams_forward_backward_and_input_layouts():
    torch.manual_seed(0)
    spatial = create_model("spatial_stream", num_classes=4, widths=WIDTHS).eval()
    clip = torch.randn(2, 3, 5, 16, 16)
    torch.testing.assert_close(spatial(clip), spatial(clip[:, :, 2]))
    temporal = create_model("temporal_stream", num_classes=4, flow_frames=3, widths=WIDTHS).eval()
    flow = torch.randn(2, 2, 3, 16, 16)
    torch.testing.assert_close(temporal(flow), temporal(stack_flow(flow)))
    with pytest.raises(ValueError, match="3 flow fields"):
        temporal(torch.randn(2, 2, 4, 16, 16))
    for model, x in ((spatial.train(), clip), (temporal.train(), flow)):
        logits = model(x)
        assert logits.shape == (2, 4)
        logits.sum().backward()
        assert all(p.grad is not None for p in model.parameters())


def test_fusion_matches_a_hand_computation():
    s = torch.tensor([[0.0, math.log(3.0)]])  # softmax (1/4, 3/4)
    t = torch.tensor([[0.0, 0.0]])            # softmax (1/2, 1/2)
    torch.testing.assert_close(fuse(s, t, "average"), torch.tensor([[3 / 8, 5 / 8]]))
    # (1 * (1/4, 3/4) + 1.5 * (1/2, 1/2)) / 2.5
    torch.testing.assert_close(fuse(s, t, "weighted", (1.0, 1.5)), torch.tensor([[0.4, 0.6]]))
    with pytest.raises(ValueError, match="fusion"):
        fuse(s, t, "max")
    with pytest.raises(ValueError, match="weights"):
        fuse(s, t, "weighted", (1.0, -1.0))


@pytest.mark.parametrize("fusion", ["average", "weighted"])
def test_two_stream_forward_backward(fusion):
    torch.manual_seed(0)
    model = two_stream(num_classes=3, flow_frames=2, widths=WIDTHS, fusion=fusion)
    out = model(torch.randn(2, 3, 4, 16, 16), torch.randn(2, 2, 2, 16, 16))
    assert isinstance(out, TwoStreamOutput) and out.log_probs.shape == (2, 3)
    torch.testing.assert_close(out.log_probs.exp(), fuse(out.spatial, out.temporal, fusion))
    F.nll_loss(out.log_probs, torch.tensor([0, 2])).backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=3)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(net.state_dict(), path)
    return path, net.conv1.weight.detach()


def test_resnet18_streams_use_cross_modality_pretraining(resnet18_file):
    path, conv1 = resnet18_file
    model = two_stream(num_classes=3, flow_frames=2, backbone="resnet18", weights2d=path)
    torch.testing.assert_close(model.spatial.net.conv1.weight, conv1)
    flow_conv1 = model.temporal.net.conv1.weight
    assert flow_conv1.shape == (64, 4, 7, 7)  # 2L * 7 * 7 * 64 parameters
    torch.testing.assert_close(flow_conv1, conv1.mean(dim=1, keepdim=True).expand(-1, 4, -1, -1))
    out = model(torch.randn(2, 3, 3, 32, 32), torch.randn(2, 2, 2, 32, 32))
    assert out.log_probs.shape == (2, 3)
    with pytest.raises(ValueError, match="weights2d"):
        create_model("spatial_stream", num_classes=3, weights2d=path)
    with pytest.raises(ValueError, match="backbone"):
        create_model("temporal_stream", num_classes=3, backbone="vgg16")


def test_two_stream_i3d(resnet18_file):
    path, conv1 = resnet18_file
    model = two_stream_i3d(num_classes=3, weights2d=path, fusion="weighted")
    rgb_conv1, flow_conv1 = model.spatial.conv1.weight, model.temporal.conv1.weight
    assert rgb_conv1.shape == (64, 3, 3, 7, 7) and flow_conv1.shape == (64, 2, 3, 7, 7)
    torch.testing.assert_close(rgb_conv1, conv1.unsqueeze(2).expand(-1, -1, 3, -1, -1) / 3)
    torch.testing.assert_close(flow_conv1, rgb_conv1.mean(dim=1, keepdim=True).expand(-1, 2, -1, -1, -1))
    out = model(torch.randn(2, 3, 4, 32, 32), torch.randn(2, 2, 4, 32, 32))
    assert out.spatial.shape == out.temporal.shape == out.log_probs.shape == (2, 3)
    F.nll_loss(out.log_probs, torch.tensor([1, 2])).backward()
    assert model.temporal.conv1.weight.grad is not None and model.spatial.fc.weight.grad is not None


def test_two_stream_overfits_a_handful_of_pairs(overfit):
    torch.manual_seed(0)
    model = two_stream(num_classes=3, flow_frames=2, widths=(8, 16), fusion="weighted")
    rgb, flow = torch.randn(6, 3, 3, 16, 16), torch.randn(6, 2, 2, 16, 16)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    losses = overfit(model, (rgb, flow), labels, steps=25, lr=1e-2,
                     loss_fn=lambda out, target: F.nll_loss(out.log_probs, target))
    assert losses[-1] < 0.3 * losses[0]


def test_fused_models_are_registered_with_their_two_inputs():
    assert {"two_stream", "two_stream_i3d"} <= set(list_models())
    assert model_inputs("two_stream") == model_inputs("two_stream_i3d") == ("rgb", "flow")
    assert model_inputs("spatial_stream") == model_inputs("small3d") == ("video",)
    assert "rgb (B, 3, T, H, W), flow (B, 2, L, H, W)" in model_doc("two_stream")
    torch.manual_seed(0)
    model = create_model("two_stream", num_classes=3, flow_frames=2, widths=list(WIDTHS), fusion="weighted")
    out = model(torch.randn(2, 3, 4, 16, 16), torch.randn(2, 2, 2, 16, 16))
    assert isinstance(out, TwoStreamOutput) and model.weights == (1.0, 1.5)
    torch.testing.assert_close(out.log_probs.exp(), fuse(out.spatial, out.temporal, "weighted"))
    with pytest.raises(ValueError, match="no option 'flow_frame'"):
        create_model("two_stream", num_classes=3, flow_frame=2)
    with pytest.raises(ValueError, match="unknown model"):
        model_inputs("three_stream")


def test_fusion_runs_in_float32_under_autocast():
    # bf16 logits (autocast) are fused in float32: the fused probabilities sum to 1 and match
    # fusing the same logits outside autocast, as the per-stream softmax of evaluation does
    torch.manual_seed(0)
    model = two_stream(num_classes=3, flow_frames=2, widths=WIDTHS, fusion="weighted").eval()
    rgb, flow = torch.randn(4, 3, 3, 16, 16), torch.randn(4, 2, 2, 16, 16)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(rgb, flow)
    assert out.spatial.dtype == torch.bfloat16 and out.log_probs.dtype == torch.float32
    expected = torch.log(fuse(out.spatial.float(), out.temporal.float(), "weighted"))
    torch.testing.assert_close(out.log_probs, expected, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(out.log_probs.exp().sum(-1), torch.ones(4))
