"""The camera RAW container walk: pure Python, bounds-checked, no imaging library.

`sniff_raw` names a RAW kind from its content; `WALKS[kind]` walks a file of that kind (TIFF IFDs,
CR3's ISO BMFF boxes, RAF's header) and returns the JPEG previews it embeds and the EXIF fields of
the RAW itself. The input is hostile: every offset and count is checked against the file, and the
walk is bounded (`_MAX_IFDS`, `_MAX_BOXES`, ...); a broken structure raises `Malformed`.
`dashboard.imaging.raw` builds on it with LibRaw.
"""

from __future__ import annotations

import contextlib
import math
import operator
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

# Plain-TIFF RAWs say who made them only in IFD0's Make.
_KIND_BY_MAKE = (("NIKON", "NEF"), ("SONY", "ARW"), ("PENTAX", "PEF"), ("RICOH IMAGING", "PEF"))
_CFA, _LINEAR_RAW = 32803, 34892  # PhotometricInterpretation of sensor data
_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_INT_FORMAT = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 13: "I"}
# Bounds on what a hostile file can make us walk; real files stay far below them.
_MAX_IFDS = 64
_MAX_IFD_ENTRIES = 1024
_MAX_BOXES = 1024
_MAX_STRIPS = 1 << 16
_MAX_TEXT_BYTES = 256
_CANON_META_UUID = bytes.fromhex("85c0b687820f11e08111f4ce462b6a48")  # CR3: holds CMT1 (IFD0), CMT2 (Exif)
_CANON_PREVIEW_UUID = bytes.fromhex("eaf42b5e1c984b88b9fbb7dc406e4d16")  # CR3: holds PRVW (a 1620-px JPEG)
_IFD0_TAGS = {0x010F: "make", 0x0110: "model", 0x0112: "orientation", 0x0132: "taken"}
EXIF_TAGS = {
    0x829A: "exposure_time_s",
    0x829D: "f_number",
    0x8827: "iso",
    0x9003: "taken",  # DateTimeOriginal wins over IFD0's DateTime
    0x9011: "offset_time",
    0x920A: "focal_length_mm",
    0xA002: "pixel_width",
    0xA003: "pixel_height",
    0xA434: "lens",
}


class Malformed(Exception):
    """The structure points outside the file or contradicts itself."""


@dataclass(frozen=True)
class _Entry:
    type: int
    count: int
    at: int  # where the value is in `data`


@dataclass(frozen=True)
class Jpeg:
    """A baseline or progressive JPEG at `source[at:at + size_bytes]`; `exif_at`: its EXIF's TIFF header."""

    source: bytes
    at: int
    size_bytes: int
    width: int
    height: int
    exif_at: int | None

    def data(self) -> bytes:
        return (
            self.source
            if self.at == 0 and self.size_bytes == len(self.source)
            else self.source[self.at : self.at + self.size_bytes]
        )


@dataclass
class _Found:
    """What a container walk found: previews, EXIF fields and how far the image data says the file goes."""

    previews: list[Jpeg] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    data_end: int = 0


class Tiff:
    """A bounds-checked reader of the TIFF structure at `data[base:]` (offsets in it are from `base`)."""

    def __init__(self, data: bytes, base: int = 0) -> None:
        order = data[base : base + 2]
        if order not in (b"II", b"MM") or len(data) < base + 8:
            raise Malformed("no TIFF header")
        self.data, self.base = data, base
        self.order = "<" if order == b"II" else ">"
        # The magic number (42, or ORF's and RW2's own) is the caller's business.
        self.first = self._unpack("I", base + 4)[0]

    def _unpack(self, fmt: str, at: int, count: int = 1) -> tuple[Any, ...]:
        size = struct.calcsize(f"{self.order}{count}{fmt}")
        if at < 0 or at + size > len(self.data):
            raise Malformed("an offset points past the end of the file")
        return struct.unpack_from(f"{self.order}{count}{fmt}", self.data, at)

    def ifd(self, offset: int) -> tuple[dict[int, _Entry], int]:
        """The entries of the IFD at `offset` (first of a repeated tag wins) and the next IFD's offset."""
        at = self.base + offset
        (count,) = self._unpack("H", at)
        if count > _MAX_IFD_ENTRIES:
            raise Malformed(f"an IFD has {count} entries, more than {_MAX_IFD_ENTRIES}")
        self._unpack("B", at + 2 + 12 * count + 3)  # the entries and the next-IFD offset are in the file
        entries: dict[int, _Entry] = {}
        for pos in range(at + 2, at + 2 + 12 * count, 12):
            tag, kind, n = struct.unpack_from(f"{self.order}HHI", self.data, pos)
            size = _TYPE_SIZE.get(kind)
            if size is None or tag in entries:
                continue
            where = pos + 8 if size * n <= 4 else self.base + self._unpack("I", pos + 8)[0]
            entries[tag] = _Entry(kind, n, where)
        return entries, self._unpack("I", at + 2 + 12 * count)[0]

    def ints(self, entry: _Entry | None, limit: int = 16) -> tuple[int, ...]:
        if entry is None or entry.type not in _INT_FORMAT:
            return ()
        if entry.count > limit:
            raise Malformed(f"a tag has {entry.count} values, more than {limit}")
        return self._unpack(_INT_FORMAT[entry.type], entry.at, entry.count)

    def value(self, entry: _Entry) -> str | float | int | None:
        """The first value of a text, rational, float or integer tag; None for other types, x/0, NaN."""
        if entry.type == 2:
            raw = self.data[entry.at : entry.at + min(entry.count, _MAX_TEXT_BYTES)]
            text = raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()
            return text or None
        if entry.type in (5, 10):
            num, den = self._unpack("II" if entry.type == 5 else "ii", entry.at)
            return num / den if den else None
        if entry.type in (11, 12):  # FLOAT, DOUBLE: not what cameras write, but what Pillow does
            (number,) = self._unpack("f" if entry.type == 11 else "d", entry.at)
            return float(number) if math.isfinite(number) else None
        if entry.type in _INT_FORMAT and entry.count:
            return int(self._unpack(_INT_FORMAT[entry.type], entry.at)[0])
        return None


def sniff_raw(data: bytes) -> str | None:
    """The RAW kind of `data` ("DNG", "CR2", "CR3", "NEF", "ARW", "PEF", "ORF", "RW2", "RAF"), else None.

    Decided by content: magic bytes, and for TIFF-based files IFD0 (DNGVersion, or the Make of a
    camera whose RAW is a plain TIFF holding sensor data). An ordinary TIFF is None.
    """
    head = data[:16]
    if head.startswith(b"FUJIFILMCCD-RAW"):
        return "RAF"
    if head[4:12] == b"ftypcrx ":
        return "CR3"
    if head[:4] in (b"IIRO", b"IIRS", b"MMOR"):
        return "ORF"
    if head[:4] == b"IIU\0":
        return "RW2"
    if head[:4] not in (b"II*\0", b"MM\0*"):
        return None
    if head[8:11] == b"CR\x02":
        return "CR2"
    try:
        tiff = Tiff(data)
        ifd0, _ = tiff.ifd(tiff.first)
        if 0xC612 in ifd0:
            return "DNG"
        make = ifd0.get(0x010F)
        maker = str(tiff.value(make) or "").upper() if make else ""
        kind = next((kind for prefix, kind in _KIND_BY_MAKE if maker.startswith(prefix)), None)
        # A scanner's or an editor's TIFF can name a camera maker too; a RAW holds sensor data.
        return kind if kind and _holds_sensor_data(tiff, ifd0) else None
    except Malformed:
        return None


def _holds_sensor_data(tiff: Tiff, ifd0: dict[int, _Entry]) -> bool:
    ifds = [ifd0]
    for offset in tiff.ints(ifd0.get(0x014A)):
        try:
            ifds.append(tiff.ifd(offset)[0])
        except Malformed:
            continue
    return any(set(tiff.ints(ifd.get(0x0106))) & {_CFA, _LINEAR_RAW} for ifd in ifds)


def jpeg_in(source: bytes, at: int, size: int) -> Jpeg | None:
    """The JPEG at `source[at:at + size]` if it starts like a baseline or progressive one, else None.

    Reads markers up to the frame header, so sensor data stored as lossless JPEG (CR2, DNG) is not a preview.
    """
    end = min(at + size, len(source))
    if at < 0 or source[at : at + 2] != b"\xff\xd8":
        return None
    pos, exif_at = at + 2, None
    for _ in range(512):
        if pos + 4 > end or source[pos] != 0xFF:
            return None
        marker = source[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        (length,) = struct.unpack_from(">H", source, pos + 2)
        if length < 2:
            return None
        if marker == 0xE1 and source[pos + 4 : pos + 10] == b"Exif\0\0":
            exif_at = pos + 10
        if marker in (0xC0, 0xC1, 0xC2):
            if pos + 9 > end:
                return None
            height, width = struct.unpack_from(">HH", source, pos + 5)
            return Jpeg(source, at, size, width, height, exif_at) if width and height else None
        if (0xC3 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC)) or marker == 0xDA:
            return None  # lossless or arithmetic coding, or scan data before any frame header
        pos += 2 + length
    return None


def _walk_tiff(data: bytes) -> _Found:
    """DNG, CR2, NEF, ARW, PEF, ORF, RW2: every IFD in the chain and SubIFDs, IFD0 and Exif fields."""
    tiff, found = Tiff(data), _Found()
    queue, seen = [tiff.first], set[int]()
    while queue:
        offset = queue.pop(0)
        if offset == 0 or offset in seen:
            continue
        if len(seen) == _MAX_IFDS:
            raise Malformed(f"more than {_MAX_IFDS} IFDs")
        seen.add(offset)
        entries, next_offset = tiff.ifd(offset)
        if len(seen) == 1:
            found.meta = tiff_meta(tiff, entries)
        queue += [*tiff.ints(entries.get(0x014A)), next_offset]
        _collect(tiff, entries, found)
    return found


def tiff_meta(tiff: Tiff, ifd0: dict[int, _Entry] | None = None) -> dict[str, Any]:
    """EXIF fields from IFD0 (`tiff`'s first unless given) and its Exif IFD; unreadable fields are left out."""
    if ifd0 is None:
        ifd0 = tiff.ifd(tiff.first)[0]
    meta = _fields(tiff, ifd0, _IFD0_TAGS)
    exif_offset = tiff.ints(ifd0.get(0x8769), limit=1)
    if exif_offset:
        with contextlib.suppress(Malformed):  # unreadable fields are left out
            meta.update(_fields(tiff, tiff.ifd(exif_offset[0])[0], EXIF_TAGS))
    return meta


def _fields(tiff: Tiff, entries: dict[int, _Entry], names: dict[int, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tag, name in names.items():
        if tag in entries:
            try:
                value = tiff.value(entries[tag])
            except Malformed:
                continue
            if value is not None:
                out[name] = value
    return out


def _collect(tiff: Tiff, entries: dict[int, _Entry], found: _Found) -> None:
    """Note an IFD's JPEG preview, and how far its image data reaches (a file cut short ends before it)."""
    strip: tuple[int, int] | None = None
    for offsets_tag, sizes_tag in ((0x0111, 0x0117), (0x0144, 0x0145)):  # strips, tiles
        offsets = tiff.ints(entries.get(offsets_tag), limit=_MAX_STRIPS)
        sizes = tiff.ints(entries.get(sizes_tag), limit=_MAX_STRIPS)
        found.data_end = max(found.data_end, tiff.base + max(map(operator.add, offsets, sizes), default=0))
        if offsets_tag == 0x0111 and len(offsets) == len(sizes) == 1:
            strip = (tiff.base + offsets[0], sizes[0])
    compression = tiff.ints(entries.get(0x0103), limit=1)
    photometric = tiff.ints(entries.get(0x0106), limit=1)
    candidates = []
    if strip and compression in ((6,), (7,)) and photometric not in ((_CFA,), (_LINEAR_RAW,)):
        candidates.append(strip)  # a JPEG-compressed picture in one strip: CR2's and DNG's previews
    interchange = tiff.ints(entries.get(0x0201), limit=1), tiff.ints(entries.get(0x0202), limit=1)
    if interchange[0] and interchange[1]:
        candidates.append((tiff.base + interchange[0][0], interchange[1][0]))  # NEF, ARW, thumbnails
    jpg_from_raw = entries.get(0x002E)
    if jpg_from_raw is not None and jpg_from_raw.type == 7:
        candidates.append((jpg_from_raw.at, jpg_from_raw.count))  # RW2
    for at, size in candidates:
        found.data_end = max(found.data_end, at + size)
        jpeg = jpeg_in(tiff.data, at, size) if at + size <= len(tiff.data) else None
        if jpeg is not None:
            found.previews.append(jpeg)


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """The ISO BMFF boxes in `data[start:end]`: (type, payload start, payload end)."""
    pos = start
    for _ in range(_MAX_BOXES):
        if pos >= end:
            return
        if pos + 8 > end:
            raise Malformed("a box header runs past the end of the file")
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise Malformed("a box header runs past the end of the file")
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise Malformed(f"a {kind!r} box runs past the end of the file")
        yield kind, pos + header, pos + size
        pos += size
    raise Malformed(f"more than {_MAX_BOXES} boxes")


def _walk_cr3(data: bytes) -> _Found:
    """CR3: IFD0 and Exif fields from the CMT1 and CMT2 TIFFs, the PRVW preview; LibRaw reads the tracks."""
    found = _Found()
    top = list(_boxes(data, 0, len(data)))  # all of them: a box running past the end is a file cut short
    moov = next(((start, end) for kind, start, end in top if kind == b"moov"), None)
    canon = _uuid_box(data, _boxes(data, *moov), _CANON_META_UUID) if moov else None
    items = {kind: start for kind, start, _ in reversed(list(_boxes(data, *canon)))} if canon else {}
    # Unreadable fields are left out, as in a TIFF's IFDs.
    with contextlib.suppress(Malformed):
        if b"CMT2" in items:  # the Exif IFD is this TIFF's first IFD
            exif = Tiff(data, items[b"CMT2"])
            found.meta.update(_fields(exif, exif.ifd(exif.first)[0], EXIF_TAGS))
    with contextlib.suppress(Malformed):
        if b"CMT1" in items:
            for name, value in tiff_meta(Tiff(data, items[b"CMT1"])).items():
                found.meta.setdefault(name, value)  # DateTimeOriginal wins over DateTime
    preview = _uuid_box(data, iter(top), _CANON_PREVIEW_UUID)
    if preview is not None:
        at = data.find(b"\xff\xd8\xff", *preview)
        jpeg = jpeg_in(data, at, preview[1] - at) if at >= 0 else None
        if jpeg is not None:
            found.previews.append(jpeg)
    return found


def _uuid_box(data: bytes, boxes: Iterator[tuple[bytes, int, int]], uuid: bytes) -> tuple[int, int] | None:
    """The payload (after the UUID) of the first `uuid` box of that UUID."""
    return next(((s + 16, e) for kind, s, e in boxes if kind == b"uuid" and data[s : s + 16] == uuid), None)


def _walk_raf(data: bytes) -> _Found:
    """RAF: a fixed header gives the JPEG (which carries the camera's EXIF) and the sensor data."""
    if len(data) < 108:
        raise Malformed("too short for a RAF header")
    jpeg_at, jpeg_size, _, _, cfa_at, cfa_size = struct.unpack_from(">6I", data, 84)
    found = _Found(data_end=max(jpeg_at + jpeg_size, cfa_at + cfa_size))
    jpeg = jpeg_in(data, jpeg_at, jpeg_size) if jpeg_at + jpeg_size <= len(data) else None
    if jpeg is not None:
        found.previews.append(jpeg)
    return found


WALKS: dict[str, Callable[[bytes], _Found]] = {
    "RAF": _walk_raf,
    "CR3": _walk_cr3,
    **{kind: _walk_tiff for kind in ("DNG", "CR2", "NEF", "ARW", "PEF", "ORF", "RW2")},
}
