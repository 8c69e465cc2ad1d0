"""What arrives from outside, made safe to keep: upload file names and multipart bodies.

A file name from a request is only ever a label (blobs are named by their SHA-256), but it is
shown in pages, written into ZIPs and `Content-Disposition` headers and typed into Lightroom's
search, so it is reduced to one plain, printable name. Multipart bodies are parsed with limits,
like starlette's `formparsers.py` (`max_files`, `max_fields`).
"""

from __future__ import annotations

import unicodedata

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


def parse_form(
    headers: httputil.HTTPHeaders, body: bytes, *, max_files: int
) -> tuple[dict[str, list[bytes]], dict[str, list[httputil.HTTPFile]]]:
    """The fields and files of a request's form body; `BadForm` when malformed or over `max_files` files."""
    content_type = headers.get("Content-Type", "")
    arguments: dict[str, list[bytes]] = {}
    files: dict[str, list[httputil.HTTPFile]] = {}
    try:
        # Tornado caps the parts (100) and each part's headers; it raises on a malformed body.
        httputil.parse_body_arguments(content_type, body, arguments, files, headers)
    except httputil.HTTPInputError as exc:
        raise BadForm(str(exc)) from None
    count = sum(len(parts) for parts in files.values())
    if count > max_files:
        raise TooManyFiles(f"{count} files in one request; send at most {max_files}")
    return arguments, files
