"""The one decode: validate a file's bytes by content, read its EXIF, make its upright preview and thumbnail.

`analyze` and `make_preview` run only in decoder worker processes (`dashboard.decoder_worker`), under the
limits the pool sets; they raise an `IngestError` naming the file and the reason for anything they refuse.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import pillow_heif
from PIL import ExifTags, Image, UnidentifiedImageError

from dashboard.imaging.analysis import Analysis, sha256_of
from dashboard.imaging.errors import (
    CorruptImage,
    EmptyFile,
    IngestError,
    Limits,
    NotAnImage,
    TooLarge,
    TooManyPixels,
    UnsupportedFormat,
)
from dashboard.imaging.exif import exif_fields
from dashboard.imaging.formats import ALLOWED_FORMATS, MIME_BY_FORMAT
from dashboard.imaging.raw import embedded_preview
from dashboard.imaging.raw_walk import sniff_raw
from dashboard.imaging.renditions import UPRIGHT, preview_only, renditions

pillow_heif.register_heif_opener()

_T = TypeVar("_T")


def analyze(
    data: bytes, filename: str, limits: Limits = Limits(), sha256: str | None = None, *, thumb_only: bool = False
) -> Analysis:
    """Validate and decode once: size, format allow-list, pixel cap, EXIF, upright thumb and preview.

    Pass `sha256` when the caller already hashed `data` (it is not checked again). With `thumb_only`, a
    large JPEG is decoded for its thumbnail alone and its `preview_jpeg` is None (`renditions`): the
    caller makes it later with `make_preview`. Everything else about the image is in the analysis.
    """
    return _guarded(data, filename, limits, lambda: _decode(data, filename, limits, sha256, thumb_only))


def make_preview(data: bytes, filename: str, limits: Limits = Limits()) -> bytes:
    """The upright preview JPEG of a file, as `analyze` makes it; refuses what `analyze` refuses."""
    return _guarded(data, filename, limits, lambda: _preview(data, filename, limits))


def _guarded(data: bytes, filename: str, limits: Limits, decode: Callable[[], _T]) -> _T:
    """`decode()` after the checks that need no decoder; what Pillow raises, as the `IngestError` it means."""
    if not data:
        raise EmptyFile(filename, "the file is empty")
    if len(data) > limits.max_bytes:
        raise TooLarge(filename, f"{len(data)} bytes is over the limit of {limits.max_bytes} bytes")
    allow_pixels(limits.max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return decode()
    except IngestError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooManyPixels(filename, f"refused as a decompression bomb ({exc})") from exc
    except UnidentifiedImageError as exc:
        kind = _sniff_other_format(data)
        if kind:
            raise UnsupportedFormat(filename, f"{kind} images are not accepted") from exc
        raise NotAnImage(
            filename, "not an image (content is not JPEG, PNG, WebP, TIFF, HEIC, GIF or a camera RAW)"
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # MemoryError: the worker's limit (`decoders`)
        raise CorruptImage(filename, f"the image is corrupt or truncated ({exc})") from exc


def allow_pixels(max_pixels: int) -> None:
    """Raise Pillow's process-wide bomb cap to our limit, never lower it.

    Lowering it would refuse other Ingestors' images; our own check in `_decode` enforces each
    Ingestor's limit. Called in pool workers too, which may not have inherited the parent's value.
    """
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels


def _open(data: bytes, filename: str, limits: Limits) -> tuple[Image.Image, str, Image.Exif, int]:
    """The opened (not yet decoded) image, its format, EXIF and orientation, once its size is checked."""
    im = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    # Cameras embed previews as an MPF segment, which makes Pillow call the file MPO; it is a JPEG.
    fmt = "JPEG" if im.format == "MPO" else im.format or "UNKNOWN"
    if fmt not in MIME_BY_FORMAT:
        raise UnsupportedFormat(filename, f"{fmt} images are not accepted")
    raw_w, raw_h = im.size
    if raw_w <= 0 or raw_h <= 0:
        raise CorruptImage(filename, "the image has no pixels")
    if raw_w * raw_h > limits.max_pixels:
        raise TooManyPixels(filename, f"{raw_w}x{raw_h} pixels is over the limit of {limits.max_pixels}")
    exif = im.getexif()  # the primary image's, read before any seek to an embedded preview
    orientation = int(exif.get(ExifTags.Base.Orientation, 1) or 1)
    return im, fmt, exif, orientation if orientation in UPRIGHT else 1


def _decode(data: bytes, filename: str, limits: Limits, sha256: str | None, thumb_only: bool = False) -> Analysis:
    if sniff_raw(data) is not None:  # before Pillow, which would open a DNG or NEF as a TIFF
        return _decode_raw(data, filename, limits, sha256)
    im, fmt, exif, orientation = _open(data, filename, limits)
    raw_w, raw_h = im.size
    meta = exif_fields(exif)
    preview_jpeg, thumb_jpeg = renditions(im, data, filename, orientation, thumb_only=thumb_only)
    width, height = (raw_h, raw_w) if orientation in (5, 6, 7, 8) else (raw_w, raw_h)
    return _analysis(data, sha256, fmt, (width, height), meta, preview_jpeg, thumb_jpeg)


def _preview(data: bytes, filename: str, limits: Limits) -> bytes:
    if sniff_raw(data) is not None:
        preview = _decode_raw(data, filename, limits, None).preview_jpeg
        assert preview is not None  # a RAW's preview is its embedded JPEG: always made at once
        return preview
    im, _, _, orientation = _open(data, filename, limits)
    return preview_only(im, data, filename, orientation)


def _decode_raw(data: bytes, filename: str, limits: Limits, sha256: str | None) -> Analysis:
    """A camera RAW by the JPEG it embeds, never developed; its size and EXIF from the RAW itself."""
    raw = embedded_preview(data, filename)
    if raw.width * raw.height > limits.max_pixels:
        raise TooManyPixels(filename, f"{raw.width}x{raw.height} pixels is over the limit of {limits.max_pixels}")
    im = Image.open(io.BytesIO(raw.jpeg), formats=("JPEG",))
    orientation = raw.orientation if raw.orientation in UPRIGHT else 1  # the RAW's, not the preview's EXIF
    meta = exif_fields(raw.to_exif())
    preview_jpeg, thumb_jpeg = renditions(im, raw.jpeg, filename, orientation, keep=raw.jpeg)
    width, height = (raw.height, raw.width) if orientation in (5, 6, 7, 8) else (raw.width, raw.height)
    return _analysis(data, sha256, raw.kind, (width, height), meta, preview_jpeg, thumb_jpeg)


def _analysis(
    data: bytes,
    sha256: str | None,
    fmt: str,
    upright_size: tuple[int, int],
    meta: dict[str, Any],
    preview_jpeg: bytes | None,
    thumb_jpeg: bytes,
) -> Analysis:
    """The `Analysis` of a decoded file; `meta` is `exif_fields`' dict (its named fields are taken out)."""
    width, height = upright_size
    return Analysis(
        sha256=sha256 or sha256_of(data),
        format=fmt,
        width=width,
        height=height,
        captured_at=meta.pop("captured_at", None),
        camera_make=meta.pop("camera_make", None),
        camera_model=meta.pop("camera_model", None),
        exif=meta,
        thumb_jpeg=thumb_jpeg,
        preview_jpeg=preview_jpeg,
    )


def _sniff_other_format(data: bytes) -> str | None:
    """Name a well-known image format Pillow could open but we refuse (for a clearer message)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.format
    except Exception:
        return None
