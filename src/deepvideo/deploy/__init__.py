"""Deployment: export a trained model to ONNX or a ``torch.export`` program with its recipe
inside (:mod:`deepvideo.deploy.export`), and run such a file with ONNX Runtime or
``torch.export.load`` (:mod:`deepvideo.deploy.runtime`)."""

from deepvideo.deploy.export import (
    DEFAULT_OPSET,
    EXPORT_FORMATS,
    FIXED_FRAMES,
    Exported,
    export_model,
    export_program,
    input_shapes,
    load_source,
    recipe_for_model,
)
from deepvideo.deploy.metadata import FORMAT_VERSION, METADATA_FILE, METADATA_KEY, ExportMetadata, InputSpec
from deepvideo.deploy.packages import DEPLOY_EXTRA, SERVE_EXTRA
from deepvideo.deploy.runtime import BACKENDS, ExportedNetwork, load_exported, load_network

__all__ = ["BACKENDS", "DEFAULT_OPSET", "DEPLOY_EXTRA", "EXPORT_FORMATS", "FIXED_FRAMES", "FORMAT_VERSION",
           "METADATA_FILE", "METADATA_KEY", "SERVE_EXTRA", "ExportMetadata", "Exported", "ExportedNetwork", "InputSpec",
           "export_model", "export_program", "input_shapes", "load_exported", "load_network", "load_source",
           "recipe_for_model"]
