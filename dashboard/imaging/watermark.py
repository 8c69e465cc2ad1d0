"""Share links' watermarks: an uploaded PNG checked and re-encoded, and a watermark burned into a JPEG.

Both run in a decoder worker (`DecoderPool.check_watermark`, `DecoderPool.burn_watermark`): the PNG is
an owner's upload, untrusted like any image, so it is only ever decoded there, under the worker's limits.
`check_png` keeps no byte of the upload: what is stored is Pillow's own encoding of the decoded pixels.
"""

from __future__ import annotations

import io
import struct

from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from dashboard.imaging.errors import WATERMARK_MAX_PNG_BYTES as MAX_PNG_BYTES
from dashboard.imaging.errors import WATERMARK_MAX_SIDE_PX as MAX_PNG_SIDE_PX
from dashboard.imaging.errors import CorruptImage, NotAnImage, TooLarge, TooManyPixels

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STORED_SIDE_PX = 1024  # kept at most this wide and high: a watermark covers a part of a preview
#: The watermark's share of the picture's shorter side (the PNG's longer side), and its opacity.
PNG_SHARE = 0.35
PNG_OPACITY = 0.6
#: The text's width as a share of the picture's (at most), and its height's of the shorter side: large
#: enough that cropping it off costs the picture, as proofing watermarks are meant to.
TEXT_WIDTH_SHARE = 0.8
TEXT_MAX_SHARE = 0.18
JPEG_QUALITY = 85


def check_png(data: bytes, name: str = "watermark.png") -> bytes:
    """The upload decoded and re-encoded as an RGBA PNG of at most `STORED_SIDE_PX`; `IngestError` if it is
    not a PNG, too large (bytes or pixels) or corrupt."""
    if len(data) > MAX_PNG_BYTES:
        raise TooLarge(name, f"a watermark PNG may be at most {MAX_PNG_BYTES // 1024} KiB, not {len(data)} bytes")
    if not data.startswith(PNG_SIGNATURE):
        raise NotAnImage(name, "a watermark must be a PNG image")
    if data[12:16] == b"IHDR":
        # Read from the header before Pillow sees the file: it refuses a large enough bomb itself, but
        # as a bomb, not as the size limit the owner should be told of.
        width, height = struct.unpack(">II", data[16:24].ljust(8, b"\0"))
        if not (0 < width <= MAX_PNG_SIDE_PX and 0 < height <= MAX_PNG_SIDE_PX):
            most = f"{MAX_PNG_SIDE_PX}×{MAX_PNG_SIDE_PX}"
            raise TooManyPixels(name, f"a watermark PNG may be at most {most} pixels, not {width}×{height}")
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            width, height = image.size  # the header's again, before any pixel is decoded
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
        if max(mark.size) != side:  # its longer side `side`, up or down: the same share of every picture
            scale = side / max(mark.size)
            mark = mark.resize((max(1, round(mark.width * scale)), max(1, round(mark.height * scale))))
        alpha = mark.getchannel("A").point(lambda a: int(a * PNG_OPACITY))
        mark.putalpha(alpha)
        layer.alpha_composite(mark, ((width - mark.width) // 2, (height - mark.height) // 2))
    if text:
        size = _text_size(text, width, height)
        font = ImageFont.load_default(size=size)
        draw = ImageDraw.Draw(layer)
        stroke = max(1, size // 12)
        box = draw.textbbox((0, 0), text, font=font, stroke_width=stroke)
        x = max(0, (width - (box[2] - box[0])) // 2 - box[0])
        y = max(0, height - (box[3] - box[1]) - max(4, height // 12) - box[1])  # the lower part, clear of the PNG
        draw.text((x, y), text, font=font, fill=(255, 255, 255, 200), stroke_width=stroke, stroke_fill=(0, 0, 0, 160))
    picture = Image.alpha_composite(picture.convert("RGBA"), layer).convert("RGB")
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def _text_size(text: str, width: int, height: int) -> int:
    """The font size at which `text` is `TEXT_WIDTH_SHARE` of `width`, at most `TEXT_MAX_SHARE` of the shorter side."""
    probe = 100
    box = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=ImageFont.load_default(size=probe))
    fit = int(probe * width * TEXT_WIDTH_SHARE / max(1, box[2] - box[0]))
    return max(9, min(fit, int(min(width, height) * TEXT_MAX_SHARE)))
