"""Two-stream networks trained jointly: aligned (rgb, flow) pairs, joint loss, fused evaluation."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deepvideo.cli import main
from deepvideo.data.datasets import BadVideoWarning
from deepvideo.engine import DataSpec, Recipe, TrainConfig, evaluate, load_checkpoint, train
from deepvideo.engine.recipe import load_trained
from deepvideo.flow import flow_target, load_flow, make_estimator
from deepvideo.flow.dataset import RGBFlowReader
from deepvideo.io import VideoDecodeError, read_video
from deepvideo.models.two_stream import TwoStream, TwoStreamOutput

from conftest import locate_crop

TINY = {"widths": [4, 8]}


def pair_recipe(flip: bool = False, classes: tuple[str, ...] = ()) -> Recipe:
    """clip_len 3 at stride 2 (a span of 5 of the 7 flow fields), 24 px crops, RGB in [0, 1]."""
    return Recipe(model="two_stream", classes=list(classes), model_kwargs={"flow_frames": 3, **TINY}, clip_len=3,
                  frame_stride=2, size=24, resize=32, flip=flip, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                  modality="rgb+flow", flow_scale=2.0)


def reference_flow(fields: np.ndarray, top: int, left: int, mirrored: bool, scale: float) -> np.ndarray:
    """What the pipeline should make of fields ``(L, H, W, 2)``: the crop, mirrored with dx
    negated, each field's mean removed, divided by ``scale``; ``(L, 24, 24, 2)``."""
    crop = fields[:, top:top + 24, left:left + 24]
    if mirrored:
        crop = crop[:, :, ::-1] * np.array([-1.0, 1.0], np.float32)
    return (crop - crop.mean(axis=(1, 2), keepdims=True)) / scale


@pytest.mark.parametrize("source", ["cache", "on the fly"])
def test_pairs_are_aligned_in_time_and_share_crop_and_flip(tiny_motion_root, tiny_flow_cache, source):
    recipe = pair_recipe(flip=True)
    data = DataSpec(root=str(tiny_motion_root), flow_dir=str(tiny_flow_cache) if source == "cache" else None,
                    flow_method="dis")
    dataset = recipe.dataset(data, "train", train=True)
    estimate = make_estimator("dis")
    starts, flips = set(), set()
    for i in range(len(dataset)):
        (rgb, flow), label, index = dataset[i]
        assert rgb.shape == (3, 3, 24, 24) and flow.shape == (2, 3, 24, 24) and index == i
        frames = read_video(dataset.paths[i])                          # (8, 32, 32, 3): 7 flow fields
        clip = (rgb * 255).round().to(torch.uint8).permute(1, 2, 3, 0).numpy()
        where = [locate_crop(view, frames) for view in clip]
        indices = [w[0] for w in where]
        start, top, left, mirrored = where[0]
        assert indices == [start, start + 2, start + 4] and start + 4 <= 6  # room for the last field
        assert all(w[1:] == (top, left, mirrored) for w in where)      # one crop and flip per clip
        if source == "cache":
            fields = load_flow(flow_target(dataset.paths[i], tiny_flow_cache, tiny_motion_root), indices)
            fields = fields.transpose(0, 2, 3, 1)
        else:                                                          # field j: frame j -> j + 1
            fields = np.stack([estimate(frames[j], frames[j + 1]).transpose(1, 2, 0) for j in indices])
        np.testing.assert_allclose(flow.permute(1, 2, 3, 0).numpy(),
                                   reference_flow(fields, top, left, mirrored, recipe.flow_scale), atol=1e-5)
        starts.add(start)
        flips.add(mirrored)
    assert starts == {0, 1, 2} and flips == {False, True}


def test_multi_clip_evaluation_fuses_each_clips_probabilities(tiny_motion_root, tiny_flow_cache):
    recipe = pair_recipe(classes=["left", "right"])
    data = DataSpec(root=str(tiny_motion_root), flow_dir=str(tiny_flow_cache))
    dataset = recipe.dataset(data, "val", train=False, num_clips=3)
    (rgb, flow), _, _ = dataset[0]
    assert rgb.shape == (3, 3, 3, 24, 24) and flow.shape == (3, 2, 3, 24, 24)
    torch.manual_seed(0)
    model = recipe.build_model().eval()
    metrics = evaluate(model, dataset, batch_size=3)
    assert metrics["num_videos"] == 4 and metrics["num_clips"] == 12
    loss, correct = 0.0, {"spatial": 0, "temporal": 0}
    with torch.no_grad():
        for row, i in enumerate(metrics["video_indices"]):
            (rgb, flow), label, _ = dataset[i]
            out = model(rgb, flow)                                     # the K clips as a batch
            labels = torch.full((3,), label)
            np.testing.assert_allclose(metrics["video_probs"][row], out.log_probs.exp().mean(0).numpy(), atol=1e-6)
            loss += (F.cross_entropy(out.spatial, labels, reduction="sum")
                     + F.cross_entropy(out.temporal, labels, reduction="sum")).item()
            for stream in correct:
                correct[stream] += int((getattr(out, stream).argmax(1) == labels).sum())
    assert metrics["loss"] == pytest.approx(loss / 12, rel=1e-5)
    assert metrics["spatial_clip_acc"] == correct["spatial"] / 12
    assert metrics["temporal_clip_acc"] == correct["temporal"] / 12
    assert {"spatial_video_acc1", "temporal_video_acc1"} <= set(metrics)
    for options, atol in (({"channels_last": True}, 1e-6), ({"amp": "bf16"}, 0.05)):  # both tensors moved
        again = evaluate(model, dataset, batch_size=2, **options)
        np.testing.assert_allclose(again["video_probs"], metrics["video_probs"], atol=atol)


def test_joint_training_then_eval_through_the_cli(capsys, tiny_motion_root, tiny_flow_cache, tmp_path):
    run = tmp_path / "run"
    common = ["--data", str(tiny_motion_root), "--clip-len", "4", "--size", "24", "--resize", "32",
              "--no-flip", "--flow-scale", "1", "--test-clips", "2", "--batch-size", "4"]
    code = main(["train", "--model", "two_stream", "--modality", "rgb+flow", "--flow-dir", str(tiny_flow_cache),
                 "--model-opt", "widths=[8,16]", "--epochs", "5", "--lr", "1e-2", "--warmup-epochs", "0",
                 "--weight-decay", "0", "--out", str(run), *common])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "best validation video accuracy" in out
    history = load_checkpoint(run / "last.pt")["history"]
    losses = [row["train_loss"] for row in history]
    assert losses[-1] < 0.85 * losses[0]                               # the sum of both streams' losses
    assert {"val_spatial_acc", "val_temporal_acc"} <= set(history[0])
    recipe, model = load_trained(run / "best.pt")                      # the recipe rebuilds model and data
    assert recipe.modality == "rgb+flow" and isinstance(model, TwoStream)
    assert recipe.model_kwargs["flow_frames"] == 4                     # the stack is --clip-len fields
    for flow in (["--flow-dir", str(tiny_flow_cache)], ["--flow-method", "dis"]):   # cache, on the fly
        code = main(["eval", "--checkpoint", str(run / "best.pt"), "--data", str(tiny_motion_root), *flow, "--json"])
        out, err = capsys.readouterr()
        assert code == 0, err
        report = json.loads(out)
        assert report["num_videos"] == 6 and report["num_clips"] == 12
        assert report["temporal_video_acc1"] >= 5 / 6                 # left vs right is all motion
        assert {"video_acc1", "spatial_clip_acc", "spatial_video_acc1", "temporal_clip_acc"} <= set(report)
    code = main(["eval", "--checkpoint", str(run / "best.pt"), "--data", str(tiny_motion_root),
                 "--flow-dir", str(tiny_flow_cache)])
    out, _ = capsys.readouterr()
    assert code == 0 and "temporal_video_acc1" in out and "clip_acc" in out
    video = tiny_motion_root / "test" / "left" / "left_0.mp4"
    code = main(["predict", str(video), "--checkpoint", str(run / "best.pt")])
    _, err = capsys.readouterr()
    assert code == 2 and len(err.strip().splitlines()) == 1 and "rgb+flow" in err and "deepvideo eval" in err


def test_missing_flow_cache_file_is_skipped_and_counted(tiny_motion_root, tiny_flow_cache, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(tiny_flow_cache, partial)
    missing = tiny_motion_root / "train" / "right" / "right_2.mp4"
    flow_target(missing, partial, tiny_motion_root).unlink()
    data = DataSpec(root=str(tiny_motion_root), flow_dir=str(partial))
    config = TrainConfig(epochs=1, batch_size=4, workers=1, progress=False)   # found in a worker process
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable videos .*right_2\.mp4"):
        result = train(pair_recipe(), data, config, tmp_path / "run")
    assert result["history"][0]["bad_videos"] == 1
    assert load_checkpoint(tmp_path / "run" / "last.pt")["bad_samples"] == [8]   # right_2, sorted
    # a stale cache (another frame count than the video) is a bad video too, naming both files
    stale = flow_target(missing, partial, tiny_motion_root)
    with np.load(flow_target(missing, tiny_flow_cache, tiny_motion_root)) as archive:
        members = {name: archive[name] for name in archive.files if name != "00006"}  # drop the last field
    np.savez_compressed(stale, **members)
    with pytest.raises(VideoDecodeError, match=r"right_2.mp4: flow cache .* has 6 fields for 8 frames"):
        RGBFlowReader(missing, cache=stale)
    dataset = pair_recipe(classes=["left", "right"]).dataset(data, "train", train=True)
    with pytest.warns(BadVideoWarning, match="re-run deepvideo flow-extract"):
        items = [dataset[i] for i in range(len(dataset))]
    assert dataset.bad_videos() == [missing]
    assert [index for *_, index in items].count(8) == 0 and len(items) == len(dataset)


@pytest.mark.parametrize("argv, fragments", [
    (["--model", "two_stream"], ["--model two_stream takes (rgb, flow) pairs", "use modality rgb+flow"]),
    (["--model", "small3d", "--modality", "rgb+flow"], ["--modality rgb+flow needs", "two_stream, two_stream_i3d",
                                                        "model small3d takes one clip"]),
    (["--model", "two_stream", "--modality", "rgb+flow", "--model-opt", "flow_frames=5", "--clip-len", "4"],
     ["flow_frames=5", "--clip-len 4"]),
])
def test_bad_model_and_modality_combinations_are_one_line_errors(capsys, tiny_motion_root, tmp_path, argv,
                                                                  fragments):
    code = main(["train", *argv, "--data", str(tiny_motion_root), "--out", str(tmp_path / "run")])
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err
    assert all(fragment in lines[0] for fragment in fragments), lines[0]
    assert not (tmp_path / "run").exists()                             # failed before any work


class _FixedLogits(torch.nn.Module):
    """Logits ``(B, 2)`` of ``[0, 1e-8]`` for every clip (for two inputs: both streams', with
    fused probabilities (0.4, 0.6)): class 1 wins by less than float32 resolves after softmax
    (``exp(-1e-8) == 1``), so the softmax ties."""

    def forward(self, *inputs: torch.Tensor):
        logits = torch.tensor([[0.0, 1e-8]]).expand(len(inputs[0]), 2)
        if len(inputs) == 1:
            return logits
        return TwoStreamOutput(logits, logits, torch.tensor([[0.4, 0.6]]).log().expand(len(inputs[0]), 2))


@pytest.mark.parametrize("pair", [False, True])
def test_clip_accuracy_is_the_argmax_of_the_scores_not_of_rounded_softmax(pair):
    # clip accuracy counts logits' (or fused log-probabilities') argmax, as training does
    clips = [((torch.zeros(3, 2, 4, 4), torch.zeros(2, 2, 4, 4)) if pair else torch.zeros(3, 2, 4, 4), 1, i)
             for i in range(3)]
    model = _FixedLogits()
    assert (model(torch.zeros(1)).argmax(1) == 1).all()
    metrics = evaluate(model, clips, batch_size=2)
    assert metrics["clip_acc"] == 1.0 and metrics["num_clips"] == 3
    if pair:
        assert metrics["spatial_clip_acc"] == metrics["temporal_clip_acc"] == 1.0
