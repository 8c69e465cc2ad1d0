"""The decoder worker (`python -m dashboard.decoder_worker CEILING_BYTES SHARED_FD [NICE]`), run by `DecoderPool`.

It reads one request at a time: a JSON header on stdin, the file's bytes from the shared file; it
decodes them with `dashboard.imaging.decode.analyze` (op `analyze`) or `make_preview` (op `preview`), or
checks a share link's watermark PNG or burns a watermark into a rendition (`dashboard.imaging.watermark`:
ops `watermark_check`, `watermark_burn`), under
`resource.setrlimit` limits set for that file, writes the renditions back to the shared file and answers a
JSON header on stdout. It ends when stdin closes. NICE lowers its CPU priority (a pool for background work).
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import sys
import time
from dataclasses import asdict
from multiprocessing.connection import Connection
from typing import Any

from dashboard.decoder_pipe import MAX_HEADER_BYTES, pread_all, pwrite_all_at
from dashboard.imaging import watermark
from dashboard.imaging.decode import allow_pixels, analyze, make_preview
from dashboard.imaging.errors import DecoderFailed, IngestError, Limits

#: TEST ONLY. With FOTOFLO_TEST_DECODER_CRASH=1 in a worker's environment, a file containing one of
#: these markers makes the worker abort (as a crashing native decoder does) or hang (as one stuck in a
#: loop does). Without the variable they are ordinary bytes and nothing looks for them.
TEST_CRASH_ENV = "FOTOFLO_TEST_DECODER_CRASH"
TEST_ABORT_MARKER = b"FOTOFLO-TEST-DECODER-ABORT"
TEST_HANG_MARKER = b"FOTOFLO-TEST-DECODER-HANG"


def _vm_size_bytes() -> int:
    """The worker's address space now (Linux; elsewhere 0, and `_address_space_limits` is off)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


#: RLIMIT_AS is what bounds a decode on Linux; macOS accepts it but does not enforce it (and counts a
#: shared region of gigabytes), so there only the CPU limit and the timeout apply.
_address_space_limits = sys.platform.startswith("linux")


def _apply_limits(header: dict[str, Any], data_bytes: int, hard_as: int) -> None:
    """Address space for this decode on top of what the worker holds now; CPU seconds on top of those used."""
    if _address_space_limits:
        soft_as = min(hard_as, _vm_size_bytes() + int(header["memory_bytes"]) + 2 * data_bytes)
        resource.setrlimit(resource.RLIMIT_AS, (soft_as, hard_as))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = math.ceil(usage.ru_utime + usage.ru_stime) + int(header["cpu_s"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, resource.RLIM_INFINITY))


def _test_hook(data: bytes) -> None:
    """TEST ONLY (see `TEST_CRASH_ENV`): a real crash or hang for a marked file."""
    if TEST_ABORT_MARKER in data:
        sys.stderr.write(f"decoder {os.getpid()}: test hook: abort\n")
        sys.stderr.flush()
        os.abort()
    if TEST_HANG_MARKER in data:
        sys.stderr.write(f"decoder {os.getpid()}: test hook: hang\n")
        sys.stderr.flush()
        while True:
            time.sleep(1)


def _serve(recv: Connection, send: Connection, ceiling_bytes: int, shared: int) -> None:
    test_hooks = os.environ.get(TEST_CRASH_ENV) == "1"
    # The hard limit is fixed at start, so a worker that hostile bytes took over cannot raise it; the
    # slack above the ceiling is for the file itself (`_apply_limits` counts it twice).
    hard_as = _vm_size_bytes() + ceiling_bytes + 512 * 1024 * 1024
    if _address_space_limits:
        resource.setrlimit(resource.RLIMIT_AS, (hard_as, hard_as))
    # No core dumps: a crash would write the hostile file's decode state (and the worker's memory) to disk.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    while True:
        if _address_space_limits:
            resource.setrlimit(resource.RLIMIT_AS, (hard_as, hard_as))  # room to receive the next file
        try:
            header = json.loads(recv.recv_bytes(MAX_HEADER_BYTES))
        except EOFError:
            return
        data = pread_all(shared, int(header["size"]))
        _apply_limits(header, len(data), hard_as)
        if header["op"] == "limits":
            send.send_bytes(json.dumps(_limits_now()).encode())
            continue
        limits = Limits(max_bytes=int(header["max_bytes"]), max_pixels=int(header["max_pixels"]))
        allow_pixels(limits.max_pixels)
        retire = False
        blobs: list[bytes] = []
        try:
            if test_hooks:
                _test_hook(data)
            if header["op"] == "preview":
                blobs = [make_preview(data, str(header["filename"]), limits)]
                reply: dict[str, Any] = {"ok": True}
            elif header["op"] == "watermark_check":
                blobs, reply = [watermark.check_png(data, str(header["filename"]))], {"ok": True}
            elif header["op"] == "watermark_burn":
                png_bytes = int(header["png_bytes"])  # the PNG first, then the JPEG
                png = data[:png_bytes] if png_bytes else None
                text = header.get("text")
                blobs = [watermark.burn(data[png_bytes:], str(text) if text else None, png)]
                reply = {"ok": True}
            else:
                thumb_only = bool(header.get("thumb_only"))
                analysis = analyze(data, str(header["filename"]), limits, header.get("sha256"), thumb_only=thumb_only)
                fields = asdict(analysis)
                preview, thumb = fields.pop("preview_jpeg"), fields.pop("thumb_jpeg")
                # Blobs are bytes: a preview left for later crosses as an empty one, and `deferred` says so.
                blobs = [preview or b"", thumb]
                reply = {"ok": True, **fields, "deferred": preview is None}
        except IngestError as exc:
            reply = {"ok": False, "code": exc.code, "reason": exc.reason}
        except MemoryError:
            budget_mib = int(header["memory_bytes"]) // (1024 * 1024)
            reason = f"decoding needs more memory than a decoder may use ({budget_mib} MiB)"
            reply, retire = {"ok": False, "code": DecoderFailed.code, "reason": reason}, True
        del data
        offset = 0
        for blob in blobs:
            pwrite_all_at(shared, blob, offset)
            offset += len(blob)
        send.send_bytes(json.dumps({**reply, "blobs": [len(b) for b in blobs], "retire": retire}).encode())
        if retire:  # a heap that hit its limit may be left fragmented: start afresh
            return


def _limits_now() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "RLIMIT_AS": resource.getrlimit(resource.RLIMIT_AS),
        "RLIMIT_CPU": resource.getrlimit(resource.RLIMIT_CPU),
        "RLIMIT_CORE": resource.getrlimit(resource.RLIMIT_CORE),
        "vm_size_bytes": _vm_size_bytes(),
    }


def main() -> None:
    """Serve decode requests on stdin/stdout until stdin closes (the parent went away or closed the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which ends the workers
    recv = Connection(os.dup(0), writable=False)
    send = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)  # a stray print must not corrupt the protocol
    if len(sys.argv) > 3 and int(sys.argv[3]) > 0:
        os.nice(int(sys.argv[3]))  # background work: the other decoders (and the server) go first
    _serve(recv, send, int(sys.argv[1]), int(sys.argv[2]))


if __name__ == "__main__":
    main()
