"""Sample images and projects that look like a real shoot: for demos, notebooks, tests, benchmarks.

`photo_jpeg` draws a small landscape with camera EXIF; `seed_project` fills a project with many
images fast (one real ingest, its files linked under many hashes), for paging and scale checks.
"""

from __future__ import annotations

import io
import os
import random
import struct
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFilter

from dashboard.blobs import FileBlobs
from dashboard.events import ImageRecord, new_id
from dashboard.imaging.decode import analyze
from dashboard.store.sqlite import SQLiteStore
from dashboard.timeutil import utc_now_iso


def photo_jpeg(
    seed: int,
    size: tuple[int, int] = (1200, 800),
    *,
    exif: bool = True,
    captured: str | None = None,
    iso: int = 400,
    focal_length_mm: float = 33.0,
) -> bytes:
    """A photo-like JPEG: a sky gradient, hills, a sun, grain; camera EXIF when asked.

    `captured` is the EXIF DateTimeOriginal ("YYYY:MM:DD HH:MM:SS"; by default one derived from `seed`).
    """
    rng = random.Random(seed)
    w, h = size
    top = (rng.randrange(40, 120), rng.randrange(80, 160), rng.randrange(150, 240))
    bottom = (rng.randrange(200, 255), rng.randrange(120, 200), rng.randrange(60, 140))
    sky = Image.linear_gradient("L").resize((w, h))
    im = Image.composite(Image.new("RGB", (w, h), bottom), Image.new("RGB", (w, h), top), sky)
    draw = ImageDraw.Draw(im)
    sun = (rng.randrange(w // 6, 5 * w // 6), rng.randrange(h // 8, h // 2))
    r = rng.randrange(h // 14, h // 7)
    draw.ellipse((sun[0] - r, sun[1] - r, sun[0] + r, sun[1] + r), fill=(255, 236, 190))
    for layer in range(3):
        base = h * (0.55 + 0.12 * layer)
        shade = (20 + 25 * layer + rng.randrange(30), 50 + 20 * layer + rng.randrange(40), 40 + rng.randrange(30))
        points = [(0, h)] + [(x, base - rng.randrange(0, h // 6)) for x in range(0, w + 80, 80)] + [(w, h)]
        draw.polygon(points, fill=shade)
    im = im.filter(ImageFilter.GaussianBlur(2))
    noise = Image.effect_noise((w, h), 18).convert("RGB")
    im = Image.blend(im, noise, 0.06)
    out = io.BytesIO()
    extra = {}
    if exif:
        data = Image.Exif()
        data[0x010F] = "Fujifilm"
        data[0x0110] = "X-T5"
        ifd = data.get_ifd(0x8769)
        ifd[0x9003] = captured or f"2026:11:2{seed % 8} 1{seed % 10}:{seed % 60:02d}:{(seed * 7) % 60:02d}"
        ifd[0xA434] = "XF 33mm F1.4 R LM WR"
        ifd[0x829A] = 1 / 250
        ifd[0x829D] = 2.8
        ifd[0x8827] = iso
        ifd[0x920A] = focal_length_mm
        extra["exif"] = data.tobytes()
    im.save(out, "JPEG", quality=85, **extra)
    return out.getvalue()


def with_camera_preview(
    jpeg: bytes, edge_px: int = 1920, *, preview: Image.Image | None = None, quality: int = 85
) -> bytes:
    """`jpeg` with a screen-sized preview appended in an MPF segment, as Sony, Panasonic or Fujifilm write.

    The preview (by default the primary scaled to `edge_px`) is a second JPEG after the primary,
    listed in the primary's APP2 "MPF" index as a "Large Thumbnail (Full HD Equivalent)" (CIPA
    DC-007); the primary's EXIF is kept, the primary itself re-encoded at `quality`.
    """
    with Image.open(io.BytesIO(jpeg)) as im:
        exif = im.info.get("exif")
        primary = im.convert("RGB")
    if preview is None:
        preview = primary.copy()
        preview.thumbnail((edge_px, edge_px), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    extra = {"exif": exif} if exif else {}
    primary.save(out, "MPO", save_all=True, append_images=[preview], quality=quality, **extra)
    data = bytearray(out.getvalue())
    # Pillow marks appended frames "Undefined" (0); a camera marks its preview a large thumbnail.
    tiff = data.find(b"MPF\0") + 4  # the MP index is a little TIFF: header, then one IFD
    order = "<" if data[tiff : tiff + 2] == b"II" else ">"
    (ifd,) = struct.unpack_from(f"{order}L", data, tiff + 4)
    (count,) = struct.unpack_from(f"{order}H", data, tiff + ifd)
    for n in range(count):
        tag, _type, _count, value = struct.unpack_from(f"{order}HHLL", data, tiff + ifd + 2 + 12 * n)
        if tag == 0xB002:  # MP entries, 16 bytes each: the primary's, then the preview's
            struct.pack_into(f"{order}L", data, tiff + value + 16, 0x010002)
    return bytes(data)


def raw_dng(
    width: int = 4000,
    height: int = 3000,
    *,
    seed: int = 1,
    preview_scale: int = 1,
    orientation: int = 1,
    captured: str | None = None,
    iso: int = 400,
    focal_length_mm: float = 28.0,
    preview_jpeg: bytes | None = None,
) -> bytes:
    """A DNG as a camera writes it: IFD0 a baseline JPEG preview, a SubIFD the raw sensor data, EXIF.

    The preview is a `photo_jpeg` scene at 1/`preview_scale` of the size (1 or 2) and carries no EXIF;
    the raw is `width`×`height` (both even) uncompressed 16-bit RGGB Bayer samples mosaicked from
    that scene in linear light, so LibRaw develops it into the same picture. Make, model,
    `orientation` (EXIF 1–8) and DateTime are in IFD0; `captured` (DateTimeOriginal, by default
    derived from `seed` as in `photo_jpeg`), 1/250 s, f/2.8, `iso`, `focal_length_mm` and the lens
    in its Exif IFD. Little-endian, IFDs first, then the preview, then the raw data. `preview_jpeg`
    replaces the scene (a baseline JPEG of `width`/`preview_scale` × `height`/`preview_scale`).
    """
    if width % 2 or height % 2 or width < 2 or height < 2 or preview_scale not in (1, 2):
        raise ValueError("width and height must be even and preview_scale 1 or 2")
    taken = captured or f"2026:11:2{seed % 8} 1{seed % 10}:{seed % 60:02d}:{(seed * 7) % 60:02d}"
    preview = preview_jpeg or photo_jpeg(seed, (width // preview_scale, height // preview_scale), exif=False)
    with Image.open(io.BytesIO(preview)) as im:
        im.draft("RGB", (width // 2, height // 2))
        scene = im.convert("RGB").resize((width // 2, height // 2))
    # One scene pixel per 2×2 Bayer cell; each 8-bit channel becomes the low and high byte of a
    # linear 16-bit sample, so merging byte planes as RGBA interleaves whole sensor rows.
    linear = [round(65535 * (v / 255) ** 2.2) for v in range(256)]
    r_lo, r_hi, g_lo, g_hi, b_lo, b_hi = (
        channel.point([v & 0xFF for v in linear] if low else [v >> 8 for v in linear])
        for channel in scene.split()
        for low in (True, False)
    )
    red_rows = Image.merge("RGBA", (r_lo, r_hi, g_lo, g_hi)).tobytes()  # R G R G …
    blue_rows = Image.merge("RGBA", (g_lo, g_hi, b_lo, b_hi)).tobytes()  # G B G B …
    row_bytes = width * 2
    cfa = b"".join(
        rows[y : y + row_bytes] for y in range(0, len(red_rows), row_bytes) for rows in (red_rows, blue_rows)
    )

    def ifd(at: int, entries: dict[int, tuple[int, Any]]) -> bytes:
        """One IFD laid out at offset `at`: its 12-byte entries, then the values that do not fit in 4 bytes."""
        head = bytearray(struct.pack("<H", len(entries)))
        tail = bytearray()
        tail_at = at + 2 + 12 * len(entries) + 4
        for tag in sorted(entries):
            kind, value = entries[tag]
            if kind == 2:  # ASCII
                raw = value.encode("ascii") + b"\0"
                count = len(raw)
            elif kind in (1, 7):  # BYTE, UNDEFINED
                raw, count = bytes(value), len(value)
            elif kind in (5, 10):  # RATIONAL, SRATIONAL: pairs
                count = len(value)
                raw = struct.pack(f"<{2 * count}{'I' if kind == 5 else 'i'}", *(n for pair in value for n in pair))
            else:  # SHORT, LONG
                count = len(value)
                raw = struct.pack(f"<{count}{'H' if kind == 3 else 'I'}", *value)
            if len(raw) <= 4:
                head += struct.pack("<HHI", tag, kind, count) + raw.ljust(4, b"\0")
            else:
                head += struct.pack("<HHII", tag, kind, count, tail_at + len(tail))
                tail += raw + b"\0" * (len(raw) % 2)
        return bytes(head + b"\0\0\0\0" + tail)

    # XYZ (D65) → linear sRGB (IEC 61966-2-1): a sensor with sRGB primaries; white balance neutral.
    xyz_to_camera = (3.2406, -1.5372, -0.4986, -0.9689, 1.8758, 0.0415, 0.0557, -0.2040, 1.0570)

    def tags(exif_at: int, raw_at: int, preview_at: int, cfa_at: int) -> list[dict[int, tuple[int, Any]]]:
        pw, ph = width // preview_scale, height // preview_scale
        ifd0 = {
            0x00FE: (4, (1,)),  # NewSubFileType: a reduced-resolution copy (the preview)
            0x0100: (4, (pw,)),
            0x0101: (4, (ph,)),
            0x0102: (3, (8, 8, 8)),
            0x0103: (3, (7,)),  # JPEG
            0x0106: (3, (6,)),  # YCbCr
            0x010F: (2, "Leica Camera AG"),
            0x0110: (2, "LEICA Q3"),
            0x0111: (4, (preview_at,)),
            0x0112: (3, (orientation,)),
            0x0115: (3, (3,)),
            0x0116: (4, (ph,)),
            0x0117: (4, (len(preview),)),
            0x011C: (3, (1,)),
            0x0131: (2, "Fotoflo samples"),
            0x0132: (2, taken),
            0x014A: (4, (raw_at,)),  # SubIFDs
            0x0212: (3, (2, 2)),  # YCbCrSubSampling, as Pillow encodes at quality 85
            0x8769: (4, (exif_at,)),
            0xC612: (1, (1, 4, 0, 0)),  # DNGVersion
            0xC613: (1, (1, 1, 0, 0)),  # DNGBackwardVersion
            0xC614: (2, "LEICA Q3"),  # UniqueCameraModel
            0xC621: (10, tuple((round(v * 10000), 10000) for v in xyz_to_camera)),  # ColorMatrix1
            0xC628: (5, ((1, 1), (1, 1), (1, 1))),  # AsShotNeutral
            0xC65A: (3, (21,)),  # CalibrationIlluminant1: D65
            0xC71A: (4, (2,)),  # PreviewColorSpace: sRGB
        }
        exif = {
            0x829A: (5, ((1, 250),)),
            0x829D: (5, ((28, 10),)),
            0x8827: (3, (iso,)),
            0x9000: (7, b"0232"),
            0x9003: (2, taken),
            0x920A: (5, ((round(focal_length_mm * 10), 10),)),
            0xA434: (2, "Summilux 1:1.7/28 ASPH."),
        }
        raw = {
            0x00FE: (4, (0,)),  # the full-resolution image
            0x0100: (4, (width,)),
            0x0101: (4, (height,)),
            0x0102: (3, (16,)),
            0x0103: (3, (1,)),  # uncompressed
            0x0106: (3, (32803,)),  # CFA
            0x0111: (4, (cfa_at,)),
            0x0115: (3, (1,)),
            0x0116: (4, (height,)),
            0x0117: (4, (len(cfa),)),
            0x011C: (3, (1,)),
            0x828D: (3, (2, 2)),  # CFARepeatPatternDim
            0x828E: (1, (0, 1, 1, 2)),  # CFAPattern: RGGB
            0xC617: (3, (1,)),  # CFALayout: rectangular
            0xC61A: (4, (0,)),  # BlackLevel
            0xC61D: (4, (65535,)),  # WhiteLevel
        }
        return [ifd0, exif, raw]

    sizes = [len(ifd(0, entries)) for entries in tags(0, 0, 0, 0)]  # offsets never change a size
    exif_at = 8 + sizes[0]
    raw_at = exif_at + sizes[1]
    preview_at = raw_at + sizes[2]
    cfa_at = preview_at + len(preview) + len(preview) % 2
    ifd0, exif, raw = tags(exif_at, raw_at, preview_at, cfa_at)
    return b"".join((
        b"II*\0" + struct.pack("<I", 8),
        ifd(8, ifd0),
        ifd(exif_at, exif),
        ifd(raw_at, raw),
        preview + b"\0" * (len(preview) % 2),
        cfa,
    ))  # fmt: skip


#: Hard links made to one source file; ext4 refuses more than 65,000 (`OSError: Too many links`).
LINKS_PER_FILE = 60_000


def seed_project(data: Path, project: str, count: int) -> None:
    """Fill a project with `count` images fast: one real ingest's files, linked under many hashes.

    Each blob is a hard link to a template file; a fresh copy of the template is made every
    `LINKS_PER_FILE` images, so a project of any size can be seeded (100,000 in about 40 s here).
    """
    store = SQLiteStore(data / "fotoflo.sqlite")
    blobs = FileBlobs(data / "blobs")
    try:
        store.ensure_project(project)
        template = photo_jpeg(7, (600, 400), exif=False)
        analysis = analyze(template, "template.jpg")
        assert analysis.preview_jpeg is not None  # made at once unless asked for later
        payloads = {"original": template, "preview": analysis.preview_jpeg, "thumb": analysis.thumb_jpeg}
        now = utc_now_iso()
        sources: dict[str, Path] = {}
        for i in range(count):
            sha = f"{i:064x}"
            for kind, payload in payloads.items():
                if i % LINKS_PER_FILE == 0:
                    sources[kind] = data / "blobs" / f"seed-{kind}-{i // LINKS_PER_FILE}"
                    sources[kind].parent.mkdir(parents=True, exist_ok=True)
                    sources[kind].write_bytes(payload)
                target = blobs.path(kind, sha)
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists():
                    os.link(sources[kind], target)
            store.add_image(ImageRecord(
                id=new_id(), project=project, filename=f"IMG_{i:05d}.jpg", sha256=sha,
                size_bytes=len(template), width=600, height=400, format="JPEG", mime="image/jpeg",
                captured_at=now, camera_make=None, camera_model=None, created_at=now,
            ))  # fmt: skip
    finally:
        store.close()
