"""What arrives from outside, made safe to keep: upload file names and multipart bodies.

A file name from a request is only ever a label (blobs are named by their SHA-256), but it is
shown in pages, written into ZIPs and `Content-Disposition` headers and typed into Lightroom's
search, so it is reduced to one plain, printable name. Multipart bodies are parsed with limits,
like starlette's `formparsers.py` (`max_files`, `max_fields`, `max_part_size`), and streamed: each
file part goes to a temp file as it arrives, so an upload never sits in memory.
"""

from __future__ import annotations

import os
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from tornado import httputil

MAX_NAME_CHARS = 255
FALLBACK_NAME = "upload"
#: Invisible format characters that are kept: the joiners emoji sequences and some scripts need.
_JOINERS = frozenset("\u200c\u200d")
#: Dropped: controls, surrogates, private use, unassigned, and invisible format characters (among
#: them the direction overrides that make "IMG_1\u202egpj.exe" read as "IMG_1exe.jpg").
_DROPPED = frozenset(("Cc", "Cs", "Co", "Cn", "Cf"))


class BadForm(ValueError):
    """The body is not a well-formed form within the limits; the message says why."""


class TooManyFiles(BadForm):
    """More files in one request than allowed."""


class NotMultipart(BadForm):
    """The body is not `multipart/form-data` at all (so it holds no files)."""


MAX_FIELDS = 100  # form fields besides the files
MAX_FIELD_BYTES = 64 * 1024  # one field's value
MAX_PART_HEADER_BYTES = 8 * 1024  # one part's headers


def clean_filename(name: str | None) -> str:
    """An uploaded file's name as one printable name: no folders, no control or direction characters.

    NFC-normalised (a Mac's decomposed "é" and Windows' composed one are one name), cut to
    255 characters (keeping the extension), `upload` when nothing is left.
    """
    if not name:
        return FALLBACK_NAME
    name = name.replace("\\", "/").rsplit("/", 1)[-1]  # a browser on Windows may send C:\\path\\IMG.JPG
    name = unicodedata.normalize("NFC", name)
    name = "".join(
        " " if c in "\t\n\r" else c
        for c in name
        if c in "\t\n\r" or c in _JOINERS or unicodedata.category(c) not in _DROPPED
    )
    name = name.strip()
    if name in ("", ".", ".."):
        return FALLBACK_NAME
    if len(name) > MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and stem and len(ext) <= 16:
            name = stem[: MAX_NAME_CHARS - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_NAME_CHARS]
    return name


@dataclass
class FilePart:
    """One file of a form, on disk: `path` holds at most `max_part_bytes` of it (see `too_large`)."""

    field: str
    filename: str  # as sent: clean it with `clean_filename` before showing or keeping it
    content_type: str
    path: Path
    size_bytes: int = 0  # as sent, also beyond what was kept
    too_large: bool = False  # over `max_part_bytes`: the rest was dropped, the file is incomplete


@dataclass
class Form:
    fields: dict[str, list[bytes]] = field(default_factory=dict)
    files: list[FilePart] = field(default_factory=list)


class FormParser:
    """A `multipart/form-data` body fed chunk by chunk (`feed`, then `close`), files spooled to disk.

    File parts are written to `0600` temp files in `spool_dir` as they arrive; `remove()` deletes
    them (the caller's duty, also after an error). Limits: `max_files` files (`TooManyFiles`),
    `max_fields` other fields of at most `MAX_FIELD_BYTES`, part headers of at most
    `MAX_PART_HEADER_BYTES`; a file over `max_part_bytes` is cut there and marked `too_large`.
    Anything malformed raises `BadForm` (and the parser takes no more input).
    """

    def __init__(
        self,
        content_type: str,
        *,
        spool_dir: Path,
        max_files: int,
        max_part_bytes: int,
        max_fields: int = MAX_FIELDS,
    ) -> None:
        self.form = Form()
        self._spool_dir = spool_dir
        self._max_files = max_files
        self._max_part_bytes = max_part_bytes
        self._max_fields = max_fields
        boundary = _boundary(content_type)
        # The body's first boundary has no CRLF before it: feed one, then every delimiter looks alike.
        self._delimiter = b"\r\n--" + boundary
        self._buffer = bytearray(b"\r\n")
        self._state = "preamble"  # → after_delimiter → headers → data → after_delimiter … → end
        self._file: FilePart | None = None
        self._fh: int | None = None  # the open temp file of `_file`
        self._field: tuple[str, bytearray] | None = None
        self._broken = False

    def feed(self, chunk: bytes) -> None:
        if self._broken:
            return
        try:
            self._buffer += chunk
            self._parse()
        except BaseException:
            self._broken = True
            self._close_file()
            raise

    def close(self) -> Form:
        """The form, once the whole body was fed; `BadForm` when it did not end with its final boundary."""
        if self._broken:
            raise BadForm("the form was refused")
        if self._state != "end":
            self._broken = True
            self._close_file()
            raise BadForm("no final boundary: the body ends before the form does")
        return self.form

    def remove(self) -> None:
        """Delete every temp file (safe to call more than once)."""
        self._close_file()
        for part in self.form.files:
            part.path.unlink(missing_ok=True)

    # -- the state machine ------------------------------------------------------------------

    def _parse(self) -> None:
        while True:
            if self._state == "preamble":
                at = self._buffer.find(self._delimiter)
                if at < 0:
                    # Text before the first boundary is allowed (and dropped); keep what may start one.
                    del self._buffer[: max(0, len(self._buffer) - len(self._delimiter))]
                    return
                del self._buffer[: at + len(self._delimiter)]
                self._state = "after_delimiter"
            elif self._state == "after_delimiter":
                if len(self._buffer) < 2:
                    return
                if self._buffer[:2] == b"--":
                    self._state = "end"
                    return
                if self._buffer[:2] != b"\r\n":
                    raise BadForm("a boundary must be followed by a line break or '--'")
                del self._buffer[:2]
                self._state = "headers"
            elif self._state == "headers":
                eoh = self._buffer.find(b"\r\n\r\n")
                if eoh < 0 and self._buffer.startswith(b"\r\n"):
                    raise BadForm("a part without headers")
                if eoh < 0 or eoh > MAX_PART_HEADER_BYTES:
                    if eoh > MAX_PART_HEADER_BYTES or len(self._buffer) > MAX_PART_HEADER_BYTES + 4:
                        raise BadForm(f"a part's headers are over {MAX_PART_HEADER_BYTES} bytes")
                    return
                self._start_part(bytes(self._buffer[:eoh]))
                del self._buffer[: eoh + 4]
                self._state = "data"
            elif self._state == "data":
                at = self._buffer.find(self._delimiter)
                if at < 0:
                    keep = len(self._delimiter) - 1  # the start of a delimiter split between chunks
                    if len(self._buffer) > keep:
                        self._write(memoryview(self._buffer)[: len(self._buffer) - keep])
                        del self._buffer[: len(self._buffer) - keep]
                    return
                self._write(memoryview(self._buffer)[:at])
                del self._buffer[: at + len(self._delimiter)]
                self._end_part()
                self._state = "after_delimiter"
            else:  # end: an epilogue after the final boundary is allowed and dropped
                self._buffer.clear()
                return

    def _start_part(self, raw_headers: bytes) -> None:
        try:
            headers = httputil.HTTPHeaders.parse(raw_headers.decode("utf-8"), _chars_are_bytes=False)
        except (UnicodeDecodeError, httputil.HTTPInputError, ValueError) as exc:
            raise BadForm(f"a part's headers are not valid UTF-8 headers ({exc})") from None
        disposition, params = httputil._parse_header(headers.get("Content-Disposition", ""))
        name = params.get("name")
        if disposition != "form-data" or not name:
            raise BadForm("a part has no 'Content-Disposition: form-data; name=...'")
        if params.get("filename"):  # as tornado's parser: a part with an empty file name is a field
            if len(self.form.files) >= self._max_files:
                raise TooManyFiles(f"more than {self._max_files} files in one request; send at most {self._max_files}")
            fd, path = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=self._spool_dir)  # mode 0600
            content_type = headers.get("Content-Type", "application/octet-stream")
            self._file = FilePart(name, params["filename"], content_type, Path(path))
            self._fh = fd
            self.form.files.append(self._file)
        else:
            if sum(len(v) for v in self.form.fields.values()) >= self._max_fields:
                raise BadForm(f"more than {self._max_fields} form fields")
            self._field = (name, bytearray())

    def _write(self, data: memoryview) -> None:
        if not data:
            return
        if self._file is not None:
            part = self._file
            room = self._max_part_bytes - part.size_bytes
            part.size_bytes += len(data)
            if room <= 0 or len(data) > room:
                part.too_large = True
            if room > 0 and self._fh is not None:
                # Small blocking writes into the page cache; no fsync: the file lives for one request.
                _write_all(self._fh, data[:room])
        elif self._field is not None:
            name, value = self._field
            if len(value) + len(data) > MAX_FIELD_BYTES:
                raise BadForm(f"the field {name!r} is over {MAX_FIELD_BYTES} bytes")
            value += data

    def _end_part(self) -> None:
        if self._field is not None:
            name, value = self._field
            self.form.fields.setdefault(name, []).append(bytes(value))
            self._field = None
        self._close_file()
        self._file = None

    def _close_file(self) -> None:
        if self._fh is not None:
            os.close(self._fh)
            self._fh = None


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]


def _boundary(content_type: str) -> bytes:
    kind, _, rest = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise NotMultipart(f"the body must be multipart/form-data, not {kind.strip() or 'nothing'!r}")
    _, params = httputil._parse_header("x;" + rest)
    boundary = params.get("boundary", "")
    if not boundary or len(boundary) > 70 or not boundary.isascii():
        raise BadForm("the Content-Type has no valid boundary")
    return boundary.encode("ascii")
