"""deepvideo clip train / zeroshot / search on a few generated captioned videos, the checkpoint
round trip, exact resumption after a kill, and the one-line errors for bad input (nothing
written)."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys

import pytest
import torch

from deepvideo.cli import main
from deepvideo.engine.checkpoint import load_checkpoint
from deepvideo.language import (
    CaptionedConfig,
    ClipSpec,
    Tokenizer,
    class_embeddings,
    embed_videos,
    load_clip_checkpoint,
    make_captioned_motion_dataset,
)

from conftest import one_line_error

open_clip = pytest.importorskip("open_clip")

TOWERS = ["--video-opt", 'model_kwargs={"widths": [4, 8]}', "--text-opt", "width=16", "--text-opt", "heads=2",
          "--text-opt", "layers=1", "--text-opt", "context_length=24", "--embed-dim", "16", "--clip-len", "4",
          "--size", "16", "--resize", "16"]


@pytest.fixture(scope="module")
def captioned(tmp_path_factory):
    """16 train, 2 val and 6 test videos of 4 frames, 16 px; the test split holds star+left and star+right."""
    config = CaptionedConfig(train=16, val=2, test=6, holdout=(("star", "left"), ("star", "right")), num_frames=4,
                             size=16)
    return make_captioned_motion_dataset(tmp_path_factory.mktemp("captioned") / "data", config, progress=False)


@pytest.fixture(scope="module")
def trained(captioned, tmp_path_factory):
    out = tmp_path_factory.mktemp("clip") / "run"
    code = main(["clip", "train", "--data", str(captioned), "--captions", str(captioned / "captions" / "train.tsv"),
                 "--out", str(out), *TOWERS, "--epochs", "1", "--batch-size", "4", "--val-fraction", "0.25"])
    assert code == 0
    return out


def test_train_writes_retrieval_metrics_and_a_checkpoint(trained, capsys):
    rows = list(csv.DictReader(open(trained / "metrics.csv")))
    assert len(rows) == 1
    for key in ("val_t2v_r1", "val_t2v_r5", "val_v2t_r1"):
        assert 0 <= float(rows[0][key]) <= 1
    assert float(rows[0]["val_scale"]) == pytest.approx(1 / 0.07, rel=0.05)  # one epoch barely moves it
    state = load_checkpoint(trained / "best.pt", required=("model", "clip", "task"))
    assert len(state["task"]["val_videos"]) == 4  # a quarter of 16, held out by name


def test_checkpoint_round_trip(trained, captioned):
    state = load_checkpoint(trained / "best.pt")
    model, spec = load_clip_checkpoint(trained / "best.pt")
    assert spec == ClipSpec.from_dict(state["clip"]) and spec.embed_dim == 16 and spec.clip_len == 4
    assert state["model"].keys() == model.state_dict().keys()
    assert all(torch.equal(state["model"][key], value) for key, value in model.state_dict().items())
    assert not model.training
    videos = sorted((captioned / "test").rglob("*.mp4"))
    first, _, _ = embed_videos(model, spec, videos)
    again, used, skipped = embed_videos(*load_clip_checkpoint(trained / "best.pt"), videos)
    assert torch.equal(first, again) and used == videos and not skipped
    assert torch.allclose(first.norm(dim=1), torch.ones(len(videos)), atol=1e-5)


def test_zeroshot_prints_the_accuracy_the_embeddings_give(trained, captioned, capsys):
    code = main(["clip", "zeroshot", "--checkpoint", str(trained / "best.pt"), "--data", str(captioned / "test"),
                 "--labels", "moving left, moving right"])
    out = capsys.readouterr().out
    assert code == 0, out
    accuracy = float(re.search(r"zero-shot accuracy (\S+) on 6 videos \(2 classes, chance 0.500\)", out).group(1))
    # the same by hand: each video goes to the closer prompt-ensemble class embedding
    model, spec = load_clip_checkpoint(trained / "best.pt")
    videos = sorted((captioned / "test").rglob("*.mp4"))
    embeddings, used, _ = embed_videos(model, spec, videos)
    classes = class_embeddings(model, Tokenizer(spec.context_length), ["moving left", "moving right"])
    truth = torch.tensor([["left", "right"].index(path.parent.name) for path in used])
    assert accuracy == pytest.approx(float(((embeddings @ classes.T).argmax(1) == truth).float().mean()), abs=1e-3)
    assert "left   " in out and "'moving left'" in out


def test_search_lists_the_best_videos_first(trained, captioned, capsys):
    code = main(["clip", "search", "--checkpoint", str(trained / "best.pt"), "--videos", str(captioned / "test"),
                 "--query", "a shape moving up", "--top", "3"])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    scores = [float(line.split()[1]) for line in lines[:3]]
    assert [line.split()[0] for line in lines[:3]] == ["1", "2", "3"] and scores == sorted(scores, reverse=True)
    assert lines[3] == "top 3 of 6 videos for 'a shape moving up'"


def test_empty_label_list_is_a_one_line_error(trained, captioned, capsys):
    code = main(["clip", "zeroshot", "--checkpoint", str(trained / "best.pt"), "--data", str(captioned / "test"),
                 "--labels", " , "])
    assert code == 2
    one_line_error(capsys.readouterr().err, "--labels: the list is empty", command="clip zeroshot")
    code = main(["clip", "zeroshot", "--checkpoint", str(trained / "best.pt"), "--data", str(captioned / "test"),
                 "--labels", "moving left"])
    assert code == 2
    one_line_error(capsys.readouterr().err, "no label for the class folder 'right'", command="clip zeroshot")


def test_caption_file_naming_missing_videos_is_a_one_line_error(captioned, tmp_path, capsys):
    captions = tmp_path / "captions.tsv"
    lines = (captioned / "captions" / "val.tsv").read_text()
    captions.write_text(lines + "train/up/gone.mp4\ta video that is not there\n")
    out = tmp_path / "run"
    code = main(["clip", "train", "--data", str(captioned), "--captions", str(captions), "--out", str(out), *TOWERS])
    assert code == 2
    one_line_error(capsys.readouterr().err, "captions.tsv: 1 of the 3 videos it names are missing under",
                   "gone.mp4", command="clip train")
    assert not out.exists()  # nothing written


def test_clip_weights_of_another_architecture_is_a_one_line_error(captioned, tmp_path, capsys, monkeypatch):
    import deepvideo.language

    vision = {"layers": 1, "width": 32, "head_width": 16, "patch_size": 8, "image_size": 16}
    text = {"context_length": 24, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1}
    spec = ClipSpec(embed_dim=16, video_encoder="frames", video_options={"patch_size": 8, "width": 32, "layers": 1,
                                                                         "heads": 2, "pooling": "transformer"},
                    text_options={"context_length": 24, "width": 16, "heads": 2, "layers": 1}, clip_len=4, size=16,
                    resize=16)
    monkeypatch.setattr(deepvideo.language, "open_clip_spec", lambda *args: spec)  # a tiny stand-in for ViT-B-32
    weights = tmp_path / "clip.pt"
    torch.save(open_clip.model.CLIP(16, {**vision, "patch_size": 4}, text).state_dict(), weights)
    out = tmp_path / "run"
    code = main(["clip", "train", "--data", str(captioned), "--captions", str(captioned / "captions" / "train.tsv"),
                 "--out", str(out), "--clip-model", "ViT-B-32", "--clip-weights", str(weights)])
    assert code == 2
    one_line_error(capsys.readouterr().err, "clip.pt: key 'visual.positional_embedding' has shape (17, 32) in the "
                   "file but (5, 32) in the model", command="clip train")
    assert not out.exists()
    code = main(["clip", "train", "--data", str(captioned), "--captions", str(captioned / "captions" / "train.tsv"),
                 "--out", str(out), "--clip-weights", str(weights)])
    assert code == 2
    one_line_error(capsys.readouterr().err, "--clip-weights needs --clip-model", command="clip train")


def test_a_killed_run_resumes_to_the_uninterrupted_weights(captioned, tmp_path):
    """3 training steps per epoch (12 of the 16 videos, batch 4); killed after step 4, in epoch 2."""
    args = [sys.executable, "-m", "deepvideo.cli", "clip", "train", "--data", str(captioned), "--captions",
            str(captioned / "captions" / "train.tsv"), *TOWERS, "--epochs", "2", "--batch-size", "4",
            "--val-fraction", "0.25"]
    env = {key: value for key, value in os.environ.items() if key != "DEEPVIDEO_KILL_AT_STEP"}
    env["OMP_NUM_THREADS"] = "1"

    def run(out, *more, **extra):
        return subprocess.run([*args, "--out", str(tmp_path / out), *more], env={**env, **extra},
                              capture_output=True, text=True, timeout=300)

    assert run("full").returncode == 0
    assert run("killed", DEEPVIDEO_KILL_AT_STEP="4").returncode == -signal.SIGKILL
    done = run("killed", "--resume")
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stdout
    reference, resumed = (load_checkpoint(tmp_path / out / "last.pt") for out in ("full", "killed"))
    assert resumed["epoch"] == reference["epoch"] == 2
    for key, value in reference["model"].items():
        torch.testing.assert_close(resumed["model"][key], value, atol=1e-6, rtol=1e-6, msg=key)
