"""Live model benchmark: `LiveImages` in process and over SSE, and the studio dashboard page on it.

    python benchmarks/live_model.py             # measure, then rewrite the "live-model" section (about 10 minutes)
    python benchmarks/live_model.py --no-write  # print the section instead
    python benchmarks/live_model.py --images 20000 --samples 20 --sessions 10 --no-write   # a quick look

What issue 18 asks of the Python-side live model (dashboard/live/, docs/live.md), on two projects of one
data directory: `default` (1,000 images) and `large` (`--images`, 100,000), their records written straight
into the store (`SQLiteStore.add_image`, as tests/http/test_stream.py does), with cameras, lenses, focal
lengths, ISOs, capture minutes, stars and flags for the dashboard to count.

1. Ingest → `LiveImages.count` watcher (a plain `param.watch` outside any session, called on the model's
   worker thread), p50/p95 over `--samples` images each: in process (`dashboard.open(DIR).live()`, files
   ingested with `Project.ingest`, the one ingest door) and remote (`dashboard.open(URL).live()` over the
   SSE stream of a `fotoflo serve` subprocess, files uploaded over HTTP). Timed from the moment the ingest
   call begins; the call's own time is given beside it.
2. Memory of one model over each project (window 500), in a fresh child process each: VmRSS and the
   Python heap (tracemalloc, in a second child) before and after, and the same for the project's
   `ProjectTally` (what the dashboard adds). Then the work per delivered change: the model's worker time
   per feed batch, at 1,000 and at 100,000 images (and with the tally attached, in process).
3. Websocket bytes per new image for the studio page (`/?mode=dashboard`: the count, the charts, the
   tables and the gallery), at 1,000 and 100,000 images: a real Panel session pulled with Bokeh's
   websocket client (no browser), every frame it receives counted.
4. `--sessions` (50) such sessions of the page on one server: feed subscriptions (`/healthz`) and server
   threads, server RSS per session, and a file dropped into the hot folder → the count's new value
   applied in every session's document, p50/p95.
"""

from __future__ import annotations

import argparse
import gc
import html
import json
import os
import pickle
import queue
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (
    ROOT,
    OtherLoad,
    Server,
    cores,
    free_port,
    machine_description,
    percentile,
    publish,
)

from dashboard.samples import photo_jpeg
from dashboard.store.sqlite import SQLiteStore
from tests.support.records import image_record
from tests.support.waiting import wait_until

SMALL = "default"  # the server's project: the hot folder ingests into it
LARGE = "large"
SMALL_IMAGES = 1000
WINDOW = 500
CAMERAS = [("Canon", "EOS R5"), ("SONY", "ILCE-7RM5"), ("FUJIFILM", "X-T5")]
LENSES = ["RF24-70mm F2.8 L IS USM", "FE 85mm F1.4 GM", "XF56mmF1.2 R WR", "RF70-200mm F2.8 L IS USM"]
FOCALS = [24, 35, 50, 56, 85, 135, 200]
ISOS = [100, 200, 400, 800, 1600, 3200, 6400]
SESSION_STEPS = (1, 10, 25, 50)
RUN = os.urandom(8).hex()  # in every ingested file's bytes
WARM_UP = 2  # files ingested into each model before any is timed (the first start the decoder processes)


# -- the projects -------------------------------------------------------------------------------


def seed(data: Path, project: str, count: int) -> float | None:
    """Write `count` image records into `project` unless it has that many; the seconds it took, else None."""
    data.mkdir(parents=True, exist_ok=True)
    store = SQLiteStore(data / "fotoflo.sqlite")
    try:
        store.ensure_project(project)
        have = store.count_images(project)
        if have >= count:
            return None
        start = time.perf_counter()
        for n in range(have, count):
            make, model = CAMERAS[n % len(CAMERAS)]
            minute = n // 20  # 20 shots a minute, over days of shooting at 100,000
            day, rest = divmod(minute, 24 * 60)
            store.add_image(image_record(
                n, project, id_prefix=f"{project[:1]}", id_digits=7, content=f"{project} {n}",
                filename=f"IMG_{n:06d}.JPG", camera_make=make, camera_model=model,
                captured_at=f"2026-03-{1 + day % 28:02d}T{rest // 60:02d}:{rest % 60:02d}:{n % 60:02d}",
                exif={"lens": LENSES[(n // 3) % len(LENSES)], "focal_length_mm": FOCALS[n % len(FOCALS)],
                      "iso": ISOS[(n // 7) % len(ISOS)]},
                rating=(n % 6) if n % 4 == 0 else 0,
                flag="pick" if n % 11 == 0 else "reject" if n % 13 == 0 else "none",
            ))  # fmt: skip
        return time.perf_counter() - start
    finally:
        store.close()


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of `source`'s SQLite database into data directory `target` (SQLite's backup API)."""
    target.mkdir(parents=True, exist_ok=True)
    src, dst = sqlite3.connect(source / "fotoflo.sqlite"), sqlite3.connect(target / "fotoflo.sqlite")
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def payloads(first_seed: int, count: int, size: tuple[int, int]) -> list[tuple[str, bytes]]:
    """`count` distinct photo-like JPEGs with names nobody else uses, made before anything is timed.

    Eight pictures, each file made distinct by a few bytes after its end-of-image marker (a 1600×1067
    picture takes 0.4 s to make; decoders ignore the tail, the SHA-256 does not), this run's among them:
    a project kept with `--data` already has the last run's, and an ingest skips content it has.
    """
    bases = [photo_jpeg(first_seed + n, size) for n in range(min(count, 8))]
    return [
        (f"LM{first_seed + n:05d}.JPG", bases[n % len(bases)] + f"fotoflo-bench {RUN} {first_seed + n}".encode())
        for n in range(count)
    ]


# -- watching a model ---------------------------------------------------------------------------


class CountWatch:
    """When a model's `count` watcher was called with each value (`time.perf_counter()`): a plain param watcher."""

    def __init__(self, live: Any) -> None:
        self.live = live
        self.seen: dict[int, float] = {}
        self._cond = threading.Condition()
        self._watcher = live.param.watch(self._on_count, "count")

    def _on_count(self, event: Any) -> None:
        now = time.perf_counter()
        with self._cond:
            self.seen.setdefault(int(event.new), now)
            self._cond.notify_all()

    def wait(self, count: int, timeout_s: float = 30.0) -> float:
        with self._cond:
            if not self._cond.wait_for(lambda: count in self.seen, timeout=timeout_s):
                raise RuntimeError(f"{self.live!r}: count never reached {count} within {timeout_s:.0f} s")
            return self.seen[count]

    def close(self) -> None:
        self.live.param.unwatch(self._watcher)


class WorkTimer:
    """The model's worker time for each job that moved its feed cursor: one delivered batch, its watchers included.

    Wraps the model's `post` (every source hands its batches to the worker through it), so nothing of
    the model is changed; wall time and the worker thread's CPU time, per batch and its number of changes.
    """

    def __init__(self, live: Any) -> None:
        self.live = live
        self.batches: list[tuple[float, float, int]] = []  # (wall s, CPU s, changes)
        post = live.post

        def timed(job: Callable[[], None]) -> None:
            def run() -> None:
                seq, wall, cpu = live.last_seq, time.perf_counter(), time.thread_time()
                job()
                if live.last_seq != seq:
                    self.batches.append((time.perf_counter() - wall, time.thread_time() - cpu, len(live.changes)))

            post(run)

        live.post = timed

    def take(self) -> list[tuple[float, float, int]]:
        out, self.batches = self.batches, []
        return out

    def close(self) -> None:
        del self.live.post


@dataclass
class Latency:
    """Ingest → `count` watcher for one model: per image, from the call's start and the call's own time (ms)."""

    begin_ms: list[float] = field(default_factory=list)
    call_ms: list[float] = field(default_factory=list)
    before_return: int = 0  # watcher called before the ingest call had returned

    def summary(self) -> str:
        return (
            f"{len(self.begin_ms)} images, call begins → watcher p50 {percentile(self.begin_ms, 50):.0f} ms, "
            f"p95 {percentile(self.begin_ms, 95):.0f} ms; the call p50 {percentile(self.call_ms, 50):.0f} ms"
        )


def ingest_timed(
    live: Any, watch: CountWatch, files: list[tuple[str, bytes]], ingest: Callable[[str, bytes], None]
) -> Latency:
    """Ingest `files` one at a time, each waited for at the watcher before the next."""
    out = Latency()
    for name, data in files:
        wanted = live.count + 1
        begin = time.perf_counter()
        ingest(name, data)
        returned = time.perf_counter()
        seen = watch.wait(wanted)
        out.begin_ms.append((seen - begin) * 1000)
        out.call_ms.append((returned - begin) * 1000)
        out.before_return += seen < returned
    return out


def per_change_us(batches: list[tuple[float, float, int]]) -> dict[str, float]:
    changes = sum(n for *_, n in batches) or 1
    walls = [w / max(1, n) * 1e6 for w, _, n in batches]
    return {
        "batches": len(batches),
        "changes": changes,
        "wall_p50_us": percentile(walls, 50),
        "wall_p95_us": percentile(walls, 95),
        "cpu_mean_us": sum(c for _, c, _ in batches) / changes * 1e6,
    }


# -- 1 and 2: in process and remote -------------------------------------------------------------


def in_process(data: Path, args: argparse.Namespace, files: list[tuple[str, bytes]]) -> dict[str, Any]:
    """`dashboard.open(DIR).live()` on both projects; files ingested with `Project.ingest` (ingest_path)."""
    import dashboard
    from dashboard.embedded import stop_all
    from dashboard.live import close_all
    from dashboard.studio import tally_of

    drop = data.parent / "incoming"
    drop.mkdir(exist_ok=True)
    out: dict[str, Any] = {"work": {}}
    try:
        for project, count in ((SMALL, args.samples), (LARGE, args.work_samples)):
            handle = dashboard.open(data, project)
            live = handle.live()
            live.wait_for(lambda m: m.connected, timeout_s=30)
            watch, timer = CountWatch(live), WorkTimer(live)

            def ingest(name: str, payload: bytes, handle: Any = handle) -> None:
                path = drop / name
                path.write_bytes(payload)
                handle.ingest(path)

            warm, batch, files = files[:WARM_UP], files[WARM_UP : WARM_UP + count], files[WARM_UP + count :]
            ingest_timed(live, watch, warm, ingest)
            timer.take()
            out[f"latency_{project}"] = ingest_timed(live, watch, batch, ingest)
            out["work"][(project, "model")] = per_change_us(timer.take())
            tally = tally_of(live)
            if not tally.wait_ready(600):
                raise RuntimeError(f"the tally of {project} was not read within 10 minutes")
            timer.take()
            batch, files = files[: args.work_samples], files[args.work_samples :]
            ingest_timed(live, watch, batch, ingest)
            out["work"][(project, "model + tally")] = per_change_us(timer.take())
            print(f"in process, {project}: {out[f'latency_{project}'].summary()}", flush=True)
            print(f"  per change: {[(k, v) for k, v in out['work'].items() if k[0] == project]}", flush=True)
            watch.close()
            timer.close()
    finally:
        close_all()
        stop_all()
    return out


def remote(server: Server, args: argparse.Namespace, files: list[tuple[str, bytes]]) -> dict[str, Any]:
    """`dashboard.open(URL).live()` over SSE on both projects; files uploaded to the server over HTTP."""
    import dashboard
    from dashboard.live import close_all

    out: dict[str, Any] = {"work": {}}
    client = httpx.Client(base_url=server.url, timeout=60)
    try:
        for project, count in ((SMALL, args.samples), (LARGE, args.work_samples)):
            live = dashboard.open(server.url, project).live()
            live.wait_for(lambda m: m.connected, timeout_s=30)
            watch, timer = CountWatch(live), WorkTimer(live)

            def ingest(name: str, payload: bytes, project: str = project) -> None:
                response = client.post(f"/api/projects/{project}/upload", files={"file": (name, payload, "image/jpeg")})
                response.raise_for_status()

            warm, batch, files = files[:WARM_UP], files[WARM_UP : WARM_UP + count], files[WARM_UP + count :]
            ingest_timed(live, watch, warm, ingest)
            timer.take()
            out[f"latency_{project}"] = ingest_timed(live, watch, batch, ingest)
            out["work"][(project, "model")] = per_change_us(timer.take())
            print(f"remote, {project}: {out[f'latency_{project}'].summary()}", flush=True)
            print(f"  per change: {out['work'][(project, 'model')]}", flush=True)
            watch.close()
            timer.close()
    finally:
        client.close()
        close_all()
    return out


# -- 2: memory, in a child process each ---------------------------------------------------------


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise KeyError("VmRSS")


def memory_child(kind: str, source: str, project: str, trace: bool) -> dict[str, Any]:
    """In this (fresh) process: one model of `project` over `source`, then its tally; what each added."""
    import dashboard
    import dashboard.live.hub_source
    import dashboard.live.sse_source
    from dashboard.studio import tally_of

    handle = dashboard.open(source, project)
    if kind == "in process":
        from dashboard.embedded import background_server

        store = background_server(source, project).app.store  # warm SQLite's cache as the model's read would
        store.list_images(project, limit=WINDOW)
        store.count_images(project)

    def reading() -> tuple[int, int]:
        gc.collect()
        return rss_kb(), tracemalloc.get_traced_memory()[0] if trace else 0

    if trace:
        tracemalloc.start()
    rss0, heap0 = reading()
    live = handle.live(window=WINDOW)
    if not live.wait_for(lambda m: m.connected and len(m.images) == min(WINDOW, m.count), timeout_s=60):
        raise RuntimeError(f"{live!r} did not fill in")
    time.sleep(0.5)  # the first deliveries and the stream's buffers
    rss1, heap1 = reading()
    started = time.perf_counter()
    tally = tally_of(live)
    if not tally.wait_ready(600):
        raise RuntimeError("the tally was not read within 10 minutes")
    read_s = time.perf_counter() - started
    rss2, heap2 = reading()
    return {
        "kind": kind, "project": project, "count": live.count, "images": len(live.images), "trace": trace,
        "model_rss_kb": rss1 - rss0, "model_heap_b": heap1 - heap0,
        "tally_rss_kb": rss2 - rss1, "tally_heap_b": heap2 - heap1, "tally_read_s": read_s,
    }  # fmt: skip


def memory(kind: str, source: str, project: str) -> dict[str, Any]:
    """`memory_child` run twice in fresh processes: VmRSS without tracemalloc, the Python heap with it."""
    out: dict[str, Any] = {}
    for trace in (False, True):
        argv = [sys.executable, __file__, "--memory-child", kind, source, project] + (["--trace"] if trace else [])
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=ROOT)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"the memory child failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        result = json.loads(lines[-1].removeprefix("RESULT "))
        out.update(result if not trace else {k: v for k, v in result.items() if "heap" in k})
    print(f"memory, {kind}, {project}: {out}", flush=True)
    return out


# -- 3 and 4: the studio page as Panel sessions -------------------------------------------------


class DashboardSession:
    """The studio page (`/?mode=dashboard&project=P`) as a real Panel session, pulled with Bokeh's websocket client.

    The client lives in a thread of its own (its IOLoop reads the socket only while it runs). Every frame
    it receives is counted (`bytes_in`), each PATCH-DOC's events by the type of model they change
    (`by_model`, their JSON), and the moment the count's new value is applied to the document is stamped
    (`seen[count]`, `time.perf_counter()`), as a browser would draw it.
    """

    def __init__(self, url: str, project: str) -> None:
        self.url, self.project = url, project
        self.client: Any = None
        self.thread: threading.Thread | None = None
        self.bytes_in = 0
        self.messages = 0
        self.by_model: Counter[str] = Counter()
        self.last_frame_s = time.perf_counter()
        self.seen: dict[int, float] = {}
        self._count_model: Any = None

    def open(self, timeout_s: float = 120.0) -> DashboardSession:
        ready: queue.Queue[BaseException | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, args=(ready,), name="bokeh-client", daemon=True)
        self.thread.start()
        error = ready.get(timeout=timeout_s)
        if error is not None:
            raise RuntimeError(f"a dashboard session of {self.project} did not open") from error
        return self

    def _run(self, ready: queue.Queue[BaseException | None]) -> None:
        from bokeh.client import pull_session
        from bokeh.document.events import ModelChangedEvent

        try:
            client: Any = pull_session(url=self.url + "/", arguments={"mode": "dashboard", "project": self.project})
            doc = client.document
            self._count_model = next(
                m for m in doc.models if "ff-studio-count" in (getattr(m, "css_classes", ()) or ())
            )
            self._note_count(self._count_model.text)
            socket = client._connection._socket
            read, handle_patch = socket.read_message, client._handle_patch

            async def counted(callback: Any = None) -> Any:
                fragment = await read(callback)
                if fragment is not None:
                    self.bytes_in += len(fragment.encode() if isinstance(fragment, str) else fragment)
                    self.last_frame_s = time.perf_counter()
                return fragment

            def patched(message: Any) -> None:
                self.messages += 1
                for event in message.content.get("events", []):
                    model = doc.get_model_by_id(event.get("model", {}).get("id", ""))
                    self.by_model[type(model).__name__ if model is not None else "?"] += len(json.dumps(event))
                handle_patch(message)

            def changed(event: Any) -> None:
                if isinstance(event, ModelChangedEvent) and event.model is self._count_model and event.attr == "text":
                    self._note_count(event.new)

            socket.read_message = counted
            client._handle_patch = patched
            doc.on_change(changed)
            self.client = client
        except BaseException as exc:
            ready.put(exc)
            return
        ready.put(None)
        client._connection.loop_until_closed()  # ClientSession's own is `_loop_until_closed`, "for testing"

    def _note_count(self, text: str) -> None:
        numbers = re.findall(r">\s*([\d,]+)\s*<", html.unescape(text))
        if numbers:
            self.seen.setdefault(int(numbers[-1].replace(",", "")), time.perf_counter())

    @property
    def count(self) -> int:
        return max(self.seen, default=-1)

    def tallied(self) -> bool:
        """Whether the timeline counts every image the count says (the project's tally was read)."""
        for model in list(self.client.document.models):
            data = getattr(model, "data", None)
            if isinstance(data, dict) and "shots" in data:
                return bool(sum(data["shots"]) == self.count)
        return False

    def reset(self) -> None:
        self.bytes_in, self.messages, self.by_model = 0, 0, Counter()

    def close(self) -> None:
        if self.client is not None:
            self.client._connection.io_loop.add_callback(self.client.close)
        if self.thread is not None:
            self.thread.join(timeout=30)


def import_page_models() -> None:
    """The types of the studio page's models, without which Bokeh's client cannot deserialize its document."""
    import panel.models.esm
    import panel.models.tabulator  # noqa: F401

    import dashboard.gallery
    import dashboard.studio  # noqa: F401


def settle(sessions: Sequence[DashboardSession], quiet_s: float, timeout_s: float = 600.0) -> None:
    """Wait until every session's tally is in and no frame came for `quiet_s`."""
    wait_until(lambda: all(s.count >= 0 and s.tallied() for s in sessions), timeout_s=timeout_s, interval_s=0.2)
    wait_until(lambda: time.perf_counter() - max(s.last_frame_s for s in sessions) >= quiet_s, timeout_s=timeout_s)


def delivered(sessions: Sequence[DashboardSession], count: int, timeout_s: float = 60.0) -> None:
    """Wait until every session's document shows `count`."""
    wait_until(lambda: all(count in s.seen for s in sessions), timeout_s=timeout_s, interval_s=0.01)


def upload(client: httpx.Client, project: str, name: str, data: bytes) -> None:
    client.post(f"/api/projects/{project}/upload", files={"file": (name, data, "image/jpeg")}).raise_for_status()


def bytes_per_image(server: Server, projects: list[str], per_size: int, first_seed: int) -> list[dict[str, Any]]:
    """One dashboard session per project; `per_size` uploads each, every byte the session received."""
    rows = []
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for project in projects:
            session = DashboardSession(server.url, project).open()
            try:
                settle([session], quiet_s=2.0)
                count = session.count
                session.reset()
                for name, data in payloads(first_seed, per_size, (320, 213)):
                    upload(client, project, name, data)
                    delivered([session], session.count + 1)
                first_seed += per_size
                settle([session], quiet_s=1.0)
                rows.append({
                    "project": project, "images": count, "bytes": session.bytes_in / per_size,
                    "messages": session.messages / per_size,
                    "by_model": {k: v / per_size for k, v in session.by_model.most_common()},
                })  # fmt: skip
                print(f"bytes, {project}: {rows[-1]}", flush=True)
            finally:
                session.close()
    return rows


def drop_files(
    server: Server, sessions: Sequence[DashboardSession], files: list[tuple[str, bytes]], gap_s: float
) -> list[list[float]]:
    """Rename `files` into the hot folder one at a time; per file, ms from the rename to each session's new count."""
    drops = []
    for name, data in files:
        wanted = max(s.count for s in sessions) + 1
        temp = server.watch / f".{name}.part"
        temp.write_bytes(data)
        dropped = time.perf_counter()
        os.replace(temp, server.watch / name)  # complete the moment it has its name
        delivered(sessions, wanted)
        drops.append([(s.seen[wanted] - dropped) * 1000 for s in sessions])
        print(f"  {name}: last session {max(drops[-1]):.0f} ms", flush=True)
        time.sleep(gap_s)
    return drops


#: Where the server's time goes per new image with the sessions open: a frame in the stack → what it is.
PROFILE_PARTS = {
    "ImageTable._on_window": "the image table: Panel's `Tabulator.stream` of one row",
    "TallyChart._on_change": "the timeline and the distributions (`ColumnDataSource` stream/patch)",
    "TallyTable._draw": "the camera and collection tables (`Tabulator.patch`)",
    "Protocol.create": "Bokeh: making the PATCH-DOC messages",
    "write_message": "Tornado: writing the websocket frames",
    "LiveImages": "the model's worker (watchers scheduled on each session)",
    "ProjectTally": "the tally",
    "Ingestor": "the ingest",
}


def profile_drops(
    server: Server, sessions: Sequence[DashboardSession], args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    """More drops, not timed, with py-spy recording the server: the share of its samples under each `PROFILE_PARTS`."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return {"error": "no py-spy"}
    raw = work / "server.spy"
    argv = [spy, "record", "-p", str(server.pid), "-f", "raw", "-o", str(raw), "-r", "100", "--nonblocking"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)
    if proc.poll() is not None:  # no ptrace here (not root, yama's ptrace_scope)
        return {"error": (proc.stderr.read().decode(errors="replace") if proc.stderr else "").strip()[:200]}
    drop_files(server, sessions, payloads(95_000, args.profile_drops, tuple(args.image_size)), args.gap_s)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    shares: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        total += int(samples)
        for frame in PROFILE_PARTS:
            if frame in stack:
                shares[frame] += int(samples)
    return {"drops": args.profile_drops, "samples": total, "shares": {k: v / max(1, total) for k, v in shares.items()}}


def sessions_phase(server: Server, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """`--sessions` dashboard sessions of `default` on one server: subscriptions, memory, drop → every session."""
    out: dict[str, Any] = {"rss_mb": {}, "subscribers": {}, "threads": {}, "open_s": {}}
    sessions: list[DashboardSession] = []
    out["rss_mb"][0] = server.settled_rss_mb()
    out["subscribers"][0] = server.subscribers()
    out["threads"][0] = server.status("Threads")
    steps = sorted({n for n in SESSION_STEPS if n < args.sessions} | {args.sessions})
    start = time.perf_counter()
    try:
        for step in steps:
            while len(sessions) < step:
                sessions.append(DashboardSession(server.url, SMALL).open())
            settle(sessions, quiet_s=1.0)
            out["open_s"][step] = time.perf_counter() - start
            out["rss_mb"][step] = server.settled_rss_mb()
            out["subscribers"][step] = server.subscribers()
            out["threads"][step] = server.status("Threads")
            print(
                f"{step} sessions: RSS {out['rss_mb'][step]:.1f} MB, {out['subscribers'][step]} feed subscriptions, "
                f"{out['threads'][step]} threads",
                flush=True,
            )
        cpu0, load = server.cpu_s(), OtherLoad()
        with load:
            out["drops"] = drop_files(
                server, sessions, payloads(90_000, args.drops, tuple(args.image_size)), args.gap_s
            )
        out["cpu_per_image_ms"] = (server.cpu_s() - cpu0) / max(1, args.drops) * 1000
        out["others_cores"] = load.others_cores
        if args.profile_drops:
            out["profile"] = profile_drops(server, sessions, args, work)
    finally:
        for session in sessions:
            session.close()
    # Panel destroys a closed session's document a while later (its unused-session check): wait for that.
    wait_until(lambda: server.log_count("session closed") >= len(sessions), timeout_s=args.close_timeout_s)
    out["rss_closed_mb"] = server.settled_rss_mb(30)
    out["threads_closed"] = server.status("Threads")
    return out


# -- the section --------------------------------------------------------------------------------


def _ms(values: Sequence[float], pct: float) -> str:
    return f"{percentile(values, pct):.0f} ms" if values else "–"


def _kb(kb: float) -> str:
    return f"{kb / 1024:.1f} MB" if abs(kb) >= 1024 else f"{kb:.0f} kB"


def _b(n: float) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if abs(n) >= 1024 * 1024 else f"{n / 1024:.0f} kB"


def slope(points: dict[int, float]) -> float:
    """Least-squares MB per session through the readings with at least one session open."""
    xs, ys = zip(*sorted((n, mb) for n, mb in points.items() if n > 0), strict=True)
    if len(xs) < 2:
        return float("nan")
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def profile_lines(profile: dict[str, Any] | None, sessions: int) -> list[str]:
    if not profile:
        return []
    if "error" in profile:
        return [f"Where the server's time goes: not recorded ({profile['error']}).", ""]
    lines = [
        f"Where the server's time goes with the {sessions} sessions open: py-spy recorded the server over "
        f"{profile['drops']} more drops (not timed; {profile['samples']:,} samples of busy threads at 100 Hz). "
        "Share of the samples whose stack holds each part (parts nest: Bokeh's messages and the websocket writes "
        "happen inside the pieces' updates):",
        "",
        "| part | share of the server's samples |",
        "|---|---|",
    ]
    for frame, what in PROFILE_PARTS.items():
        lines.append(f"| {what} (`{frame}`) | {profile['shares'].get(frame, 0.0) * 100:.0f} % |")
    return [*lines, ""]


def render(r: dict[str, Any], args: argparse.Namespace, machine: str) -> str:
    ip, rm = r["in_process"], r["remote"]
    small, large = (next(m["count"] for m in r["memory"] if m["project"] == p) for p in (SMALL, LARGE))
    w, h = args.image_size
    lines = [
        "## Live model: `LiveImages` in process and over SSE, and the studio page on it",
        "",
        f"Measured by `benchmarks/live_model.py` on {machine}. Other processes used {r['idle_cores']:.2f} "
        f"cores just before the run; the run took {r['run_s'] / 60:.1f} minutes.",
        "",
        f"One data directory, two projects: `{SMALL}` ({small:,} images) and `{LARGE}` ({large:,}) as the steps "
        "below began (the images they ingest add to them), their records written straight into the store "
        "(three cameras, four lenses, seven focal lengths and ISOs, 20 shots a minute, a quarter rated, some "
        "picks and rejects); seeding took "
        f"{r['seed']}. In process, a copy of it opened with `dashboard.open(DIR, project)` (a background "
        "server in the benchmark's process); remote, one `fotoflo serve` subprocess on it (SQLite, in-process "
        "bus, hot folder). The models are the process's shared ones, window 500.",
        "",
        "### Ingest → `count` watcher",
        "",
        f"Photo-like {w}×{h} JPEGs, one at a time, each waited for before the next. In process: the file "
        "written beside the data directory, then `Project.ingest(path)` (`App.ingest_path`, the one ingest "
        "door); remote: `POST /api/projects/{p}/upload` over loopback to the server. Timed with "
        "`time.perf_counter()` from the moment the call begins to the model's `count` watcher (a plain "
        '`live.param.watch(fn, "count")` outside any Panel session, so called on the model\'s worker thread); '
        "the call's own time (decode, preview and thumbnail, store commit; and the HTTP round trip, remote) is "
        "inside that and given beside it.",
        "",
        "| model | project | images | call begins → watcher p50 | p95 | max | the call's own time p50 "
        "| watcher before the call returned |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, part in (("in process", ip), ("remote (SSE)", rm)):
        for project in (SMALL, LARGE):
            lat: Latency = part[f"latency_{project}"]
            if not lat.begin_ms:
                continue
            lines.append(
                f"| {label} | `{project}` | {len(lat.begin_ms)} | {_ms(lat.begin_ms, 50)} | {_ms(lat.begin_ms, 95)} "
                f"| {max(lat.begin_ms):.0f} ms | {_ms(lat.call_ms, 50)} | {lat.before_return} of {len(lat.begin_ms)} |"
            )
    small_ip, small_rm = ip[f"latency_{SMALL}"], rm[f"latency_{SMALL}"]
    after_ip = [b - c for b, c in zip(small_ip.begin_ms, small_ip.call_ms, strict=True)]
    after_rm = [b - c for b, c in zip(small_rm.begin_ms, small_rm.call_ms, strict=True)]
    lines += [
        "",
        f"From the call's return to the watcher (`{SMALL}`): in process p50 {_ms(after_ip, 50)}, p95 "
        f"{_ms(after_ip, 95)} (negative: the watcher ran before the call returned); remote p50 {_ms(after_rm, 50)}, "
        f"p95 {_ms(after_rm, 95)} (the SSE event and the model's worker).",
        "",
        "### Memory of one model, and of its tally",
        "",
        "Each in a fresh child process: the project opened first (in process, its store's first page and count "
        "read once, so SQLite's cache is warm), then one `LiveImages` (window 500) made and filled, then the "
        "project's `ProjectTally` (`tally_of(live)`, what the studio dashboard adds: a few facts per image of the "
        "whole project). VmRSS deltas from one child, Python heap deltas (tracemalloc) from a second; "
        "`gc.collect()` before each reading.",
        "",
        "| model | project | images | model: RSS | model: Python heap | per image in the window "
        "| tally: RSS | tally: Python heap | per project image | tally read in |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in r["memory"]:
        lines.append(
            f"| {m['kind']} | `{m['project']}` | {m['count']:,} | {_kb(m['model_rss_kb'])} | {_b(m['model_heap_b'])} "
            f"| {m['model_heap_b'] / max(1, m['images']):,.0f} B | {_kb(m['tally_rss_kb'])} | {_b(m['tally_heap_b'])} "
            f"| {m['tally_heap_b'] / max(1, m['count']):,.0f} B | {m['tally_read_s']:.1f} s |"
        )
    lines += [
        "",
        "### Work per delivered change",
        "",
        "The model's worker time for each feed batch it applied (wall time of the job, watchers included: "
        "the benchmark's count watcher, and the tally's when it is attached), from the images ingested above; "
        "one image a batch.",
        "",
        "| model | project | batches | per change: wall p50 | p95 | worker CPU, mean |",
        "|---|---|---|---|---|---|",
    ]
    for label, part in (("in process", ip), ("remote (SSE)", rm)):
        for (project, what), v in part["work"].items():
            lines.append(
                f"| {label}, {what} | `{project}` | {v['batches']} | {v['wall_p50_us']:,.0f} µs "
                f"| {v['wall_p95_us']:,.0f} µs | {v['cpu_mean_us']:,.0f} µs |"
            )
    b = {row["project"]: row for row in r["bytes"]}
    big = [m for m in r["memory"] if m["project"] == LARGE]
    work_small, work_large = (ip["work"][(p, "model")]["wall_p50_us"] for p in (SMALL, LARGE))
    lines += [
        "",
        "### Websocket bytes per new image, studio page (`/?mode=dashboard`)",
        "",
        "One Panel session of the page per project, pulled with Bokeh's websocket client (a real session: the "
        "server makes the same document and sends the same patches as to a browser; no browser draws it). Once "
        "its tally was in and nothing had come for 2 s, "
        f"{args.per_size} small JPEGs were uploaded one at a time, each waited for in the session's document; "
        "every websocket frame it received then is counted (the gallery's tiles come over their own SSE stream "
        "and are not in it; a browser sends nothing back for these). By model type: the JSON of each PATCH-DOC "
        "event (`HTML` is the count, `ColumnDataSource` the timeline and the four distributions, "
        "`DataTabulator` the image, camera and collection tables).",
        "",
        "| project | images | bytes per new image | PATCH-DOC messages | by model type |",
        "|---|---|---|---|---|",
    ]
    for project in (SMALL, LARGE):
        row = b[project]
        kinds = ", ".join(f"{k} {v:,.0f} B" for k, v in row["by_model"].items())
        lines.append(f"| `{project}` | {row['images']:,} | {row['bytes']:,.0f} B | {row['messages']:.1f} | {kinds} |")
    small_b, large_b = b[SMALL]["bytes"], b[LARGE]["bytes"]
    flat = abs(large_b - small_b) <= max(64.0, 0.05 * small_b)
    s = r["sessions"]
    n = args.sessions
    deliveries = [v for drop in s["drops"] for v in drop]
    lasts = [max(drop) for drop in s["drops"]]
    per_session = slope(s["rss_mb"])
    subs = s["subscribers"]
    lines += [
        "",
        f"### {n} studio sessions on one server, one model",
        "",
        f"{n} sessions of `/?mode=dashboard` on `{SMALL}`, as above, opened one after another on a fresh "
        "`fotoflo serve` (restarted after the steps above: their models live as long as the process); no other "
        "client. Server readings with each number of sessions open, once their tallies were in and the server's "
        "RSS stopped moving:",
        "",
        "| sessions | server RSS | feed subscriptions (`/healthz`) | server threads | opened after |",
        "|---|---|---|---|---|",
    ]
    for k in sorted(s["rss_mb"]):
        opened = f"{s['open_s'][k]:.0f} s" if k in s["open_s"] else "–"
        lines.append(f"| {k} | {s['rss_mb'][k]:.1f} MB | {subs[k]} | {s['threads'][k]} | {opened} |")
    lines += [
        f"| all closed, Panel's sessions destroyed | {s['rss_closed_mb']:.1f} MB | – | {s['threads_closed']} | |",
        "",
        f"Then {len(s['drops'])} photo-like {w}×{h} JPEGs were written into the hot folder under a temporary name "
        f"and renamed, one at a time, {args.gap_s:g} s apart, each waited for in every session; timed from the "
        f"rename to the count's new value applied in each session's document (the {n} Bokeh clients run in "
        f"threads of the benchmark's process). The server used {s['cpu_per_image_ms']:.0f} CPU-ms per image "
        "(its own process: the ingest's decoding runs in decoder processes); other processes "
        f"{s['others_cores']:.2f} cores meanwhile.",
        "",
        "| receivers | deliveries | p50 | p95 | p99 | max | last session per image p50 |",
        "|---|---|---|---|---|---|---|",
        f"| {n} studio sessions | {len(s['drops'])} × {n} = {len(deliveries):,} | {_ms(deliveries, 50)} "
        f"| {_ms(deliveries, 95)} | {_ms(deliveries, 99)} | {max(deliveries):.0f} ms | {_ms(lasts, 50)} |",
        "",
        *profile_lines(s.get("profile"), n),
        "Verdicts:",
        f"- one model per project: {n} sessions held {subs[n]} feed subscription(s) on the server (the model's; "
        f"{subs[0]} before the first session) and {s['threads'][n] - s['threads'][1]:+d} threads beside one "
        f"session's → **{'yes' if subs[n] == subs[1] == 1 else 'NO'}**",
        f"- server memory per session: {per_session:.2f} MB (least squares over 1 to {n}); the first session "
        f"(the model, its tally and the page) {s['rss_mb'][1] - s['rss_mb'][0]:.1f} MB",
        f"- bytes per new image flat from {b[SMALL]['images']:,} to {b[LARGE]['images']:,} images: "
        f"{small_b:,.0f} B → {large_b:,.0f} B → **{'flat' if flat else 'NOT flat'}**",
        f"- memory of one model at {large:,} images (window 500): "
        + ", ".join(f"{m['kind']} {_b(m['model_heap_b'])} of Python heap" for m in big)
        + "; its tally (the dashboard's): "
        + ", ".join(f"{_b(m['tally_heap_b'])}" for m in big),
        f"- work per change does not grow with the project (in process, model only, p50): "
        f"{work_small:,.0f} µs at {small:,} images, {work_large:,.0f} µs at {large:,} → "
        f"**{'flat' if work_large <= 1.5 * work_small else 'NOT flat'}**",
        f"- drop → the new count in all {n} sessions: p50 {_ms(deliveries, 50)}, p95 {_ms(deliveries, 95)}; the "
        f"server spent {s['cpu_per_image_ms']:,.0f} CPU-ms per new image, about {s['cpu_per_image_ms'] / n:.0f} ms "
        f"per session: on {cores()} cores, {s['cpu_per_image_ms'] / cores():,.0f} ms at the least before the last "
        "session has it",
        f"- after the sessions closed and Panel destroyed them the server kept "
        f"{s['rss_closed_mb'] - s['rss_mb'][0]:.1f} MB more than before the first: the shared model and its tally "
        "stay for the process's life (one per project, a few MB here); the rest is memory the process kept, not "
        "by itself a leak (`benchmarks/sessions.py` opens its sessions again to tell the two apart)",
    ]
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------------


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import dashboard.live  # noqa: F401  (imported before any timing)

    started = time.perf_counter()
    r: dict[str, Any] = {"args": dict(vars(args))}
    server = Server(work / "server", free_port(), watch=True)
    if args.data is not None:
        server.data = args.data
    seeded = {SMALL: seed(server.data, SMALL, SMALL_IMAGES), LARGE: seed(server.data, LARGE, args.images)}
    r["seed"] = ", ".join(f"`{p}` {'reused' if s is None else f'{s:.0f} s'}" for p, s in seeded.items())
    inproc = work / "inproc" / "data"
    copy_database(server.data, inproc)
    files = payloads(1, args.samples + 3 * args.work_samples + 2 * WARM_UP, tuple(args.image_size))
    remote_files = payloads(50_000, args.samples + args.work_samples + 2 * WARM_UP, tuple(args.image_size))
    r["idle_cores"] = 0.0
    if args.wait_idle > 0:
        from _common import wait_for_idle

        r["idle_cores"] = wait_for_idle(args.wait_idle)
    r["memory"] = [memory("in process", str(inproc), p) for p in (SMALL, LARGE)]
    r["in_process"] = in_process(inproc, args, files)
    server.watch.mkdir(parents=True, exist_ok=True)
    server.start()
    try:
        r["memory"] += [memory("remote (SSE)", server.url, p) for p in (SMALL, LARGE)]
        r["remote"] = remote(server, args, remote_files)
        import_page_models()
        r["bytes"] = bytes_per_image(server, [SMALL, LARGE], args.per_size, 60_000)
        # A fresh server: the models the steps above made live as long as the process (one per project).
        # At INFO, it logs each page session it opens and closes.
        server.stop()
        server.log_level = "INFO"
        server.start()
        r["sessions"] = sessions_phase(server, args, work)
    finally:
        server.stop()
    r["run_s"] = time.perf_counter() - started
    return r


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100_000, help="images in the large project (default 100,000)")
    parser.add_argument(
        "--samples", type=int, default=100, help="ingests timed to the watcher, per model (default 100)"
    )
    parser.add_argument(
        "--work-samples",
        type=int,
        default=30,
        help="ingests timed on the large project and with the tally (default 30)",
    )
    parser.add_argument("--per-size", type=int, default=10, help="new images counted per project size (default 10)")
    parser.add_argument("--sessions", type=int, default=50, help="studio sessions on one server (default 50)")
    parser.add_argument("--drops", type=int, default=20, help="files dropped with the sessions open (default 20)")
    parser.add_argument(
        "--profile-drops", type=int, default=5, help="more drops with py-spy recording the server (default 5; 0: none)"
    )
    parser.add_argument(
        "--close-timeout-s", type=float, default=120.0, help="seconds to wait for Panel to destroy closed sessions"
    )
    parser.add_argument("--gap-s", type=float, default=0.5, help="seconds between drops (default 0.5)")
    parser.add_argument(
        "--image-size", type=int, nargs=2, default=[1600, 1067], metavar=("W", "H"), help="ingested JPEGs' size"
    )
    parser.add_argument(
        "--data", type=Path, default=None, help="data directory to keep the seeded projects in and reuse them"
    )
    parser.add_argument("--wait-idle", type=float, default=60.0, help="seconds to wait at most for a quiet machine")
    parser.add_argument(
        "--write", action=argparse.BooleanOptionalAction, default=True, help="rewrite the section (default) or print it"
    )
    parser.add_argument("--result", type=Path, default=None, help="also keep the measurements in FILE (a pickle)")
    parser.add_argument(
        "--from-result", type=Path, default=None, help="render FILE's measurements (from --result) instead of measuring"
    )
    parser.add_argument("--memory-child", nargs=3, metavar=("KIND", "SOURCE", "PROJECT"), help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        kind, source, project = args.memory_child
        print("RESULT " + json.dumps(memory_child(kind, source, project, args.trace)), flush=True)
        return
    if args.images < SMALL_IMAGES:
        parser.error(f"--images must be at least {SMALL_IMAGES}")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")

    import panel

    if args.from_result is not None:
        result = pickle.loads(args.from_result.read_bytes())
    else:
        with tempfile.TemporaryDirectory(prefix="fotoflo-live-model-") as tmp:
            result = run(args, Path(tmp))
        if args.result is not None:
            args.result.write_bytes(pickle.dumps(result))
    section = render(result, argparse.Namespace(**result["args"]), machine_description([f"Panel {panel.__version__}"]))
    publish("live-model", section, write=args.write)


if __name__ == "__main__":
    main()
