"""deepvideo export and predict --backend: the metadata inside the files, predictions equal
to the checkpoint's on a real video, and one-line errors for every bad input."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import onnx
import pytest
import torch
import torch.nn as nn

from deepvideo.cli import main
from deepvideo.deploy import (
    DEPLOY_EXTRA,
    FIXED_FRAMES,
    FORMAT_VERSION,
    METADATA_KEY,
    export_model,
    export_program,
    load_exported,
    recipe_for_model,
)

from conftest import one_line_error

pytest.importorskip("onnxruntime")

SMALL = ["small3d", "--input", "3x4x16x16", "--num-classes", "3", "--model-opt", "widths=[4,8]"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def checkpoint(small3d_checkpoint):
    return small3d_checkpoint


def test_metadata_is_inside_both_files(checkpoint, tmp_path):
    exported = export_model(checkpoint, tmp_path / "m.onnx")
    exported.save(tmp_path / "m.pt2", "exported-program")
    proto = onnx.load(tmp_path / "m.onnx")
    assert min(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert [d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim[:3]] == ["batch", "", "frames"]
    state = json.loads({p.key: p.value for p in proto.metadata_props}[METADATA_KEY])
    assert state["format_version"] == FORMAT_VERSION and state["model"] == "small3d"
    assert state["recipe"]["classes"] == ["down", "left", "up"] and state["recipe"]["frame_stride"] == 2
    assert state["recipe"]["mean"] == [0.5, 0.4, 0.3] and state["recipe"]["size"] == 32
    assert state["dynamic_frames"] and state["inputs"] == [{"name": "video", "shape": ["batch", 3, "frames", 32, 32]}]
    for name in ("m.onnx", "m.pt2"):
        network = load_exported(tmp_path / name)
        assert network.metadata == exported.metadata and network.recipe.classes == ["down", "left", "up"]
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temporaries left


@pytest.mark.parametrize("backend, suffix, fmt", [("onnxruntime", ".onnx", "onnx"),
                                                  ("exported-program", ".pt2", "exported-program")])
def test_predict_with_an_exported_file_equals_the_checkpoint(capsys, checkpoint, make_video, tmp_path,
                                                             backend, suffix, fmt):
    video = str(make_video("clip.mp4"))  # 24 frames 64 x 64: windows of 4 frames at stride 2
    exported = tmp_path / f"model{suffix}"
    code, out, err = run(capsys, "export", str(checkpoint), "--format", fmt, "--out", str(exported))
    assert code == 0, err
    assert out.startswith(f"{exported}: small3d as {fmt}, input video (batch, 3, frames, 32, 32), frames ")
    code, out, err = run(capsys, "predict", video, "--checkpoint", str(checkpoint), "--top", "3", "--step", "3")
    assert code == 0, err
    eager = json.loads(out)
    code, out, err = run(capsys, "predict", video, "--backend", backend, "--model", str(exported), "--top", "3",
                         "--step", "3", "--batch-size", "3")
    assert code == 0, err
    deployed = json.loads(out)
    assert len(deployed["windows"]) == len(eager["windows"]) >= 6
    for got, want in zip([*deployed["windows"], deployed], [*eager["windows"], eager]):
        assert [t["label"] for t in got["top"]] == [t["label"] for t in want["top"]]
        assert all(abs(g["prob"] - w["prob"]) <= 1e-4 for g, w in zip(got["top"], want["top"]))
    assert {k: v for k, v in deployed.items() if k not in ("windows", "top")} == \
        {k: v for k, v in eager.items() if k not in ("windows", "top")}


def test_fixed_frames_are_reported_and_enforced(capsys, tmp_path):
    out_file = tmp_path / "ef.onnx"
    code, out, err = run(capsys, "export", "early_fusion", "--input", "3x4x16x16", "--model-opt", "widths=[4,8]",
                         "--out", str(out_file))
    assert code == 0, err
    assert "frames fixed at 4 (early_fusion: its first convolution takes" in out
    network = load_exported(out_file)
    assert not network.metadata.dynamic_frames
    assert network(torch.randn(1, 3, 4, 16, 16)).shape == (1, 10)
    with pytest.raises(ValueError, match=r"ef.onnx takes clips of 4 frames, got 6"):
        network(torch.randn(1, 3, 6, 16, 16))
    with pytest.raises(ValueError, match=r"input video has shape \(batch, 3, 4, 16, 16\), got \(1, 3, 4, 8, 8\)"):
        network(torch.randn(1, 3, 4, 8, 8))
    code, _, err = run(capsys, "export", "early_fusion", "--input", "3x4x16x16", "--frames", "dynamic",
                       "--out", str(tmp_path / "x.onnx"))
    assert code == 2
    one_line_error(err, "early_fusion cannot take a dynamic number of frames: its first convolution")
    assert not (tmp_path / "x.onnx").exists()


def test_a_model_that_cannot_be_traced_is_one_value_error(tmp_path):
    class DataDependent(nn.Module):
        """Branches on the values of its input: torch.export cannot capture that."""

        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, video: torch.Tensor) -> torch.Tensor:
            pooled = video.mean(dim=(2, 3, 4))
            return self.fc(pooled) if pooled.sum() > 0 else -self.fc(pooled)

    recipe = recipe_for_model("small3d", (3, 4, 8, 8), num_classes=3)
    with pytest.raises(ValueError, match=r"^small3d cannot be exported: ") as info:
        export_program(recipe, DataDependent())
    assert "\n" not in str(info.value)


def test_files_without_metadata_or_of_another_version(checkpoint, tmp_path):
    exported = export_program(*_load(checkpoint))
    plain = tmp_path / "plain.pt2"
    torch.export.save(exported.program, plain)
    with pytest.raises(ValueError, match=r"plain.pt2: no deepvideo metadata \(not a file written by deepvideo"):
        load_exported(plain)
    path = exported.save(tmp_path / "m.onnx")
    proto = onnx.load(path)
    del proto.metadata_props[:]
    onnx.save(proto, tmp_path / "bare.onnx")
    with pytest.raises(ValueError, match=r"bare.onnx: no deepvideo metadata"):
        load_exported(tmp_path / "bare.onnx")
    proto = onnx.load(path)
    entry = next(p for p in proto.metadata_props if p.key == METADATA_KEY)
    entry.value = json.dumps(json.loads(entry.value) | {"format_version": 99, "deepvideo_version": "9.0"})
    onnx.save(proto, tmp_path / "future.onnx")
    with pytest.raises(ValueError, match=rf"future.onnx: deepvideo export format version 99 \(written by deepvideo "
                                         rf"9.0\); this deepvideo .* reads version {FORMAT_VERSION}"):
        load_exported(tmp_path / "future.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"junk.onnx: not an ONNX model"):
        load_exported(tmp_path / "junk.onnx")
    (tmp_path / "junk.pt2").write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"junk.pt2: not a torch.export program"):
        load_exported(tmp_path / "junk.pt2")


def _load(checkpoint):
    from deepvideo.engine.recipe import load_trained

    return load_trained(checkpoint)


def test_cli_errors_are_one_line(capsys, checkpoint, tmp_path, make_video):
    video = str(make_video("clip.mp4"))
    cases = [
        (["export", str(tmp_path / "missing" / "best.pt"), "--out", str(tmp_path / "m.onnx")],
         ["missing/best.pt: no such checkpoint file"]),
        (["export", "small_3d", "--out", str(tmp_path / "m.onnx")],
         ["unknown model 'small_3d'; did you mean small3d?"]),
        (["export", "small3d", "--out", str(tmp_path / "m.onnx")], ["--input: exporting a fresh small3d needs"]),
        (["export", "small3d", "--input", "3x4x16x12", "--out", str(tmp_path / "m.onnx")],
         ["--input: height and width must be equal"]),
        (["export", *SMALL, "--opset", "13", "--out", str(tmp_path / "m.onnx")], ["--opset must be at least 17"]),
        (["export", str(checkpoint), "--input", "3x4x16x16", "--out", str(tmp_path / "m.onnx")],
         ["--input and --model-opt are for a model name"]),
        (["predict", video, "--backend", "onnxruntime", "--checkpoint", str(checkpoint)], ["--model FILE"]),
        (["predict", video], ["--backend pytorch runs a --checkpoint"]),
        (["predict", video, "--backend", "onnxruntime", "--model", str(checkpoint)], ["best.pt: not an ONNX model"]),
    ]
    for argv, fragments in cases:
        code, _, err = run(capsys, *argv)
        assert code == 2, argv
        one_line_error(err, *fragments, command=argv[0])
    assert not (tmp_path / "m.onnx").exists()


def test_missing_packages_name_the_extra(capsys, monkeypatch, checkpoint, tmp_path, make_video):
    video = str(make_video("clip.mp4"))
    code, _, err = run(capsys, "export", *SMALL, "--out", str(tmp_path / "m.onnx"))
    assert code == 0, err
    for module in ("onnxruntime", "onnxscript"):
        monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
    code, _, err = run(capsys, "predict", video, "--backend", "onnxruntime", "--model", str(tmp_path / "m.onnx"))
    assert code == 2
    one_line_error(err, "the onnxruntime backend needs the onnxruntime package", DEPLOY_EXTRA, command="predict")
    code, _, err = run(capsys, "export", *SMALL, "--out", str(tmp_path / "n.onnx"))
    assert code == 2
    one_line_error(err, "ONNX export needs the onnxscript package", DEPLOY_EXTRA, command="export")


def test_docs_table_of_fixed_frames_is_the_library_s():
    page = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()
    rows = re.findall(r"^\| (\w+) \| (.+) \|$", page, flags=re.M)
    assert dict(rows[1:]) == FIXED_FRAMES  # rows[0] is the header
