"""What decoding one image yields (`Analysis`), and the content hash that names its bytes.

Light: the decoder pool and the ingest door handle analyses without importing an imaging library.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Analysis:
    """What decoding one image yields; computed in a worker, stored by the parent.

    `preview_jpeg` is None when the preview is made after the image is published (`analyze(thumb_only=True)`).
    """

    sha256: str
    format: str
    width: int
    height: int
    captured_at: str | None
    camera_make: str | None
    camera_model: str | None
    exif: dict[str, Any]
    thumb_jpeg: bytes
    preview_jpeg: bytes | None


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
