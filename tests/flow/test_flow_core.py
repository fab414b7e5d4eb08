"""Flow files, metrics, colour coding, warping and classical estimation on real flow data."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from deepvideo.flow import (
    COLOR_WHEEL,
    DEFAULT_BOUND,
    FLOW_METHODS,
    angular_error,
    angular_error_map,
    backward_warp,
    clip_flow,
    dequantize_flow,
    endpoint_error,
    endpoint_error_map,
    estimate_flow,
    flow_estimator,
    flow_to_color,
    photometric_error,
    quantize_flow,
    read_flo,
    write_flo,
)


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, path
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def to_chw(frame: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frame).permute(2, 0, 1).float()


def available_methods() -> list[str]:
    return [m for m in FLOW_METHODS if m != "tvl1" or hasattr(cv2, "optflow")]


# --- .flo files ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["00001_flow.flo", "0000000-flow_01.flo", "0000000-flow_10.flo"])
def test_reference_flo_files(shared_data, name):
    flow = read_flo(shared_data / "flow" / name)
    assert flow.shape == (2, 50, 50) and flow.dtype == np.float32
    assert np.isfinite(flow).all() and np.abs(flow).max() < 50
    raw = (shared_data / "flow" / name).read_bytes()
    # the first pixel's (u, v) sit right after the 12-byte header
    assert np.array_equal(np.frombuffer(raw, "<f4", count=2, offset=12), flow[:, 0, 0])


def test_flo_round_trip(tmp_path, shared_data):
    flow = read_flo(shared_data / "flow" / "00001_flow.flo")
    path = write_flo(tmp_path / "copy.flo", flow)
    assert path.read_bytes() == (shared_data / "flow" / "00001_flow.flo").read_bytes()
    rng = np.random.default_rng(0)
    odd = rng.normal(0, 5, (2, 7, 13)).astype(np.float32)  # width != height catches transposes
    assert np.array_equal(read_flo(write_flo(tmp_path / "odd.flo", odd)), odd)
    assert [p.name for p in tmp_path.iterdir()] and not list(tmp_path.glob(".*tmp"))


def test_flo_errors_name_the_file(tmp_path):
    good = np.zeros((2, 4, 5), np.float32)
    data = write_flo(tmp_path / "good.flo", good).read_bytes()
    (tmp_path / "magic.flo").write_bytes(b"XXXX" + data[4:])
    (tmp_path / "short.flo").write_bytes(data[:-4])
    (tmp_path / "tiny.flo").write_bytes(data[:6])
    cases = [("magic.flo", "not a Middlebury"), ("short.flo", "truncated"), ("tiny.flo", "truncated")]
    for name, message in cases:
        with pytest.raises(ValueError, match=message) as info:
            read_flo(tmp_path / name)
        assert str(tmp_path / name) in str(info.value)
    with pytest.raises(ValueError, match=r"\(2, H, W\)"):
        write_flo(tmp_path / "bad.flo", np.zeros((4, 5, 2), np.float32))


# --- quantisation ----------------------------------------------------------------------------

def test_quantisation_round_trip_and_clipping():
    bound = DEFAULT_BOUND
    values = np.linspace(-bound, bound, 10001, dtype=np.float32)
    codes = quantize_flow(values, bound)
    assert codes.dtype == np.uint8 and codes.min() == 0 and codes.max() == 255
    back = dequantize_flow(codes, bound)
    assert np.abs(back - values).max() <= bound / 255 + 1e-5  # half a step, within bound / 127.5
    outside = np.array([-1000, -bound - 3, bound + 0.5, 1e6], np.float32)
    assert np.array_equal(dequantize_flow(quantize_flow(outside, bound), bound),
                          np.array([-bound, -bound, bound, bound], np.float32))
    assert np.array_equal(quantize_flow(values, 5.0), quantize_flow(values * 0.25, 5.0 * 0.25))
    with pytest.raises(ValueError, match="bound"):
        quantize_flow(values, 0.0)


# --- metrics ---------------------------------------------------------------------------------

def test_endpoint_and_angular_error_values():
    gt = np.zeros((2, 2, 3))
    flow = np.zeros((2, 2, 3))
    flow[0, 0, 0], flow[1, 0, 0] = 3.0, 4.0                   # one pixel off by (3, 4): EPE 5
    assert endpoint_error_map(flow, gt)[0, 0] == pytest.approx(5.0)
    assert endpoint_error(flow, gt) == pytest.approx(5.0 / 6)
    mask = np.zeros((2, 3), bool)
    mask[0, 0] = True
    assert endpoint_error(flow, gt, mask) == pytest.approx(5.0)
    # (1, 0, 1) against (0, 0, 1): 45 degrees; (u, v) against itself: 0
    unit = np.zeros((2, 1, 1))
    unit[0] = 1.0
    assert angular_error(unit, np.zeros_like(unit)) == pytest.approx(45.0)
    assert angular_error_map(flow, flow).max() == pytest.approx(0.0, abs=1e-6)
    # opposite directions of length 1: arccos(0 / 2) = 90 degrees
    assert angular_error(unit, -unit) == pytest.approx(90.0)
    assert endpoint_error(torch.from_numpy(flow), torch.from_numpy(gt)) == pytest.approx(5.0 / 6)
    with pytest.raises(ValueError, match="no pixels"):
        endpoint_error(flow, gt, np.zeros((2, 3), bool))
    with pytest.raises(ValueError, match="equal"):
        endpoint_error(flow, gt[:, :1])


# --- colour coding ---------------------------------------------------------------------------

def test_color_wheel_directions():
    assert COLOR_WHEEL.shape == (55, 3)
    assert COLOR_WHEEL[0].tolist() == [255, 0, 0] and COLOR_WHEEL[15].tolist() == [255, 255, 0]
    flow = np.zeros((2, 1, 6), np.float32)
    flow[:, 0, 0] = (1, 0)     # right
    flow[:, 0, 1] = (0, -1)    # up (image y points down)
    flow[:, 0, 2] = (-1, 0)    # left
    flow[:, 0, 3] = (0, 1)     # down
    flow[:, 0, 4] = (0, 0)     # none
    flow[:, 0, 5] = (0.5, 0)   # right, half the largest length
    r, u, left, d, z, half = flow_to_color(flow)[0].astype(int)
    assert r.tolist() == [255, 0, 0]                          # red
    assert u[2] == 255 and u[1] == 0 and 60 < u[0] < 120       # blue-violet
    assert left[0] == 0 and left[2] == 255 and left[1] > 180   # cyan
    assert d[0] == 255 and d[2] == 0 and 200 < d[1] < 255      # yellow-orange
    assert z.tolist() == [255, 255, 255]                       # white
    assert half.tolist() == [255, 127, 127]                    # red, half saturated
    # a given max_flow: half saturation at half of it, 75% wheel colour beyond it
    assert flow_to_color(flow, max_flow=2.0)[0, 0].tolist() == [255, 127, 127]
    assert flow_to_color(flow * 4, max_flow=2.0)[0, 0].tolist() == [191, 0, 0]
    flow[0, 0, 4] = np.nan
    assert flow_to_color(flow)[0, 4].tolist() == [0, 0, 0]     # unknown flow is black
    clip = flow_to_color(np.stack([flow, 2 * flow]))
    assert clip.shape == (2, 1, 6, 3) and np.array_equal(clip[0], clip[1])


def test_color_coding_of_real_flow(shared_data):
    flow = read_flo(shared_data / "flow" / "00001_flow.flo")
    image = flow_to_color(flow)
    assert image.shape == (50, 50, 3) and image.dtype == np.uint8
    longest = np.unravel_index(np.hypot(*flow).argmax(), flow.shape[1:])
    assert image[longest].min() == 0 and image[longest].max() == 255  # fully saturated at max radius


# --- warping ---------------------------------------------------------------------------------

def test_backward_warp_integer_and_half_pixel_shift():
    image = torch.arange(2 * 5 * 7, dtype=torch.float32).reshape(2, 5, 7)
    flow = torch.zeros(2, 5, 7)
    flow[0] = 2.0                                             # sample 2 px to the right
    warped, valid = backward_warp(image, flow)
    assert torch.allclose(warped[:, :, :-2], image[:, :, 2:], atol=1e-4)
    assert valid.shape == (1, 5, 7) and valid[0, :, :-2].all() and not valid[0, :, -2:].any()
    flow[0], flow[1] = 0.0, 0.5                               # half a pixel down: the mean of two rows
    warped, _ = backward_warp(image[None].repeat(3, 1, 1, 1), flow)
    assert warped.shape == (3, 2, 5, 7)
    assert torch.allclose(warped[:, :, :-1], (image[:, :-1] + image[:, 1:]) / 2, atol=1e-4)


def test_warping_by_ground_truth_lowers_photometric_error(shared_data):
    folder = shared_data / "flow"
    # FlyingChairs: every pixel moves (1.8 px on average)
    image1, image2 = (to_chw(read_rgb(folder / f"00001_img{i}.ppm")) for i in (1, 2))
    flow = torch.from_numpy(read_flo(folder / "00001_flow.flo"))
    warped, valid = backward_warp(image2, flow)
    assert photometric_error(warped, image1, valid) < 0.6 * photometric_error(image2, image1, valid)
    # FlyingChairsOcc: sub-pixel motion under photometric noise; score outside occlusions,
    # on the pixels that every candidate flow keeps inside the image
    image0, image1 = (to_chw(read_rgb(folder / f"0000000-img_{i}.png")) for i in (0, 1))
    flow = torch.from_numpy(read_flo(folder / "0000000-flow_01.flo"))
    occluded = torch.from_numpy(read_rgb(folder / "0000000-occ_01.png")[..., 0] > 127)
    candidates = {"gt": flow, "zero": torch.zeros_like(flow), "reversed": -flow, "doubled": 2 * flow}
    warps = {name: backward_warp(image1, f) for name, f in candidates.items()}
    keep = ~occluded & torch.stack([valid[0] for _, valid in warps.values()]).all(0)
    assert 0.8 < keep.float().mean() < 1.0
    errors = {name: photometric_error(warped, image0, keep) for name, (warped, _) in warps.items()}
    assert min(errors, key=errors.get) == "gt", errors
    assert photometric_error(image0, image0) == 0


# --- classical estimation --------------------------------------------------------------------

def test_classical_methods_beat_zero_flow(shared_data):
    folder = shared_data / "flow"
    frame1, frame2 = read_rgb(folder / "00001_img1.ppm"), read_rgb(folder / "00001_img2.ppm")
    gt = read_flo(folder / "00001_flow.flo")
    zero_epe = endpoint_error(np.zeros_like(gt), gt)
    for method in available_methods():
        flow = estimate_flow(frame1, frame2, method=method)
        assert flow.shape == (2, 50, 50) and flow.dtype == np.float32
        assert endpoint_error(flow, gt) < 0.8 * zero_epe, method
        assert angular_error(flow, gt) < angular_error(np.zeros_like(gt), gt), method


def test_tvl1_needs_opencv_contrib():
    frame = np.zeros((32, 32, 3), np.uint8)
    if hasattr(cv2, "optflow"):
        assert estimate_flow(frame, frame, "tvl1").shape == (2, 32, 32)
    else:
        with pytest.raises(ValueError, match="opencv-contrib-python-headless"):
            estimate_flow(frame, frame, "tvl1")


def test_clip_flow_on_a_real_sintel_pair(shared_data):
    folder = shared_data / "flow"
    frames = np.stack([cv2.resize(read_rgb(folder / f"sintel_demo_frame_000{i}.png"), (256, 109),
                                  interpolation=cv2.INTER_AREA) for i in (1, 2)])
    for method in available_methods():
        flows = clip_flow(frames, method=method)
        assert flows.shape == (1, 2, 109, 256) and flows.dtype == np.float32
        # the estimate follows the warping convention: warping frame 2 back explains frame 1
        image1, image2 = to_chw(frames[0]), to_chw(frames[1])
        warped, valid = backward_warp(image2, torch.from_numpy(flows[0]))
        unwarped = photometric_error(image2, image1, valid)
        assert photometric_error(warped, image1, valid) < 0.8 * unwarped, method


def test_flow_of_a_known_shift():
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8), (5, 5), 1.5)
    frame1, frame2 = texture[8:56, 8:72], texture[8:56, 5:69]  # content moves 3 px right
    for method in available_methods():
        flow = estimate_flow(frame1, frame2, method)
        inner = flow[:, 12:-12, 12:-12]
        assert np.abs(np.median(inner[0]) - 3.0) < 0.3 and np.abs(np.median(inner[1])) < 0.3, method


def test_estimator_reused_across_frame_sizes():
    # an OpenCV DIS object reused after another frame size returns different flow: the
    # estimator must give every pair the flow a fresh one would
    rng = np.random.default_rng(1)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (140, 180, 3), dtype=np.uint8), (5, 5), 1.5)
    frame1, frame2 = texture[8:136, 8:168], texture[8:136, 5:165]
    for method in available_methods():
        fresh = flow_estimator(method)(frame1, frame2)
        reused = flow_estimator(method)
        reused(frame1[:32, :32], frame2[:32, :32])
        assert np.array_equal(reused(frame1, frame2), fresh), method


def test_estimation_errors():
    frame = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="unknown flow method 'nope'"):
        estimate_flow(frame, frame, "nope")
    with pytest.raises(ValueError, match="uint8"):
        estimate_flow(frame.astype(np.float32), frame)
    with pytest.raises(ValueError, match="differ in size"):
        estimate_flow(frame, frame[:8])
    with pytest.raises(ValueError, match="T >= 2"):
        clip_flow(frame[None])
