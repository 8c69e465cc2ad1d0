"""The upright preview and thumbnail JPEGs of a decoded image, from one decode at the smallest scale.

`renditions(..., thumb_only=True)` makes the thumbnail alone where a JPEG decodes much smaller for it than
for the preview, or a HEIC carries a thumbnail item large enough for it (the image is published then, its
preview made after: `preview_only`).
"""

from __future__ import annotations

import io
import math

from PIL import Image
from PIL.MpoImagePlugin import MpoImageFile

from dashboard.imaging.errors import CorruptImage
from dashboard.imaging.sizes import (
    PREVIEW_MIN_EDGE_PX,
    THUMB_EDGE_PX,
    preview_plan,
)

#: From less than this many times a target size, Pillow's antialiased bilinear looks like Lanczos at half
#: the cost (a preview of 3000 px → 2048, a thumbnail decoded at 500 px → 480).
NEAR_SIZE = 1.6

# Modes reduced before they are flattened (the others, such as palettes, are flattened first).
_REDUCIBLE = frozenset({"L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "I", "F"})

# EXIF orientation → the transpose that makes the image upright (as PIL.ImageOps.exif_transpose).
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def renditions(
    im: Image.Image,
    data: bytes,
    filename: str,
    orientation: int,
    keep: bytes | None = None,
    *,
    thumb_only: bool = False,
) -> tuple[bytes | None, bytes]:
    """The upright preview and thumbnail JPEGs, from one decode at the smallest scale that serves both.

    `keep`: JPEG bytes of `im` that may be stored as the preview as they are (a RAW's preview);
    otherwise a camera preview embedded in `data` (MPF) may be. With `thumb_only`, a JPEG whose preview
    needs a larger decode than its thumbnail is decoded for the thumbnail alone (at 1/8 scale for 12 MP),
    and a HEIC with a thumbnail item at least a thumbnail's size is shown by that item (its HEVC image not
    decoded yet); the preview is then None: make it later with `preview_only`. Otherwise both are made
    from one decode, as without it.
    """
    frame = _frame_as_preview(im, data, filename, orientation, keep)
    if frame is not None:
        # The camera's own preview is already the right size and upright: keep its bytes as the
        # preview; decoding it for the thumbnail (at 1/2 to 1/8 scale) checks all of it.
        _draft(im, THUMB_EDGE_PX / max(im.size))
        thumb = _flatten(_loaded(im))
        return frame, _jpeg(_thumbnail(thumb), quality=80)
    if thumb_only and _thumb_alone(im):
        thumb = _thumbnail(_flatten(_loaded(im)))
        if orientation != 1:
            thumb = thumb.transpose(UPRIGHT[orientation])  # after the resize: fewer pixels to turn
        return None, _jpeg(thumb, quality=80)
    preview = _preview(im, orientation)
    return _jpeg(preview, quality=85), _jpeg(_thumbnail(preview), quality=80)


def preview_only(im: Image.Image, data: bytes, filename: str, orientation: int, keep: bytes | None = None) -> bytes:
    """The upright preview JPEG alone, as `renditions` makes it (same arguments), without the thumbnail."""
    frame = _frame_as_preview(im, data, filename, orientation, keep)
    return frame if frame is not None else _jpeg(_preview(im, orientation), quality=85)


def defers_preview(im: Image.Image) -> bool:
    """Whether `renditions(..., thumb_only=True)` leaves out the preview of `im` (opened, not yet decoded).

    A JPEG larger than a preview: its DCT scaling decodes the thumbnail at a quarter of the preview's
    scale or less. A HEIC whose thumbnail item serves as the thumbnail (`_heif_thumbnail_item`; known only
    once that item is decoded, so not told here). Other formats decode at full size either way, so one
    decode serves both.
    """
    return im.format in ("JPEG", "MPO") and preview_plan(*im.size)[0] > 0


def _thumb_alone(im: Image.Image) -> bool:
    """Set `im` (opened, not yet decoded) to decode for its thumbnail alone where that costs far less; whether it is."""
    if defers_preview(im):
        _draft(im, THUMB_EDGE_PX / max(im.size))
        return True
    return im.format == "HEIF" and _heif_thumbnail_item(im)


def _heif_thumbnail_item(im: Image.Image) -> bool:
    """Set a HEIC to decode its own thumbnail item instead of the image if that is large enough; whether it is.

    HEVC has no cheap smaller decode (a 12-MP image costs about a second of libde265), but a HEIF file may
    carry smaller copies of its image as thumbnail items. pillow-heif's `draft` picks the smallest one at
    least a thumbnail's size on both axes that is a scaled copy of the image (same aspect ratio, rotation,
    mirroring, crop and colour profile) and decodes it here; a corrupt one is passed over. iPhones write a
    320×240 item (smaller than a thumbnail, so ignored): such files are decoded once for both renditions.
    """
    return _draft(im, THUMB_EDGE_PX / max(im.size)) is not None


def _frame_as_preview(
    im: Image.Image, data: bytes, filename: str, orientation: int, keep: bytes | None
) -> bytes | None:
    """The JPEG bytes to store as the preview as they are (`keep`, else an MPF preview), if they fit as it."""
    frame = keep if keep is not None else _embedded_preview(im, data, filename)
    if frame is not None and orientation == 1 and preview_plan(*im.size) == (0, None):
        return frame
    return None


def _preview(im: Image.Image, orientation: int) -> Image.Image:
    """The upright preview image, decoded at the smallest scale `preview_plan` allows."""
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
        # Less than `NEAR_SIZE` times the size (halved once fewer than the plan's 2400 px): bilinear.
        preview.thumbnail((resize_to, resize_to), Image.Resampling.BILINEAR, reducing_gap=None)
    if orientation != 1:
        preview = preview.transpose(UPRIGHT[orientation])
    return preview


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


def _draft(im: Image.Image, scale: float) -> object:
    """Ask for the smallest decode covering `scale` on both axes; what `Image.draft` answers (None: no change).

    A JPEG decoder takes the smallest DCT scale (1, 1/2, 1/4, 1/8); pillow-heif an embedded thumbnail item.
    """
    width, height = im.size
    return im.draft("RGB", (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))))


def _loaded(im: Image.Image) -> Image.Image:
    im.load()
    return im


def _thumbnail(im: Image.Image) -> Image.Image:
    """A new image at most `THUMB_EDGE_PX` on its long edge: a box reduce to about the size, then a resample.

    The resample is Lanczos, or from less than `NEAR_SIZE` times the size (a 12-MP JPEG decoded at 1/8 is
    500 px; its 2000-px preview reduced by 4 too) an antialiased bilinear, at half the cost.
    """
    width, height = im.size
    scale = THUMB_EDGE_PX / max(width, height)
    if scale >= 1:
        return im
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if int(1 / scale) > 1:
        im = im.reduce(int(1 / scale))  # whole blocks averaged: exact, and cheap
    near = max(im.size) < NEAR_SIZE * THUMB_EDGE_PX
    return im.resize(size, Image.Resampling.BILINEAR if near else Image.Resampling.LANCZOS, reducing_gap=None)


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
