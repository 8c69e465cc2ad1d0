"""Share links' watermarks: an uploaded PNG checked and re-encoded, and a watermark burned into a JPEG.

Both run in a decoder worker (`DecoderPool.check_watermark`, `DecoderPool.burn_watermark`): the PNG is
an owner's upload, untrusted like any image, so it is only ever decoded there, under the worker's limits.
`check_png` keeps no byte of the upload: what is stored is Pillow's own encoding of the decoded pixels.
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from dashboard.imaging.errors import WATERMARK_MAX_PNG_BYTES as MAX_PNG_BYTES
from dashboard.imaging.errors import WATERMARK_MAX_SIDE_PX as MAX_PNG_SIDE_PX
from dashboard.imaging.errors import CorruptImage, NotAnImage, TooLarge, TooManyPixels

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STORED_SIDE_PX = 1024  # kept at most this wide and high: a watermark covers a part of a preview
#: The watermark's share of the picture's shorter side (the PNG's longer side), and its opacity.
PNG_SHARE = 0.35
PNG_OPACITY = 0.6
TEXT_SHARE = 0.06
JPEG_QUALITY = 85


def check_png(data: bytes, name: str = "watermark.png") -> bytes:
    """The upload decoded and re-encoded as an RGBA PNG of at most `STORED_SIDE_PX`; `IngestError` if it is
    not a PNG, too large (bytes or pixels) or corrupt."""
    if len(data) > MAX_PNG_BYTES:
        raise TooLarge(name, f"a watermark PNG may be at most {MAX_PNG_BYTES // 1024} KiB, not {len(data)} bytes")
    if not data.startswith(PNG_SIGNATURE):
        raise NotAnImage(name, "a watermark must be a PNG image")
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            width, height = image.size  # from the header, before any pixel is decoded
            if not (0 < width <= MAX_PNG_SIDE_PX and 0 < height <= MAX_PNG_SIDE_PX):
                most = f"{MAX_PNG_SIDE_PX}×{MAX_PNG_SIDE_PX}"
                raise TooManyPixels(name, f"a watermark PNG may be at most {most} pixels, not {width}×{height}")
            image.load()
            rgba = image.convert("RGBA")
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise NotAnImage(name, f"a watermark must be a PNG image ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise CorruptImage(name, f"the watermark PNG cannot be read ({exc})") from None
    rgba.thumbnail((STORED_SIDE_PX, STORED_SIDE_PX))
    out = io.BytesIO()
    rgba.save(out, "PNG", optimize=True)
    return out.getvalue()


def burn(jpeg: bytes, text: str | None, png: bytes | None) -> bytes:
    """`jpeg` (a preview or thumbnail Fotoflo made) with the watermark in its pixels: `png` (as `check_png`
    made it) in the middle, `text` along the bottom; a JPEG."""
    with Image.open(io.BytesIO(jpeg)) as source:
        picture = source.convert("RGB")
    width, height = picture.size
    layer = Image.new("RGBA", picture.size, (0, 0, 0, 0))
    if png is not None:
        with Image.open(io.BytesIO(png), formats=["PNG"]) as mark_file:
            mark = mark_file.convert("RGBA")
        side = max(8, int(min(width, height) * PNG_SHARE))
        mark.thumbnail((side, side)) if max(mark.size) > side else None
        if max(mark.size) < side:
            scale = side / max(mark.size)
            mark = mark.resize((max(1, int(mark.width * scale)), max(1, int(mark.height * scale))))
        alpha = mark.getchannel("A").point(lambda a: int(a * PNG_OPACITY))
        mark.putalpha(alpha)
        layer.alpha_composite(mark, ((width - mark.width) // 2, (height - mark.height) // 2))
    if text:
        size = max(9, int(min(width, height) * TEXT_SHARE))
        font = ImageFont.load_default(size=size)
        draw = ImageDraw.Draw(layer)
        box = draw.textbbox((0, 0), text, font=font, stroke_width=max(1, size // 12))
        x = max(0, (width - (box[2] - box[0])) // 2)
        y = max(0, height - (box[3] - box[1]) - size)
        draw.text(
            (x, y), text, font=font, fill=(255, 255, 255, 200),
            stroke_width=max(1, size // 12), stroke_fill=(0, 0, 0, 160),
        )  # fmt: skip
    picture = Image.alpha_composite(picture.convert("RGBA"), layer).convert("RGB")
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()
