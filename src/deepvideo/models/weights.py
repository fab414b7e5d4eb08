"""Load pretrained weights from a local file into a model, with one-line errors.

Files are plain state_dicts: torchvision ``.pth`` files (read with
``torch.load(weights_only=True)``; a dict nesting the state_dict under ``"state_dict"``
or ``"model"`` is unwrapped) or ``.safetensors`` files.  Nothing is downloaded.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn as nn


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state_dict (``.pth``/``.pt`` or ``.safetensors``) from a local file.

    Raises ``ValueError`` naming the file when it is missing or is not a state_dict.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file is a user error about that file
        raise ValueError(f"weights file {path} cannot be read: {exc}".splitlines()[0]) from exc
    for wrapper in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"weights file {path} does not hold a state_dict of tensors")
    return dict(state)


def load_weights(model: nn.Module, path: str | Path, head: str = "fc",
                 fresh: Sequence[str] = (), ignore: Sequence[str] = ()) -> nn.Module:
    """Load the state_dict in ``path`` into ``model`` (in place) and return the model.

    Keys must match exactly, except that

    * the classifier ``head`` (a module name, e.g. ``"fc"``) is skipped with a warning
      when its shape differs from the checkpoint's (another number of classes): every
      other layer is loaded and the head keeps its fresh initialisation;
    * keys under a prefix in ``fresh`` (modules added to a pretrained architecture, e.g.
      non-local blocks) may be absent from the checkpoint and then keep their own values;
    * keys of the checkpoint under a prefix in ``ignore`` (modules the model leaves out, e.g.
      an image classifier) are not loaded.

    Raises ``ValueError`` naming the file and the first missing, unexpected or
    wrongly shaped key.
    """
    def under(key: str, prefixes: Sequence[str]) -> bool:
        return any(key == p or key.startswith(p + ".") for p in prefixes)

    state = {k: v for k, v in read_state_dict(path).items() if not under(k, ignore)}
    own = model.state_dict()

    for key in own:
        if key not in state and not under(key, fresh):
            raise ValueError(f"weights file {path}: key {key!r} is missing from the checkpoint")
    for key in state:
        if key not in own:
            raise ValueError(f"weights file {path}: unexpected key {key!r} (not in the model)")
    head_keys = [k for k in state if k.startswith(head + ".")]
    if any(state[k].shape != own[k].shape for k in head_keys):
        warnings.warn(f"weights file {path}: head {head!r} has shape "
                      f"{tuple(state[head + '.weight'].shape)} in the checkpoint but "
                      f"{tuple(own[head + '.weight'].shape)} in the model; loaded all but {head!r}",
                      stacklevel=2)
        state = {k: v for k, v in state.items() if k not in head_keys}
    for key, value in state.items():
        if value.shape != own[key].shape:
            raise ValueError(f"weights file {path}: key {key!r} has shape {tuple(value.shape)} "
                             f"in the checkpoint but {tuple(own[key].shape)} in the model")
    model.load_state_dict(state, strict=False)
    return model
