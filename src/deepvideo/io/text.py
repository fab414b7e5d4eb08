"""``read_text``: one reader for the text files users hand in (lists, annotations, splits)."""

from __future__ import annotations

import codecs
import os
from pathlib import Path

__all__ = ["read_text"]


def read_text(path: str | os.PathLike) -> str:
    """The text of ``path`` decoded as UTF-8 (a leading byte-order mark dropped).

    Raises ``ValueError`` naming the file and the first bad byte for text that is not UTF-8
    (Python's own message names neither the file nor the line); ``OSError`` as ``open``.
    """
    data = Path(path).read_bytes()
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = start + exc.start
        line = data[:offset].count(b"\n") + 1
        raise ValueError(f"{path}:{line}: not UTF-8 text (byte 0x{data[offset]:02x} at offset {offset})") from None
