"""The optional packages of deployment (``pip install 'deepvideo[deploy]'``): onnx,
onnxscript (``torch.onnx``'s exporter) and onnxruntime."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["DEPLOY_EXTRA", "require"]

DEPLOY_EXTRA = "pip install 'deepvideo[deploy]'"


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature``; an ``ImportError`` naming the extra to install when absent."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{feature} needs the {module} package: {DEPLOY_EXTRA}") from None
