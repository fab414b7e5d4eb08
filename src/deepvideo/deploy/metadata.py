"""What an exported model file carries besides the network: the deepvideo metadata.

Every file that ``deepvideo export`` writes holds one JSON document (:func:`dumps`) with the
training recipe (:meth:`~deepvideo.engine.recipe.Recipe.to_dict`: model name and options,
class names, modality, clip length, frame stride, crop size, normalisation mean/std), the
deepvideo version that wrote it, the format version of this document, the network's inputs
and the clip lengths the network accepts.  An ONNX file keeps it in the model's
``metadata_props`` under the key :data:`METADATA_KEY` (the ONNX spec's free-form key/value
metadata); a ``torch.export`` program keeps it as the extra file :data:`METADATA_FILE` of the
``.pt2`` archive (``torch.export.save(..., extra_files=...)``).  The file alone is then
enough to rebuild the test-time input pipeline and run the network
(:func:`deepvideo.deploy.load_exported`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from deepvideo import __version__
from deepvideo.engine.recipe import Recipe

__all__ = ["FORMAT_VERSION", "METADATA_FILE", "METADATA_KEY", "ExportMetadata", "InputSpec"]

# bump when the document below changes incompatibly; readers refuse other versions
FORMAT_VERSION = 1
METADATA_KEY = "deepvideo"
METADATA_FILE = "deepvideo.json"

BATCH, FRAMES = "batch", "frames"


@dataclass(frozen=True)
class InputSpec:
    """One network input: its name and its shape ``(B, C, T, H, W)``, where the batch is the
    string ``"batch"`` and a dynamic clip length the string ``"frames"``."""

    name: str
    shape: tuple[int | str, ...]


@dataclass(frozen=True)
class ExportMetadata:
    """The deepvideo document inside an exported file.

    ``min_frames``/``max_frames``: the clip lengths ``T`` the network accepts (both equal to
    ``recipe.clip_len`` when the frames are fixed; ``max_frames`` is ``None`` when no upper
    limit was found); ``fixed_frames_reason`` says why the frames are fixed (``None`` when
    they are dynamic).
    """

    recipe: Recipe
    inputs: tuple[InputSpec, ...]
    min_frames: int
    max_frames: int | None
    fixed_frames_reason: str | None = None
    deepvideo_version: str = __version__
    format_version: int = FORMAT_VERSION

    @property
    def dynamic_frames(self) -> bool:
        return self.fixed_frames_reason is None

    def accepts(self, frames: int) -> bool:
        """Whether clips of ``frames`` frames are inside the range the network was checked on."""
        return self.min_frames <= frames and (self.max_frames is None or frames <= self.max_frames)

    def frames_text(self) -> str:
        """``"8"`` (fixed), ``"4 to 64"`` or ``"4 or more"``: the accepted clip lengths in words."""
        if not self.dynamic_frames:
            return str(self.recipe.clip_len)
        return f"{self.min_frames} or more" if self.max_frames is None else f"{self.min_frames} to {self.max_frames}"

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": self.format_version, "deepvideo_version": self.deepvideo_version,
                "model": self.recipe.model, "recipe": self.recipe.to_dict(),
                "inputs": [asdict(spec) | {"shape": list(spec.shape)} for spec in self.inputs],
                "dynamic_frames": self.dynamic_frames, "min_frames": self.min_frames,
                "max_frames": self.max_frames, "fixed_frames_reason": self.fixed_frames_reason}

    def dumps(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def loads(cls, text: str | None, where: str) -> ExportMetadata:
        """Parse the document of the file ``where``; ``ValueError`` naming it when the
        document is missing, unreadable or of another format version."""
        if text is None:
            raise ValueError(f"{where}: no deepvideo metadata (not a file written by deepvideo export)")
        try:
            state = json.loads(text)
            version = state["format_version"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{where}: unreadable deepvideo metadata (not a file written by deepvideo export)"
                             ) from None
        if version != FORMAT_VERSION:
            raise ValueError(f"{where}: deepvideo export format version {version} (written by deepvideo "
                             f"{state.get('deepvideo_version', '?')}); this deepvideo {__version__} reads "
                             f"version {FORMAT_VERSION}: export the model again")
        try:
            return cls(recipe=Recipe.from_dict(state["recipe"]),
                       inputs=tuple(InputSpec(spec["name"], tuple(spec["shape"])) for spec in state["inputs"]),
                       min_frames=state["min_frames"], max_frames=state["max_frames"],
                       fixed_frames_reason=state["fixed_frames_reason"],
                       deepvideo_version=state["deepvideo_version"], format_version=version)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{where}: incomplete deepvideo metadata ({type(exc).__name__}: {exc})") from None
