"""Camera RAW files shown by their embedded JPEG, as culling tools show them: never demosaiced.

`embedded_preview` returns the largest JPEG the camera embedded, with the image size, orientation
and EXIF the ingest stores. The container walk (`dashboard.imaging.raw_walk`) is pure Python and
bounds-checks every offset and count; LibRaw (rawpy) supplies the image size and previews that walk
cannot reach (maker notes, CR3 tracks).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import rawpy
from PIL import Image

from dashboard.imaging.errors import CorruptImage, NotAnImage, UnsupportedFormat
from dashboard.imaging.raw_walk import EXIF_TAGS, WALKS, Jpeg, Malformed, Tiff, jpeg_in, sniff_raw, tiff_meta

# LibRaw's `flip` → the EXIF orientation it was read from (dcraw's table, inverted).
_ORIENTATION_BY_FLIP = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}


@dataclass(frozen=True)
class RawPreview:
    """The largest JPEG a RAW file embeds, with what the ingest stores about the RAW itself.

    `width`×`height` is the image as the camera records it, before `orientation` (EXIF 1–8) is
    applied, like Pillow's `Image.size`. The JPEG is stored the same way: apply `orientation` to it
    and ignore any orientation in its own EXIF. EXIF fields are None when the file does not say.
    """

    kind: str
    jpeg: bytes = field(repr=False)
    jpeg_width: int
    jpeg_height: int
    width: int
    height: int
    orientation: int = 1
    make: str | None = None
    model: str | None = None
    taken: str | None = None  # "YYYY:MM:DD HH:MM:SS", camera-local
    offset_time: str | None = None  # "+01:00" when the camera recorded its offset
    exposure_time_s: float | None = None
    f_number: float | None = None
    iso: int | None = None
    focal_length_mm: float | None = None
    lens: str | None = None

    def to_exif(self) -> Image.Exif:
        """These fields as Pillow EXIF (IFD0 and its Exif IFD), for code that reads EXIF from Pillow."""
        exif = Image.Exif()
        for tag, value in ((0x010F, self.make), (0x0110, self.model), (0x0112, self.orientation)):
            if value is not None:
                exif[tag] = value
        ifd = exif.get_ifd(0x8769)
        for tag, name in EXIF_TAGS.items():
            value = getattr(self, name, None)
            if value is not None:
                ifd[tag] = value
        return exif


def embedded_preview(data: bytes, filename: str) -> RawPreview:
    """The largest JPEG embedded in the RAW file `data`, its image size, orientation and EXIF.

    Raises the ingest's errors naming `filename`: `NotAnImage` if `data` is not a RAW kind
    `sniff_raw` knows, `CorruptImage` if it is truncated or its structure is broken,
    `UnsupportedFormat` if it has no embedded JPEG preview (RAW files are not developed here).
    A camera too new for LibRaw still gets the preview the walk finds, sized by it and its EXIF.
    """
    kind = sniff_raw(data)
    if kind is None:
        raise NotAnImage(filename, "not a RAW file (content is not DNG, CR2, CR3, NEF, ARW, PEF, ORF, RW2 or RAF)")
    try:
        found = WALKS[kind](data)
    except Malformed as exc:
        raise CorruptImage(filename, f"the {kind} file is truncated or corrupt ({exc})") from None
    if found.data_end > len(data):
        raise CorruptImage(
            filename,
            f"the {kind} file is truncated: its image data ends at byte {found.data_end}, the file at {len(data)}",
        )
    best = max(found.previews, key=lambda j: j.width * j.height, default=None)
    sizes, best, libraw_error = _with_libraw(data, best)
    if best is None:
        if isinstance(libraw_error, rawpy.LibRawFileUnsupportedError):
            reason = f"RAW file has no embedded preview Fotoflo can find ({kind}; LibRaw: {_said(libraw_error)})"
            raise UnsupportedFormat(filename, reason)
        if libraw_error is not None:
            raise CorruptImage(filename, f"the {kind} file is corrupt or truncated (LibRaw: {_said(libraw_error)})")
        raise UnsupportedFormat(filename, f"RAW file has no embedded preview ({kind}; RAW files are not developed)")
    meta = found.meta
    if best.exif_at is not None:  # RAF and RW2 previews carry the camera's EXIF; the RAW's own wins
        with contextlib.suppress(Malformed):
            for name, value in tiff_meta(Tiff(best.source, best.exif_at)).items():
                meta.setdefault(name, value)
    if sizes is not None and sizes.width > 0 and sizes.height > 0:
        # LibRaw knows each camera's visible area; its flip is the orientation it read, wherever stored.
        width, height = sizes.width, sizes.height
        orientation = _ORIENTATION_BY_FLIP.get(sizes.flip, 1)
    else:
        pixel_width, pixel_height = _positive(meta.get("pixel_width")), _positive(meta.get("pixel_height"))
        width, height = (
            (int(pixel_width), int(pixel_height)) if pixel_width and pixel_height else (best.width, best.height)
        )
        orientation = meta.get("orientation", 1) if meta.get("orientation") in range(1, 9) else 1
    iso = _positive(meta.get("iso"))
    return RawPreview(
        kind=kind,
        jpeg=best.data(),
        jpeg_width=best.width,
        jpeg_height=best.height,
        width=width,
        height=height,
        orientation=int(orientation),
        make=_text(meta.get("make")),
        model=_text(meta.get("model")),
        taken=_text(meta.get("taken")),
        offset_time=_text(meta.get("offset_time")),
        exposure_time_s=_positive(meta.get("exposure_time_s")),
        f_number=_positive(meta.get("f_number")),
        iso=int(iso) if iso else None,
        focal_length_mm=_positive(meta.get("focal_length_mm")),
        lens=_text(meta.get("lens")),
    )


@contextlib.contextmanager
def _forked_pool_is_fine() -> Iterator[None]:
    """Silence rawpy's warning in a forked worker (`Ingestor.ingest_many`'s pool).

    It warns because LibRaw's OpenMP threads do not survive a fork; only developing a RAW
    (demosaicing) runs them, and Fotoflo never develops one: it reads sizes and the embedded JPEG.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="rawpy is being used in a process created by multiprocessing")
        yield


def _with_libraw(
    data: bytes, best: Jpeg | None
) -> tuple[rawpy.ImageSizes | None, Jpeg | None, rawpy.LibRawError | None]:
    """LibRaw's image size and flip, and the larger of `best` and its preview; or the error it raised."""
    try:
        with _forked_pool_is_fine(), rawpy.imread(io.BytesIO(data)) as raw:
            sizes = raw.sizes
            if best is None or best.width * best.height < sizes.width * sizes.height:
                # Maker notes and CR3 tracks hold previews the walk does not reach (and may be larger).
                libraw = _libraw_jpeg(raw)
                if libraw is not None and (best is None or libraw.width * libraw.height > best.width * best.height):
                    best = libraw  # a tie keeps the walk's: the camera's bytes (LibRaw adds an EXIF segment)
            return sizes, best, None
    except rawpy.LibRawError as exc:  # e.g. a camera newer than this LibRaw: the walk's preview will do
        return None, best, exc


def _said(exc: rawpy.LibRawError) -> str:
    """LibRaw's message (rawpy passes it as bytes)."""
    said = exc.args[0] if exc.args else exc
    return said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)


def _positive(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and value > 0 else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _libraw_jpeg(raw: rawpy.RawPy) -> Jpeg | None:
    try:
        thumb = raw.extract_thumb()
    except rawpy.LibRawError:
        return None
    if thumb.format != rawpy.ThumbFormat.JPEG or not isinstance(thumb.data, bytes):
        return None  # a bitmap thumbnail is a thumbnail, not a preview
    return jpeg_in(thumb.data, 0, len(thumb.data))
