"""The text side of the video-text dual encoder: CLIP's byte-pair tokenizer and its text
transformer (Radford et al., "Learning Transferable Visual Models From Natural Language
Supervision", ICML 2021), both taken from ``open_clip`` rather than rewritten.

:class:`Tokenizer` wraps ``open_clip``'s ``SimpleTokenizer``, whose BPE vocabulary (49,408
tokens) ships inside the ``open_clip_torch`` wheel: nothing is downloaded.  A caption becomes
``<start_of_text> tokens <end_of_text>`` padded with zeros (or truncated, keeping the end token)
to ``context_length``.

:class:`TextEncoder` is ``open_clip``'s ``TextTransformer``: token and position embeddings, a
causally masked transformer, the features at the end token (the largest token id: CLIP's
"argmax" pooling), a final LayerNorm and a linear projection into the joint space.  Its
``tower`` holds exactly the keys of the text half of an ``open_clip`` CLIP state_dict
(``token_embedding.weight``, ``positional_embedding``, ``transformer.*``, ``ln_final.*``,
``text_projection``), so real CLIP weights load into it unchanged.

``open_clip`` is an optional dependency (``pip install 'deepvideo[language]'``); it is imported
only when a tokenizer or tower is built.
"""

from __future__ import annotations

from types import ModuleType
from typing import Sequence

import torch
import torch.nn as nn

__all__ = ["VOCAB_SIZE", "TextEncoder", "Tokenizer", "require_open_clip"]

VOCAB_SIZE = 49408  # CLIP's BPE vocabulary, special tokens included


def require_open_clip() -> ModuleType:
    """The ``open_clip`` module; ``ImportError`` in one line naming the extra when it is missing."""
    try:
        import open_clip
    except ImportError:
        raise ImportError("video-text models need open_clip: pip install 'deepvideo[language]'") from None
    return open_clip


class Tokenizer:
    """CLIP's BPE tokenizer: ``tokenizer(texts)`` gives ``(N, context_length)`` int64 token ids."""

    def __init__(self, context_length: int = 77) -> None:
        if context_length < 3:
            raise ValueError(f"context_length must be at least 3 (start, a token, end), got {context_length}")
        require_open_clip()
        from open_clip.tokenizer import SimpleTokenizer

        self.context_length = context_length
        self.bpe = SimpleTokenizer(context_length=context_length)

    def __call__(self, texts: str | Sequence[str]) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        for text in texts:
            if not text.strip():
                raise ValueError("an empty text cannot be encoded: give words")
        return self.bpe(texts, context_length=self.context_length).long()


class TextEncoder(nn.Module):
    """CLIP's text transformer: tokens ``(B, L)`` int64 -> embeddings ``(B, embed_dim)``
    (not normalised).  ``L`` must equal ``context_length``."""

    def __init__(self, embed_dim: int, context_length: int = 77, width: int = 512, heads: int = 8,
                 layers: int = 12, mlp_ratio: float = 4.0, vocab_size: int = VOCAB_SIZE,
                 quick_gelu: bool = False) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"text width ({width}) must be a multiple of text heads ({heads})")
        require_open_clip()
        from open_clip.transformer import QuickGELU, TextTransformer

        self.context_length = context_length
        self.tower = TextTransformer(context_length=context_length, vocab_size=vocab_size, width=width,
                                     heads=heads, layers=layers, mlp_ratio=mlp_ratio, output_dim=embed_dim,
                                     act_layer=QuickGELU if quick_gelu else nn.GELU)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.shape[-1] != self.context_length:
            raise ValueError(f"text tokens of length {tokens.shape[-1]}, but the text encoder takes "
                             f"{self.context_length}")
        return self.tower(tokens)
