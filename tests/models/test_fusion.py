"""Late, early and slow fusion (Karpathy et al. 2014) on tiny CPU-sized clips."""

from __future__ import annotations

import pytest
import torch

from deepvideo.models import create_model
from deepvideo.models.fusion import slow_fusion_min_frames

from conftest import assert_forward_backward

WIDTHS = (8, 16)
TINY = {
    "late_fusion": dict(num_frames=4, widths=WIDTHS, hidden=(16,)),
    "late_fusion_pool": dict(pool="max", widths=WIDTHS, hidden=(16,)),
    "early_fusion": dict(num_frames=4, widths=WIDTHS, hidden=(16,)),
    "slow_fusion": dict(widths=(8, 16, 16), temporal_kernels=(2, 2, 1),
                        temporal_strides=(2, 1, 1), hidden=(16,)),
}
CLIP = (2, 3, 4, 16, 16)  # (B, C, T, H, W)


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _cnn2d_params(in_channels: int, widths: tuple[int, ...]) -> int:
    """small_cnn2d: bias-free 3x3 convs plus BatchNorm weight and bias."""
    total = 0
    for width in widths:
        total += in_channels * width * 9 + 2 * width
        in_channels = width
    return total


@pytest.mark.parametrize("name", sorted(TINY))
def test_forward_backward(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, **TINY[name])
    assert_forward_backward(model, torch.randn(CLIP), (2, 5))


def test_early_fusion_parameter_count():
    t, k, w0, hidden = 4, 5, WIDTHS[0], 16
    model = create_model("early_fusion", num_classes=k, num_frames=t, widths=WIDTHS, hidden=(hidden,))
    first_conv = model.cnn[0]
    assert first_conv.weight.shape == (w0, 3 * t, 3, 3)
    assert first_conv.weight.numel() == 3 * t * 3 * 3 * w0
    head = WIDTHS[-1] * hidden + hidden + hidden * k + k
    assert _params(model) == _cnn2d_params(3 * t, WIDTHS) + head


def test_late_fusion_parameter_count():
    t, k, hidden = 4, 5, 16
    concat = create_model("late_fusion", num_classes=k, num_frames=t, widths=WIDTHS, hidden=(hidden,))
    pooled = create_model("late_fusion_pool", num_classes=k, widths=WIDTHS, hidden=(hidden,))
    cnn, d = _cnn2d_params(3, WIDTHS), WIDTHS[-1]
    assert _params(concat) == cnn + t * d * hidden + hidden + hidden * k + k
    assert _params(pooled) == cnn + d * hidden + hidden + hidden * k + k


def test_early_fusion_stacks_frames_frame_major():
    torch.manual_seed(0)
    model = create_model("early_fusion", num_classes=3, num_frames=4, widths=WIDTHS).eval()
    video = torch.randn(CLIP)
    conv = model.cnn[0]
    stacked = torch.cat([video[:, :, t] for t in range(4)], dim=1)  # frame 0's RGB first
    assert torch.allclose(conv(video.transpose(1, 2).reshape(2, 12, 16, 16)), conv(stacked))
    # Swapping two frames changes the result: the first conv sees frame order.
    swapped = video[:, :, [1, 0, 2, 3]]
    assert not torch.allclose(model(video), model(swapped), atol=1e-5)


def test_late_fusion_concat_sees_order_pooling_does_not():
    torch.manual_seed(0)
    video = torch.randn(CLIP)
    reversed_video = video.flip(2)
    concat = create_model("late_fusion", num_classes=3, num_frames=4, widths=WIDTHS).eval()
    assert not torch.allclose(concat(video), concat(reversed_video), atol=1e-5)
    for pool in ("avg", "max"):
        pooled = create_model("late_fusion_pool", num_classes=3, pool=pool, widths=WIDTHS).eval()
        assert torch.allclose(pooled(video), pooled(reversed_video), atol=1e-5)
        pooled(torch.randn(1, 3, 7, 16, 16))  # any number of frames


def test_slow_fusion_temporal_extent_grows_layer_by_layer():
    """Paper's schedule on 10 frames: 4 -> 2 -> 1 responses in time; stage 1 sees 4 frames,
    the output sees all 10."""
    assert slow_fusion_min_frames((4, 2, 2, 1), (2, 2, 2, 1)) == 10
    torch.manual_seed(0)
    model = create_model("slow_fusion", num_classes=3, widths=(4, 4, 4, 4)).eval()
    video = torch.randn(1, 3, 10, 16, 16, requires_grad=True)
    lengths, x = [], video
    for layer in model.features:
        x = layer(x)
        if isinstance(layer, torch.nn.Conv3d):
            lengths.append(x.shape[2])
    assert lengths == [4, 2, 1, 1]

    first_stage = model.features[:3]
    (grad,) = torch.autograd.grad(first_stage(video)[:, :, 1].sum(), video)
    seen = grad.abs().sum(dim=(0, 1, 3, 4)) > 0
    assert seen.tolist() == [False, False, True, True, True, True, False, False, False, False]
    (grad,) = torch.autograd.grad(model(video).sum(), video)
    assert bool((grad.abs().sum(dim=(0, 1, 3, 4)) > 0).all())


@pytest.mark.parametrize("name", sorted(TINY))
def test_overfits_a_few_clips(name, overfit):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, **TINY[name])
    clips, labels = torch.randn(6, 3, 4, 16, 16), torch.tensor([0, 1, 2, 0, 1, 2])
    losses = overfit(model, clips, labels, steps=25, lr=1e-2)
    assert losses[-1] < 0.2 * losses[0]


def test_clear_errors():
    late = create_model("late_fusion", num_classes=3, num_frames=4, widths=WIDTHS)
    with pytest.raises(ValueError, match="num_frames=4"):
        late(torch.randn(1, 3, 5, 16, 16))
    early = create_model("early_fusion", num_classes=3, num_frames=4, widths=WIDTHS)
    with pytest.raises(ValueError, match="num_frames=4"):
        early(torch.randn(1, 3, 3, 16, 16))
    slow = create_model("slow_fusion", num_classes=3, widths=(4, 4, 4, 4))
    with pytest.raises(ValueError, match="at least 10 frames"):
        slow(torch.randn(1, 3, 8, 16, 16))
    with pytest.raises(ValueError, match="pool"):
        create_model("late_fusion_pool", num_classes=3, pool="median")
    with pytest.raises(ValueError, match="same length"):
        create_model("slow_fusion", num_classes=3, widths=(4, 4), temporal_kernels=(2,))
    with pytest.raises(ValueError, match="no option 'num_frame'"):
        create_model("early_fusion", num_classes=3, num_frame=4)
