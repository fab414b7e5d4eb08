"""Video models, built by name: ``create_model("r2plus1d_18", num_classes=101)``."""

from deepvideo.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
