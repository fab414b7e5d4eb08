"""Degradations: where the LR pixels sit, the Gaussian of BD, the bicubic of BI against
Pillow's, and crops whose LR half is exactly the crop of the whole degraded frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from deepvideo.io import VideoReader
from deepvideo.sr import degrade, degrade_frames, random_crop_pair
from deepvideo.sr.degrade import BD_SIGMA, bicubic_down, blur_down, frames_to_tensor, gaussian_taps

from conftest import locate_crop


def ramp(height: int, width: int) -> torch.Tensor:
    """``(3, H, W)``: channel 0 rises along x, channel 1 along y, channel 2 along both."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                            indexing="ij")
    return torch.stack([xs / width, ys / height, (xs + ys) / (width + height)])


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("kind", [bicubic_down, blur_down])
def test_lr_pixels_sit_at_the_centre_of_their_hr_footprint(kind, scale):
    # a linear ramp is reproduced exactly by any symmetric filter: LR pixel (i, j) takes the value
    # of the HR ramp at s i + (s - 1) / 2 -- what bicubic up-sampling assumes
    hr = ramp(48, 64)
    lr = kind(hr, scale)
    centres_y = scale * torch.arange(48 // scale, dtype=torch.float64) + (scale - 1) / 2
    centres_x = scale * torch.arange(64 // scale, dtype=torch.float64) + (scale - 1) / 2
    expected = torch.stack([centres_x[None].expand(len(centres_y), -1) / 64,
                            centres_y[:, None].expand(-1, len(centres_x)) / 48,
                            (centres_x[None] + centres_y[:, None]) / 112])
    inner = slice(2, -2)  # the borders are reflected, not extrapolated
    torch.testing.assert_close(lr[:, inner, inner], expected[:, inner, inner], atol=1e-9, rtol=0)


@pytest.mark.parametrize("scale", [2, 4])
def test_bd_taps_are_a_normalised_symmetric_gaussian_of_sigma_1_5(scale):
    taps, first = gaussian_taps(scale)
    assert taps.sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(taps, taps.flip(0))
    offsets = torch.arange(first, first + len(taps), dtype=torch.float64) - (scale - 1) / 2
    assert offsets.abs().max() <= 3 * BD_SIGMA + 0.5
    ratio = taps[:-1] / taps[1:]  # exp(-(d^2 - (d+1)^2) / (2 sigma^2)) between neighbours
    expected = torch.exp(((offsets[1:] ** 2) - offsets[:-1] ** 2) / (2 * BD_SIGMA ** 2))
    torch.testing.assert_close(ratio, expected)


def test_bi_matches_pillows_antialiased_bicubic_on_a_real_frame(shared_data):
    frame = VideoReader(shared_data / "videos" / "mmaction2__test.mp4").read([10])[0][:256, :336]
    ours = (bicubic_down(frames_to_tensor(frame[None]), 4)[0].clamp(0, 1) * 255).permute(1, 2, 0).numpy()
    pillow = np.asarray(Image.fromarray(frame).resize((336 // 4, 256 // 4), Image.Resampling.BICUBIC))
    difference = np.abs(ours.astype(np.float64) - pillow)
    assert difference.mean() < 0.6 and difference.max() <= 3  # Pillow rounds in fixed point


def test_constant_frames_stay_constant_and_lr_is_quantised():
    hr = torch.full((2, 3, 16, 24), 100 / 255)
    for kind in ("bi", "bd"):
        lr = degrade(hr, 4, kind)
        assert lr.shape == (2, 3, 4, 6)
        torch.testing.assert_close(lr, torch.full_like(lr, 100 / 255))
        torch.testing.assert_close(lr * 255, (lr * 255).round())


@pytest.mark.parametrize("kind", ["bi", "bd"])
def test_a_random_crop_pair_is_exactly_a_crop_of_the_whole_degraded_frames(kind):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 70, 90, 3), dtype=np.uint8)
    hr_all, lr_all = degrade_frames(frames, 4, kind)
    for seed in range(6):
        hr, lr = random_crop_pair(frames, 32, 4, kind, np.random.default_rng(seed))
        assert hr.shape == (3, 3, 32, 32) and lr.shape == (3, 3, 8, 8)
        hr_frames = (hr * 255).round().byte().permute(0, 2, 3, 1).numpy()
        index, top, left, mirrored = locate_crop(hr_frames[0], hr_all)
        assert (index, mirrored) == (0, False)
        assert top % 4 == 0 and left % 4 == 0  # on the LR grid
        expected = lr_all[:, top // 4:top // 4 + 8, left // 4:left // 4 + 8]
        np.testing.assert_array_equal((lr * 255).round().byte().permute(0, 2, 3, 1).numpy(), expected)


def test_bad_input_is_a_one_line_error_naming_it():
    with pytest.raises(ValueError, match="not divisible by scale 4"):
        degrade(torch.zeros(3, 10, 16), 4)
    with pytest.raises(ValueError, match="scale must be one of 2, 4"):
        degrade(torch.zeros(3, 12, 12), 3)
    with pytest.raises(ValueError, match=r"hr must be \(\.\.\., 3, H, W\)"):
        degrade(torch.zeros(1, 16, 16), 4)
    with pytest.raises(ValueError, match="unknown degradation 'bdd'; did you mean bd"):
        degrade(torch.zeros(3, 16, 16), 4, "bdd")
    frames = np.zeros((2, 20, 20, 3), np.uint8)
    with pytest.raises(ValueError, match="smaller than the crop 32"):
        random_crop_pair(frames, 32, 4, "bd", np.random.default_rng(0))
    with pytest.raises(ValueError, match="patch 30 is not divisible by scale 4"):
        random_crop_pair(frames, 30, 4, "bd", np.random.default_rng(0))
    with pytest.raises(ValueError, match="smaller than scale 4"):
        degrade_frames(np.zeros((2, 3, 3, 3), np.uint8), 4)
