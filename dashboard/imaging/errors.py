"""Why a file is refused (`IngestError` and its kinds), and the limits a decode runs under.

Light: no imaging library is imported, so the watcher, the config and the sync client can use these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
DEFAULT_MAX_PIXELS = 200_000_000
DEFAULT_DECODE_TIMEOUT_S = 60.0  # in seconds: one file's decode in a worker, also its CPU seconds
#: A share link's watermark PNG (dashboard/imaging/watermark.py): its bytes, and its width and height each.
WATERMARK_MAX_PNG_BYTES = 2 * 1024 * 1024
WATERMARK_MAX_SIDE_PX = 4096


class IngestError(ValueError):
    """A file was refused; `reason` is for people, `code` for programs."""

    code = "refused"
    http_status = 422

    def __init__(self, filename: str, reason: str) -> None:
        super().__init__(f"{filename}: {reason}")
        self.filename = filename
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        # Refusals cross the process pool of `ingest_many`; the default pickles only the message.
        return (type(self), (self.filename, self.reason))

    def to_dict(self) -> dict[str, str]:
        return {"filename": self.filename, "code": self.code, "reason": self.reason}


class EmptyFile(IngestError):
    code = "empty"


class TooLarge(IngestError):
    code = "too_large"
    http_status = 413


class NotAnImage(IngestError):
    code = "not_an_image"
    http_status = 415


class UnsupportedFormat(IngestError):
    code = "unsupported_format"
    http_status = 415


class CorruptImage(IngestError):
    code = "corrupt"


class TooManyPixels(IngestError):
    code = "too_many_pixels"
    http_status = 413


class DecoderFailed(IngestError):
    """The decoder process died, overran its time or its memory on this file (`dashboard.decoders`)."""

    code = "decoder_failed"


class ChecksumMismatch(IngestError):
    """The bytes are not the ones the sender hashed (the file changed while it was being sent)."""

    code = "sha256_mismatch"
    http_status = 400


@dataclass(frozen=True)
class Limits:
    """What one decode may take: the file's size, its pixels (before any reduction), its time in a worker."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    decode_timeout_s: float = DEFAULT_DECODE_TIMEOUT_S
