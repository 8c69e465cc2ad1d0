"""Soak benchmark: wall displays and grid pages left open while 10,000 images arrive.

    python benchmarks/soak.py                   # 5 sessions, 10,000 arrivals; rewrites the "soak" section
    python benchmarks/soak.py --arrivals 1000 --sessions 3 --no-write

The issue asks that a wall display survive days of running: server memory per session flat over
10,000 arrivals. One real `fotoflo serve` process, S Chromium sessions (each in its own browser
context, so its own renderer: walls at `/?mode=wall`, grids at `/`), and A distinct small JPEGs
pushed through the upload API by a few client threads, with no waiting on the browsers. At each
checkpoint the uploads pause until every page shows the newest image, then the server (RSS,
threads, file descriptors, SSE subscribers) and every page (JS heap after a forced GC, DOM nodes
through shadow roots, tiles) are sampled. Days of a wall are compressed into minutes here: a real
wall sees an image every few seconds, this one sees dozens a second.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (
    BUSY_PORTS,
    ROOT,
    SHADOW_DOM_JS,
    OthersLoad,
    Server,
    cores,
    free_port,
    machine_description,
    publish,
    renderers_private_mb,
    wait_until_quiet,
)

from dashboard.samples import seed_project
from dashboard.store.sqlite import MEMORY_CAP_BYTES
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, launch_chromium
from tests.support.servers import stop_process

# Without --enable-precise-memory-info, performance.memory is bucketed and refreshed only now and then.
PRECISE_MEMORY_ARGS = ["--enable-precise-memory-info"]
PROJECT = "default"
SEEDED = 100  # images in the project before the first arrival: grids open on a full first page
CHECKPOINT_FRACTIONS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)
WALL_STRIP = 12  # dashboard/gallery.py
FLAT_PCT = 1.0  # server RSS may grow at most this much (%) over the last three quarters of the run (issue 19)

# Runs before the page's own scripts: helpers that see through shadow roots, and a count of the
# stream's reconnects taken from the gallery's own console lines (the page is not otherwise touched).
INIT_JS = (
    r"""
(() => {
  const soak = { reconnects: 0, lost: 0, gallery: null };
  for (const level of ['info', 'warn']) {
    const original = console[level].bind(console);
    console[level] = (...args) => {
      const first = String(args[0] ?? '');
      if (first.includes('connection re-established')) soak.reconnects += 1;
      else if (first.includes('connection lost')) soak.lost += 1;
      return original(...args);
    };
  }
"""
    + SHADOW_DOM_JS
    + r"""
  soak.find = () => (soak.gallery && soak.gallery.isConnected ? soak.gallery : (soak.gallery = findGallery(document)));
  soak.nodes = countNodes;
  soak.shows = (id) => {
    const g = soak.find();
    if (!g) return false;
    const main = g.querySelector('.ff-wall-main');
    if (main) return main.dataset.imageId === id && main.src.includes(`/files/${id}/`);
    const first = g.querySelector('.ff-grid [data-image-id]');
    return !!first && first.dataset.imageId === id;
  };
  soak.state = () => {
    // What a page that did not catch up shows instead, for the report.
    const g = soak.find();
    if (!g) return { gallery: false };
    const main = g.querySelector('.ff-wall-main');
    const src = main ? (main.src.match(/\/files\/([^/]+)\//) || [])[1] || null : null;
    const first = g.querySelector('.ff-grid [data-image-id]');
    const scroller = g.querySelector('.ff-scroll');
    return {
      main_id: main ? main.dataset.imageId || null : null,
      main_src_id: src,
      caption: (g.querySelector('.ff-wall-caption') || {}).textContent || null,
      first_tile: first ? first.dataset.imageId : null,
      badge: (g.querySelector('[data-testid=live-indicator]') || {}).dataset?.state,
      scroll_top: scroller ? scroller.scrollTop : null,
      pill: (g.querySelector('[data-testid=new-pill]') || {}).textContent || null,
    };
  };
  soak.sample = () => {
    const g = soak.find();
    const main = g && g.querySelector('.ff-wall-main');
    return {
      heap: performance.memory.usedJSHeapSize,
      nodes: soak.nodes(),
      tiles: g ? g.querySelectorAll('.ff-grid [data-image-id]').length : -1,
      main_id: main ? main.dataset.imageId || null : null,
      main_src: main ? main.src : null,
      reconnects: soak.reconnects,
      lost: soak.lost,
    };
  };
  window.__soak = soak;
})();
"""
)


# `--probe`: the same `dashboard.cli` main, with tracemalloc on and a memory report on SIGUSR1 (one
# JSON line: Python's heap, SQLite's own allocator, malloc's in-use and free bytes, the biggest
# Python allocation sites), so growth can be told apart: objects kept, or caches and free lists.
PROBE_SERVER = r"""
import ctypes, ctypes.util, gc, json, os, signal, sys, tracemalloc


class Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                 "fsmblks", "uordblks", "fordblks", "keepcost")]


def report(*_):
    gc.collect()
    out = {"python_bytes": tracemalloc.get_traced_memory()[0], "gc_objects": len(gc.get_objects())}
    out["sqlite_bytes"] = memory_used()  # None: SQLite is linked into Python statically
    try:  # glibc >= 2.33
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallinfo2.restype = Mallinfo2
        info = libc.mallinfo2()
        out["malloc_used_bytes"], out["malloc_free_bytes"] = info.uordblks + info.hblkhd, info.fordblks
    except (OSError, TypeError, AttributeError):
        out["malloc_used_bytes"] = out["malloc_free_bytes"] = None
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    out["sites"] = [(f"{st.traceback[0].filename}:{st.traceback[0].lineno}", st.size)
                    for st in snapshot.statistics("lineno")[:400]]
    with open(os.environ["FOTOFLO_PROBE_OUT"], "a") as fh:
        fh.write(json.dumps(out) + "\n")


tracemalloc.start()
signal.signal(signal.SIGUSR1, report)
from dashboard.cli import main
from dashboard.store.sqlite import memory_used
sys.exit(main(sys.argv[1:]))
"""


def arrival_jpeg(index: int) -> bytes:
    """A distinct 64×48 JPEG: a colour from the index, and its bits as 8×8 black and white blocks."""
    colour = ((index * 37) % 256, (index * 91) % 256, (index * 173) % 256)
    im = Image.new("RGB", (64, 48), colour)
    for bit in range(24):
        if index >> bit & 1:
            x, y = (bit % 8) * 8, 24 + (bit // 8) * 8
            im.paste((255, 255, 255), (x, y, x + 8, y + 8))
    out = io.BytesIO()
    # The comment makes the bytes distinct even where two colours quantize alike.
    im.save(out, "JPEG", quality=80, comment=f"fotoflo soak {index}".encode())
    return out.getvalue()


class Kiosk:
    """A wall as a display runs it: a plain headless Chromium, no DevTools attached until the end.

    Playwright's pages have DevTools domains enabled (network, runtime), which keep data of their own in
    the renderer; this one's renderer memory is the wall's alone.
    """

    def __init__(self, work: Path, url: str) -> None:
        self.profile = work / "kiosk-profile"
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", *CHROMIUM_ARGS, *PRECISE_MEMORY_ARGS, f"--user-data-dir={self.profile}",
             "--remote-debugging-port=0", "--no-first-run", "--window-size=1920,1080", url + "/?mode=wall"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def renderers_mb(self) -> float:
        return renderers_private_mb(self.proc.pid)

    def cdp_url(self) -> str:
        port = (self.profile / "DevToolsActivePort").read_text().split()[0]
        return f"http://127.0.0.1:{port}"

    def close(self) -> None:
        stop_process(self.proc)


@dataclass
class Session:
    """One open page: a wall or a grid, in its own browser context (so its own renderer process)."""

    mode: str
    context: Any
    page: Any
    cdp: Any
    errors: list[str] = field(default_factory=list)

    def sample(self) -> dict[str, Any]:
        # Console lines the inspector keeps (at most 1,000) are not the page's: drop them, then collect.
        self.cdp.send("Runtime.discardConsoleEntries")
        self.cdp.send("HeapProfiler.collectGarbage")
        out: dict[str, Any] = self.page.evaluate("() => window.__soak.sample()")
        metrics = {m["name"]: m["value"] for m in self.cdp.send("Performance.getMetrics")["metrics"]}
        out["live_nodes"] = int(metrics.get("Nodes", 0))  # detached nodes not yet collected count too
        out["listeners"] = int(metrics.get("JSEventListeners", 0))
        return out


def open_session(browser: Any, url: str, mode: str) -> Session:
    size = {"width": 1920, "height": 1080} if mode == "wall" else {"width": 1280, "height": 800}
    context = browser.new_context(viewport=size)
    context.add_init_script(INIT_JS)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    session = Session(mode, context, page, cdp)
    page.on("pageerror", lambda e: session.errors.append(str(e)))
    page.goto(url + ("/?mode=wall" if mode == "wall" else "/"), timeout=120_000)
    page.wait_for_selector("[data-testid=live-indicator][data-state=live]", timeout=120_000)
    return session


class Uploader:
    """Pushes arrivals through `POST /api/projects/default/upload` from a few threads, no waiting on pages."""

    def __init__(self, url: str, concurrency: int) -> None:
        self.url = f"{url}/api/projects/{PROJECT}/upload"
        self.concurrency = concurrency
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()
        self.created = self.duplicates = self.failed = 0

    def _client(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(timeout=120)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _one(self, index: int) -> None:
        files = {"file": (f"soak-{index:06d}.jpg", arrival_jpeg(index), "image/jpeg")}
        status = self._client().post(self.url, files=files).status_code
        with self._lock:
            if status == 201:
                self.created += 1
            elif status == 200:
                self.duplicates += 1
            else:
                self.failed += 1

    def push(self, start: int, stop: int) -> float:
        """Upload arrivals `start..stop-1`; returns the seconds it took."""
        began = time.perf_counter()
        try:
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="soak-upload") as pool:
                list(pool.map(self._one, range(start, stop)))
        finally:
            self.close()  # the threads are gone: keep no idle keep-alive connections open on the server
        return time.perf_counter() - began

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()


def wait_caught_up(sessions: list[Session], newest: str, timeout_s: float) -> list[float | None]:
    """Seconds until each page shows `newest` (a wall: as its loaded main image; a grid: as its first
    tile), None for a page that still did not when `timeout_s` ran out (what it shows is printed)."""
    began = time.perf_counter()
    took: list[float | None] = [None] * len(sessions)
    while True:
        for i, s in enumerate(sessions):
            if took[i] is None and s.page.evaluate("id => window.__soak.shows(id)", newest):
                took[i] = time.perf_counter() - began
        if all(t is not None for t in took) or time.perf_counter() - began > timeout_s:
            break
        time.sleep(0.2)
    for s, t in zip(sessions, took, strict=True):
        if t is None:
            print(f"not caught up: {s.mode} {s.page.evaluate('() => window.__soak.state()')} (newest {newest})")
    return took


def checkpoints(arrivals: int) -> list[int]:
    return sorted({round(f * arrivals) for f in CHECKPOINT_FRACTIONS})


def run(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    walls = args.walls if args.walls is not None else args.sessions - args.sessions // 2
    kiosks = min(args.kiosk, walls)
    # A driven wall first: "RSS with one session" is then a page like most.
    modes = ["wall"] * (walls - kiosks) + ["kiosk"] * kiosks + ["grid"] * (args.sessions - walls)
    result: dict[str, Any] = {"modes": modes, "rows": [], "args": vars(args)}
    others = OthersLoad()
    with tempfile.TemporaryDirectory(prefix="fotoflo-soak-") as tmp:
        server = Server(
            Path(tmp), args.port or free_port(), args.log_level, probe_script=PROBE_SERVER if args.probe else None
        )
        seed_project(server.data, PROJECT, SEEDED)
        server.start()
        uploader = Uploader(server.url, args.concurrency)
        try:
            with sync_playwright() as pw, contextlib.ExitStack() as stack:
                browser = launch_chromium(pw, PRECISE_MEMORY_ARGS)
                stack.callback(browser.close)
                result["chromium"] = browser.version
                sessions: list[Session] = []
                kiosk_list: list[Kiosk] = []
                result["rss_cold_mb"] = server.settled_rss_mb()
                for i, mode in enumerate(modes):
                    if mode == "kiosk":
                        kiosk_list.append(Kiosk(Path(tmp) / f"kiosk-{i}", server.url))
                        stack.callback(kiosk_list[-1].close)
                        # No DevTools to ask: it is live once its stream is open.
                        if wait_subscribers(server, i + 1, timeout_s=120) != i + 1:
                            raise RuntimeError("the kiosk wall did not open its event stream")
                    else:
                        sessions.append(open_session(browser, server.url, mode))
                        stack.callback(sessions[-1].context.close)
                    if i == 0:
                        result["rss_one_mb"] = server.settled_rss_mb()
                result["rss_all_mb"] = server.settled_rss_mb()
                result["rows"] = list(soak(server, uploader, sessions, kiosk_list, args))
                result["others_cores"] = others.cores()  # before the tree is torn down
                result["page_errors"] = sum(len(s.errors) for s in sessions)
                result["newest"] = newest = server.newest_id()
                final = [s.page.evaluate("() => window.__soak.sample()") for s in sessions]
                result["walls_show_newest"] = [
                    f["main_id"] == newest and f"/files/{newest}/" in (f["main_src"] or "")
                    for s, f in zip(sessions, final, strict=True)
                    if s.mode == "wall"
                ]
                result["reconnects"] = sum(f["reconnects"] for f in final)
                result["kiosks"] = [check_kiosk(pw, k, newest, args.catch_up_timeout_s) for k in kiosk_list]
                stack.close()
                result["subscribers_closed"] = wait_subscribers(server, 0, timeout_s=30)
        finally:
            uploader.close()
            result["created"], result["duplicates"], result["failed"] = (
                uploader.created,
                uploader.duplicates,
                uploader.failed,
            )
            result["slow_cutoffs"] = server.log_count("SSE client too slow") if server.log_path.exists() else 0
            server.stop()
    return result


def check_kiosk(pw: Any, kiosk: Kiosk, newest: str, timeout_s: float) -> dict[str, Any]:
    """Attach DevTools to a kiosk wall at last: does it show `newest`, and what does memory pressure free?"""
    browser = pw.chromium.connect_over_cdp(kiosk.cdp_url())
    try:
        page = browser.contexts[0].pages[0]
        main = page.locator(".ff-wall-main")
        deadline = time.monotonic() + timeout_s
        while True:
            shows = main.get_attribute("data-image-id") == newest and f"/files/{newest}/" in (
                main.get_attribute("src") or ""
            )
            if shows or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        before_mb = kiosk.renderers_mb()
        # What a renderer gives back under memory pressure was cache; what it keeps would be a leak.
        cdp = browser.contexts[0].new_cdp_session(page)
        cdp.send("Memory.simulatePressureNotification", {"level": "critical"})
        cdp.send("HeapProfiler.collectGarbage")
        time.sleep(5)  # the purge runs as tasks in the renderer; nothing to wait on from here
        return {"shows_newest": shows, "attached_mb": before_mb, "after_pressure_mb": kiosk.renderers_mb()}
    finally:
        browser.close()


def wait_subscribers(server: Server, expected: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    count = server.subscribers()
    while count != expected and time.monotonic() < deadline:
        time.sleep(0.25)
        count = server.subscribers()
    return count


def soak(
    server: Server,
    uploader: Uploader,
    sessions: list[Session],
    kiosks: list[Kiosk],
    args: argparse.Namespace,
) -> Iterator[dict[str, Any]]:
    done = 0
    for target in checkpoints(args.arrivals):
        push_s = uploader.push(done, target) if target > done else 0.0
        pushed = target - done
        done = target
        newest = server.newest_id()
        took = wait_caught_up(sessions, newest, args.catch_up_timeout_s)
        pages = [s.sample() for s in sessions]
        row = {
            "arrivals": done,
            "push_s": push_s,
            "rate": pushed / push_s if push_s else None,
            "catch_up_walls": [t for s, t in zip(sessions, took, strict=True) if s.mode == "wall"],
            "catch_up_grids": [t for s, t in zip(sessions, took, strict=True) if s.mode == "grid"],
            "rss_mb": server.rss_mb(),
            "sqlite_mb": server.sqlite_mb(),
            "threads": server.status("Threads"),
            "fds": server.fds(),
            "subscribers": server.subscribers(),
            "probe": server.probe(),
            "kiosk_mb": [k.renderers_mb() for k in kiosks],
            "walls": [p for s, p in zip(sessions, pages, strict=True) if s.mode == "wall"],
            "grids": [p for s, p in zip(sessions, pages, strict=True) if s.mode == "grid"],
        }
        print(_progress(row), flush=True)
        yield row


def _progress(row: dict[str, Any]) -> str:
    walls, grids = row["walls"], row["grids"]
    rate = f"{row['rate']:.0f}/s" if row["rate"] else "-"
    probe = row["probe"]
    return (
        f"{row['arrivals']:>6} arrivals ({rate}; caught up: walls {_late(row['catch_up_walls'])}, grids "
        f"{_late(row['catch_up_grids'])}): server {row['rss_mb']:.1f} MB (SQLite {row['sqlite_mb']} MB), "
        f"{row['threads']} threads, {row['fds']} fds, "
        f"{row['subscribers']} SSE; walls heap {[round(w['heap'] / 2**20, 2) for w in walls]} MB, nodes "
        f"{[w['nodes'] for w in walls]}, live nodes {[w['live_nodes'] for w in walls]}, strip "
        f"{[w['tiles'] for w in walls]}; grids tiles {[g['tiles'] for g in grids]}, heap "
        f"{[round(g['heap'] / 2**20, 1) for g in grids]} MB; kiosk renderers "
        f"{[round(k, 1) for k in row['kiosk_mb']]} MB"
        + (f"; probe { {k: v for k, v in probe.items() if k != 'sites'} }" if probe else "")
    )


def _late(took: list[float | None]) -> str:
    """The slowest page's catch-up, or how many pages never caught up."""
    if not took:
        return "–"
    never = sum(t is None for t in took)
    return f"never ({never} of {len(took)})" if never else f"{max(t for t in took if t is not None):.1f} s"


def _span(values: list[float], fmt: str) -> str:
    """One value when all pages agree, else the range."""
    lo, hi = min(values), max(values)
    return format(lo, fmt) if format(lo, fmt) == format(hi, fmt) else f"{format(lo, fmt)}–{format(hi, fmt)}"


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _mb(value: float | None, unit: int = 2**20) -> str:
    return "–" if value is None else f"{value / unit:.1f} MB"


def render(result: dict[str, Any], machine: str) -> str:
    rows = result["rows"]
    modes = result["modes"]
    n_kiosks, n_grids = modes.count("kiosk"), modes.count("grid")
    n_walls = modes.count("wall") + n_kiosks
    sessions = len(modes)
    arrivals = rows[-1]["arrivals"]
    pushed_s = sum(r["push_s"] for r in rows)
    lines = [
        f"## Soak: a wall display over {arrivals:,} arrivals",
        "",
        f"Measured by `benchmarks/soak.py` on {machine}; Chromium {result['chromium']}.",
        "",
        f"One `fotoflo serve` process; {sessions} browser sessions: {n_walls} wall display{_s(n_walls)} "
        f"(`/?mode=wall`, 1920×1080) and {n_grids} grid page{_s(n_grids)} (`/`, 1280×800), opened on a project "
        f"of {SEEDED} images. "
        + (
            f"{n_kiosks} of the walls (the *kiosk*) ran in a Chromium of its own with no DevTools attached, as a "
            "display would; the other pages in one Playwright-driven Chromium, each in its own browser context. "
            if n_kiosks
            else "The pages ran in one Playwright-driven Chromium, each in its own browser context. "
        )
        + f"{arrivals:,} distinct 64×48 JPEGs went through "
        f"`POST /api/projects/{PROJECT}/upload` from {result['args']['concurrency']} client threads "
        f"({arrivals / pushed_s:.0f} images/s while pushing; no waiting on the browsers), days of a wall "
        "compressed into minutes. At each checkpoint the uploads paused until every page showed the newest "
        "image (a wall: as its loaded main image; a grid: as its first tile) — the *catch-up*, for the slowest "
        "page of the kind — then: server RSS (`VmRSS`) and how much of it is SQLite's (`fotoflo_sqlite_memory_bytes` "
        "from `/metrics`), threads and open file descriptors from `/proc`, SSE "
        "subscribers from `/healthz`; in each page, after `HeapProfiler.collectGarbage`, "
        "`performance.memory.usedJSHeapSize` and every DOM node, those in shadow roots included; for the "
        "kiosk, the private memory (`RssAnon`) of its renderer processes: decoded images, layout and caches, "
        "which the JS heap does not show (a driven page's renderer also holds what the DevTools domains "
        "record, so only the kiosk's is the wall's own). Several pages of a kind: one value when they agree, "
        "else the range."
        + (" The server ran under `--probe` (tracemalloc on: slower)." if result["args"]["probe"] else "")
        + f" Other processes kept {result['others_cores']:.2f} of the {cores()} cores busy meanwhile (rates and "
        "catch-up times depend on that; the memory figures hardly do).",
        "",
        "| arrivals | server RSS | of which SQLite | threads | fds | SSE subscribers | wall JS heap "
        "| wall DOM nodes | wall strip | wall catch-up | kiosk wall renderer | grid tiles | grid JS heap "
        "| grid DOM nodes | grid catch-up |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        walls, grids = r["walls"], r["grids"]
        sqlite = "–" if r["sqlite_mb"] is None else f"{r['sqlite_mb']:.1f} MB"
        cells = [f"{r['arrivals']:,}", f"{r['rss_mb']:.1f} MB", sqlite, str(r["threads"]), str(r["fds"])]
        cells.append(str(r["subscribers"]))
        if walls:
            cells += [
                _span([w["heap"] / 2**20 for w in walls], ".2f") + " MB",
                _span([w["nodes"] for w in walls], ",d"),
                _span([w["tiles"] for w in walls], "d"),
                _late(r["catch_up_walls"]),
            ]
        else:
            cells += ["–"] * 4
        cells.append(_span(r["kiosk_mb"], ".1f") + " MB" if r["kiosk_mb"] else "–")
        if grids:
            cells += [
                _span([g["tiles"] for g in grids], ",d"),
                _span([g["heap"] / 2**20 for g in grids], ".1f") + " MB",
                _span([g["nodes"] for g in grids], ",d"),
                _late(r["catch_up_grids"]),
            ]
        else:
            cells += ["–"] * 4
        lines.append("| " + " | ".join(cells) + " |")
    if rows[0]["probe"]:
        lines += [
            "",
            "Where the server's memory is (`--probe`): Python's heap as tracemalloc counts it, objects the "
            "garbage collector tracks, SQLite's own allocator (page caches, statements), and glibc malloc's "
            "bytes in use and free-but-kept. Taking the snapshots costs memory of its own, so RSS under "
            "`--probe` grows for that too, and the loop stalls while they are taken (streams may reconnect): "
            "compare the other columns.",
            "",
            "| arrivals | server RSS | Python heap | GC-tracked objects | SQLite | malloc in use | malloc free |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            p = r["probe"]
            lines.append(
                f"| {r['arrivals']:,} | {r['rss_mb']:.1f} MB | {_mb(p['python_bytes'])} | {p['gc_objects']:,} | "
                f"{_mb(p['sqlite_bytes'])} | {_mb(p['malloc_used_bytes'])} | {_mb(p['malloc_free_bytes'])} |"
            )
    cold, one, full = result["rss_cold_mb"], result["rss_one_mb"], result["rss_all_mb"]
    per_session = (full - cold) / sessions
    marginal = (full - one) / (sessions - 1) if sessions > 1 else float("nan")
    lines += [
        "",
        f"**Server memory per session** (before any arrival): {cold:.1f} MB with no page open, {one:.1f} MB with "
        f"one, {full:.1f} MB with {sessions} → {per_session:.2f} MB per session ((with {sessions} − none) / "
        f"{sessions}); {marginal:.2f} MB per session after the first ((with {sessions} − with one) / "
        f"{sessions - 1}): the first page also pays once for what Panel and Bokeh load on first use.",
        "",
        *verdict(result),
    ]
    return "\n".join(lines)


def verdict(result: dict[str, Any]) -> list[str]:
    rows = result["rows"]
    # From the 25 % checkpoint on: before it, what fills once (SQLite's page caches, Python's and malloc's
    # arenas, interned strings) is still warming up.
    base = next(r for r in rows if r["arrivals"] >= 0.25 * rows[-1]["arrivals"] and r["arrivals"] > 0)
    last = rows[-1]
    span = last["arrivals"] - base["arrivals"]
    out = ["### Verdict", ""]
    grow_mb = last["rss_mb"] - base["rss_mb"]
    grow_pct = 100 * grow_mb / base["rss_mb"]
    flat = grow_pct <= FLAT_PCT
    tail = [r for r in rows if r["arrivals"] >= base["arrivals"]]
    steps = ", ".join(f"{b['rss_mb'] - a['rss_mb']:+.1f}" for a, b in itertools.pairwise(tail))
    capped, sqlite_text = False, ""
    if base["sqlite_mb"] is not None and last["sqlite_mb"] is not None:
        # SQLite's page caches fill as the project grows, up to a cap: growth there is bounded by it.
        sqlite_mb = last["sqlite_mb"] - base["sqlite_mb"]
        rest_mb = grow_mb - sqlite_mb
        rest_pct = 100 * rest_mb / base["rss_mb"]
        cap_mb = MEMORY_CAP_BYTES / 2**20
        capped = not flat and rest_pct <= FLAT_PCT and max(r["sqlite_mb"] for r in rows) <= cap_mb
        sqlite_text = (
            f" Of it, SQLite's page caches and statements {sqlite_mb:+.1f} MB (to {last['sqlite_mb']:.1f} MB; "
            f"capped at {cap_mb:.0f} MiB by `MEMORY_CAP_BYTES` in `dashboard/store/sqlite.py`), everything else "
            f"{rest_mb:+.1f} MB ({rest_pct:+.1f} %)."
        )
    state = "flat" if flat else "bounded: SQLite's caches under their cap, the rest flat" if capped else "NOT flat"
    out.append(
        f"- **Server RSS, {base['arrivals']:,} → {last['arrivals']:,} arrivals: {grow_mb:+.1f} MB ({grow_pct:+.1f} %), "
        f"{1000 * grow_mb / max(1, span):+.2f} MB per 1,000 arrivals (by checkpoint: {steps} MB) → {state}** "
        f"(criterion, issue 19: at most {FLAT_PCT:.0f} % over the last three quarters of the run, or bounded by a "
        f"stated cap).{sqlite_text} Threads {base['threads']} → {last['threads']}, file descriptors {base['fds']} → "
        f"{last['fds']}, SSE subscribers {base['subscribers']} → {last['subscribers']} (and "
        f"{result['subscribers_closed']} once every page had closed)."
    )
    flat = flat or capped
    if not flat and not base["probe"]:
        out.append(
            "- `--probe` tells objects kept (Python's heap) from caches filling (SQLite's page caches, malloc's "
            "free lists): see benchmarks/soak.py."
        )
    if base["probe"] and last["probe"]:
        p0, p1 = base["probe"], last["probe"]

        def delta(key: str) -> str:
            return "–" if p0[key] is None or p1[key] is None else f"{(p1[key] - p0[key]) / 2**20:+.1f} MB"

        sites0 = dict(p0["sites"])
        grown = sorted(((size - sites0.get(site, 0), site) for site, size in p1["sites"]), reverse=True)[:3]
        out.append(
            f"- Where it went ({base['arrivals']:,} → {last['arrivals']:,}): Python heap {delta('python_bytes')}, "
            f"GC-tracked objects {p1['gc_objects'] - p0['gc_objects']:+,}, SQLite {delta('sqlite_bytes')}, malloc "
            f"in use {delta('malloc_used_bytes')} (SQLite's included), malloc free-but-kept "
            f"{delta('malloc_free_bytes')}. Largest growing Python allocation sites: "
            + "; ".join(f"`{_short(site)}` {size / 1024:+.0f} KB" for size, site in grown)
            + "."
        )
    walls0, walls1 = base["walls"], last["walls"]
    if walls1:
        heap0 = max(w["heap"] for w in walls0) / 2**20
        heap1 = max(w["heap"] for w in walls1) / 2**20
        nodes = [max(w["nodes"] for w in r["walls"]) for r in rows if r["arrivals"] > 0]
        live = [max(w["live_nodes"] for w in r["walls"]) for r in rows if r["arrivals"] > 0]
        listeners = [max(w["listeners"] for w in r["walls"]) for r in rows if r["arrivals"] > 0]
        strip = max(w["tiles"] for r in rows for w in r["walls"])
        kiosk_text, kiosk_ok = kiosk_verdict(result, base, last)
        bounded = (
            strip <= WALL_STRIP
            and max(nodes) - min(nodes) <= 50
            and heap1 - heap0 <= max(0.5, 0.1 * heap0)
            and kiosk_ok
        )
        out.append(
            f"- **Wall pages: {'bounded' if bounded else 'NOT bounded'}.** Largest wall JS heap {heap0:.2f} → "
            f"{heap1:.2f} MB ({heap1 - heap0:+.2f} MB) from {base['arrivals']:,} to {last['arrivals']:,} arrivals; "
            f"DOM nodes {min(nodes):,}–{max(nodes):,} at every checkpoint after the first arrival (the renderer's "
            f"live node count, detached nodes included: {min(live):,}–{max(live):,}; event listeners "
            f"{min(listeners):,}–{max(listeners):,}); strip at most {strip} tiles (cap {WALL_STRIP})." + kiosk_text
        )
    never = sum(t is None for r in rows for t in r["catch_up_walls"] + r["catch_up_grids"])
    shown = result["walls_show_newest"]
    slowest = [
        f"slowest {kind} {max(times):.0f} s"
        for kind, times in (
            ("wall", [t for r in rows for t in r["catch_up_walls"] if t is not None]),
            ("grid", [t for r in rows for t in r["catch_up_grids"] if t is not None]),
        )
        if times
    ]
    burst = max(b["arrivals"] - a["arrivals"] for a, b in itertools.pairwise(rows))
    caught = "every page caught up at every checkpoint" if not never else f"{never} page(s) never caught up"
    shown += [k["shows_newest"] for k in result["kiosks"]]
    out.append(
        f"- **Kept up:** {sum(shown)} of {len(shown)} walls (kiosk included) showed the newest image "
        f"(`{result['newest']}`) as their loaded main image at the end; {caught} ({', '.join(slowest)} after "
        f"a burst of up to {burst:,} images); {result['reconnects']} stream reconnect(s), "
        f"{result['slow_cutoffs']} slow-client cut-off(s) in the server log, {result['page_errors']} page "
        f"error(s); uploads: {result['created']:,} created, {result['duplicates']} duplicate(s), "
        f"{result['failed']} failed."
    )
    grids0, grids1 = base["grids"], last["grids"]
    if grids1:
        tiles = max(g["tiles"] for g in grids1) - max(g["tiles"] for g in grids0)
        nodes_grown = max(g["nodes"] for g in grids1) - max(g["nodes"] for g in grids0)
        per_arrival = nodes_grown / max(1, span)
        # The grid is windowed (gallery.js): only the rows near the viewport are in the DOM, however many arrive.
        verdict = "bounded" if per_arrival < 0.05 else "growing"
        out.append(
            f"- **Grid pages: {verdict}.** Only the rows near the viewport are in the DOM (the windowed grid): "
            f"{tiles:+,} tiles, {nodes_grown:+,} DOM nodes ({per_arrival:.2f} per arrival) from "
            f"{base['arrivals']:,} to {last['arrivals']:,} arrivals; each page keeps every image's id for "
            "selection and paging, not its tile."
        )
    return out


def kiosk_verdict(result: dict[str, Any], base: dict[str, Any], last: dict[str, Any]) -> tuple[str, bool]:
    """The kiosk wall's renderer memory: its growth, and what a memory-pressure signal gives back."""
    if not result["kiosks"]:
        return "", True
    grown = [b - a for a, b in zip(base["kiosk_mb"], last["kiosk_mb"], strict=True)]
    kept = [
        k["after_pressure_mb"] - a for a, k in zip(base["kiosk_mb"], result["kiosks"], strict=True)
    ]  # what is still there once Chromium has dropped its caches
    tolerance = [max(10.0, 0.1 * a) for a in base["kiosk_mb"]]
    # Growth a renderer gives back under pressure is cache; growth it keeps would be a leak.
    ok = all(g <= t or k <= t for g, k, t in zip(grown, kept, tolerance, strict=True))
    k = result["kiosks"][0]
    text = (
        f" Kiosk wall's renderer (no DevTools): {base['kiosk_mb'][0]:.0f} → {last['kiosk_mb'][0]:.0f} MB private "
        f"memory ({grown[0]:+.0f} MB, {1000 * grown[0] / max(1, last['arrivals'] - base['arrivals']):+.1f} MB per "
        f"1,000 arrivals); after a critical memory-pressure signal at the end, {k['after_pressure_mb']:.0f} MB "
        f"({kept[0]:+.0f} MB against {base['arrivals']:,} arrivals; criterion: growth, or what pressure leaves of "
        "it, at most 10 MB or 10 %)."
    )
    return text, ok


def _short(site: str) -> str:
    """`.../site-packages/tornado/web.py:123` → `tornado/web.py:123`."""
    for marker in ("site-packages/", "/lib/python3", str(ROOT) + "/"):
        if marker in site:
            tail = site.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker == "/lib/python3" and "/" in tail else tail
    return site


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arrivals", type=int, default=10_000, help="images pushed through the upload API")
    parser.add_argument("--sessions", type=int, default=5, help="browser sessions open during the run")
    parser.add_argument("--walls", type=int, default=None, help="of which wall displays (default: the larger half)")
    parser.add_argument(
        "--kiosk", type=int, default=1, help="of which walls in a plain Chromium with no DevTools (default 1)"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="upload client threads")
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument("--log-level", default="WARNING", help="server log level (INFO logs every request)")
    parser.add_argument("--catch-up-timeout-s", type=float, default=600.0, help="per checkpoint")
    parser.add_argument(
        "--wait-idle", type=float, default=120.0, help="seconds to wait at most for other processes to go quiet"
    )
    parser.add_argument(
        "--probe", action="store_true", help="run the server under tracemalloc and break its memory down (slower)"
    )
    parser.add_argument("--no-write", action="store_true", help="print, do not touch docs/benchmarks.md")
    args = parser.parse_args()
    if args.port in BUSY_PORTS:
        parser.error(f"port {args.port} is taken by other benchmarks")

    import panel

    wait_until_quiet(args.wait_idle)
    result = run(args)
    publish("soak", render(result, machine_description([f"Panel {panel.__version__}"])), write=not args.no_write)


if __name__ == "__main__":
    main()
