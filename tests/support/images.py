"""Image bytes for tests: JPEGs (with EXIF, distinct by seed) and PNGs, made with Pillow."""

from __future__ import annotations

import io
import random
from collections.abc import Callable

from PIL import Image, ImageChops, ImageDraw

ImageFactory = Callable[..., bytes]


def jpeg_bytes(
    size: tuple[int, int] = (640, 480),
    color: tuple[int, int, int] = (200, 30, 30),
    *,
    orientation: int | None = None,
    taken: str | None = None,
    make: str | None = None,
    model: str | None = None,
    quality: int = 90,
    seed: int | None = None,
) -> bytes:
    """A JPEG with optional EXIF; `seed` makes otherwise-identical images differ in bytes."""
    im = Image.new("RGB", size, color)
    if seed is not None:
        # A block big enough to survive JPEG compression, in a colour and place only this seed has.
        rng = random.Random(seed)
        x, y = rng.randrange(max(1, size[0] - 16)), rng.randrange(max(1, size[1] - 16))
        mark = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        ImageDraw.Draw(im).rectangle((x, y, x + 15, y + 15), fill=mark)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    if make:
        exif[0x010F] = make
    if model:
        exif[0x0110] = model
    if taken:
        exif.get_ifd(0x8769)[0x9003] = taken
    out = io.BytesIO()
    im.save(out, "JPEG", quality=quality, exif=exif.tobytes())
    return out.getvalue()


def png_bytes(size: tuple[int, int] = (320, 200), color: tuple[int, int, int] = (10, 120, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def small_jpeg(seed: int) -> bytes:
    """A tiny JPEG whose bytes differ for every seed (a one-pixel seed can vanish in quantization)."""
    return jpeg_bytes((64, 48), seed=seed, model=f"test-{seed}")


def pixels(data: bytes) -> Image.Image:
    """An encoded picture's pixels, as RGB."""
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def changed(a: bytes, b: bytes) -> float:
    """The share of two pictures' pixels that differ clearly (more than JPEG's noise: 48 of 255)."""
    first, second = pixels(a), pixels(b)
    assert first.size == second.size
    diff = ImageChops.difference(first, second).convert("L").point(lambda v: 255 if v > 48 else 0)
    return diff.histogram()[255] / (first.width * first.height)
