"""--flip-swap: mirrored training clips trade the labels of left/right classes."""

from __future__ import annotations

import pytest
import torch

from deepvideo.cli import main
from deepvideo.data.flipswap import FlipSwap, flip_clip, swap_table
from deepvideo.engine import DataSpec, Recipe, load_checkpoint


def test_swap_table_and_its_errors():
    assert swap_table([("left", "right")], ["down", "left", "right", "up"]) == [0, 2, 1, 3]
    assert swap_table([("left", "right"), ("up", "down")], ["down", "left", "right", "up"]) == [3, 2, 1, 0]
    with pytest.raises(ValueError, match="flip_swap: no class 'lft' .classes: left, right"):
        swap_table([("lft", "right")], ["left", "right"])
    with pytest.raises(ValueError, match="flip_swap: class 'left' is in two pairs"):
        swap_table([("left", "right"), ("left", "up")], ["left", "right", "up"])


def test_flip_clip_mirrors_frames_and_negates_flow_dx():
    rgb = torch.arange(2 * 3 * 1 * 2 * 3, dtype=torch.float32).view(2, 3, 1, 2, 3)  # (K, C, T, H, W)
    assert torch.equal(flip_clip(rgb, "rgb")[..., 0], rgb[..., 2])
    flow = torch.ones(2, 1, 2, 3)
    flow[0, ..., 0] = 5.0
    flipped = flip_clip(flow, "flow")
    assert flipped[0, 0, 0].tolist() == [-1.0, -1.0, -5.0] and flipped[1, 0, 0].tolist() == [1.0, 1.0, 1.0]
    assert flow[0, 0, 0, 0] == 5.0  # the input is left as it was
    pair = flip_clip((rgb[0], flow), "rgb+flow")
    assert torch.equal(pair[0], rgb[0].flip(-1)) and torch.equal(pair[1], flipped)
    with pytest.raises(ValueError, match="rgb or flow clips, got 'features'"):
        flip_clip(rgb, "features")


def test_flipped_training_clips_carry_the_swapped_label(tiny_motion_root):
    recipe = Recipe(model="small3d", classes=[], clip_len=4, size=28, resize=32, flip_swap=[("left", "right")])
    data = DataSpec(root=str(tiny_motion_root))
    swapped = recipe.dataset(data, "train", train=True, seed=3)
    assert isinstance(swapped, FlipSwap) and swapped.classes == ["left", "right"]
    plain = FlipSwap(swapped.dataset, swapped.table, p=0.0, seed=3)  # same clips, never flipped
    flips = 0
    for index in range(len(swapped)):
        clip, label, source = swapped[index]
        unflipped, original, same = plain[index]
        assert source == same
        if torch.equal(clip, unflipped):
            assert label == original
        else:
            flips += 1
            assert torch.equal(clip, unflipped.flip(-1)) and label == 1 - original
    assert 0 < flips < len(swapped)
    swapped.set_epoch(1)
    assert swapped.dataset.epoch == 1  # the wrapped dataset draws the next epoch's clips too
    with pytest.raises(ValueError, match="flip_swap needs flip=True"):
        Recipe(model="small3d", classes=[], flip=False, flip_swap=[("left", "right")])


def test_flip_swap_from_the_cli(tiny_motion_root, tmp_path, capsys):
    common = ["train", "--model", "small3d", "--model-opt", "widths=[4,8]", "--data", str(tiny_motion_root),
              "--epochs", "1", "--clip-len", "4", "--size", "28", "--resize", "32", "--test-clips", "1"]
    assert main([*common, "--out", str(tmp_path / "run"), "--flip-swap", "left:right"]) == 0
    recipe = load_checkpoint(tmp_path / "run" / "last.pt", required=("recipe",))["recipe"]
    assert recipe["flip_swap"] == [["left", "right"]] and recipe["flip"] is True
    capsys.readouterr()
    assert main([*common, "--out", str(tmp_path / "bad"), "--flip-swap", "left:rigth"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--flip-swap: no class 'rigth'" in err
