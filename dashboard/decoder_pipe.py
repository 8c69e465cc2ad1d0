"""What `DecoderPool` and its worker processes share: the cap on a JSON header, reading and writing the shared file.

Its own module so that the pool (`dashboard.decoders`, in the server or CLI process) need not import the
worker (`dashboard.decoder_worker`), which imports the decoders: Pillow, rawpy and libheif load only in workers.
"""

from __future__ import annotations

import os

MAX_HEADER_BYTES = 1 << 20  # in bytes: a request's or a reply's JSON header


def pwrite_all(fd: int, data: bytes) -> None:
    pwrite_all_at(fd, data, 0)


def pwrite_all_at(fd: int, data: bytes, at: int) -> None:
    view, done = memoryview(data), 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], at + done)


def pread_all(fd: int, size: int) -> bytes:
    data = os.pread(fd, size, 0)
    while len(data) < size:  # one pread returns at most 2 GiB
        chunk = os.pread(fd, size - len(data), len(data))
        if not chunk:
            raise EOFError(f"{len(data)} of {size} bytes in the shared file")
        data += chunk
    return data
