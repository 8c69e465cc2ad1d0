"""RAW files by content and by their embedded JPEG: sniffing, previews, EXIF, refusals, a small fuzz."""

from __future__ import annotations

import io
import random
import struct
import time

import pytest
import rawpy
from PIL import Image

from dashboard.imaging import raw_walk
from dashboard.imaging.errors import CorruptImage, IngestError, NotAnImage, UnsupportedFormat
from dashboard.imaging.raw import RawPreview, embedded_preview
from dashboard.imaging.raw_walk import sniff_raw
from dashboard.samples import photo_jpeg, raw_dng

WIDTH, HEIGHT = 1200, 800


@pytest.fixture(scope="module")
def dng() -> bytes:
    """A real DNG: a full-size JPEG preview in IFD0, 16-bit Bayer data in a SubIFD, turned 90° (EXIF 6)."""
    return raw_dng(WIDTH, HEIGHT, orientation=6, captured="2026:11:21 14:05:09", iso=800, focal_length_mm=28.0)


# -- building and patching files --------------------------------------------------------------


def entry(data: bytes | bytearray, ifd_at: int, tag: int) -> int:
    """Where the entry of `tag` is in the little-endian IFD at `ifd_at`."""
    (count,) = struct.unpack_from("<H", data, ifd_at)
    for pos in range(ifd_at + 2, ifd_at + 2 + 12 * count, 12):
        if struct.unpack_from("<H", data, pos)[0] == tag:
            return pos
    raise LookupError(hex(tag))


def with_long(data: bytes, ifd_at: int, tag: int, value: int) -> bytes:
    """`data` with the (inline, one-value) LONG or SHORT `tag` of an IFD set to `value`."""
    out = bytearray(data)
    pos = entry(out, ifd_at, tag)
    kind = struct.unpack_from("<H", out, pos + 2)[0]
    struct.pack_into("<H" if kind == 3 else "<I", out, pos + 8, value)
    return bytes(out)


def subifd_at(data: bytes) -> int:
    return struct.unpack_from("<I", data, entry(data, 8, 0x014A) + 8)[0]


def as_plain_tiff_raw(data: bytes, make: str) -> bytes:
    """The DNG made a maker's plain-TIFF RAW (as NEF, ARW, PEF are): no DNGVersion, another Make."""
    out = bytearray(data)
    struct.pack_into("<H", out, entry(out, 8, 0xC612), 0xC7FF)  # a private tag nobody reads
    old = b"Leica Camera AG\0"
    assert out.count(old) == 1 and len(make) < len(old)
    at = out.index(old)
    out[at : at + len(old)] = make.encode().ljust(len(old), b"\0")
    return bytes(out)


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def cr3(preview: bytes) -> bytes:
    """A CR3's structure as Canon writes it: CMT1 (IFD0) and CMT2 (Exif) TIFFs, a PRVW JPEG, then mdat."""
    ifd0 = Image.Exif()
    ifd0[0x010F], ifd0[0x0110], ifd0[0x0112] = "Canon", "Canon EOS R5", 8
    exif = Image.Exif()  # CMT2's first IFD holds the Exif tags
    exif[0x9003], exif[0x829A], exif[0x829D], exif[0x8827] = "2026:11:22 10:11:12", 1 / 500, 4.0, 1600
    meta = box(b"CNCV", b"CanonCR3_001/00.10.00/00.00.00") + box(b"CMT1", ifd0.tobytes()[6:])
    meta += box(b"CMT2", exif.tobytes()[6:])
    prvw = box(b"PRVW", struct.pack(">IHHHI", 0, 1620, 1080, 1, len(preview)) + preview)
    return b"".join((
        box(b"ftyp", b"crx \0\0\0\x01crx isom"),
        box(b"moov", box(b"uuid", raw_walk._CANON_META_UUID + meta)),
        box(b"uuid", raw_walk._CANON_PREVIEW_UUID + bytes(8) + prvw),
        box(b"mdat", bytes(4096)),
    ))  # fmt: skip


def raf(preview: bytes, cfa_size_bytes: int = 4096) -> bytes:
    """A RAF: its fixed header, the camera's JPEG (with the EXIF), then the sensor data."""
    header = bytearray(b"FUJIFILMCCD-RAW 0201FF383501X-T5".ljust(160, b"\0"))
    jpeg_at = len(header)
    cfa_at = jpeg_at + len(preview)
    struct.pack_into(">6I", header, 84, jpeg_at, len(preview), 0, 0, cfa_at, cfa_size_bytes)
    return bytes(header) + preview + bytes(cfa_size_bytes)


def plain_tiff(**tags: str) -> bytes:
    out = io.BytesIO()
    info = {0x010F: tags["make"]} if "make" in tags else {}
    Image.new("RGB", (64, 48), (10, 120, 200)).save(out, "TIFF", tiffinfo=info)
    return out.getvalue()


# -- sniffing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"FUJIFILMCCD-RAW 0201FF383501", "RAF"),
        (b"\0\0\0\x18ftypcrx \0\0\0\x01crx isom", "CR3"),
        (b"IIRO\x08\0\0\0", "ORF"),
        (b"IIRS\x08\0\0\0", "ORF"),
        (b"MMOR\0\0\0\x08", "ORF"),
        (b"IIU\0\x08\0\0\0", "RW2"),
        (b"II*\0\x10\0\0\0CR\x02\0", "CR2"),
    ],
)
def test_sniff_names_raw_kinds_by_their_magic(head: bytes, kind: str):
    assert sniff_raw(head + bytes(64)) == kind


def test_sniff_names_a_dng_by_its_dng_version(dng: bytes):
    assert sniff_raw(dng) == "DNG"


@pytest.mark.parametrize(
    ("make", "kind"), [("NIKON", "NEF"), ("SONY", "ARW"), ("PENTAX", "PEF"), ("RICOH IMAGING", "PEF")]
)
def test_sniff_names_plain_tiff_raws_by_their_maker(dng: bytes, make: str, kind: str):
    assert sniff_raw(as_plain_tiff_raw(dng, make)) == kind


def test_sniff_leaves_everything_else_to_pillow(dng: bytes):
    assert sniff_raw(as_plain_tiff_raw(dng, "Leica")) is None  # a camera TIFF, not a RAW kind we name
    assert sniff_raw(plain_tiff()) is None
    assert sniff_raw(plain_tiff(make="NIKON")) is None  # a scanner's TIFF: no sensor data
    assert sniff_raw(photo_jpeg(1, (64, 48))) is None
    assert sniff_raw(b"") is None
    assert sniff_raw(dng[:12]) is None  # IFD0 is not there


# -- previews ---------------------------------------------------------------------------------


def test_dng_preview_is_the_cameras_jpeg_with_the_raw_size_orientation_and_exif(dng: bytes):
    preview = embedded_preview(dng, "L1000001.DNG")

    assert preview == RawPreview(
        kind="DNG",
        jpeg=preview.jpeg,
        jpeg_width=WIDTH,
        jpeg_height=HEIGHT,
        width=WIDTH,
        height=HEIGHT,
        orientation=6,
        make="Leica Camera AG",
        model="LEICA Q3",
        taken="2026:11:21 14:05:09",
        exposure_time_s=1 / 250,
        f_number=2.8,
        iso=800,
        focal_length_mm=28.0,
        lens="Summilux 1:1.7/28 ASPH.",
    )
    assert preview.jpeg in dng  # the camera's bytes, as stored
    with Image.open(io.BytesIO(preview.jpeg)) as im:
        assert (im.format, im.size) == ("JPEG", (WIDTH, HEIGHT))
        im.draft("RGB", (WIDTH // 2, HEIGHT // 2))
        im.load()
        assert im.size == (WIDTH // 2, HEIGHT // 2)


def test_sample_dng_is_a_real_dng_libraw_develops(dng: bytes):
    with rawpy.imread(io.BytesIO(dng)) as image:
        assert image.raw_image_visible.shape == (HEIGHT, WIDTH)
        rgb = image.postprocess(half_size=True)
    assert rgb.shape == (WIDTH // 2, HEIGHT // 2, 3)  # developed upright: EXIF 6 turns it


def test_half_size_preview_keeps_the_raw_size():
    data = raw_dng(WIDTH, HEIGHT, preview_scale=2)
    preview = embedded_preview(data, "half.dng")
    assert (preview.jpeg_width, preview.jpeg_height, preview.width, preview.height) == (600, 400, WIDTH, HEIGHT)
    assert preview.jpeg in data  # on a tie with LibRaw's copy (which gains an EXIF segment), the camera's


def test_preview_exif_as_pillow_exif(dng: bytes):
    exif = embedded_preview(dng, "L1000001.DNG").to_exif()
    assert (exif[0x010F], exif[0x0110], exif[0x0112]) == ("Leica Camera AG", "LEICA Q3", 6)
    sub = exif.get_ifd(0x8769)
    assert (sub[0x9003], sub[0x8827], sub[0x829D], sub[0xA434]) == (
        "2026:11:21 14:05:09",
        800,
        2.8,
        "Summilux 1:1.7/28 ASPH.",
    )


def test_a_camera_libraw_does_not_know_still_gets_its_preview(dng: bytes, monkeypatch: pytest.MonkeyPatch):
    def unsupported(_file: object) -> None:
        raise rawpy.LibRawFileUnsupportedError(b"Unsupported file format or not RAW file")

    monkeypatch.setattr(rawpy, "imread", unsupported)
    preview = embedded_preview(dng, "new-body.dng")
    assert (preview.width, preview.height, preview.orientation) == (WIDTH, HEIGHT, 6)  # the preview's, IFD0's
    assert preview.make == "Leica Camera AG"


def test_raf_preview_and_the_exif_of_its_jpeg():
    jpeg = photo_jpeg(3, (960, 640), iso=640)
    preview = embedded_preview(raf(jpeg), "DSCF0001.RAF")
    assert (preview.kind, preview.jpeg, preview.jpeg_width, preview.jpeg_height) == ("RAF", jpeg, 960, 640)
    assert (preview.make, preview.model, preview.iso, preview.lens) == ("Fujifilm", "X-T5", 640, "XF 33mm F1.4 R LM WR")


def test_cr3_exif_from_its_cmt_boxes_and_its_prvw_preview():
    jpeg = photo_jpeg(4, (1620, 1080), exif=False)
    preview = embedded_preview(cr3(jpeg), "IMG_0001.CR3")
    assert (preview.kind, preview.jpeg, preview.orientation) == ("CR3", jpeg, 8)
    assert (preview.make, preview.model, preview.taken) == ("Canon", "Canon EOS R5", "2026:11:22 10:11:12")
    assert (preview.exposure_time_s, preview.f_number, preview.iso) == (1 / 500, 4.0, 1600)


# -- refusals ---------------------------------------------------------------------------------


def refusal(data: bytes, filename: str = "shot.dng") -> IngestError:
    with pytest.raises(IngestError) as caught:
        embedded_preview(data, filename)
    assert str(caught.value).startswith(f"{filename}: ")
    return caught.value


def test_refuses_what_is_not_raw():
    assert isinstance(refusal(photo_jpeg(1, (64, 48)), "a.jpg"), NotAnImage)


def test_refuses_a_dng_cut_short(dng: bytes):
    error = refusal(dng[: len(dng) * 2 // 3], "half-written.dng")
    assert isinstance(error, CorruptImage)
    assert "truncated" in error.reason


def test_refuses_a_dng_without_a_preview(dng: bytes):
    error = refusal(with_long(dng, 8, 0x0103, 1))  # IFD0 says uncompressed: no JPEG anywhere
    assert isinstance(error, UnsupportedFormat)
    assert "RAW file has no embedded preview" in error.reason


@pytest.mark.parametrize("offset", [0xFFFFFF00, 0x7FFFFFFF])
def test_refuses_data_offsets_past_the_end(dng: bytes, offset: int):
    error = refusal(with_long(dng, subifd_at(dng), 0x0111, offset))
    assert isinstance(error, CorruptImage)
    assert "truncated" in error.reason


def test_refuses_huge_counts(dng: bytes):
    entries = bytearray(dng)
    struct.pack_into("<H", entries, 8, 0xFFFF)  # IFD0 claims 65,535 entries
    assert sniff_raw(bytes(entries)) is None  # not a DNG then: Pillow refuses it
    strips = bytearray(dng)
    struct.pack_into("<I", strips, entry(dng, subifd_at(dng), 0x0111) + 4, 0x40000000)  # a billion strips
    assert isinstance(refusal(bytes(strips)), CorruptImage)


def test_an_ifd_loop_ends(dng: bytes):
    looped = bytearray(dng)
    sub = subifd_at(dng)
    (count,) = struct.unpack_from("<H", looped, sub)
    struct.pack_into("<I", looped, sub + 2 + 12 * count, 8)  # the SubIFD's next IFD is IFD0 again
    assert embedded_preview(bytes(looped), "loop.dng").jpeg_width == WIDTH


def test_refuses_a_cr3_box_running_past_the_end():
    data = cr3(photo_jpeg(4, (320, 240), exif=False))
    assert isinstance(refusal(data[:-100], "IMG_0002.CR3"), CorruptImage)


def test_refuses_a_raf_cut_short():
    data = raf(photo_jpeg(3, (320, 240)))
    assert isinstance(refusal(data[:100], "DSCF0002.RAF"), CorruptImage)  # inside the header
    assert "truncated" in refusal(data[:-10], "DSCF0003.RAF").reason  # inside the sensor data


# -- fuzz -------------------------------------------------------------------------------------


def test_mangled_raw_files_are_read_or_refused_fast():
    """Cuts, byte flips (mostly in the structure, at the start) and junk after a header, from a fixed seed."""
    rng = random.Random(20261128)
    samples = [
        raw_dng(400, 300, orientation=3),
        cr3(photo_jpeg(5, (320, 240), exif=False)),
        raf(photo_jpeg(6, (320, 240))),
    ]
    for _ in range(300):
        data = bytearray(rng.choice(samples))
        how = rng.randrange(4)
        if how == 0:
            data = data[: rng.randrange(len(data))]
        elif how == 3:
            data = data[: rng.randrange(8, 1024)] + rng.randbytes(rng.randrange(4096))
        else:
            span = 1024 if how == 1 else len(data)
            for _ in range(rng.randrange(1, 9)):
                data[rng.randrange(min(span, len(data)))] = rng.randrange(256)
        started = time.monotonic()
        try:
            preview = embedded_preview(bytes(data), "fuzzed")
        except IngestError:
            pass
        else:
            assert preview.jpeg.startswith(b"\xff\xd8") and preview.width > 0 and preview.height > 0
        assert time.monotonic() - started < 1.0
