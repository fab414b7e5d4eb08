"""I3D inflation (the constant-video property) and the non-local block."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torchvision

from deepvideo.models import create_model
from deepvideo.models.attention import NonLocalBlock
from deepvideo.models.inflate import InflatedConv3d, inflate, inflate_resnet2d

from conftest import randomize_batchnorm


def resnet2d(arch: str, num_classes: int = 5) -> nn.Module:
    """A torchvision 2D ResNet with non-trivial BatchNorm statistics, in eval mode."""
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(num_classes=num_classes)
    return randomize_batchnorm(model).eval()


def constant_video(images: torch.Tensor, frames: int) -> torch.Tensor:
    """``(B, C, H, W)`` images -> ``(B, C, T, H, W)`` videos whose frames are all that image."""
    return images.unsqueeze(2).expand(-1, -1, frames, -1, -1).contiguous()


def stem_and_layer1(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(x)))))


@pytest.mark.parametrize("arch, lengths", [("resnet18", (1, 3, 4)), ("resnet50", (3,))])
def test_constant_video_gives_the_2d_output(arch, lengths):
    net2d = resnet2d(arch)
    net3d = inflate_resnet2d(net2d).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = net2d(images)
        for frames in lengths:  # odd/even lengths, shorter than the kernels' reach
            torch.testing.assert_close(net3d(constant_video(images, frames)), expected,
                                       atol=1e-4, rtol=0)


def test_constant_video_property_is_exact_at_every_frame():
    """In float64 every frame's features, border frames included, equal the 2D features."""
    net2d = resnet2d("resnet18").double()
    net3d = inflate_resnet2d(net2d).eval()
    images = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        features2d = stem_and_layer1(net2d, images)
        features3d = stem_and_layer1(net3d, constant_video(images, 5))
        assert features3d.shape[2] == 5
        for t in range(5):
            torch.testing.assert_close(features3d[:, :, t], features2d, atol=1e-12, rtol=0)
        torch.testing.assert_close(net3d(constant_video(images, 5)), net2d(images), atol=1e-12, rtol=0)


def test_inflated_kernels_and_strides():
    net2d = resnet2d("resnet18")
    net3d = inflate_resnet2d(net2d, num_classes=11)
    assert net3d.conv1.kernel_size == (3, 7, 7) and net3d.conv1.stride == (1, 2, 2)
    assert net3d.maxpool.kernel_size == (1, 3, 3)
    assert net3d.layer2[0].conv1.stride == (2, 2, 2)
    assert net3d.layer2[0].downsample[0].kernel_size == (1, 1, 1)
    torch.testing.assert_close(net3d.conv1.weight.sum(2), net2d.conv1.weight)
    assert isinstance(net3d.layer4[1].bn2, nn.BatchNorm3d)
    assert torch.equal(net3d.layer4[1].bn2.running_var, net2d.layer4[1].bn2.running_var)
    assert net3d.fc.out_features == 11
    assert isinstance(net2d.conv1, nn.Conv2d)  # the 2D network is untouched
    with torch.no_grad():  # time is downsampled 8x by the residual stages
        assert net3d.layer4(net3d.layer3(net3d.layer2(torch.randn(1, 64, 16, 8, 8)))).shape[2] == 2


def test_time_kernel_one_averages_the_per_frame_2d_logits():
    """A rule giving every layer temporal size 1 and stride 1 turns I3D into a per-frame
    2D network followed by temporal averaging (the single-frame baseline)."""
    net2d = resnet2d("resnet18")
    net3d = inflate_resnet2d(net2d, time_kernel=lambda name, conv: 1,
                             time_stride=lambda name, layer: 1).eval()
    video = torch.randn(1, 3, 3, 32, 32)  # three different frames
    with torch.no_grad():
        per_frame = torch.stack([net2d(video[:, :, t]) for t in range(3)]).mean(0)
        torch.testing.assert_close(net3d(video), per_frame, atol=1e-5, rtol=0)


def test_inflation_errors():
    with pytest.raises(ValueError, match="time_kernel must be odd"):
        InflatedConv3d(nn.Conv2d(3, 4, 3), time_kernel=2)
    with pytest.raises(ValueError, match="cannot inflate layer '1' of type AvgPool2d"):
        inflate(nn.Sequential(nn.Conv2d(3, 4, 3), nn.AvgPool2d(2)))


@pytest.mark.parametrize("name, arch", [("i3d_resnet18", "resnet18"), ("i3d_resnet50", "resnet50")])
def test_i3d_builders_forward_backward_and_parameters(name, arch):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7)
    net2d = getattr(torchvision.models, arch)(num_classes=7)
    extra = sum(2 * m.weight.numel() for m in net2d.modules()
                if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1))  # Kt = 3: two more copies
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in net2d.parameters()) + extra
    logits = model(torch.randn(2, 3, 4, 16, 16))
    assert logits.shape == (2, 7)
    logits.logsumexp(1).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_i3d_loads_2d_weights_from_a_file(tmp_path):
    net2d = resnet2d("resnet18", num_classes=1000)  # an ImageNet-shaped checkpoint
    path = tmp_path / "resnet18.pth"
    torch.save(net2d.state_dict(), path)
    with pytest.warns(UserWarning, match="loaded all but 'fc'"):
        model = create_model("i3d_resnet18", num_classes=4, weights2d=path)
    torch.testing.assert_close(model.layer3[0].conv1.weight.sum(2), net2d.layer3[0].conv1.weight)
    assert torch.equal(model.bn1.running_mean, net2d.bn1.running_mean)
    with pytest.raises(ValueError, match="missing.pth does not exist"):
        create_model("i3d_resnet18", weights2d=tmp_path / "missing.pth")


# --- non-local block ------------------------------------------------------------------------

@pytest.mark.parametrize("subsample", [True, False])
def test_nonlocal_block_is_the_identity_at_init(subsample):
    torch.manual_seed(0)
    block = NonLocalBlock(8, subsample=subsample)
    x = torch.randn(2, 8, 3, 6, 5)
    assert torch.equal(block(x), x)  # training mode
    block.eval()
    assert torch.equal(block(x), x)


def test_nonlocal_block_learns_after_a_step():
    torch.manual_seed(0)
    block = NonLocalBlock(8)
    x, target = torch.randn(2, 8, 2, 4, 4), torch.randn(2, 8, 2, 4, 4)
    optimizer = torch.optim.SGD(block.parameters(), lr=0.1)
    loss = nn.functional.mse_loss(block(x), target)
    loss.backward()
    assert block.bn.weight.grad.abs().sum() > 0
    optimizer.step()
    out = block(x)
    assert out.shape == x.shape and not torch.allclose(out, x)
    assert nn.functional.mse_loss(out, target) < loss


def test_nonlocal_block_attends_over_space_and_time():
    """The response at one position depends on a far-away frame (non-locality)."""
    torch.manual_seed(0)
    block = NonLocalBlock(4, subsample=False)
    nn.init.ones_(block.bn.weight)
    block.eval()
    x = torch.randn(1, 4, 4, 3, 3)
    changed = x.clone()
    changed[:, :, -1, -1, -1] += 5.0  # last frame, corner
    with torch.no_grad():
        delta = (block(changed) - block(x))[:, :, 0, 0, 0]  # first frame, other corner
    assert delta.abs().max() > 1e-4
