"""Decoding untrusted bytes in worker processes: a crash, a hang or a pixel bomb costs one file, never the server.

Pillow, pillow-heif and LibRaw parse hostile files in native code. `DecoderPool.analyze` hands each
file to one of at most N long-lived workers (`dashboard/decoder_worker.py`, started with
`subprocess`, never forked from a threaded server) and waits for its `Analysis`. A worker decodes
under `resource.setrlimit` limits (address space sized from the pixel cap, CPU seconds) and a wall
timeout kept by the parent. A worker that dies or overruns is killed and replaced, and the file is
refused with `DecoderFailed`. `dashboard.quarantine` remembers such files by content so the hot folder
and `fotoflo ingest` do not feed them to a decoder again (also after a restart).

JSON headers cross length-framed pipes (`multiprocessing.connection`), the file's bytes and the
renditions an anonymous shared file; nothing is pickled, so a worker that hostile bytes took over
cannot run code in the parent by its answer (the parent checks every size it is told).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import math
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, BinaryIO

from dashboard.decoder_pipe import MAX_HEADER_BYTES, copy_to_start, pwrite_all
from dashboard.imaging.analysis import Analysis
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

log = logging.getLogger("fotoflo.decoders")

#: Address space a decode may add to a worker, per pixel allowed (`Limits.max_pixels`): Pillow keeps
#: RGB as 4 bytes a pixel, and a full-size decode may need a second copy (alpha premultiplied for
#: `reduce`, libheif's planes beside its RGB output).
BYTES_PER_PIXEL = 10
MEMORY_FLOOR_BYTES = 512 * 1024 * 1024  # in bytes: enough for any ordinary photo, whatever the pixel cap
MEMORY_CEILING_BYTES = 16 * 1024 * 1024 * 1024  # in bytes: never more per worker, however large the cap
_SHARED_KEEP_BYTES = 64 * 1024 * 1024  # a worker's shared file keeps its pages up to this size between files
_DEFAULT_LIMITS = Limits()
_REFUSALS = {cls.code: cls for cls in (EmptyFile, TooLarge, NotAnImage, UnsupportedFormat, CorruptImage, TooManyPixels)}


def memory_budget_bytes(limits: Limits, workers: int, total_ram_bytes: int | None = None) -> int:
    """Address space one decode may add to a worker: from the pixel and byte caps, within floor and ceiling.

    The ceiling is also at most half the machine's memory shared by `workers` decodes at once, so N
    pixel bombs together leave the other half to the server and everything else.
    """
    wanted = limits.max_pixels * BYTES_PER_PIXEL + 2 * limits.max_bytes
    return max(MEMORY_FLOOR_BYTES, min(memory_ceiling_bytes(workers, total_ram_bytes), wanted))


def memory_ceiling_bytes(workers: int, total_ram_bytes: int | None = None) -> int:
    """The most address space a decode may add to a worker, whatever the caps: also a worker's hard limit."""
    ram = total_ram_bytes if total_ram_bytes is not None else _total_ram_bytes()
    return max(MEMORY_FLOOR_BYTES, min(MEMORY_CEILING_BYTES, ram // (2 * max(1, workers))))


def _total_ram_bytes() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return MEMORY_CEILING_BYTES


class _WorkerLost(Exception):
    """The worker died, overran its time or broke the protocol; the message says which, for people."""


class _Worker:
    """One decoder process, its two pipes and its shared file; used by one thread at a time (the pool sees to it).

    The pipes carry small JSON headers; the file's bytes and the renditions cross through an anonymous
    shared file (`_shared_file`): one copy in, one copy out, instead of a pipe's many hand-overs between
    two processes, each waiting to be scheduled on a busy machine.
    """

    def __init__(self, env: dict[str, str], ceiling_bytes: int, nice: int = 0) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        self.shared = _shared_file()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dashboard.decoder_worker", str(ceiling_bytes), str(self.shared), str(nice)],
                stdin=to_child_r,
                stdout=from_child_w,
                pass_fds=(self.shared,),
                env=env,
            )
        except OSError:
            for fd in (to_child_w, from_child_r, self.shared):
                os.close(fd)
            raise
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self.send = Connection(to_child_w, readable=False)
        self.recv = Connection(from_child_r, writable=False)
        self.pid = self.proc.pid

    def request(
        self, header: dict[str, Any], data: bytes | BinaryIO, timeout_s: float
    ) -> tuple[dict[str, Any], list[bytes]]:
        """Send one request (the bytes, or an open file's); its reply header and blobs.

        `_WorkerLost` if the worker does not answer in time.
        """
        try:
            if isinstance(data, bytes):
                pwrite_all(self.shared, data)
                size = len(data)
            else:
                size = copy_to_start(self.shared, data)
            self.send.send_bytes(json.dumps({**header, "size": size}).encode())
            if not self.recv.poll(timeout_s):
                raise _WorkerLost(f"the decoder took longer than {timeout_s:g} s and was stopped")
            reply = json.loads(self.recv.recv_bytes(MAX_HEADER_BYTES))
        except (EOFError, OSError, ValueError) as exc:
            raise _WorkerLost(self._death()) from exc
        sizes = reply.get("blobs", []) if isinstance(reply, dict) else None
        if not isinstance(sizes, list) or len(sizes) > 2:
            raise _WorkerLost("the decoder answered nonsense")
        blobs, offset = [], 0
        for size in sizes:
            if not isinstance(size, int) or not 0 <= size <= header["max_blob_bytes"]:
                raise _WorkerLost("the decoder answered nonsense")
            try:
                blob = os.pread(self.shared, size, offset)
            except OSError as exc:
                raise _WorkerLost(f"the decoder's answer cannot be read ({exc.strerror or exc})") from exc
            if len(blob) != size:
                raise _WorkerLost("the decoder answered nonsense")
            blobs.append(blob)
            offset += size
        if offset + size > _SHARED_KEEP_BYTES:
            with contextlib.suppress(OSError):
                os.ftruncate(self.shared, 0)  # give back a large file's pages; small ones are reused
        return reply, blobs

    def _death(self) -> str:
        """Why the worker is gone, from its exit status."""
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "the decoder broke off its answer"
        if code < 0:
            sig = signal.Signals(-code)
            why = {
                signal.SIGSEGV: "crashed",
                signal.SIGBUS: "crashed",
                signal.SIGABRT: "aborted",
                signal.SIGKILL: "was killed (out of memory, or by someone)",
                signal.SIGXCPU: "ran out of its CPU time",
            }.get(sig, "was stopped")
            return f"the decoder {why} ({sig.name})"
        return f"the decoder exited with status {code}"

    def stop(self) -> None:
        """Kill the process and reap it (a lost worker is never trusted again)."""
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.close_pipes()

    def close(self, timeout_s: float = 5) -> None:
        """Let an idle worker end by closing its input; kill it if it does not."""
        self.close_pipes()
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.stop()

    def close_pipes(self) -> None:
        for conn in (self.send, self.recv):
            with contextlib.suppress(OSError):
                conn.close()
        with contextlib.suppress(OSError):
            os.close(self.shared)


def _shared_file() -> int:
    """An anonymous file (memfd on Linux, an unlinked temp file elsewhere), not inherited but by `pass_fds`."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        return int(memfd_create("fotoflo-decode", os.MFD_CLOEXEC))
    fd, path = tempfile.mkstemp(prefix="fotoflo-decode-")
    os.unlink(path)
    return fd


class DecoderPool:
    """At most `size` decodes at once, each in a worker process of its own; workers start when first needed.

    Thread-safe: callers block while all workers are busy. A worker lives across files (its start,
    about 0.3 s of imports, is paid once); one that dies or overruns `Limits.decode_timeout_s` is
    killed, its file refused with `DecoderFailed`, and a new one is started for the next file.
    `nice`: the workers' CPU niceness (`os.nice`); a pool for background work (previews) passes a
    positive one so that the decodes someone waits for take the cores first.
    """

    def __init__(self, size: int | None = None, *, env: dict[str, str] | None = None, nice: int = 0) -> None:
        self.size = max(1, size or os.cpu_count() or 1)
        self.nice = nice
        self._env = _worker_env(env)
        self._slots: queue.LifoQueue[_Worker | None] = queue.LifoQueue()
        for _ in range(self.size):
            self._slots.put(None)
        self._lock = threading.Lock()
        self._workers: set[_Worker] = set()
        self._closed = False
        self.pid = os.getpid()
        self.started = 0  # workers started, replacements included
        self.failed = 0  # files whose worker was lost

    def warm(self) -> None:
        """Start the workers not yet started, in the background: the first files then wait for none.

        For a hot folder: a burst of files right after start would otherwise each pay a worker's start
        (0.3 s, more on a busy machine) and could be published out of the order they arrived in.
        """
        threading.Thread(target=self._warm, name="fotoflo-decoders-warm", daemon=True).start()

    def _warm(self) -> None:
        idle: list[_Worker | None] = []
        with contextlib.suppress(queue.Empty):
            while len(idle) < self.size:
                idle.append(self._slots.get_nowait())
        for worker in idle:  # started ones first, back at once; each missing one as soon as it runs
            if worker is not None:
                self._slots.put(worker)
        for worker in idle:
            if worker is None:
                try:
                    started: _Worker | None = self._start()
                except _WorkerLost:
                    started = None  # stopping, or no process could be made: a decode starts its own
                self._slots.put(started)

    def saturated(self) -> bool:
        """Whether every worker is decoding now (a further call would wait): background work holds back then."""
        return self._slots.qsize() == 0

    def worker_pids(self) -> list[int]:
        """The pids of the live workers (tests kill them)."""
        with self._lock:
            return [w.pid for w in self._workers]

    def analyze(
        self,
        data: bytes,
        filename: str,
        limits: Limits = _DEFAULT_LIMITS,
        sha256: str | None = None,
        *,
        thumb_only: bool = False,
    ) -> Analysis:
        """`dashboard.imaging.decode.analyze` in a worker: the same `Analysis` or `IngestError`, or `DecoderFailed`."""
        header = {"op": "analyze", "filename": filename, "sha256": sha256, "thumb_only": thumb_only}
        reply, blobs = self._call(header, data, filename, limits)
        if reply.get("ok"):
            try:
                fields = {k: reply[k] for k in Analysis.__dataclass_fields__ if k not in ("thumb_jpeg", "preview_jpeg")}
                preview = None if reply.get("deferred") is True else blobs[0]
                return Analysis(**fields, preview_jpeg=preview, thumb_jpeg=blobs[1])
            except (KeyError, IndexError, TypeError) as exc:
                raise DecoderFailed(filename, "the decoder answered nonsense") from exc
        raise self._refusal(reply, filename)

    def preview(self, source: bytes | Path, filename: str, limits: Limits = _DEFAULT_LIMITS) -> bytes:
        """`dashboard.imaging.decode.make_preview` in a worker: the preview JPEG, or `IngestError` / `DecoderFailed`.

        `source`: the bytes, or the file that holds them (an original in the blobs: it goes to the worker
        without passing through this process). `OSError` if that file cannot be opened.
        """
        if isinstance(source, Path):
            with source.open("rb") as fh:
                reply, blobs = self._call({"op": "preview", "filename": filename}, fh, filename, limits)
        else:
            reply, blobs = self._call({"op": "preview", "filename": filename}, source, filename, limits)
        if reply.get("ok"):
            if len(blobs) != 1 or not blobs[0]:
                raise DecoderFailed(filename, "the decoder answered nonsense")
            return blobs[0]
        raise self._refusal(reply, filename)

    def check_watermark(self, png: bytes, limits: Limits = _DEFAULT_LIMITS) -> bytes:
        """`dashboard.imaging.watermark.check_png` in a worker: the upload re-encoded, or `IngestError`."""
        reply, blobs = self._call({"op": "watermark_check", "filename": "watermark.png"}, png, "watermark.png", limits)
        if reply.get("ok"):
            if len(blobs) != 1 or not blobs[0]:
                raise DecoderFailed("watermark.png", "the decoder answered nonsense")
            return blobs[0]
        raise self._refusal(reply, "watermark.png")

    def burn_watermark(
        self, jpeg: bytes, text: str | None, png: bytes | None, limits: Limits = _DEFAULT_LIMITS
    ) -> bytes:
        """`dashboard.imaging.watermark.burn` in a worker (the PNG is decoded only there): a JPEG, or `IngestError`."""
        header = {"op": "watermark_burn", "filename": "watermark", "text": text, "png_bytes": len(png or b"")}
        reply, blobs = self._call(header, (png or b"") + jpeg, "watermark", limits)
        if reply.get("ok"):
            if len(blobs) != 1 or not blobs[0]:
                raise DecoderFailed("watermark", "the decoder answered nonsense")
            return blobs[0]
        raise self._refusal(reply, "watermark")

    @staticmethod
    def _refusal(reply: dict[str, Any], filename: str) -> IngestError:
        code, reason = str(reply.get("code", "")), str(reply.get("reason", "refused"))[:1000]
        return _REFUSALS.get(code, DecoderFailed)(filename, reason)

    def worker_limits(self, limits: Limits = _DEFAULT_LIMITS) -> dict[str, Any]:
        """The resource limits a worker decodes under for `limits` (as `getrlimit` reports them there)."""
        reply, _ = self._call({"op": "limits"}, b"", "limits", limits)
        return reply

    def _call(
        self, header: dict[str, Any], data: bytes | BinaryIO, filename: str, limits: Limits
    ) -> tuple[dict[str, Any], list[bytes]]:
        if self._closed:
            raise DecoderFailed(filename, "the server is stopping")
        header = {
            **header,
            "max_bytes": limits.max_bytes,
            "max_pixels": limits.max_pixels,
            "memory_bytes": memory_budget_bytes(limits, self.size),
            "cpu_s": math.ceil(limits.decode_timeout_s),
            "max_blob_bytes": limits.max_bytes + 64 * 1024 * 1024,
        }
        worker = self._slots.get()  # at most `size` decodes at once
        try:
            if worker is not None and worker.proc.poll() is not None:  # died idle (killed, or out of memory)
                self._forget(worker)
                worker = None
            if worker is None:
                if self._closed:
                    raise DecoderFailed(filename, "the server is stopping")
                worker = self._start()
            reply, blobs = worker.request(header, data, limits.decode_timeout_s)
            if reply.get("retire"):  # it ends itself after this answer: never send it another file
                self._forget(worker)
                worker = None
            return reply, blobs
        except _WorkerLost as lost:
            if worker is not None:
                self._forget(worker)
                worker = None
            with self._lock:
                self.failed += 1
            log.warning("decoding %s: %s; the next file gets a new decoder process", filename, lost)
            raise DecoderFailed(filename, str(lost)) from None
        finally:
            self._slots.put(worker)

    def _start(self) -> _Worker:
        try:
            worker = _Worker(self._env, memory_ceiling_bytes(self.size), self.nice)
        except OSError as exc:  # out of processes or file descriptors: this file cannot be decoded now
            raise _WorkerLost(f"no decoder process could be started ({exc.strerror or exc})") from exc
        with self._lock:
            if self._closed:
                worker.stop()
                raise _WorkerLost("the server is stopping")
            self._workers.add(worker)
            self.started += 1
        return worker

    def _forget(self, worker: _Worker) -> None:
        worker.stop()
        with self._lock:
            self._workers.discard(worker)

    def close(self) -> None:
        """End every worker; a decode still running is refused with `DecoderFailed`."""
        with self._lock:
            self._closed = True
            workers, self._workers = list(self._workers), set()
        for worker in workers:
            worker.close(timeout_s=1)


def _worker_env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    # The worker imports this very package, whatever the working directory or installed copy.
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    # Fewer reserved arenas and thread stacks: RLIMIT_AS counts address space, not memory touched.
    env.setdefault("MALLOC_ARENA_MAX", "2")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


#: The niceness of the background pool's workers: on a busy machine they get about a tenth of a core's
#: share beside a decode at niceness 0, so previews wait while thumbnails (what makes an image visible) run.
BACKGROUND_NICE = 10

_shared: dict[str, DecoderPool] = {}
_shared_lock = threading.Lock()


def shared_pool() -> DecoderPool:
    """This process's pool (one worker per core at most), made on first use and closed at exit."""
    return _shared_named("decode", 0)


def shared_background_pool() -> DecoderPool:
    """This process's pool for work no one waits for (previews made after publishing), at `BACKGROUND_NICE`."""
    return _shared_named("background", BACKGROUND_NICE)


def _shared_named(name: str, nice: int) -> DecoderPool:
    with _shared_lock:
        pool = _shared.get(name)
        if pool is None or pool.pid != os.getpid():  # a forked child must not share its parent's pipes
            pool = _shared[name] = DecoderPool(nice=nice)
            atexit.register(pool.close)
        return pool
