"""The one ingest door: refusals with reasons, idempotence, upright thumbnails, EXIF, and crash safety."""

from __future__ import annotations

import io
import logging
import os
import random
import re
import struct
import subprocess
import sys
import textwrap
import threading
import zlib
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import pytest
from PIL import Image

from dashboard.blobs import KINDS, FileBlobs
from dashboard.bus import LocalBus
from dashboard.events import IMAGE_CREATED
from dashboard.imaging.analysis import sha256_of
from dashboard.imaging.errors import (
    CorruptImage,
    DecoderFailed,
    EmptyFile,
    IngestError,
    Limits,
    NotAnImage,
    TooLarge,
    TooManyPixels,
    UnsupportedFormat,
)
from dashboard.ingest import Ingestor, IngestResult, Turns
from dashboard.samples import raw_dng, with_camera_preview
from dashboard.store.sqlite import SQLiteStore
from tests.support.embedded import Embedded
from tests.support.images import jpeg_bytes, png_bytes

PROJECT = "default"

# -- image makers -----------------------------------------------------------------------------

RED, BLUE, GREEN, YELLOW = (230, 20, 20), (20, 20, 230), (20, 200, 20), (240, 220, 20)
#: The upright picture: each quadrant its own colour, so every flip and rotation is told apart.
QUADRANTS = {"top_left": RED, "top_right": BLUE, "bottom_left": GREEN, "bottom_right": YELLOW}


def distinct_jpeg(n: int, size: tuple[int, int] = (64, 48)) -> bytes:
    """JPEGs that differ for every `n` (colours far enough apart to survive compression)."""
    return jpeg_bytes(size, ((n * 47) % 256, (n * 89 + 60) % 256, (n * 151 + 120) % 256))


def encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **params)
    return out.getvalue()


def noise(size: tuple[int, int], seed: int = 1) -> Image.Image:
    """Incompressible pixels, so a truncated file cuts into the pixel data, not the header."""
    return Image.frombytes("RGB", size, random.Random(seed).randbytes(size[0] * size[1] * 3))


def stored_raster(upright: Image.Image, orientation: int) -> Image.Image:
    """The pixels a camera writes for `upright` with EXIF `orientation`, per the EXIF/TIFF definition.

    Orientation names which visual side the stored 0th row and 0th column are: 1 top/left, 2 top/right,
    3 bottom/right, 4 bottom/left, 5 left/top, 6 right/top, 7 right/bottom, 8 left/bottom.
    """
    w, h = upright.size
    source: dict[int, Callable[[int, int], tuple[int, int]]] = {
        1: lambda c, r: (c, r),
        2: lambda c, r: (w - 1 - c, r),
        3: lambda c, r: (w - 1 - c, h - 1 - r),
        4: lambda c, r: (c, h - 1 - r),
        5: lambda c, r: (r, c),
        6: lambda c, r: (w - 1 - r, c),
        7: lambda c, r: (w - 1 - r, h - 1 - c),
        8: lambda c, r: (r, h - 1 - c),
    }
    size = (w, h) if orientation <= 4 else (h, w)
    stored = Image.new("RGB", size)
    for r in range(size[1]):
        for c in range(size[0]):
            stored.putpixel((c, r), rgb(upright, source[orientation](c, r)))
    return stored


def oriented_jpeg(orientation: int, upright_size: tuple[int, int] = (240, 160)) -> bytes:
    """A JPEG whose upright view is the four-colour `QUADRANTS` picture of `upright_size`."""
    tiny = Image.new("RGB", (2, 2))
    for (x, y), name in zip([(0, 0), (1, 0), (0, 1), (1, 1)], QUADRANTS, strict=True):
        tiny.putpixel((x, y), QUADRANTS[name])
    stored = stored_raster(tiny, orientation)
    w, h = upright_size
    stored = stored.resize((w, h) if orientation <= 4 else (h, w), Image.Resampling.NEAREST)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def rgb(im: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = im.convert("RGB").getpixel(xy)
    assert isinstance(value, tuple)
    return value


def quadrant_colours(im: Image.Image) -> dict[str, tuple[int, ...]]:
    w, h = im.size
    centres = {
        "top_left": (w // 4, h // 4),
        "top_right": (3 * w // 4, h // 4),
        "bottom_left": (w // 4, 3 * h // 4),
        "bottom_right": (3 * w // 4, 3 * h // 4),
    }
    return {name: rgb(im, xy) for name, xy in centres.items()}


def close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@cache
def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of `width` x `height` black pixels: tens of kilobytes that decode to gigabytes."""
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row * 1000) for _ in range(height // 1000))
    idat += packer.compress(row * (height % 1000)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def heif_bytes(im: Image.Image) -> bytes | None:
    try:
        return encode(im, "HEIF", quality=90)
    except Exception:  # no HEVC encoder in this libheif build
        return None


# -- helpers on the stored state --------------------------------------------------------------


def blob_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def open_blob(blobs: FileBlobs, kind: str, sha256: str) -> Image.Image:
    im = Image.open(io.BytesIO(blobs.path(kind, sha256).read_bytes()))
    im.load()
    return im


def assert_nothing_stored(embedded: Embedded) -> None:
    assert embedded.store.count_images(PROJECT) == 0
    assert embedded.store.changes(PROJECT) == []
    assert embedded.store.last_seq(PROJECT) == 0
    assert blob_files(embedded.blobs.root) == []


@pytest.fixture
def published(embedded: Embedded) -> Iterator[list[tuple[str, int]]]:
    """Every (project, seq) the ingestor announces on the bus."""
    seen: list[tuple[str, int]] = []
    unsubscribe = embedded.bus.subscribe(lambda project, seq: seen.append((project, seq)))
    yield seen
    unsubscribe()


# -- a good file ------------------------------------------------------------------------------


def test_a_jpeg_is_stored_thumbnailed_and_announced(embedded: Embedded, published: list[tuple[str, int]]) -> None:
    data = jpeg_bytes((640, 480), taken="2024:05:17 14:03:09", make="Canon", model="Canon EOS R5")

    result = embedded.ingestor.ingest(data, PROJECT, filename="IMG_0001.JPG")

    image = result.image
    assert result.created
    assert (image.filename, image.project, image.format, image.mime) == ("IMG_0001.JPG", PROJECT, "JPEG", "image/jpeg")
    assert (image.width, image.height, image.size_bytes, image.sha256) == (640, 480, len(data), sha256_of(data))
    assert embedded.store.get_image(image.id) == image
    [change] = embedded.store.changes(PROJECT)
    assert (change.kind, change.seq, change.image) == (IMAGE_CREATED, 1, image)
    assert published == [(PROJECT, 1)]
    assert embedded.blobs.path("original", image.sha256).read_bytes() == data
    for kind in ("thumb", "preview"):
        assert open_blob(embedded.blobs, kind, image.sha256).format == "JPEG"


@pytest.mark.parametrize(
    ("fmt", "mime", "params"),
    [
        ("PNG", "image/png", {}),
        ("WEBP", "image/webp", {"quality": 90}),
        ("TIFF", "image/tiff", {}),
        ("GIF", "image/gif", {}),
    ],
)
def test_every_accepted_format_ingests(embedded: Embedded, fmt: str, mime: str, params: dict[str, object]) -> None:
    upright = Image.new("RGB", (300, 200), RED)
    upright.paste(BLUE, (150, 0, 300, 200))
    data = encode(upright, fmt, **params)

    image = embedded.ingestor.ingest(data, PROJECT, filename=f"picture.{fmt.lower()}").image

    assert (image.format, image.mime, image.width, image.height) == (fmt, mime, 300, 200)
    thumb = open_blob(embedded.blobs, "thumb", image.sha256)
    assert thumb.format == "JPEG"
    assert close(rgb(thumb, (40, 100)), RED)
    assert close(rgb(thumb, (260, 100)), BLUE)


def test_the_original_is_kept_byte_for_byte(embedded: Embedded) -> None:
    inputs = [
        jpeg_bytes((200, 100), orientation=6, taken="2024:01:02 03:04:05", make="Nikon"),
        png_bytes(),
        encode(noise((64, 64)), "WEBP", lossless=True),
    ]
    for n, data in enumerate(inputs):
        image = embedded.ingestor.ingest(data, PROJECT, filename=f"file{n}").image
        assert embedded.blobs.path("original", image.sha256).read_bytes() == data


def test_a_camera_jpeg_with_embedded_previews_is_a_jpeg(embedded: Embedded) -> None:
    # Many cameras add an MPF segment with previews; Pillow then reports the format as MPO.
    main = Image.new("RGB", (320, 240), GREEN)
    data = encode(main, "MPO", save_all=True, append_images=[Image.new("RGB", (160, 120), RED)])
    with Image.open(io.BytesIO(data)) as probe:
        assert probe.format == "MPO"

    image = embedded.ingestor.ingest(data, PROJECT, filename="DSC_0042.JPG").image

    assert (image.format, image.mime, image.width, image.height) == ("JPEG", "image/jpeg", 320, 240)
    assert close(rgb(open_blob(embedded.blobs, "thumb", image.sha256), (160, 120)), GREEN)


def test_png_with_alpha_is_shown_on_white(embedded: Embedded) -> None:
    im = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    im.paste((*RED, 255), (0, 0, 100, 100))

    image = embedded.ingestor.ingest(encode(im, "PNG"), PROJECT, filename="logo.png").image

    thumb = open_blob(embedded.blobs, "thumb", image.sha256)
    assert (image.width, image.height) == (200, 100)
    assert close(rgb(thumb, (50, 50)), RED)
    assert close(rgb(thumb, (150, 50)), (255, 255, 255), tolerance=6)


def test_16_bit_greyscale_png_keeps_its_brightness(embedded: Embedded) -> None:
    im = Image.new("I;16", (120, 80), 40000)  # 40000 / 65535 of full scale
    data = encode(im, "PNG")
    with Image.open(io.BytesIO(data)) as probe:
        assert probe.mode.startswith("I")

    image = embedded.ingestor.ingest(data, PROJECT, filename="scan16.png").image

    thumb = open_blob(embedded.blobs, "thumb", image.sha256)
    assert (image.width, image.height) == (120, 80)
    assert close(rgb(thumb, (60, 40)), (156, 156, 156), tolerance=3)


def test_heic_ingests_with_a_jpeg_thumbnail(embedded: Embedded) -> None:
    upright = Image.new("RGB", (320, 200), RED)
    upright.paste(BLUE, (160, 0, 320, 200))
    data = heif_bytes(upright)
    if data is None:
        pytest.skip("this pillow_heif/libheif build cannot encode HEIF, so no HEIC can be made")

    image = embedded.ingestor.ingest(data, PROJECT, filename="IMG_1234.HEIC").image

    assert (image.format, image.mime, image.width, image.height) == ("HEIF", "image/heif", 320, 200)
    assert embedded.blobs.path("original", image.sha256).read_bytes() == data
    thumb = open_blob(embedded.blobs, "thumb", image.sha256)
    assert (thumb.format, thumb.size) == ("JPEG", (320, 200))
    assert close(rgb(thumb, (60, 100)), RED)
    assert close(rgb(thumb, (260, 100)), BLUE)


@cache
def phone_heic(orientation: int, thumbnail_px: int | None) -> bytes | None:
    """A HEIC whose upright view is the 1200×900 `QUADRANTS` picture, stored turned for `orientation`.

    As phones write it: the HEVC image stored as the sensor saw it and turned by the file's `irot`/`imir`
    (pillow-heif writes those from the EXIF orientation), EXIF make, model and capture time, and a
    `thumbnail_px` thumbnail item (iPhones: 320 px; one of 512 px is large enough for a 480-px thumbnail).
    """
    tiny = Image.new("RGB", (2, 2))
    for (x, y), name in zip([(0, 0), (1, 0), (0, 1), (1, 1)], QUADRANTS, strict=True):
        tiny.putpixel((x, y), QUADRANTS[name])
    stored = stored_raster(tiny, orientation).resize((1200, 900) if orientation <= 4 else (900, 1200))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F], exif[0x0110] = "Apple", "iPhone 15"
    exif.get_ifd(0x8769)[0x9003] = "2024:05:17 14:03:00"
    try:
        # x265's fastest preset: the same file format in a second instead of several.
        return encode(
            stored,
            "HEIF",
            quality=90,
            exif=exif.tobytes(),
            thumbnails=[thumbnail_px] if thumbnail_px else [],
            enc_params={"preset": "ultrafast"},
        )
    except Exception:  # no HEVC encoder in this libheif build
        return None


@pytest.mark.parametrize(("orientation", "thumbnail_px"), [(1, 512), (6, 512), (1, 320), (8, 320), (1, None)])
def test_a_phone_heic_ingests_upright_with_its_exif(embedded: Embedded, orientation: int, thumbnail_px: int) -> None:
    data = phone_heic(orientation, thumbnail_px)
    if data is None:
        pytest.skip("this pillow_heif/libheif build cannot encode HEIF, so no HEIC can be made")
    image = embedded.ingestor.ingest(data, PROJECT, filename="IMG_0001.HEIC").image
    assert embedded.ingestor.previews.wait_idle(timeout_s=60)

    assert (image.format, image.width, image.height) == ("HEIF", 1200, 900)
    taken = image.captured_at[:19]
    assert (image.camera_make, image.camera_model, taken) == ("Apple", "iPhone 15", "2024-05-17T14:03:00")
    for kind, size in (("thumb", (480, 360)), ("preview", (1200, 900))):
        shown = open_blob(embedded.blobs, kind, image.sha256)
        assert shown.size == size, kind
        colours = quadrant_colours(shown)
        assert all(close(colours[q], QUADRANTS[q]) for q in QUADRANTS), (kind, colours)


@pytest.mark.parametrize(("thumbnail_px", "deferred"), [(512, True), (320, False), (None, False)])
def test_a_heic_is_published_by_its_thumbnail_item_when_that_is_large_enough(thumbnail_px: int, deferred: bool) -> None:
    from dashboard.imaging.decode import analyze  # (the ingestor decodes in its workers, where this runs)

    data = phone_heic(6, thumbnail_px)
    if data is None:
        pytest.skip("this pillow_heif/libheif build cannot encode HEIF, so no HEIC can be made")

    analysis = analyze(data, "IMG_0001.HEIC", thumb_only=True)

    # With a 512-px item the HEVC image is left for the preview; a smaller item cannot make the tile, so one
    # decode makes both at once (a second decode for the preview would double the cost).
    assert (analysis.preview_jpeg is None) is deferred
    assert (analysis.width, analysis.height) == (1200, 900)
    with Image.open(io.BytesIO(analysis.thumb_jpeg)) as thumb:
        assert thumb.size == (480, 360)
        colours = quadrant_colours(thumb)
    assert all(close(colours[q], QUADRANTS[q]) for q in QUADRANTS), colours


# -- orientation and sizes --------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_shown_upright(embedded: Embedded, orientation: int) -> None:
    data = oriented_jpeg(orientation, upright_size=(240, 160))

    image = embedded.ingestor.ingest(data, PROJECT, filename=f"o{orientation}.jpg").image

    assert (image.width, image.height) == (240, 160)
    for kind in ("thumb", "preview"):
        shown = open_blob(embedded.blobs, kind, image.sha256)
        assert shown.size == (240, 160), kind  # small images are not blown up
        assert shown.getexif().get(0x0112, 1) == 1, "a browser would rotate it a second time"
        colours = quadrant_colours(shown)
        assert all(close(colours[q], QUADRANTS[q]) for q in QUADRANTS), (kind, colours)


@pytest.mark.parametrize("orientation", [1, 6, 8])
def test_thumb_and_preview_of_a_large_image(embedded: Embedded, orientation: int) -> None:
    data = oriented_jpeg(orientation, upright_size=(3000, 2000))

    image = embedded.ingestor.ingest(data, PROJECT, filename="large.jpg").image
    embedded.ingestor.previews.wait_idle()  # a large JPEG's preview is made after it is published

    assert (image.width, image.height) == (3000, 2000)
    # Halving 3000 px once gives 1500, under 1600: the preview is scaled to 2048 instead.
    for kind, edge in (("thumb", 480), ("preview", 2048)):
        shown = open_blob(embedded.blobs, kind, image.sha256)
        assert shown.size[0] == edge, kind
        assert abs(shown.size[1] - edge * 2 / 3) <= 1, kind
        colours = quadrant_colours(shown)
        assert all(close(colours[q], QUADRANTS[q]) for q in QUADRANTS), (kind, colours)


@pytest.mark.parametrize(
    ("size", "preview_size"),
    [
        ((4000, 3000), (2000, 1500)),  # 12 MP: halved while decoding, never resampled
        ((6000, 4000), (2048, 1365)),  # 24 MP: 1500 would be too small, so 3000 is scaled to 2048
        ((8256, 5504), (2064, 1376)),  # 45 MP: a quarter
        ((2400, 1600), (2400, 1600)),  # small enough as it is
        ((1200, 800), (1200, 800)),  # never enlarged
    ],
)
def test_the_preview_is_the_image_halved_until_it_fits(
    embedded: Embedded, size: tuple[int, int], preview_size: tuple[int, int]
) -> None:
    image = embedded.ingestor.ingest(jpeg_bytes(size), PROJECT, filename="shot.jpg").image
    embedded.ingestor.previews.wait_idle()

    assert open_blob(embedded.blobs, "preview", image.sha256).size == preview_size
    assert max(open_blob(embedded.blobs, "thumb", image.sha256).size) == min(480, max(size))


def test_a_png_preview_is_halved_too(embedded: Embedded) -> None:
    image = embedded.ingestor.ingest(png_bytes((4000, 2000)), PROJECT, filename="pano.png").image

    assert open_blob(embedded.blobs, "preview", image.sha256).size == (2000, 1000)


def test_a_portrait_image_keeps_the_long_edge_limits(embedded: Embedded) -> None:
    image = embedded.ingestor.ingest(jpeg_bytes((1000, 2400)), PROJECT, filename="tall.jpg").image

    assert (image.width, image.height) == (1000, 2400)
    assert open_blob(embedded.blobs, "thumb", image.sha256).size == (200, 480)
    assert open_blob(embedded.blobs, "preview", image.sha256).size == (1000, 2400)


# -- the camera's embedded preview --------------------------------------------------------------


def test_a_camera_preview_is_used_instead_of_decoding_the_whole_image(embedded: Embedded) -> None:
    primary = oriented_jpeg(1, upright_size=(4000, 3000))
    data = with_camera_preview(primary, edge_px=1920)
    with Image.open(io.BytesIO(data)) as probe:
        probe.seek(1)
        embedded_preview = data[probe.offset :]

    image = embedded.ingestor.ingest(data, PROJECT, filename="DSC01234.JPG").image

    assert (image.format, image.width, image.height) == ("JPEG", 4000, 3000)
    assert embedded.blobs.path("original", image.sha256).read_bytes() == data
    # The camera's preview is kept as it is: right size, upright, and fully decoded for the thumbnail.
    assert embedded.blobs.path("preview", image.sha256).read_bytes() == embedded_preview
    thumb = open_blob(embedded.blobs, "thumb", image.sha256)
    assert thumb.size == (480, 360)
    colours = quadrant_colours(thumb)
    assert all(close(colours[q], QUADRANTS[q]) for q in QUADRANTS), colours


@pytest.mark.parametrize("orientation", [6, 8])
def test_a_camera_preview_of_a_turned_camera_is_made_upright(embedded: Embedded, orientation: int) -> None:
    data = with_camera_preview(oriented_jpeg(orientation, upright_size=(3000, 4000)), edge_px=1920)

    image = embedded.ingestor.ingest(data, PROJECT, filename="DSC01235.JPG").image

    assert (image.width, image.height) == (3000, 4000)
    for kind, size in (("preview", (1440, 1920)), ("thumb", (360, 480))):
        shown = open_blob(embedded.blobs, kind, image.sha256)
        assert shown.size == size, kind
        colours = quadrant_colours(shown)
        assert all(close(colours[q], QUADRANTS[q]) for q in QUADRANTS), (kind, colours)


@pytest.mark.parametrize(
    "preview_size",
    [(640, 480), (1920, 1080)],  # too small to be the preview; not the shape of the photo (a crop)
)
def test_a_camera_preview_that_cannot_stand_in_is_ignored(embedded: Embedded, preview_size: tuple[int, int]) -> None:
    primary = encode(Image.new("RGB", (4000, 3000), GREEN), "JPEG")
    data = with_camera_preview(primary, preview=Image.new("RGB", preview_size, RED))

    image = embedded.ingestor.ingest(data, PROJECT, filename="DSC01236.JPG").image
    embedded.ingestor.previews.wait_idle()

    preview = open_blob(embedded.blobs, "preview", image.sha256)
    assert preview.size == (2000, 1500)
    assert close(rgb(preview, (1000, 750)), GREEN)


def test_a_camera_jpeg_cut_short_is_refused(embedded: Embedded) -> None:
    data = with_camera_preview(oriented_jpeg(1, upright_size=(4000, 3000)), edge_px=1920)

    with pytest.raises(CorruptImage) as refused:
        embedded.ingestor.ingest(data[: len(data) - 5000], PROJECT, filename="cut.JPG")

    assert refused.value.filename == "cut.JPG"
    assert_nothing_stored(embedded)


# -- EXIF -------------------------------------------------------------------------------------


def exif_jpeg(tags: dict[int, str], exif_ifd: dict[int, str]) -> bytes:
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[tag] = value
    for tag, value in exif_ifd.items():
        exif.get_ifd(0x8769)[tag] = value
    return encode(Image.new("RGB", (64, 48), GREEN), "JPEG", exif=exif.tobytes())


@pytest.mark.parametrize(
    ("tags", "exif_ifd", "expected"),
    [
        ({}, {0x9003: "2024:05:17 14:03:09"}, "2024-05-17T14:03:09"),
        ({}, {0x9003: "2024:05:17 14:03:09", 0x9011: "+02:00"}, "2024-05-17T14:03:09+02:00"),
        ({0x0132: "2023:01:02 03:04:05"}, {}, "2023-01-02T03:04:05"),  # DateTime when no DateTimeOriginal
        ({0x0132: "2023:01:02 03:04:05"}, {0x9003: "2024:05:17 14:03:09"}, "2024-05-17T14:03:09"),
    ],
    ids=["original", "with-offset", "datetime-fallback", "original-wins"],
)
def test_capture_time_from_exif(
    embedded: Embedded, tags: dict[int, str], exif_ifd: dict[int, str], expected: str
) -> None:
    image = embedded.ingestor.ingest(exif_jpeg(tags, exif_ifd), PROJECT, filename="x.jpg").image

    assert image.captured_at == expected


def test_capture_time_falls_back_to_the_file_mtime(embedded: Embedded, tmp_path: Path) -> None:
    path = tmp_path / "no-exif.png"
    path.write_bytes(png_bytes())
    os.utime(path, (1_700_000_000, 1_700_000_000))

    image = embedded.ingestor.ingest(path, PROJECT).image

    assert image.filename == "no-exif.png"
    assert image.captured_at == "2023-11-14T22:13:20Z"


def test_an_upload_without_exif_is_captured_when_received(embedded: Embedded) -> None:
    image = embedded.ingestor.ingest(png_bytes(), PROJECT, filename="upload.png").image

    assert image.captured_at == image.created_at


def test_camera_make_and_model_are_read(embedded: Embedded) -> None:
    data = jpeg_bytes(make="FUJIFILM", model="X-T5", taken="2024:05:17 14:03:09")

    image = embedded.ingestor.ingest(data, PROJECT, filename="DSCF0001.JPG").image

    assert (image.camera_make, image.camera_model) == ("FUJIFILM", "X-T5")
    assert embedded.store.get_image(image.id) == image


def test_no_camera_when_exif_has_none(embedded: Embedded) -> None:
    image = embedded.ingestor.ingest(png_bytes(), PROJECT, filename="render.png").image

    assert (image.camera_make, image.camera_model) == (None, None)


# -- duplicates -------------------------------------------------------------------------------


def test_ingesting_the_same_bytes_twice_is_idempotent(embedded: Embedded, published: list[tuple[str, int]]) -> None:
    data = jpeg_bytes(taken="2024:05:17 14:03:09")
    first = embedded.ingestor.ingest(data, PROJECT, filename="a.jpg")

    again = embedded.ingestor.ingest(data, PROJECT, filename="copy of a.jpg")

    assert first.created and not again.created
    assert again.image == first.image
    assert embedded.store.count_images(PROJECT) == 1
    assert [c.seq for c in embedded.store.changes(PROJECT)] == [1]
    assert published == [(PROJECT, 1)]
    assert len(blob_files(embedded.blobs.root)) == 3


def test_the_same_bytes_in_another_project_is_a_new_image(embedded: Embedded, published: list[tuple[str, int]]) -> None:
    embedded.store.ensure_project("wedding")
    data = png_bytes()
    first = embedded.ingestor.ingest(data, PROJECT, filename="a.png")

    other = embedded.ingestor.ingest(data, "wedding", filename="a.png")

    assert other.created
    assert other.image.id != first.image.id
    assert (other.image.project, other.image.seq) == ("wedding", 1)
    assert published == [(PROJECT, 1), ("wedding", 1)]


# -- refusals ---------------------------------------------------------------------------------


def truncated(data: bytes, keep: float) -> bytes:
    return data[: int(len(data) * keep)]


REFUSALS: list[tuple[str, Callable[[], bytes], type[IngestError], str, Limits]] = [
    ("empty.jpg", lambda: b"", EmptyFile, "empty", Limits()),
    ("huge.jpg", lambda: jpeg_bytes((200, 200)), TooLarge, "over the limit of 1000 bytes", Limits(max_bytes=1000)),
    ("notes.txt", lambda: b"Shot list:\n1. bride\n2. groom\n" * 20, NotAnImage, "not an image", Limits()),
    ("noise.jpg", lambda: random.Random(7).randbytes(4096), NotAnImage, "not an image", Limits()),
    ("scan.bmp", lambda: encode(Image.new("RGB", (64, 48), RED), "BMP"), UnsupportedFormat, "BMP", Limits()),
    ("favicon.ico", lambda: encode(Image.new("RGB", (32, 32), RED), "ICO"), UnsupportedFormat, "ICO", Limits()),
    ("frame.ppm", lambda: encode(Image.new("RGB", (32, 32), RED), "PPM"), UnsupportedFormat, "PPM", Limits()),
    ("cut.jpg", lambda: truncated(encode(noise((200, 200)), "JPEG"), 0.5), CorruptImage, "truncated", Limits()),
    ("cut.png", lambda: truncated(encode(noise((200, 200)), "PNG"), 0.6), CorruptImage, "truncated", Limits()),
    ("bomb.png", lambda: png_bomb(20_000, 20_000), TooManyPixels, "bomb", Limits()),
    ("bigger-bomb.png", lambda: png_bomb(30_000, 30_000), TooManyPixels, "bomb", Limits()),
    (
        "poster.png",
        lambda: png_bytes((50, 50)),
        TooManyPixels,
        "50x50 pixels is over the limit of 1000",
        Limits(max_pixels=1000),
    ),
]


@pytest.mark.parametrize(("filename", "make", "error", "reason", "limits"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_bad_input_is_refused_with_a_reason_and_nothing_is_stored(
    embedded: Embedded,
    published: list[tuple[str, int]],
    filename: str,
    make: Callable[[], bytes],
    error: type[IngestError],
    reason: str,
    limits: Limits,
) -> None:
    ingestor = Ingestor(embedded.store, embedded.blobs, embedded.bus, limits)

    with pytest.raises(error) as refused:
        ingestor.ingest(make(), PROJECT, filename=filename)

    assert refused.value.filename == filename
    assert str(refused.value).startswith(f"{filename}: ")
    assert reason in refused.value.reason
    assert refused.value.to_dict() == {"filename": filename, "code": error.code, "reason": refused.value.reason}
    assert_nothing_stored(embedded)
    assert published == []

    # The ingestor keeps working for the next good file.
    good = ingestor.ingest(png_bytes((16, 16)), PROJECT, filename="next.png")
    assert good.created
    assert embedded.store.count_images(PROJECT) == 1
    assert published == [(PROJECT, 1)]


def test_the_decompression_bombs_are_small_files() -> None:
    # They must stay cheap to receive: the danger is in decoding, which the refusal prevents.
    assert len(png_bomb(20_000, 20_000)) < 100_000
    assert len(png_bomb(30_000, 30_000)) < 200_000


def test_refusals_from_disk_name_the_file(embedded: Embedded, tmp_path: Path) -> None:
    text = tmp_path / "shot list.txt"
    text.write_text("not a photo")
    big = tmp_path / "too big.jpg"
    big.write_bytes(jpeg_bytes((300, 300)))
    empty = tmp_path / "zero.jpg"
    empty.touch()
    ingestor = Ingestor(embedded.store, embedded.blobs, embedded.bus, Limits(max_bytes=2000))

    for path, error in ((text, NotAnImage), (big, TooLarge), (empty, EmptyFile)):
        with pytest.raises(error, match=f"^{re.escape(path.name)}: "):
            ingestor.ingest(path, PROJECT)
    with pytest.raises(IngestError, match=r"^missing\.jpg: cannot be read"):
        ingestor.ingest(tmp_path / "missing.jpg", PROJECT)

    assert_nothing_stored(embedded)


def test_names_from_disk_are_cleaned_like_upload_names(
    embedded: Embedded, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fotoflo")
    forged = tmp_path / "IMG_1.jpg\n2026-12-06 INFO fotoflo.auth: owner signed in"
    forged.write_bytes(distinct_jpeg(1))
    swapped = tmp_path / "IMG_2\u202egpj.exe"
    swapped.write_bytes(distinct_jpeg(2))
    card = tmp_path / "card"
    card.mkdir()
    (card / "IMG_3\r\n.jpg").write_bytes(distinct_jpeg(3))

    one = embedded.ingestor.ingest(forged, PROJECT).image
    two = embedded.ingestor.ingest(swapped, PROJECT).image
    stats = embedded.ingestor.ingest_many(sorted(card.iterdir()), PROJECT, workers=1)

    assert one.filename == "IMG_1.jpg 2026-12-06 INFO fotoflo.auth: owner signed in"
    assert two.filename == "IMG_2gpj.exe"
    assert stats.created == 1
    assert [i.filename for i in embedded.store.list_images(PROJECT, limit=10)] == [
        "IMG_3  .jpg",  # \r and \n are one space each
        two.filename,
        one.filename,
    ]
    assert not [r.getMessage() for r in caplog.records if "\n" in r.getMessage() or "\u202e" in r.getMessage()]


def test_a_small_limit_on_one_ingestor_does_not_refuse_for_another(embedded: Embedded) -> None:
    strict = Ingestor(embedded.store, embedded.blobs, embedded.bus, Limits(max_pixels=1000))

    result = embedded.ingestor.ingest(jpeg_bytes((640, 480)), PROJECT, filename="normal.jpg")

    assert result.created
    with pytest.raises(TooManyPixels):
        strict.ingest(jpeg_bytes((640, 480), color=(1, 2, 3)), PROJECT, filename="normal2.jpg")


# -- bulk import ------------------------------------------------------------------------------


def test_ingest_many_counts_created_duplicates_and_refusals(
    embedded: Embedded, published: list[tuple[str, int]], tmp_path: Path
) -> None:
    folder = tmp_path / "card"
    folder.mkdir()
    for n in range(4):
        (folder / f"IMG_{n}.jpg").write_bytes(distinct_jpeg(n))
    (folder / "IMG_0 copy.jpg").write_bytes(distinct_jpeg(0))  # the same shot twice in one batch
    (folder / "already.jpg").write_bytes(distinct_jpeg(9))
    (folder / "README.txt").write_text("not a photo")
    (folder / "cut.jpg").write_bytes(truncated(encode(noise((120, 120)), "JPEG"), 0.5))
    embedded.ingestor.ingest(distinct_jpeg(9), PROJECT, filename="earlier.jpg")
    paths = sorted(folder.iterdir())
    outcomes: dict[str, object] = {}

    stats = embedded.ingestor.ingest_many(
        paths, PROJECT, workers=2, on_result=lambda p, o: outcomes.update({p.name: o})
    )

    assert (stats.created, stats.duplicates) == (4, 2)
    assert len(stats.refused) == 2
    assert {e.filename: type(e) for e in stats.refused} == {"README.txt": NotAnImage, "cut.jpg": CorruptImage}
    assert isinstance(outcomes["README.txt"], NotAnImage)
    copy, first = outcomes["IMG_0 copy.jpg"], outcomes["IMG_0.jpg"]
    assert isinstance(copy, IngestResult) and isinstance(first, IngestResult)
    assert copy.image.id == first.image.id
    assert sorted([copy.created, first.created]) == [False, True]
    assert set(outcomes) == {p.name for p in paths}
    assert embedded.store.count_images(PROJECT) == 5
    assert [c.seq for c in embedded.store.changes(PROJECT)] == [1, 2, 3, 4, 5]
    assert [seq for _, seq in published] == [1, 2, 3, 4, 5]
    for image in embedded.store.list_images(PROJECT):
        assert all(embedded.blobs.exists(kind, image.sha256) for kind in KINDS)


# -- crash safety -----------------------------------------------------------------------------

#: Run in a child process: ingest one file and die with exit code 9 at the named step.
CRASHING_INGEST = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path

    from dashboard.blobs import FileBlobs
    from dashboard.bus import LocalBus
    from dashboard.ingest import Ingestor
    from dashboard.store.sqlite import SQLiteStore

    data, step, source = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    store = SQLiteStore(data / "fotoflo.sqlite")
    store.ensure_project("default")
    blobs = FileBlobs(data / "blobs")
    bus = LocalBus()

    def die():
        os._exit(9)

    when, _, what = step.partition(":")
    if when == "after-put":
        put = FileBlobs.put
        def put_then_die(self, kind, sha256, body):
            put(self, kind, sha256, body)
            if kind == what:
                die()
        FileBlobs.put = put_then_die
    elif when == "before-rename":
        rename = os.replace
        def die_before_rename(src, dst):
            if Path(dst).parent.parent.name == what:
                die()
            rename(src, dst)
        os.replace = die_before_rename
    elif when == "before-sql":
        class DyingConnection:
            def __init__(self, conn):
                self._conn = conn
            def execute(self, sql, *args):
                if sql.lstrip().upper().startswith(what):
                    die()
                return self._conn.execute(sql, *args)
            def __getattr__(self, name):
                return getattr(self._conn, name)
        store._writer = DyingConnection(store._writer)
    elif when == "after-commit":
        bus.subscribe(lambda project, seq: die())
    else:
        raise SystemExit(f"unknown step {step}")

    Ingestor(store, blobs, bus).ingest(source, "default")
    """
)

CRASH_STEPS = {
    # step: (committed, temp files left behind)
    "after-put:original": (False, 0),
    "after-put:preview": (False, 0),
    "after-put:thumb": (False, 0),
    "before-rename:original": (False, 1),
    "before-rename:thumb": (False, 1),
    "before-sql:INSERT INTO IMAGES": (False, 0),
    "before-sql:INSERT INTO CHANGES": (False, 0),  # the image row is written, its feed entry is not
    "before-sql:COMMIT": (False, 0),
    "after-commit": (True, 0),
}


@pytest.mark.parametrize("step", CRASH_STEPS)
def test_a_kill_between_steps_leaves_no_half_image(tmp_path: Path, step: str) -> None:
    committed, temps_left = CRASH_STEPS[step]
    data_dir = tmp_path / "data"
    source = tmp_path / "IMG_0001.jpg"
    source.write_bytes(jpeg_bytes((800, 600), taken="2024:05:17 14:03:09"))
    original = source.read_bytes()
    sha = sha256_of(original)

    child = subprocess.run(
        [sys.executable, "-c", CRASHING_INGEST, str(data_dir), step, str(source)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 9, f"the child did not die at {step}:\n{child.stderr}"

    store = SQLiteStore(data_dir / "fotoflo.sqlite")
    try:
        blobs = FileBlobs(data_dir / "blobs")
        images = store.list_images(PROJECT)
        feed = store.changes(PROJECT)
        if committed:
            assert [i.sha256 for i in images] == [sha]
            assert [(c.seq, c.image) for c in feed] == [(1, images[0])]
        else:
            assert (images, feed, store.last_seq(PROJECT), store.count_images(PROJECT)) == ([], [], 0, 0)
        for image in images:
            assert all(blobs.exists(kind, image.sha256) for kind in KINDS)
        # A blob under its final name is always whole: a crash leaves at most a temp file.
        for path in blob_files(blobs.root):
            if ".tmp-" in path.name:
                continue
            if path.parent.parent.name == "original":
                assert path.read_bytes() == original
            else:
                assert open_blob(blobs, path.parent.parent.name, path.name).format == "JPEG"

        # The next start cleans up, and the same file then ingests completely.
        assert blobs.clean_temp() == temps_left
        assert not list(blobs.root.rglob("*.tmp-*"))
        bus = LocalBus()
        announced: list[int] = []
        bus.subscribe(lambda project, seq: announced.append(seq))
        result = Ingestor(store, blobs, bus).ingest(source, PROJECT)
        assert result.created is not committed
        assert announced == ([] if committed else [1])
        assert [c.seq for c in store.changes(PROJECT)] == [1]
        assert all(blobs.exists(kind, sha) for kind in KINDS)
        assert blobs.path("original", sha).read_bytes() == original
    finally:
        store.close()


# -- camera RAW ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("preview_scale", "orientation"), [(1, 1), (2, 1), (1, 6)])
def test_a_raw_file_is_shown_by_its_embedded_preview(
    embedded: Embedded, published: list[tuple[str, int]], preview_scale: int, orientation: int
) -> None:
    data = raw_dng(2400, 1600, preview_scale=preview_scale, orientation=orientation, captured="2026:11:20 14:03:09")

    image = embedded.ingestor.ingest(data, PROJECT, filename="DSC_0001.DNG").image

    upright = (1600, 2400) if orientation == 6 else (2400, 1600)
    assert (image.format, image.mime, (image.width, image.height)) == ("DNG", "image/x-adobe-dng", upright)
    assert image.captured_at == "2026-11-20T14:03:09"
    assert image.camera_make is not None
    assert embedded.blobs.path("original", image.sha256).read_bytes() == data
    preview = open_blob(embedded.blobs, "preview", image.sha256)
    shown = (2400 // preview_scale, 1600 // preview_scale)
    assert preview.size == ((shown[1], shown[0]) if orientation == 6 else shown)
    assert max(open_blob(embedded.blobs, "thumb", image.sha256).size) == 480
    assert published == [(PROJECT, 1)]


def test_a_raw_file_cut_short_is_refused_and_nothing_is_stored(embedded: Embedded) -> None:
    data = raw_dng(1200, 800)

    with pytest.raises(CorruptImage) as refused:
        embedded.ingestor.ingest(data[: len(data) // 2], PROJECT, filename="DSC_0002.DNG")

    assert refused.value.filename == "DSC_0002.DNG"
    assert "truncated" in refused.value.reason
    assert_nothing_stored(embedded)


def test_raw_files_go_through_the_bulk_pool(embedded: Embedded, tmp_path: Path) -> None:
    # LibRaw used here first, then the pool forks: rawpy's fork warning must not fail the workers.
    embedded.ingestor.ingest(raw_dng(1200, 800, seed=1), PROJECT, filename="first.DNG")
    paths = []
    for seed in (2, 3):
        path = tmp_path / f"DSC_000{seed}.DNG"
        path.write_bytes(raw_dng(1200, 800, seed=seed))
        paths.append(path)

    stats = embedded.ingestor.ingest_many(paths, PROJECT, workers=2)

    assert (stats.created, stats.duplicates, stats.refused) == (2, 0, [])
    assert {i.format for i in embedded.store.list_images(PROJECT, limit=10)} == {"DNG"}


# -- commits in arrival order (the hot folder's turns) -------------------------------------------------


def test_ingests_in_turns_commit_in_ticket_order_whichever_finishes_first(embedded: Embedded) -> None:
    """A big file that arrived first is published before the small ones behind it, though they decode sooner."""
    turns = Turns()
    published: list[int] = []
    embedded.bus.subscribe(lambda project, seq: published.append(seq))
    files = [jpeg_bytes((3000, 2000), seed=1), jpeg_bytes((32, 24), seed=2), jpeg_bytes((32, 24), seed=3)]
    tickets = [turns.take() for _ in files]
    refused_turn = turns.take()  # a refusal in the middle hands its turn on
    late = [jpeg_bytes((32, 24), seed=4)]
    tickets.append(turns.take())
    files += late

    def run(data: bytes, n: int) -> None:
        with tickets[n]:
            embedded.ingestor.ingest(data, "default", filename=f"{n}.jpg")

    threads = [threading.Thread(target=run, args=(data, n)) for n, data in enumerate(files)]
    for thread in reversed(threads):
        thread.start()
    with refused_turn:
        pass
    for thread in threads:
        thread.join(timeout=60)
    names = [i.filename for i in reversed(embedded.store.list_images("default", limit=10))]
    assert names == ["0.jpg", "1.jpg", "2.jpg", "3.jpg"]
    assert published == sorted(published) and len(published) == 4


# -- the original written while its decode runs -------------------------------------------------


class FailingWhenTold:
    """A decoder pool (the real one) that, for a file named `fails.jpg`, waits until told and then fails."""

    def __init__(self, real: object) -> None:
        self.real = real
        self.size = 1
        self.waiting = threading.Event()
        self.go = threading.Event()

    def analyze(self, data: bytes, filename: str, *args: object, **kwargs: object) -> object:
        if filename == "fails.jpg":
            self.waiting.set()
            assert self.go.wait(30)
            raise DecoderFailed(filename, "the decoder took longer than 1 s and was stopped")
        return self.real.analyze(data, filename, *args, **kwargs)  # type: ignore[attr-defined]


def test_a_failed_decode_never_deletes_an_original_an_image_has(embedded: Embedded) -> None:
    """The same bytes arrive twice at once; the one whose decode fails (under load) leaves the other its original."""
    data = jpeg_bytes((640, 480), seed=7)
    pool = FailingWhenTold(embedded.ingestor.decoders)
    embedded.ingestor.decoders = pool  # type: ignore[assignment]
    failed: list[BaseException] = []

    def ingest_failing() -> None:
        try:
            embedded.ingestor.ingest(data, PROJECT, filename="fails.jpg")
        except DecoderFailed as exc:
            failed.append(exc)

    failing = threading.Thread(target=ingest_failing)
    failing.start()
    assert pool.waiting.wait(30)  # its original is being written while it "decodes"
    image = embedded.ingestor.ingest(data, PROJECT, filename="first.jpg").image
    pool.go.set()
    failing.join(timeout=30)

    assert len(failed) == 1
    assert embedded.store.get_image(image.id) == image
    assert embedded.blobs.path("original", image.sha256).read_bytes() == data
    assert not [p for p in blob_files(embedded.blobs.root) if ".tmp-" in p.name]


def test_a_refused_file_leaves_no_original_behind(embedded: Embedded) -> None:
    pool = FailingWhenTold(embedded.ingestor.decoders)
    pool.go.set()
    embedded.ingestor.decoders = pool  # type: ignore[assignment]

    with pytest.raises(DecoderFailed):
        embedded.ingestor.ingest(jpeg_bytes((640, 480), seed=8), PROJECT, filename="fails.jpg")

    assert_nothing_stored(embedded)
