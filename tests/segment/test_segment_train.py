"""Training a segmenter through the engine: a tiny U-Net overfits two sequences, a run resumes
exactly, the CLI goes synth -> train -> eval -> run, and bad DAVIS input is one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from deepvideo.cli import main
from deepvideo.data.synthetic import SceneConfig
from deepvideo.engine import TrainConfig, load_checkpoint
from deepvideo.io import VideoReader
from deepvideo.segment import make_segment_dataset, read_masks, read_sequence, segment_scene, write_masks
from deepvideo.segment.train import SegmentClips, SegmentTask, evaluate_masks, load_davis, segmenter, train_segmenter

from conftest import one_line_error

TINY = SceneConfig(size=32, num_frames=8, objects=(1, 2), object_size=(0.4, 0.5), speed=(0.05, 0.06), camera=0.015)
FAST = TrainConfig(epochs=1, batch_size=2, lr=5e-3, warmup_epochs=0.0, progress=False)


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    return make_segment_dataset(tmp_path_factory.mktemp("seg") / "set", TINY, train=2, val=1, seed=0, progress=False)


def test_training_clips_are_seeded_and_flip_the_flow():
    frames, masks = segment_scene(TINY, "train", 0)
    flows = np.random.default_rng(0).standard_normal((8, 2, 32, 32)).astype(np.float32)
    clips = SegmentClips([(frames, masks, flows)], clip_len=4, clips_per_sequence=3, seed=1)
    clip, target = clips[2]
    assert clip.shape == (5, 4, 32, 32) and target.shape == (4, 32, 32) and len(clips) == 3
    assert np.array_equal(clips[2][0], clip)
    holding = [i for i in range(3) for e in range(4) if (clips.set_epoch(e) or True)
               and not np.isin(clips[i][1].numpy(), 0).all()]  # draws that hold the moving object
    assert holding
    seen = set()
    for epoch in range(6):  # a flipped clip negates the flow's dx and mirrors the masks
        clips.set_epoch(epoch)
        clip, target = clips[0]
        start = next(s for s in range(5) if np.array_equal(target.numpy(), masks[s:s + 4])
                     or np.array_equal(target.numpy(), masks[s:s + 4, :, ::-1]))
        mirrored = not np.array_equal(target.numpy(), masks[start:start + 4])
        expected = flows[start:start + 4, 0, :, ::-1] * -1 if mirrored else flows[start:start + 4, 0]
        assert np.allclose(clip[3].numpy(), expected)
        seen.add(mirrored)
    assert seen == {True, False}  # both kinds were drawn over the six epochs


def test_a_tiny_unet_overfits_two_sequences(tmp_path):
    root = make_segment_dataset(tmp_path / "set", replace(TINY, num_frames=4), train=2, val=0, progress=False)
    config = replace(FAST, epochs=10, lr=1e-2)
    result = train_segmenter(tmp_path / "run", root, "unet_transformer", config, clip_len=4, clips_per_sequence=8,
                             model_options={"width": 8, "depth": 2}, val_subset="")
    train = load_davis(root, "train")
    scores, predictions = evaluate_masks(train, segmenter(result["checkpoint"]))
    table = scores.global_table()
    assert table["J&F-Mean"] > 0.8 and table["J-Mean"] > 0.7, table  # measured 0.896 and 0.801
    assert set(predictions) == {"train_0000", "train_0001"} and predictions["train_0000"].shape == (4, 32, 32)


RESUMABLE = """
import sys
from deepvideo.engine import TrainConfig, load_checkpoint
from deepvideo.segment.train import train_segmenter
train_segmenter(sys.argv[1], sys.argv[2], "unet", TrainConfig(epochs=2, batch_size=2, progress=False),
                resume=sys.argv[3] == "resume", clip_len=4, clips_per_sequence=2,
                model_options={"width": 4, "depth": 2})
"""


def test_a_killed_run_resumes_to_the_uninterrupted_weights(tiny_set, tmp_path):
    def run(out, kill_at=None, resume=False):
        env = {key: value for key, value in os.environ.items() if key != "DEEPVIDEO_KILL_AT_STEP"}
        env.update(OMP_NUM_THREADS="1", **({"DEEPVIDEO_KILL_AT_STEP": str(kill_at)} if kill_at else {}))
        return subprocess.run([sys.executable, "-c", RESUMABLE, str(tmp_path / out), str(tiny_set),
                               "resume" if resume else "new"], env=env, capture_output=True, text=True)

    assert run("whole").returncode == 0
    assert run("killed", kill_at=3).returncode == -signal.SIGKILL  # 2 steps per epoch: killed in the second
    assert load_checkpoint(tmp_path / "killed" / "last.pt", required=("epoch",))["epoch"] == 1
    resumed = run("killed", resume=True)
    assert resumed.returncode == 0, resumed.stderr
    reference, weights = (load_checkpoint(tmp_path / out / "last.pt") for out in ("whole", "killed"))
    assert weights["epoch"] == reference["epoch"] == 2
    for key, value in reference["model"].items():
        torch.testing.assert_close(weights["model"][key], value, atol=1e-6, rtol=1e-6, msg=key)
    assert weights["segmenter"] == reference["segmenter"]


def test_cli_synth_train_eval_run(capsys, tmp_path, make_video):
    root = tmp_path / "set"
    assert main(["segment", "synth", "--out", str(root), "--train", "2", "--val", "1", "--test", "0",
                 "--frames", "8", "--size", "32"]) == 0
    assert "2 train, 1 val, 0 test sequences of 8 frames at 32 px" in capsys.readouterr().out
    run = tmp_path / "run"
    assert main(["segment", "train", "--data", str(root), "--model", "unet", "--model-opt", "width=4",
                 "--model-opt", "depth=2", "--clip-len", "4", "--flow", "--epochs", "1", "--batch-size", "2",
                 "--out", str(run)]) == 0, capsys.readouterr().err
    assert "best val_jf" in capsys.readouterr().out
    assert main(["segment", "eval", "--checkpoint", str(run / "best.pt"), "--data", str(root), "--json",
                 "--out", str(tmp_path / "pred")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["sequences"]) == ["val_0000"] and 0 <= report["global"]["J&F-Mean"] <= 1
    assert read_masks(tmp_path / "pred" / "val_0000").shape == (8, 32, 32)
    assert main(["segment", "eval", "--checkpoint", "flow", "--data", str(root), "--subset", "train"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "train: 2 sequences (2 with a moving object in the first frame, scored)"
    assert lines[1].split() == ["sequence", "J-Mean", "F-Mean", "J&F-Mean"] and lines[-1].startswith("overall")
    frames, _ = segment_scene(TINY, "val", 0)
    video = make_video("clip.mp4", frames, fps=8)
    for source in (str(run / "best.pt"), "flow"):
        out = tmp_path / f"masks_{source[-4:]}"
        assert main(["segment", "run", str(video), "--checkpoint", source, "--out", str(out),
                     "--video-out", str(tmp_path / "overlay.mp4")]) == 0
        assert "8 masks" in capsys.readouterr().out
        assert sorted(p.name for p in out.iterdir())[:2] == ["00000.png", "00001.png"]
        with Image.open(out / "00000.png") as image:
            assert image.mode == "P" and image.size == (32, 32)
        with VideoReader(tmp_path / "overlay.mp4") as reader:
            assert reader.num_frames == 8
    with pytest.raises(SystemExit):
        main(["segment", "eval", "--checkpoint", str(tmp_path / "nope.pt"), "--data", str(root)])
    assert "nope.pt: no such file" in capsys.readouterr().err


def test_bad_davis_input_is_one_line(capsys, tmp_path):
    root = make_segment_dataset(tmp_path / "set", TINY, train=1, val=1, seed=0, progress=False)
    annotations = root / "Annotations" / "480p" / "val_0000"
    write_masks(annotations, np.zeros((8, 16, 16), np.uint8))  # masks of another size than their frames
    assert main(["segment", "eval", "--checkpoint", "flow", "--data", str(root)]) == 2
    one_line_error(capsys.readouterr().err, "00000.png: mask is 16x16", "is 32x32", command="segment eval")
    colours = np.zeros((32, 32, 3), np.uint8)
    colours[3, 3] = (1, 2, 3)
    Image.fromarray(colours).save(annotations / "00000.png")  # an RGB mask with a colour not in the palette
    assert main(["segment", "eval", "--checkpoint", "flow", "--data", str(root)]) == 2
    one_line_error(capsys.readouterr().err, "00000.png: colour (1, 2, 3) is not in the DAVIS palette")
    write_masks(annotations, read_sequence(root, "train_0000").masks)
    (root / "JPEGImages" / "480p" / "val_0000" / "00007.jpg").unlink()  # a mask without its frame: skipped
    with pytest.warns(UserWarning, match="skipped 1 masks without a frame"):
        assert len(load_davis(root, "val")["val_0000"][0]) == 7
    (annotations / "00003.png").unlink()  # a frame without its mask: the sequence is left out, named
    with pytest.warns(UserWarning, match=r"skipped 1 val sequences not annotated on every frame \(first: val_0000 "
                                         r"\(6 of 7 frames\)\)"):
        assert load_davis(root, "val") == {}
    with pytest.warns(UserWarning, match="not annotated on every frame"):  # no usable training sequence: named
        with pytest.raises(ValueError, match="no val sequence annotated on every frame"):
            SegmentTask(root, train_subset="val", val_subset=None)
    assert main(["segment", "train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "run")]) == 2
    one_line_error(capsys.readouterr().err, "ImageSets/2017/train.txt: no such DAVIS image set")
    assert main(["segment", "train", "--data", str(root), "--clip-len", "9", "--out", str(tmp_path / "run")]) == 2
    one_line_error(capsys.readouterr().err, "no train sequence of at least 9 frames", lines_above=True)
