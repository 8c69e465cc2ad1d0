"""The one door every image comes through: validate, hash, decode once, thumbnail, EXIF, store.

Watcher, web upload, API upload, CLI and sync client all call `Ingestor.ingest`. It decides by
content (never by name or Content-Type), refuses bad input with a typed `IngestError` naming the
file and the reason, and publishes to the bus only after the files and the row are committed.
`analyze` (the decode) runs only in decoder worker processes (`dashboard.decoders`); blobs and
store commits stay in the caller's process.
"""

from __future__ import annotations

import copy
import hashlib
import io
import logging
import math
import mimetypes
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pillow_heif
from PIL import ExifTags, Image, UnidentifiedImageError
from PIL.MpoImagePlugin import MpoImageFile

from dashboard.blobs import Blobs
from dashboard.bus import Bus
from dashboard.events import Device, ImageRecord, new_id
from dashboard.raw import MIME_BY_KIND, RAW_SUFFIXES, embedded_preview, sniff_raw
from dashboard.store import CONFLICT, UPDATED, Store, UnknownImage
from dashboard.timeutil import epoch_to_iso, utc_now_iso
from dashboard.untrusted import clean_filename

if TYPE_CHECKING:
    from dashboard.decoders import DecoderPool
    from dashboard.quarantine import Quarantine

log = logging.getLogger("fotoflo.ingest")

pillow_heif.register_heif_opener()

#: Formats decided by content; anything else is refused, whatever its name says.
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "HEIF", "GIF")
MIME_BY_FORMAT = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "HEIF": "image/heif",
    "GIF": "image/gif",
    **MIME_BY_KIND,  # camera RAW files, shown by the JPEG preview they embed (`dashboard.raw`)
}
#: File name suffixes of the formats above: what bulk import and the sync client offer to ingest
#: (ingest itself still decides by content).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".heic", ".heif", ".gif"}) | RAW_SUFFIXES
THUMB_EDGE_PX = 480
#: Previews: the image halved until its long edge is at most PREVIEW_MAX_EDGE_PX; if that leaves it
#: under PREVIEW_MIN_EDGE_PX, the image halved once less is scaled to PREVIEW_EDGE_PX (`preview_plan`).
PREVIEW_MIN_EDGE_PX = 1600
PREVIEW_MAX_EDGE_PX = 2400
PREVIEW_EDGE_PX = 2048
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
DEFAULT_MAX_PIXELS = 200_000_000
DEFAULT_DECODE_TIMEOUT_S = 60.0  # in seconds: one file's decode in a worker, also its CPU seconds

# Modes reduced before they are flattened (the others, such as palettes, are flattened first).
_REDUCIBLE = frozenset({"L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "I", "F"})

# EXIF orientation → the transpose that makes the image upright (as PIL.ImageOps.exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


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
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    decode_timeout_s: float = DEFAULT_DECODE_TIMEOUT_S


@dataclass(frozen=True)
class Analysis:
    """What decoding one image yields; computed in a worker, stored by the parent."""

    sha256: str
    format: str
    width: int
    height: int
    captured_at: str | None
    camera_make: str | None
    camera_model: str | None
    exif: dict[str, Any]
    thumb_jpeg: bytes
    preview_jpeg: bytes


@dataclass(frozen=True)
class IngestResult:
    """`created`: a new image; `updated`: a new version of `image`; neither: the bytes were already there.

    `conflict_copy` is the image made to keep the other side of a conflict (see `Store.add_version`).
    """

    image: ImageRecord
    created: bool
    updated: bool = False
    conflict_copy: ImageRecord | None = None


@dataclass
class IngestStats:
    created: int = 0
    duplicates: int = 0
    refused: list[IngestError] = field(default_factory=list)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def analyze(data: bytes, filename: str, limits: Limits = Limits(), sha256: str | None = None) -> Analysis:
    """Validate and decode once: size, format allow-list, pixel cap, EXIF, upright thumb and preview.

    Pass `sha256` when the caller already hashed `data` (it is not checked again).
    """
    if not data:
        raise EmptyFile(filename, "the file is empty")
    if len(data) > limits.max_bytes:
        raise TooLarge(filename, f"{len(data)} bytes is over the limit of {limits.max_bytes} bytes")
    _allow_pixels(limits.max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _decode(data, filename, limits, sha256)
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


def _allow_pixels(max_pixels: int) -> None:
    """Raise Pillow's process-wide bomb cap to our limit, never lower it.

    Lowering it would refuse other Ingestors' images; our own check in `_decode` enforces each
    Ingestor's limit. Called in pool workers too, which may not have inherited the parent's value.
    """
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels


def _decode(data: bytes, filename: str, limits: Limits, sha256: str | None) -> Analysis:
    if sniff_raw(data) is not None:  # before Pillow, which would open a DNG or NEF as a TIFF
        return _decode_raw(data, filename, limits, sha256)
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
    if orientation not in _UPRIGHT:
        orientation = 1
    meta = _exif_fields(exif)
    preview_jpeg, thumb_jpeg = _renditions(im, data, filename, orientation)
    width, height = (raw_h, raw_w) if orientation in (5, 6, 7, 8) else (raw_w, raw_h)
    return _analysis(data, sha256, fmt, (width, height), meta, preview_jpeg, thumb_jpeg)


def _decode_raw(data: bytes, filename: str, limits: Limits, sha256: str | None) -> Analysis:
    """A camera RAW by the JPEG it embeds, never developed; its size and EXIF from the RAW itself."""
    raw = embedded_preview(data, filename)
    if raw.width * raw.height > limits.max_pixels:
        raise TooManyPixels(filename, f"{raw.width}x{raw.height} pixels is over the limit of {limits.max_pixels}")
    im = Image.open(io.BytesIO(raw.jpeg), formats=("JPEG",))
    orientation = raw.orientation if raw.orientation in _UPRIGHT else 1  # the RAW's, not the preview's EXIF
    meta = _exif_fields(raw.to_exif())
    preview_jpeg, thumb_jpeg = _renditions(im, raw.jpeg, filename, orientation, keep=raw.jpeg)
    width, height = (raw.height, raw.width) if orientation in (5, 6, 7, 8) else (raw.width, raw.height)
    return _analysis(data, sha256, raw.kind, (width, height), meta, preview_jpeg, thumb_jpeg)


def _analysis(
    data: bytes,
    sha256: str | None,
    fmt: str,
    upright_size: tuple[int, int],
    meta: dict[str, Any],
    preview_jpeg: bytes,
    thumb_jpeg: bytes,
) -> Analysis:
    """The `Analysis` of a decoded file; `meta` is `_exif_fields`' dict (its named fields are taken out)."""
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


def preview_plan(width: int, height: int) -> tuple[int, int | None]:
    """How a preview is made from a `width`×`height` image: (halvings, long edge to resize to or None).

    Halving is free while decoding a JPEG (DCT scaling) and cheap otherwise (`Image.reduce`), so
    an image is halved until its long edge is at most `PREVIEW_MAX_EDGE_PX`; if that lands at or
    above `PREVIEW_MIN_EDGE_PX` it is the preview as it is, without resampling (4000 px → 2000).
    Otherwise the last halving would go too small, so the image halved one time fewer is scaled
    to `PREVIEW_EDGE_PX` (6000 px → 3000 → 2048).
    """
    edge = max(width, height)
    halvings = 0
    while edge / 2**halvings > PREVIEW_MAX_EDGE_PX:
        halvings += 1
    if halvings == 0 or edge / 2**halvings >= PREVIEW_MIN_EDGE_PX:
        return halvings, None
    return halvings - 1, PREVIEW_EDGE_PX


def _renditions(
    im: Image.Image, data: bytes, filename: str, orientation: int, keep: bytes | None = None
) -> tuple[bytes, bytes]:
    """The upright preview and thumbnail JPEGs, from one decode at the smallest scale that serves both.

    `keep`: JPEG bytes of `im` that may be stored as the preview as they are (a RAW's preview);
    otherwise a camera preview embedded in `data` (MPF) may be.
    """
    frame = keep if keep is not None else _embedded_preview(im, data, filename)
    if frame is not None and orientation == 1 and preview_plan(*im.size) == (0, None):
        # The camera's own preview is already the right size and upright: keep its bytes as the
        # preview; decoding it for the thumbnail (at 1/2 to 1/8 scale) checks all of it.
        _draft(im, THUMB_EDGE_PX / max(im.size))
        thumb = _flatten(_loaded(im))
        return frame, _jpeg(_thumbnail(thumb), quality=80)
    full_edge = max(im.size)
    halvings, resize_to = preview_plan(*im.size)
    if im.format in ("JPEG", "MPO"):
        _draft(im, 1 / 2**halvings)  # changes im.size to the scale the decoder will deliver
    loaded = _loaded(im)
    remaining = 2**halvings // round(full_edge / max(loaded.size))  # past 1/8, or not a JPEG
    if remaining > 1 and loaded.mode in _REDUCIBLE:
        # Reduce before flattening, and let go of the full-size pixels at once: a PNG or TIFF cannot be
        # decoded at a smaller scale, so the full-size copy is the peak; flattening it first made two more.
        preview = _flatten(loaded.reduce(remaining))
        loaded.close()
    else:
        preview = _flatten(loaded)
        if remaining > 1:
            preview = preview.reduce(remaining)
    if resize_to is not None:
        # From less than 1.6 times the size, Pillow's antialiased bilinear looks like Lanczos at half the cost.
        preview.thumbnail((resize_to, resize_to), Image.Resampling.BILINEAR, reducing_gap=None)
    if orientation != 1:
        preview = preview.transpose(_UPRIGHT[orientation])
    return _jpeg(preview, quality=85), _jpeg(_thumbnail(preview), quality=80)


def _embedded_preview(im: Image.Image, data: bytes, filename: str) -> bytes | None:
    """The bytes of the camera's large preview (MPF) if it can stand in for the whole image, else None.

    Sony, Panasonic, Fujifilm and others store a screen-sized JPEG of the shot in an MPF segment
    after the primary image. When it has the primary's aspect ratio and at least
    `PREVIEW_MIN_EDGE_PX` on its long edge, `im` is left on that frame and the primary (the
    original, stored as sent) is not decoded: its entropy data is what costs 70 % of a full decode.
    The primary must still end with its EOI marker before the preview, which catches a file cut
    short or a preview pointing into the primary; a truncated preview fails its own decode.
    """
    if im.format != "MPO" or not isinstance(im, MpoImageFile):
        return None
    width, height = im.size
    best: tuple[int, int, int] | None = None  # (pixels, frame, size_bytes)
    for index, entry in enumerate((im.mpinfo or {}).get(0xB002, [])):
        if index == 0 or not str(entry["Attribute"]["MPType"]).startswith("Large Thumbnail"):
            continue
        try:
            im.seek(index)
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise CorruptImage(filename, f"the embedded preview is corrupt ({exc})") from exc
        pw, ph = im.size
        same_shape = abs(pw * height - ph * width) <= max(pw, ph) * max(width, height) // 100
        if same_shape and max(pw, ph) >= PREVIEW_MIN_EDGE_PX and (best is None or pw * ph > best[0]):
            best = (pw * ph, index, int(entry["Size"]))
    if best is None:
        if im.tell() != 0:
            im.seek(0)
        return None
    im.seek(best[1])
    start = im.offset
    frame = data[start : start + best[2]]
    primary_end = data.rfind(b"\xff\xd9", 0, start)
    if not frame.startswith(b"\xff\xd8") or primary_end < 0:
        raise CorruptImage(filename, "the embedded preview or the image before it is cut short")
    return frame


def _draft(im: Image.Image, scale: float) -> None:
    """Ask a JPEG decoder for the smallest DCT scale (1, 1/2, 1/4, 1/8) covering `scale` on both axes."""
    width, height = im.size
    im.draft("RGB", (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))))


def _loaded(im: Image.Image) -> Image.Image:
    im.load()
    return im


def _thumbnail(im: Image.Image) -> Image.Image:
    """A new image at most `THUMB_EDGE_PX` on its long edge: a box reduce to about the size, then Lanczos."""
    width, height = im.size
    scale = THUMB_EDGE_PX / max(width, height)
    if scale >= 1:
        return im
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=1.0)


def _flatten(im: Image.Image) -> Image.Image:
    """An RGB image browsers can show: alpha on white, palettes and 16-bit scaled down."""
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        return im.point(lambda v: v * (1 / 256)).convert("L").convert("RGB")
    if im.mode == "F":
        return im.convert("L").convert("RGB")
    return im.convert("RGB") if im.mode != "RGB" else im


def _jpeg(im: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    im.save(out, "JPEG", quality=quality, optimize=False, progressive=False)
    return out.getvalue()


def _sniff_other_format(data: bytes) -> str | None:
    """Name a well-known image format Pillow could open but we refuse (for a clearer message)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.format
    except Exception:
        return None


def _exif_fields(exif: Image.Exif) -> dict[str, Any]:
    ifd = exif.get_ifd(ExifTags.IFD.Exif)
    out: dict[str, Any] = {}

    def text(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        value = str(value).strip("\x00 ").strip()
        return value or None

    taken = text(ifd.get(ExifTags.Base.DateTimeOriginal) or exif.get(ExifTags.Base.DateTime))
    if taken:
        iso = _exif_time(taken, text(ifd.get(ExifTags.Base.OffsetTimeOriginal)))
        if iso:
            out["captured_at"] = iso
    out["camera_make"] = text(exif.get(ExifTags.Base.Make))
    out["camera_model"] = text(exif.get(ExifTags.Base.Model))
    lens = text(ifd.get(ExifTags.Base.LensModel))
    if lens:
        out["lens"] = lens
    exposure = ifd.get(ExifTags.Base.ExposureTime)
    if exposure:
        seconds = float(exposure)
        out["exposure_time"] = f"1/{round(1 / seconds)}" if 0 < seconds < 1 else f"{seconds:g}"
    for key, tag in (("f_number", ExifTags.Base.FNumber), ("focal_length_mm", ExifTags.Base.FocalLength)):
        value = ifd.get(tag)
        if value:
            out[key] = round(float(value), 1)
    iso_speed = ifd.get(ExifTags.Base.ISOSpeedRatings)
    if isinstance(iso_speed, tuple):
        iso_speed = iso_speed[0] if iso_speed else None
    if iso_speed:
        out["iso"] = int(iso_speed)
    return out


def _exif_time(value: str, offset: str | None) -> str | None:
    """EXIF 'YYYY:MM:DD HH:MM:SS' (camera-local) → ISO 8601, with the offset when the camera gave one."""
    try:
        date, time = value.split(" ", 1)
        y, mo, d = (int(p) for p in date.split(":"))
        h, mi, s = (int(float(p)) for p in time.split(":")[:3])
        iso = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}"
    except ValueError:
        return None
    if offset and len(offset) == 6 and offset[0] in "+-":
        iso += offset
    return iso


class Ingestor:
    """Turns bytes into a stored, thumbnailed, published image, or refuses them with a reason."""

    def __init__(
        self,
        store: Store,
        blobs: Blobs,
        bus: Bus,
        limits: Limits = Limits(),
        *,
        decoders: DecoderPool | None = None,
        quarantine: Quarantine | None = None,
    ) -> None:
        """`decoders`: the worker processes that decode (default: this process's shared pool).

        `quarantine`: where files read from a path (hot folder, `fotoflo ingest`) whose decoder died are
        remembered, so that they are refused without decoding until their bytes change.
        """
        from dashboard.decoders import shared_pool

        self.store = store
        self.blobs = blobs
        self.bus = bus
        self.limits = limits
        self.decoders = decoders or shared_pool()
        self.quarantine = quarantine

    def ingest(
        self,
        source: bytes | Path,
        project: str,
        *,
        filename: str | None = None,
        mtime_s: float | None = None,
        log_refusals: bool = True,
        expected_sha256: str | None = None,
        replaces: str | None = None,
        base_sha256: str | None = None,
        device: Device | None = None,
        quarantine: bool | None = None,
    ) -> IngestResult:
        """Ingest one file or one upload's bytes; raises `IngestError` for refused input.

        Refusals are logged with their reason unless `log_refusals` is false (the watcher logs
        its own: a half-written file is refused for a moment before it is complete).
        `expected_sha256` refuses bytes that hash otherwise (`ChecksumMismatch`). With `replaces`
        (an image id of the project, else `UnknownImage`) the bytes are a new version of that
        image made from its version `base_sha256`, by `device`: see `Store.add_version`.
        `quarantine`: whether a file whose decoder dies is quarantined (default: when `source` is a
        path; an upload, which its sender sees refused, passes False for the temp file it was kept in).
        """
        if quarantine is None:
            quarantine = not isinstance(source, bytes | bytearray | memoryview)
        try:
            data, name, mtime_s = self._read(source, filename, mtime_s)
            sha = sha256_of(data)
            if expected_sha256 is not None and sha != expected_sha256:
                raise ChecksumMismatch(name, f"the bytes received hash to {sha}, not {expected_sha256}")
            existing = self._current(project, sha) if data else None
            if replaces is not None:
                current = self.store.get_image(replaces)
                if current is None or current.project != project:
                    raise UnknownImage(project, [replaces])
            if existing is not None:
                log.info("duplicate %s in %s: already stored as %s", name, project, existing.id)
                return IngestResult(existing, created=False)
            analysis = self._analyze(data, name, sha, quarantine=quarantine)
        except IngestError as exc:
            if log_refusals:
                log.warning("refused %s: %s", exc.filename, exc.reason)
            raise
        if replaces is not None:
            return self.commit_version(analysis, data, name, project, mtime_s, replaces, base_sha256 or "", device)
        return self.commit(analysis, data, name, project, mtime_s, device=device)

    def _analyze(self, data: bytes, name: str, sha: str, *, quarantine: bool) -> Analysis:
        """Decode in a worker; with `quarantine`, a file whose decoder died is refused so from then on."""
        listed = self.quarantine if quarantine else None
        if listed is not None and data:
            reason = listed.reason(sha)
            if reason is not None:
                raise DecoderFailed(name, f"quarantined, not decoded again until the file changes ({reason})")
        try:
            return self.decoders.analyze(data, name, self.limits, sha)
        except DecoderFailed as exc:
            if listed is not None:
                listed.add(sha, name, exc.reason)
            raise

    def _current(self, project: str, sha: str) -> ImageRecord | None:
        """The image whose current version has these bytes (an older version's bytes make a new image)."""
        image = self.store.find_by_sha(project, sha)
        return image if image is not None and image.sha256 == sha else None

    def commit(
        self,
        analysis: Analysis,
        data: bytes,
        filename: str,
        project: str,
        mtime_s: float | None,
        *,
        device: Device | None = None,
    ) -> IngestResult:
        """Write the files, then the row and its feed entry, then wake the bus."""
        record = self._store_blobs(analysis, data, filename, project, mtime_s)
        stored, change = self.store.add_image(record, device=device)
        if change is None:
            return IngestResult(stored, created=False)
        log.info("image received %s → %s #%d (%s)", filename, project, stored.seq, stored.id)
        self.bus.publish(project, stored.seq)
        return IngestResult(stored, created=True)

    def commit_version(
        self,
        analysis: Analysis,
        data: bytes,
        filename: str,
        project: str,
        mtime_s: float | None,
        replaces: str,
        base_sha256: str,
        device: Device | None,
    ) -> IngestResult:
        """Write the files, then the new version (and any conflict copy) with its feed entries, then wake the bus."""
        record = self._store_blobs(analysis, data, filename, project, mtime_s)
        result = self.store.add_version(project, replaces, record, base_sha256=base_sha256, device=device)
        if not result.changes:
            log.info("duplicate %s in %s: already stored as %s", filename, project, result.image.id)
            return IngestResult(result.image, created=False)
        image = result.image
        log.info("version %d of %s: %s → %s #%d", image.version, image.id, filename, project, result.changes[0].seq)
        if result.outcome == CONFLICT and result.conflict_copy is not None:
            copy = result.conflict_copy
            log.warning(
                "conflict on %s in %s: the other version is kept as %s (%s)", image.id, project, copy.filename, copy.id
            )
        self.bus.publish(project, result.changes[-1].seq)
        return IngestResult(
            image, created=False, updated=result.outcome in (UPDATED, CONFLICT), conflict_copy=result.conflict_copy
        )

    def _store_blobs(
        self, analysis: Analysis, data: bytes, filename: str, project: str, mtime_s: float | None
    ) -> ImageRecord:
        """Write the original and its renditions; the record to store for them."""
        self.blobs.put("original", analysis.sha256, data)
        self.blobs.put("preview", analysis.sha256, analysis.preview_jpeg)
        self.blobs.put("thumb", analysis.sha256, analysis.thumb_jpeg)
        now = utc_now_iso()
        return ImageRecord(
            id=new_id(),
            project=project,
            filename=filename,
            sha256=analysis.sha256,
            size_bytes=len(data),
            width=analysis.width,
            height=analysis.height,
            format=analysis.format,
            mime=MIME_BY_FORMAT.get(analysis.format) or mimetypes.guess_type(filename)[0] or "image/*",
            captured_at=analysis.captured_at or (epoch_to_iso(mtime_s) if mtime_s else now),
            camera_make=analysis.camera_make,
            camera_model=analysis.camera_model,
            created_at=now,
            exif=analysis.exif,
        )

    def _read(
        self, source: bytes | Path, filename: str | None, mtime_s: float | None
    ) -> tuple[bytes, str, float | None]:
        # A name is only a label, but it is logged and exported: one printable line, whatever its source.
        if isinstance(source, bytes | bytearray | memoryview):
            return bytes(source), clean_filename(filename), mtime_s
        path = Path(source)
        name = clean_filename(filename or path.name)
        try:
            stat = path.stat()
            if stat.st_size > self.limits.max_bytes:
                raise TooLarge(name, f"{stat.st_size} bytes is over the limit of {self.limits.max_bytes} bytes")
            return path.read_bytes(), name, stat.st_mtime if mtime_s is None else mtime_s
        except OSError as exc:
            raise IngestError(name, f"cannot be read ({exc.strerror or exc})") from exc

    def ingest_many(
        self,
        paths: Iterable[Path],
        project: str,
        *,
        workers: int | None = None,
        on_result: Callable[[Path, IngestResult | IngestError], None] | None = None,
    ) -> IngestStats:
        """Bulk import: decode in `workers` decoder processes at once (default: the pool's), commit in this thread."""
        from dashboard.decoders import DecoderPool

        stats = IngestStats()
        own = DecoderPool(workers) if workers and workers != self.decoders.size else None
        decoders = own or self.decoders
        try:
            with ThreadPoolExecutor(max_workers=decoders.size, thread_name_prefix="fotoflo-decode") as pool:
                for path, outcome in self._pipeline(paths, project, pool, decoders, window=decoders.size * 2):
                    if isinstance(outcome, IngestError):
                        stats.refused.append(outcome)
                    elif outcome.created:
                        stats.created += 1
                    else:
                        stats.duplicates += 1
                    if on_result:
                        on_result(path, outcome)
        finally:
            if own is not None:
                own.close()
        return stats

    def _pipeline(
        self, paths: Iterable[Path], project: str, pool: Executor, decoders: DecoderPool, window: int
    ) -> Iterator[tuple[Path, IngestResult | IngestError]]:
        pending: list[tuple[Path, bytes, str, str, float | None, Future[Analysis] | None]] = []
        ingestor = self if decoders is self.decoders else copy.copy(self)
        ingestor.decoders = decoders

        def drain(limit: int) -> Iterator[tuple[Path, IngestResult | IngestError]]:
            while len(pending) > limit:
                path, data, name, sha, mtime_s, future = pending.pop(0)
                try:
                    if future is None:
                        existing = self._current(project, sha)
                        assert existing is not None
                        yield path, IngestResult(existing, created=False)
                    else:
                        yield path, self.commit(future.result(), data, name, project, mtime_s)
                except IngestError as exc:
                    log.warning("refused %s: %s", exc.filename, exc.reason)
                    yield path, exc

        for path in paths:
            try:
                data, name, mtime_s = self._read(path, None, None)
            except IngestError as exc:
                yield path, exc
                continue
            sha = sha256_of(data)
            duplicate = bool(data) and self._current(project, sha) is not None
            future = None if duplicate else pool.submit(ingestor._analyze, data, name, sha, quarantine=True)
            pending.append((path, data, name, sha, mtime_s, future))
            yield from drain(window)
        yield from drain(0)
