"""What `DecoderPool` and its worker processes share: the cap on a JSON header, reading and writing the shared file.

Its own module so that the pool (`dashboard.decoders`, in the server or CLI process) need not import the
worker (`dashboard.decoder_worker`), which imports the decoders: Pillow, rawpy and libheif load only in workers.
"""

from __future__ import annotations

import os
from typing import BinaryIO

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


def copy_to_start(fd: int, src: BinaryIO) -> int:
    """Copy the rest of the open file `src` to the start of `fd`, in the kernel where it can; how many bytes.

    For a file on disk (an original whose preview is made later) this spares reading it into this
    process and writing it out again.
    """
    start = src.tell()
    size = os.fstat(src.fileno()).st_size - start
    try:
        os.lseek(fd, 0, os.SEEK_SET)  # sendfile writes at the file position
        done = 0
        while done < size:
            sent = os.sendfile(fd, src.fileno(), start + done, size - done)
            if not sent:
                break  # the file was cut short meanwhile: the decode refuses what arrived
            done += sent
        return done
    except OSError:  # no sendfile to a file here (macOS): through this process
        src.seek(start)
        data = src.read()
        pwrite_all(fd, data)
        return len(data)
