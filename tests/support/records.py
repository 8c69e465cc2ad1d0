"""Image records for the store tests: one factory; each module passes what its records have of their own."""

from __future__ import annotations

import hashlib
from typing import Any

from dashboard.events import ImageRecord

# What a Canon EOS R5 writes into its JPEGs (the small default records have no camera).
CANON_R5: dict[str, Any] = {"captured_at": "2024-05-17T14:03:09", "camera_make": "Canon", "camera_model": "EOS R5"}


def image_record(
    n: int, project: str = "alpha", *, id_prefix: str = "img", id_digits: int = 6, content: str | None = None,
    **fields: Any,
) -> ImageRecord:  # fmt: skip
    """Record number `n`: id `img000042`, file `IMG_0042.jpg`, a 60×40 JPEG with no camera; `fields` override any.

    The sha256 is that of `content` (default `bytes {n}`): the same content gives the same sha.
    """
    text = content if content is not None else f"bytes {n}"
    values: dict[str, Any] = {
        "id": f"{id_prefix}{n:0{id_digits}d}", "project": project, "filename": f"IMG_{n:04d}.jpg",
        "sha256": hashlib.sha256(text.encode()).hexdigest(), "size_bytes": 1000 + n, "width": 60, "height": 40,
        "format": "JPEG", "mime": "image/jpeg", "captured_at": "2025-06-14T15:20:01", "camera_make": None,
        "camera_model": None, "created_at": "2025-06-14T15:20:02.000Z",
    }  # fmt: skip
    values.update(fields)
    return ImageRecord(**values)
