"""Exports of a collection: its file names, a CSV of metadata and ratings, and a ZIP of the originals.

The ZIP is streamed: `StoredZip` knows its exact length before the first byte (the members are
stored, not compressed, and their sizes are known), then yields it piece by piece while it reads
each original once, so a download of any size costs one chunk of memory and shows real progress.
CRCs, unknown until a file is read, go in a data descriptor after each member (ZIP flag bit 3).
"""

from __future__ import annotations

import csv
import io
import re
import struct
import unicodedata
import zlib
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from dashboard.blobs import BlobReader
from dashboard.events import ImageRecord

CSV_COLUMNS = (
    "filename", "id", "sha256", "captured_at", "camera", "lens", "exposure", "f_number", "iso", "focal_length_mm",
    "width", "height", "rating", "flag", "label",
)  # fmt: skip
CHUNK_BYTES = 1024 * 1024
MAX_FILENAME_CHARS = 200
# Path separators, what Windows cannot store, C0/C1 controls, line and paragraph separators, bidi
# overrides (which can show "photo<RLO>gpj.exe" as "photoexe.jpg") and lone surrogates (no encoding has them).
_UNSAFE = re.compile('[\x00-\x1f\x7f-\x9f<>:"/\\\\|?*\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]')
# What breaks a line somewhere (str.splitlines, editors) or cannot be encoded: never inside one line of text.
_LINE_BREAKING = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# The same but for CR, LF and tab, which the csv module quotes (a quoted line break stays in its cell).
_CSV_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# A spreadsheet runs a cell that starts like this as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
REPLACEMENT = "\ufffd"


def filenames_txt(images: Iterable[ImageRecord]) -> str:
    """The original file names, one a line (what Lightroom's and Capture One's search take).

    A name is always one line: control characters, line separators and lone surrogates in it
    become U+FFFD, so no name can add a line (or a name) to the list.
    """
    return "".join(f"{_LINE_BREAKING.sub(REPLACEMENT, image.filename)}\n" for image in images)


def metadata_csv(images: Iterable[ImageRecord]) -> str:
    """One row per image under a `CSV_COLUMNS` header; RFC 4180 quoting and CRLF line ends, UTF-8.

    Text cells are safe to open in a spreadsheet: see `csv_cell`.
    """
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for image in images:
        exif = image.exif
        writer.writerow(
            [csv_cell(value) for value in (
                image.filename, image.id, image.sha256, image.captured_at, camera_name(image), exif.get("lens"),
                exif.get("exposure_time"), exif.get("f_number"), exif.get("iso"), exif.get("focal_length_mm"),
                image.width, image.height, image.rating, image.flag, image.label,
            )]
        )  # fmt: skip
    return out.getvalue()


def csv_cell(value: object) -> object:
    """A text value as a CSV cell no spreadsheet runs and no reader splits; other values as they are.

    Text starting with `=`, `+`, `-`, `@`, tab or CR gets a leading `'` (OWASP's advice), so
    `=HYPERLINK(…)` in a file name or an EXIF field shows as text. Control characters other than
    CR, LF and tab (which the csv module quotes) become U+FFFD.
    """
    if not isinstance(value, str):
        return value
    if value.startswith(_FORMULA_START):
        value = "'" + value
    return _CSV_UNSAFE.sub(REPLACEMENT, value)


def camera_name(image: ImageRecord) -> str:
    """ "Canon EOS R6" from make "Canon" and model "Canon EOS R6" (or "EOS R6"): the make said once."""
    make, model = (image.camera_make or "").strip(), (image.camera_model or "").strip()
    if make and model.casefold().startswith(make.casefold()):
        return model
    return " ".join(part for part in (make, model) if part)


def safe_filename(name: str, fallback: str = "image") -> str:
    """`name` as one file name any unzip and any OS accepts: no path, no control or reserved characters."""
    name = unicodedata.normalize("NFC", name)
    name = _UNSAFE.sub("_", name).strip().rstrip(". ")[:MAX_FILENAME_CHARS]
    return name if name.strip("._ ") else fallback


def member_names(filenames: Iterable[str]) -> list[str]:
    """Safe names, made distinct ignoring case (as macOS and Windows see them): `a.jpg`, `a (2).jpg`."""
    seen: set[str] = set()
    out = []
    for filename in filenames:
        name = safe_filename(filename)
        stem, dot, ext = name.rpartition(".")
        if not dot or not stem:
            stem, dot, ext = name, "", ""
        candidate, n = name, 2
        while candidate.casefold() in seen:
            candidate, n = f"{stem} ({n}){dot}{ext}", n + 1
        seen.add(candidate.casefold())
        out.append(candidate)
    return out


def attachment(name: str, extension: str) -> str:
    """A `Content-Disposition` that saves as `<name>.<extension>`: an ASCII fallback and the UTF-8 name."""
    filename = f"{safe_filename(name, 'collection')}.{extension}"
    ascii_name = re.sub(r"[^A-Za-z0-9._() -]", "_", filename)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


# -- ZIP --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZipMember:
    """One file of the archive: stored as `name`, read from `path`, exactly `size_bytes` long.

    `path` may instead be a function that opens the file (a blob in a bucket): anything with
    `read(n)` and `close()`.
    """

    name: str
    path: Path | Callable[[], BlobReader]
    size_bytes: int
    date_time: tuple[int, int, int, int, int, int] = (1980, 1, 1, 0, 0, 0)

    def open(self) -> BlobReader:
        return open(self.path, "rb") if isinstance(self.path, Path) else self.path()


def zip_date_time(iso: str) -> tuple[int, int, int, int, int, int]:
    """The wall-clock time of an ISO 8601 timestamp as ZIP (MS-DOS) stores it, within 1980-2107."""
    match = re.match(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)", iso)
    if not match:
        return (1980, 1, 1, 0, 0, 0)
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    if not (1980 <= year <= 2107 and 1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60):
        return (1980, 1, 1, 0, 0, 0)
    return (year, month, day, hour, minute, min(second, 59))


_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_END64 = struct.Struct("<IQHHIIQQQQ")
_LOCATOR64 = struct.Struct("<IIQI")
_FLAGS = 0x0008  # sizes and CRC follow the data, in a data descriptor
_UTF8 = 0x0800
_UNIX_FILE = (0o100644 << 16) & 0xFFFFFFFF
_MAX16 = 0xFFFF
_MAX32 = 0xFFFFFFFF


class StoredZip:
    """A ZIP_STORED archive of local files, streamed by `chunks()`; `size_bytes` is its exact length.

    ZIP64 records are used only where a size, an offset or the member count needs them
    (`zip64_limit` lowers the threshold, for tests).
    """

    def __init__(self, members: Sequence[ZipMember], *, zip64_limit: int = _MAX32) -> None:
        self.members = list(members)
        self._limit = zip64_limit
        self._offsets: list[int] = []
        offset = 0
        for member in self.members:
            self._offsets.append(offset)
            offset += len(self._local_header(member)) + member.size_bytes + len(self._descriptor(member, 0))
        self._central_offset = offset
        self.size_bytes = offset + len(self._central([0] * len(self.members)))

    def chunks(self, chunk_bytes: int = CHUNK_BYTES) -> Generator[bytes, None, None]:
        """The archive, header by header and block by block; raises `OSError` if a file is short."""
        crcs = []
        for member in self.members:
            yield self._local_header(member)
            crc, done = 0, 0
            fh = member.open()
            try:
                while block := fh.read(min(chunk_bytes, member.size_bytes - done)):
                    crc = zlib.crc32(block, crc)
                    done += len(block)
                    yield block
            finally:
                fh.close()
            if done != member.size_bytes:
                where = member.path if isinstance(member.path, Path) else member.name
                raise OSError(f"{where} has {done} bytes, not the {member.size_bytes} planned")
            crcs.append(crc)
            yield self._descriptor(member, crc)
        yield self._central(crcs)

    def _big(self, member: ZipMember) -> bool:
        return member.size_bytes >= self._limit

    def _local_header(self, member: ZipMember) -> bytes:
        name, flags = _encoded(member.name)
        big = self._big(member)
        # With a data descriptor the header's CRC and sizes are zero (ZIP64: marked, zero in the extra).
        sizes = _MAX32 if big else 0
        extra = struct.pack("<HHQQ", 1, 16, 0, 0) if big else b""
        time, date = _dos(member.date_time)
        header = _LOCAL.pack(
            0x04034B50, 45 if big else 20, flags, 0, time, date, 0, sizes, sizes, len(name), len(extra)
        )
        return header + name + extra

    def _descriptor(self, member: ZipMember, crc: int) -> bytes:
        size = member.size_bytes
        if self._big(member):
            return struct.pack("<IIQQ", 0x08074B50, crc, size, size)
        return struct.pack("<IIII", 0x08074B50, crc, size, size)

    def _central(self, crcs: Sequence[int]) -> bytes:
        records = []
        for member, offset, crc in zip(self.members, self._offsets, crcs, strict=True):
            name, flags = _encoded(member.name)
            big, far = self._big(member), offset >= self._limit
            size = _MAX32 if big else member.size_bytes
            zip64 = ([member.size_bytes] * 2 if big else []) + ([offset] if far else [])
            extra = struct.pack(f"<HH{len(zip64)}Q", 1, 8 * len(zip64), *zip64) if zip64 else b""
            version = 45 if zip64 else 20
            time, date = _dos(member.date_time)
            head = (0x02014B50, (3 << 8) | version, version, flags, 0, time, date, crc, size, size)
            tail = (len(name), len(extra), 0, 0, 0, _UNIX_FILE, _MAX32 if far else offset)
            records.append(_CENTRAL.pack(*head, *tail) + name + extra)
        directory = b"".join(records)
        count, start, length = len(records), self._central_offset, len(directory)
        end = b""
        if count >= _MAX16 or start >= self._limit or length >= self._limit:
            end64_at = start + length
            end = _END64.pack(0x06064B50, 44, (3 << 8) | 45, 45, 0, 0, count, count, length, start)
            end += _LOCATOR64.pack(0x07064B50, 0, end64_at, 1)
            count = min(count, _MAX16)
            length = _MAX32 if length >= self._limit else length
            start = _MAX32 if start >= self._limit else start
        end += _END.pack(0x06054B50, 0, 0, count, count, length, start, 0)
        return directory + end


def _encoded(name: str) -> tuple[bytes, int]:
    if name.isascii():
        return name.encode("ascii"), _FLAGS
    return name.encode("utf-8"), _FLAGS | _UTF8


def _dos(date_time: tuple[int, int, int, int, int, int]) -> tuple[int, int]:
    year, month, day, hour, minute, second = date_time
    return (hour << 11) | (minute << 5) | (second // 2), ((year - 1980) << 9) | (month << 5) | day


@dataclass
class Download:
    """How far one streamed export has gone, for the page that started it to show."""

    size_bytes: int
    files: int
    bytes_sent: int = 0
    state: str = "sending"  # then "done" or "aborted"

    def to_dict(self) -> dict[str, int | str]:
        return {"size_bytes": self.size_bytes, "files": self.files, "bytes_sent": self.bytes_sent, "state": self.state}


class Downloads:
    """Progress of recent streamed exports by the random token the page chose; the oldest are forgotten.

    The browser's own download manager receives the file (streamed to disk, never held by the
    page), so the page asks here how many bytes have gone out.
    """

    TOKEN = re.compile(r"[A-Za-z0-9_-]{8,64}")

    def __init__(self, keep: int = 256) -> None:
        self.keep = keep
        self._items: dict[str, Download] = {}

    def start(self, token: str, size_bytes: int, files: int) -> Download:
        self._items.pop(token, None)
        while len(self._items) >= self.keep:
            self._items.pop(next(iter(self._items)))
        download = self._items[token] = Download(size_bytes, files)
        return download

    def get(self, token: str) -> Download | None:
        return self._items.get(token)
