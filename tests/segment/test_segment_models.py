"""The segmentation U-Nets: registered by name, logits per pixel and frame for any clip length,
the transformer bottleneck mixing the whole clip, one-line errors for bad sizes and options."""

from __future__ import annotations

import pytest
import torch

from deepvideo.segment import SEGMENTERS, build_segmenter
from deepvideo.segment.models import SpaceTimeTransformer, space_time_positions


@pytest.mark.parametrize("name", ["unet", "unet_transformer"])
def test_logits_per_pixel_and_frame(name):
    torch.manual_seed(0)
    model = build_segmenter(name, in_channels=5, width=4, depth=2).eval()
    assert model.stride == 4
    for frames in (1, 3):
        assert model(torch.randn(2, 5, frames, 16, 24)).shape == (2, frames, 16, 24)
    with pytest.raises(ValueError, match="frame size 18x16 must be a multiple of 4"):
        model(torch.randn(1, 5, 2, 16, 18))


def test_the_transformer_bottleneck_mixes_the_whole_clip():
    torch.manual_seed(0)
    attention = SpaceTimeTransformer(16, layers=1, heads=4).eval()
    volume = torch.randn(1, 16, 3, 4, 4)
    changed = volume.clone()
    changed[0, :, 2, 3, 3] += torch.randn(16)  # one token: the last frame's corner
    with torch.no_grad():
        out, other = attention(volume), attention(changed)
    assert out.shape == volume.shape
    assert (out - other)[0, :, 0, 0, 0].abs().max() > 1e-4  # reaches the first frame's far corner


def test_registry_and_positions():
    assert set(SEGMENTERS.names()) == {"unet", "unet_transformer"}
    with pytest.raises(ValueError, match="did you mean unet_transformer"):
        build_segmenter("unet_transformr")
    with pytest.raises(ValueError, match="has no option 'layers'"):
        build_segmenter("unet", layers=2)
    with pytest.raises(ValueError, match="heads: 3 must divide the bottleneck width 16"):
        build_segmenter("unet_transformer", width=4, depth=2, heads=3)
    codes = space_time_positions(16, 2, 3, 4)
    assert codes.shape == (24, 16) and len(torch.unique(codes, dim=0)) == 24
