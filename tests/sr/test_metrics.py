"""deepvideo.sr.metrics against independent references: scikit-image for PSNR / SSIM on real decoded frames,
hand-computed fixtures, and a direct OpenCV re-computation of TecoGAN's tOF."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from deepvideo.io import VideoReader
from deepvideo.sr.metrics import frame_psnr_ssim, frame_tof, psnr, rgb_to_y, ssim, tecogan_crop, tof

from conftest import SHARED_DATA

try:  # scikit-image is the independent reference; it is not a dependency of the package
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
except ImportError:  # pragma: no cover
    peak_signal_noise_ratio = structural_similarity = None

needs_skimage = pytest.mark.skipif(structural_similarity is None, reason="scikit-image is not installed")

VIDEO = SHARED_DATA / "videos" / "mmaction2__test.mp4"


def luma(frames: np.ndarray) -> np.ndarray:
    """BT.601 Y on the 0-255 scale, written out independently of the module under test."""
    rgb = frames.astype(np.float64)
    return 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0


def bicubic_x4(frames: np.ndarray) -> np.ndarray:
    """A typical SR baseline: x4 area downscale, bicubic upscale back to the original size."""
    height, width = frames.shape[1:3]
    return np.stack([cv2.resize(cv2.resize(f, (width // 4, height // 4), interpolation=cv2.INTER_AREA),
                                (width, height), interpolation=cv2.INTER_CUBIC) for f in frames])


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    """Five real RGB frames (T, 256, 340, 3) uint8."""
    if not VIDEO.is_file():
        pytest.skip(f"{VIDEO} is absent")
    frames = VideoReader(VIDEO).read([0, 1, 2, 3, 4])
    assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[-1] == 3
    return frames


# --- Y channel ---------------------------------------------------------------------------------------------------

def test_rgb_to_y_range_and_formula():
    assert rgb_to_y(np.full((2, 2, 3), 255, np.uint8)) == pytest.approx(np.full((2, 2), 235.0), abs=1e-9)
    assert rgb_to_y(np.zeros((1, 2, 2, 3), np.uint8)) == pytest.approx(np.full((1, 2, 2), 16.0), abs=1e-12)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    y = rgb_to_y(frames)
    assert y.dtype == np.float64 and y.shape == (2, 5, 7)
    np.testing.assert_allclose(y, luma(frames), rtol=0, atol=1e-12)
    # float input on the 0-255 scale gives the same, and nothing is rounded
    np.testing.assert_allclose(rgb_to_y(frames.astype(np.float32)), y, rtol=0, atol=1e-9)
    assert rgb_to_y(np.array([[[1, 0, 0]]], np.uint8))[0, 0] == pytest.approx(16 + 65.481 / 255)


def test_rgb_to_y_matches_basicsr_float32_route(clip):
    """BasicSR to_y_channel: img / 255 in float32, bgr2ycbcr(y_only=True), * 255 -- same number up to float32."""
    bgr = clip[..., ::-1].astype(np.float32) / 255.0
    basicsr = ((np.dot(bgr, [24.966, 128.553, 65.481]) + 16.0) / 255.0).astype(np.float32) * 255.0
    np.testing.assert_allclose(rgb_to_y(clip), basicsr, rtol=0, atol=1e-4)


# --- PSNR / SSIM against scikit-image ------------------------------------------------------------------------------

@needs_skimage
@pytest.mark.parametrize("crop_border", [0, 4])
def test_psnr_ssim_match_skimage_on_y(clip, crop_border):
    output = bicubic_x4(clip)
    c = slice(crop_border, -crop_border) if crop_border else slice(None)
    ref_psnr = np.array([peak_signal_noise_ratio(luma(t)[c, c], luma(o)[c, c], data_range=255)
                         for o, t in zip(output, clip)])
    ref_ssim = np.array([structural_similarity(luma(o)[c, c], luma(t)[c, c], data_range=255, gaussian_weights=True,
                                               sigma=1.5, use_sample_covariance=False) for o, t in zip(output, clip)])
    psnrs, ssims = frame_psnr_ssim(output, clip, crop_border=crop_border)
    assert psnrs.shape == ssims.shape == (len(clip),)
    # observed: PSNR agrees to ~1e-16 relative, SSIM to ~1e-13 absolute (both use an 11-tap sigma-1.5 window)
    np.testing.assert_allclose(psnrs, ref_psnr, rtol=1e-6)
    np.testing.assert_allclose(ssims, ref_ssim, rtol=0, atol=1e-6)
    assert 20 < ref_psnr.min() and ref_ssim.max() < 0.99  # a real, imperfect reconstruction
    # a clip is scored per frame, then averaged over frames
    assert psnr(output, clip, crop_border) == pytest.approx(ref_psnr.mean(), rel=1e-6)
    assert ssim(output, clip, crop_border) == pytest.approx(ref_ssim.mean(), abs=1e-6)
    # one (H, W, 3) frame
    assert psnr(output[1], clip[1], crop_border) == pytest.approx(ref_psnr[1], rel=1e-6)
    assert ssim(output[1], clip[1], crop_border) == pytest.approx(ref_ssim[1], abs=1e-6)


@needs_skimage
def test_psnr_ssim_match_skimage_on_rgb(clip):
    output, target = bicubic_x4(clip[:2]), clip[:2]
    ref_psnr = np.mean([peak_signal_noise_ratio(t[2:-2, 2:-2], o[2:-2, 2:-2], data_range=255)
                        for o, t in zip(output, target)])
    ref_ssim = np.mean([structural_similarity(o[2:-2, 2:-2], t[2:-2, 2:-2], data_range=255, channel_axis=-1,
                                              gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
                        for o, t in zip(output, target)])
    assert psnr(output, target, crop_border=2, y_channel=False) == pytest.approx(ref_psnr, rel=1e-6)
    assert ssim(output, target, crop_border=2, y_channel=False) == pytest.approx(ref_ssim, abs=1e-6)


def test_hand_computed_psnr_and_identity():
    target = np.full((16, 20, 3), 100, np.uint8)
    output = target.copy()
    output[..., 1] += 4                     # Y rises by 4 * 128.553 / 255 everywhere
    dy = 4 * 128.553 / 255
    assert psnr(output, target) == pytest.approx(10 * math.log10(255 ** 2 / dy ** 2), rel=1e-12)
    assert psnr(output, target, y_channel=False) == pytest.approx(10 * math.log10(255 ** 2 / (16 / 3)), rel=1e-12)
    assert psnr(target, target) == math.inf
    assert ssim(target, target) == 1.0
    rng = np.random.default_rng(1)
    noisy = rng.integers(0, 256, (2, 16, 20, 3), dtype=np.uint8)
    assert psnr(noisy, noisy) == math.inf
    assert ssim(noisy, noisy) == pytest.approx(1.0, abs=1e-12)
    assert ssim(noisy, noisy, y_channel=False) == pytest.approx(1.0, abs=1e-12)


def test_crop_border_really_crops(clip):
    output, target = bicubic_x4(clip[:1])[0], clip[0]
    damaged = output.copy()
    damaged[:3] = 0
    damaged[-3:] = 255
    damaged[:, :3] = 17
    damaged[:, -3:] = 200
    for border in (3, 5):
        assert psnr(damaged, target, crop_border=border) == psnr(output, target, crop_border=border)
        assert ssim(damaged, target, crop_border=border) == ssim(output, target, crop_border=border)
    assert psnr(damaged, target, crop_border=2) < psnr(output, target, crop_border=2) - 1
    assert psnr(damaged, target) < psnr(output, target) - 1


# --- tOF ---------------------------------------------------------------------------------------------------------

def tecogan_pair(out_prev, out_cur, tgt_prev, tgt_cur) -> float:
    """TecoGAN metrics.py for one frame pair, written out with OpenCV directly."""
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (out_prev, out_cur, tgt_prev, tgt_cur)]
    target_of = cv2.calcOpticalFlowFarneback(grey[2], grey[3], None, 0.5, 3, 15, 3, 5, 1.2, 0)
    output_of = cv2.calcOpticalFlowFarneback(grey[0], grey[1], None, 0.5, 3, 15, 3, 5, 1.2, 0)
    rows, cols = slice(16, 240), slice(10, 330)  # crop_8x8 of 256x340: 224x320 centred
    diff = np.absolute(target_of[rows, cols] - output_of[rows, cols])
    return float(np.sqrt(np.sum(diff * diff, axis=-1)).mean())


def test_tecogan_crop():
    assert tecogan_crop(256, 340) == (slice(16, 240), slice(10, 330))
    assert tecogan_crop(144, 176) == (slice(8, 136), slice(8, 168))  # 128 x 160: >= 8 px kept off each side
    rows, cols = tecogan_crop(40, 60)
    assert rows.stop == rows.start  # too small: empty


def test_tof_matches_direct_opencv(clip):
    target = clip[:3]
    output = bicubic_x4(target)
    expected = [tecogan_pair(output[t - 1], output[t], target[t - 1], target[t]) for t in (1, 2)]
    np.testing.assert_allclose(frame_tof(output, target), expected, rtol=1e-5)
    assert tof(output, target) == pytest.approx(np.mean(expected), rel=1e-5)
    assert tof(output, target) > 0


def test_tof_penalises_temporal_inconsistency(clip):
    target = clip
    assert tof(target, target) == 0.0
    # temporally consistent degradation: the same blur on every frame
    blurred = np.stack([cv2.GaussianBlur(f, (5, 5), 1.0) for f in target])
    # temporally inconsistent: each frame shifted by its own random 1-2 px jitter
    rng = np.random.default_rng(0)
    height, width = target.shape[1:3]
    jittered = np.stack([cv2.warpAffine(f, np.float32([[1, 0, rng.choice([-2, -1, 1, 2])],
                                                       [0, 1, rng.choice([-2, -1, 1, 2])]]),
                                        (width, height), borderMode=cv2.BORDER_REPLICATE) for f in target])
    consistent, inconsistent = tof(blurred, target), tof(jittered, target)
    assert inconsistent > 2 * consistent
    assert inconsistent > 0.5  # flow errors of about the jitter's size, in pixels


# --- bad input -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("metric", [psnr, ssim, frame_psnr_ssim])
def test_bad_inputs_raise(metric):
    frame = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match=r"output and target shapes differ.*\(32, 32, 3\).*\(32, 30, 3\)"):
        metric(frame, frame[:, :30])
    with pytest.raises(ValueError, match=r"output must be RGB frames.*\(32, 32, 4\)"):
        metric(np.zeros((32, 32, 4), np.uint8), np.zeros((32, 32, 4), np.uint8))
    with pytest.raises(ValueError, match=r"target must be RGB frames.*\(32, 32\)"):
        metric(frame, frame[..., 0])
    with pytest.raises(ValueError, match=r"crop_border=16 leaves no pixels.*\(32, 32, 3\)"):
        metric(frame, frame, crop_border=16)
    with pytest.raises(ValueError, match=r"crop_border must be an int >= 0"):
        metric(frame, frame, crop_border=-1)


def test_ssim_needs_an_11x11_window():
    frame = np.zeros((20, 30, 3), np.uint8)
    assert psnr(frame, frame, crop_border=5) == math.inf  # PSNR has no minimum size
    with pytest.raises(ValueError, match=r"ssim needs frames of at least 11x11.*10x20"):
        ssim(frame, frame, crop_border=5)


def test_tof_bad_inputs_raise():
    clip = np.zeros((3, 64, 64, 3), np.uint8)
    with pytest.raises(ValueError, match=r"tof needs output clips.*T >= 2.*\(1, 64, 64, 3\)"):
        tof(clip[:1], clip[:1])
    with pytest.raises(ValueError, match=r"tof needs output clips.*\(64, 64, 3\)"):
        tof(clip[0], clip[0])
    with pytest.raises(ValueError, match=r"output and target shapes differ.*\(3, 64, 64, 3\).*\(2, 64, 64, 3\)"):
        tof(clip, clip[:2])
    small = np.zeros((2, 40, 40, 3), np.uint8)
    with pytest.raises(ValueError, match=r"center_crop leaves no pixels.*\(40, 40, 3\)"):
        tof(small, small)
    assert tof(small, small, center_crop=False) == 0.0
