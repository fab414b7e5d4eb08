"""Run an exported file: ONNX Runtime (CPU) for ``.onnx``, ``torch.export.load`` for ``.pt2``.

A network loaded here is called like the eager model, ``network(clips)`` with clips
``(B, C, T, H, W)`` float32 (one tensor per input) -> logits ``(B, num_classes)`` (a tuple
for a model with several outputs), and carries the file's metadata
(:class:`~deepvideo.deploy.metadata.ExportMetadata`, its ``recipe`` included), so that
:func:`deepvideo.engine.predict.predict_video` runs it exactly as a checkpoint's model.
Clips of a shape the file was not exported for are refused with a one-line ``ValueError``
(an ONNX graph has no shape guards of its own).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import torch

from deepvideo.deploy.metadata import METADATA_FILE, METADATA_KEY, ExportMetadata
from deepvideo.deploy.packages import require
from deepvideo.engine.recipe import Recipe
from deepvideo.registry import Registry

__all__ = ["BACKENDS", "ExportedNetwork", "OnnxRuntimeNetwork", "ProgramNetwork", "load_exported", "load_network"]

# loader(path) -> ExportedNetwork; info: suffix (the file suffix the backend reads)
BACKENDS: Registry[Callable[[Path], "ExportedNetwork"]] = Registry("backend")


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


class ExportedNetwork:
    """An exported file's network and metadata; subclasses run it (:meth:`run`)."""

    def __init__(self, path: Path, metadata: ExportMetadata) -> None:
        self.path, self.metadata = path, metadata

    @property
    def recipe(self) -> Recipe:
        """The training recipe stored in the file (classes, clip length, transform)."""
        return self.metadata.recipe

    def check(self, inputs: tuple[torch.Tensor, ...]) -> None:
        """``ValueError`` naming the file when ``inputs`` do not fit its input shapes
        (fixed sizes, and the range of clip lengths)."""
        if len(inputs) != len(self.metadata.inputs):
            raise ValueError(f"{self.path} takes {len(self.metadata.inputs)} inputs, got {len(inputs)}")
        frames = inputs[0].shape[2] if inputs[0].dim() == 5 else None
        if frames is not None and not self.metadata.accepts(frames):
            raise ValueError(f"{self.path} takes clips of {self.metadata.frames_text()} frames, got {frames}")
        for spec, x in zip(self.metadata.inputs, inputs):
            wanted = tuple(spec.shape)
            fits = x.dim() == len(wanted) and all(isinstance(w, str) or w == n for w, n in zip(wanted, x.shape))
            if not fits:
                raise ValueError(f"{self.path}: input {spec.name} has shape ({', '.join(map(str, wanted))}), "
                                 f"got {tuple(x.shape)}")

    def __call__(self, *inputs: torch.Tensor) -> Any:
        self.check(inputs)
        return self.run(inputs)

    def run(self, inputs: tuple[torch.Tensor, ...]) -> Any:
        raise NotImplementedError


@BACKENDS.register("onnxruntime", suffix=".onnx")
class OnnxRuntimeNetwork(ExportedNetwork):
    """An ONNX file in an ONNX Runtime session on the CPU, with as many intra-op threads as
    torch uses (``torch.get_num_threads()``)."""

    def __init__(self, path: Path) -> None:
        ort = require("onnxruntime", "the onnxruntime backend")
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's errors (InvalidProtobuf, Fail, ...) share no public base
            raise ValueError(f"{path}: not an ONNX model ONNX Runtime can load ({_first_line(exc)})") from None
        text = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        super().__init__(path, ExportMetadata.loads(text, str(path)))
        self.input_names = [node.name for node in self.session.get_inputs()]

    def run(self, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor | tuple[torch.Tensor, ...]:
        feed = {name: x.detach().to("cpu", torch.float32).contiguous().numpy()
                for name, x in zip(self.input_names, inputs)}
        outputs = tuple(torch.from_numpy(out) for out in self.session.run(None, feed))
        return outputs[0] if len(outputs) == 1 else outputs


@BACKENDS.register("exported-program", suffix=".pt2")
class ProgramNetwork(ExportedNetwork):
    """A ``torch.export`` archive, ``torch.export.load(path).module()``, run without gradients."""

    def __init__(self, path: Path) -> None:
        extra = {METADATA_FILE: ""}
        try:
            program = torch.export.load(path, extra_files=extra)
        except Exception as exc:  # zip, pickle and version errors of the archive
            raise ValueError(f"{path}: not a torch.export program ({_first_line(exc)})") from None
        super().__init__(path, ExportMetadata.loads(extra[METADATA_FILE] or None, str(path)))
        self.module = program.module()

    def run(self, inputs: tuple[torch.Tensor, ...]) -> Any:
        with torch.no_grad():
            return self.module(*inputs)


def load_exported(path: str | os.PathLike, backend: str | None = None) -> ExportedNetwork:
    """The network of the exported file ``path``, run by ``backend`` (a name of
    :data:`BACKENDS`; default: the one whose suffix ``path`` has).  ``ValueError`` naming the
    file when it is missing, not of that format, or without (or with another version of)
    the deepvideo metadata; ``ImportError`` naming the extra to install when onnxruntime is
    absent."""
    path = Path(path)
    if backend is None:
        by_suffix = {BACKENDS.info(name)["suffix"]: name for name in BACKENDS}
        if path.suffix not in by_suffix:
            raise ValueError(f"{path}: cannot tell the backend from the suffix (one of "
                             f"{', '.join(by_suffix)}); name it (backend=...)")
        backend = by_suffix[path.suffix]
    loader = BACKENDS.get(backend)
    if not path.is_file():
        raise ValueError(f"{path}: no such exported model file")
    return loader(path)


def load_network(path: str | os.PathLike, backend: str | None = None, device: torch.device | str = "cpu"
                 ) -> tuple[Recipe, Callable[[torch.Tensor], Any]]:
    """The recipe and network of ``path``: a training checkpoint (``backend`` ``"pytorch"``, the
    model on ``device`` in eval mode) or an exported file (a name of :data:`BACKENDS`, CPU).
    ``backend`` ``None`` tells them apart by the suffix (``.onnx``, ``.pt2``: exported; any
    other: a checkpoint).  The network maps clips ``(B, C, T, H, W)`` float32 to logits
    ``(B, num_classes)``, as :func:`deepvideo.engine.predict.predict_video` wants."""
    from deepvideo.engine.recipe import load_trained

    path = Path(path)
    if backend is None:
        by_suffix = {BACKENDS.info(name)["suffix"]: name for name in BACKENDS}
        backend = by_suffix.get(path.suffix, "pytorch")
    if backend == "pytorch":
        return load_trained(path, device=device)
    if torch.device(device).type != "cpu":
        raise ValueError(f"{path}: the {backend} backend runs on the CPU, not {device}")
    network = load_exported(path, backend)
    return network.recipe, network
