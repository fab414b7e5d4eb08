"""The optional packages of deployment: ``pip install 'deepvideo[deploy]'`` (onnx,
onnxscript for ``torch.onnx``'s exporter, onnxruntime) and ``pip install 'deepvideo[serve]'``
(FastAPI and uvicorn for ``deepvideo serve``)."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["DEPLOY_EXTRA", "SERVE_EXTRA", "require"]

DEPLOY_EXTRA = "pip install 'deepvideo[deploy]'"
SERVE_EXTRA = "pip install 'deepvideo[serve]'"


def require(module: str, feature: str, extra: str = DEPLOY_EXTRA) -> ModuleType:
    """Import ``module`` for ``feature``; an ``ImportError`` naming ``extra`` (the command that
    installs it) when absent."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{feature} needs the {module} package: {extra}") from None
