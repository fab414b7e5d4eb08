"""deepvideo detect run: features computed on the fly from the video equal the cached ones the
detector was trained on, the same segments come out, and a mismatched backbone is refused."""

from __future__ import annotations

import json

import numpy as np
import torch

from deepvideo.cli import main
from deepvideo.detect import Segment, VideoAnnotation, write_activitynet
from deepvideo.detect.apply import segments_to_csv
from deepvideo.detect.train import Timeline, detect_features, load_detector
from deepvideo.engine.checkpoint import save_checkpoint
from deepvideo.engine.features import build_backbone, extract_features
from deepvideo.engine.recipe import Recipe
from deepvideo.io import VideoReader

from conftest import moving_square_frames, one_line_error


def test_run_on_a_video_equals_the_detector_on_its_cached_features(capsys, make_video, tmp_path):
    torch.manual_seed(0)
    recipe = Recipe(model="small3d", classes=["a", "b"], model_kwargs={"widths": [4, 8]}, clip_len=4, size=32,
                    resize=32)
    backbone_file = save_checkpoint(tmp_path / "backbone.pt", {"model": recipe.build_model().state_dict(),
                                                               "recipe": recipe.to_dict()})
    videos = [make_video(f"v{i}.mp4", moving_square_frames(num_frames=40, seed=i), fps=10) for i in range(3)]
    extract_features(videos, tmp_path / "features", build_backbone(str(backbone_file)), every=2, progress=False)
    annotations = {f"v{i}": VideoAnnotation(f"v{i}", 4.0, subset, [Segment(1.0, 2.5, "a"), Segment(2.5, 3.6, "b")])
                   for i, subset in enumerate(["training", "training", "validation"])}
    write_activitynet(tmp_path / "anno.json", annotations)
    assert main(["detect", "train", "--features", str(tmp_path / "features"), "--annotations",
                 str(tmp_path / "anno.json"), "--model", "rnn", "--model-opt", "hidden=8", "--epochs", "1",
                 "--steps", "16", "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    checkpoint = tmp_path / "run" / "best.pt"
    out_video = tmp_path / "labelled.mp4"
    assert main(["detect", "run", str(videos[2]), "--checkpoint", str(checkpoint), "--backbone", str(backbone_file),
                 "--every", "2", "--min-score", "0", "--video-out", str(out_video)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["video"] == str(videos[2]) and result["duration"] == 4.0
    model, info = load_detector(checkpoint)
    cached = np.load(tmp_path / "features" / "v2.npz")
    expected = detect_features(model, cached["features"].astype(np.float32), Timeline.of(cached["times"]),
                               info["classes"])
    assert [(s["label"], s["segment"]) for s in result["segments"]] == \
        [(s.label, [round(s.start, 3), round(s.end, 3)]) for s in expected]  # float16 cache: same segments
    with VideoReader(out_video) as reader:
        assert reader.num_frames == 40
    csv_text = segments_to_csv(result["segments"])
    assert csv_text.splitlines()[0] == "start,end,label,score" and len(csv_text.splitlines()) == len(expected) + 1
    code = main(["detect", "run", str(videos[2]), "--checkpoint", str(checkpoint), "--backbone", str(backbone_file)])
    assert code == 2
    one_line_error(capsys.readouterr().err, "trained on features of", "a clip every 2 frames", command="detect run")
