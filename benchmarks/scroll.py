"""Scroll benchmark: a 100,000-image project scrolled to its end in Chromium, page memory on the way.

    python benchmarks/scroll.py                # 100,000 images, then rewrite the "scroll" section (about 7 minutes)
    python benchmarks/scroll.py --quick --no-write          # 20,000 images, about 2 minutes
    python benchmarks/scroll.py --data ~/.cache/fotoflo-scroll   # keep the seeded project for the next run
    python benchmarks/scroll.py --assets DIR --json before.json --no-write   # another gallery.js/.css, raw rows
    python benchmarks/scroll.py --before before.json        # that run as the "before" column

Issue 10 asks that a 100,000-image project show its first tiles within 1.5 s, that scrolling to the end
fetch pages and never the whole list, and that browser memory stay flat while scrolling. One real
`fotoflo serve` (no hot folder) over a seeded project and one headless Chromium page (1280×800), driven
over a bare DevTools connection: the page opens, then the benchmark scrolls the grid down `--step-screens`
screens at a time, waiting each time for tiles where it looks (at the end of what is loaded, for the next
page), until the oldest image is on screen or the time budget is spent. At checkpoints (images scrolled
past) it forces a garbage collection through the DevTools protocol and samples the JS heap, every DOM
node (through shadow roots), the tiles in the DOM, the renderer's private memory, and what the page
fetched from `/api/` (from its own resource timing): list requests and their JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (
    SHADOW_DOM_JS,
    OthersLoad,
    Server,
    free_port,
    machine_description,
    publish,
    renderers_private_mb,
    wait_for_idle,
)
from live import FIRST_TILE_JS, chromium_version, seed

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.servers import stop_process

CHECKPOINTS = (0, 1_000, 5_000, 10_000, 25_000, 50_000, 75_000)
QUICK_CHECKPOINTS = (0, 1_000, 5_000, 10_000)
FLAT_FROM = 5_000  # growth is measured from this checkpoint on: before it, caches and the window fill
FLAT_PCT = 10.0  # "flat": renderer memory grows at most this much after FLAT_FROM; "bounded": tiles too

# The server with the gallery's browser code taken from another directory (`--assets`), for a before/after.
SERVE_WITH_ASSETS = """
import sys
from pathlib import Path
from dashboard import gallery
assets = Path({assets!r})
if (assets / "main.js").exists():  # modules joined in import order (dashboard/gallery.py esm_bundle)
    gallery.LiveGallery._esm = gallery.esm_bundle(assets / "main.js")
else:  # the gallery's browser code before it was split into modules
    gallery.LiveGallery._esm = "\\n".join((assets / n).read_text() for n in ("gallery.js", "curation.js"))
gallery.LiveGallery._stylesheets = [(assets / "gallery.css").read_text()]
from dashboard.cli import main
sys.exit(main())
"""

# Runs before the page's own scripts: helpers that see through the component's shadow root. Positions are
# read off the screen (the tile under a point), so they mean the same whatever the grid keeps in its DOM.
INIT_JS = (
    r"""
(() => {
  const ff = { gallery: null };
"""
    + SHADOW_DOM_JS
    + r"""
  ff.find = () => (ff.gallery && ff.gallery.isConnected ? ff.gallery : (ff.gallery = findGallery(document)));
  ff.scroller = () => ff.find().querySelector('.ff-scroll');
  ff.nodes = countNodes;
  const tileAt = (x, y) => {
    const el = ff.find().getRootNode().elementFromPoint(x, y);
    const tile = el && el.closest ? el.closest('[data-image-id]') : null;
    return tile && !tile.closest('.ff-fresh-grid') ? tile : null;
  };
  // The first tile on screen, top left first: its name says how far down the project we are.
  ff.first = () => {
    const box = ff.scroller().getBoundingClientRect();
    for (let y = box.top + 4; y < box.bottom; y += 12) {
      for (let x = box.left + 30; x < box.right; x += 100) {
        const tile = tileAt(x, y);
        if (tile) return (tile.getAttribute('title') || '').split('\n')[0];
      }
    }
    return null;
  };
  // A tile in the middle of the view (probes 40 px apart: one of them misses the 10 px gaps).
  ff.centre = () => {
    const box = ff.scroller().getBoundingClientRect();
    const x = box.left + box.width / 2;
    const y = box.top + box.height / 2;
    for (const dy of [0, 40, 80]) for (const dx of [0, 40, 80]) if (tileAt(x + dx, y + dy)) return true;
    return false;
  };
  ff.step = (px) => {
    const s = ff.scroller();
    const top = s.scrollTop;
    s.scrollBy(0, px);
    return { moved: s.scrollTop !== top, height: s.scrollHeight, screen: s.clientHeight };
  };
  ff.onScreen = (name) => {
    const tile = ff.find().querySelector(`.ff-grid [title^="${name}"]`);
    if (!tile) return false;
    const r = tile.getBoundingClientRect();
    const box = ff.scroller().getBoundingClientRect();
    return r.bottom > box.top && r.top < box.bottom;
  };
  // What the page fetched from /api/, from its own resource timing (not the DevTools network domain,
  // which keeps a record of every request in the renderer): list requests and JSON bytes.
  ff.api = { bytes: 0, lists: 0, fromTop: 0, maxLimit: 0 };
  new PerformanceObserver((entries) => {
    for (const e of entries.getEntries()) {
      const url = new URL(e.name);
      if (!url.pathname.startsWith('/api/') || url.pathname.endsWith('/events')) continue;
      ff.api.bytes += e.transferSize;
      if (!/^\/api\/projects\/[^/]+\/images$/.test(url.pathname)) continue;
      ff.api.lists += 1;
      if (ff.api.lists > 1 && !url.searchParams.has('before')) ff.api.fromTop += 1; // a reload from the top
      ff.api.maxLimit = Math.max(ff.api.maxLimit, Number(url.searchParams.get('limit') || 100));
    }
  }).observe({ type: 'resource', buffered: true });
  ff.sample = () => ({
    ...ff.api,
    heap: performance.memory.usedJSHeapSize,
    nodes: ff.nodes(),
    tiles: ff.find().querySelectorAll('.ff-grid [data-image-id]').length,
  });
  window.__ff = ff;
})();
"""
)


class Page:
    """One headless Chromium page over a bare DevTools protocol connection.

    Not Playwright: its pages have the network domain on, which keeps a copy of every response body (each
    thumbnail) and a record of every request in the renderer, hundreds of MB over a long scroll. Here only
    Page, Runtime (for page errors) and Performance are on.
    """

    def __init__(self, work: Path) -> None:
        from websockets.sync.client import connect

        profile = work / "chromium-profile"
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", *CHROMIUM_ARGS, "--enable-precise-memory-info", "--no-first-run",
             f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not (profile / "DevToolsActivePort").exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("Chromium did not open its DevTools port")
            time.sleep(0.1)
        base = f"http://127.0.0.1:{(profile / 'DevToolsActivePort').read_text().split()[0]}"
        self.version = httpx.get(f"{base}/json/version", timeout=10).json()["Browser"].split("/")[-1]
        target = next(t for t in httpx.get(f"{base}/json/list", timeout=10).json() if t["type"] == "page")
        self.ws = connect(target["webSocketDebuggerUrl"], max_size=None)
        self.calls = 0
        self.handlers: dict[str, Any] = {"Runtime.exceptionThrown": self._error}
        self.errors: list[str] = []

    def on(self, event: str, handler: Any) -> None:
        self.handlers[event] = handler

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call `method`; the events that arrive meanwhile go to their handlers."""
        self.calls += 1
        call = self.calls
        self.ws.send(json.dumps({"id": call, "method": method, "params": params or {}}))
        while True:
            message = json.loads(self.ws.recv(timeout=120))
            if message.get("id") == call:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            handler = self.handlers.get(message.get("method", ""))
            if handler is not None:
                handler(message["params"])

    def evaluate(self, expression: str) -> Any:
        answer = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in answer:
            raise RuntimeError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def wait(self, expression: str, timeout_s: float) -> Any:
        """Evaluate `expression` every 20 ms until it is truthy; its value."""
        deadline = time.monotonic() + timeout_s
        while not (value := self.evaluate(expression)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression} still false after {timeout_s:.0f} s")
            time.sleep(0.02)
        return value

    def renderer_mb(self) -> float:
        return renderers_private_mb(self.proc.pid)

    def _error(self, event: dict[str, Any]) -> None:
        self.errors.append(str(event["exceptionDetails"].get("exception", {}).get("description", event)))

    def close(self) -> None:
        self.ws.close()
        stop_process(self.proc)


def position(page: Page, count: int) -> int | None:
    """Images scrolled past: the index, newest first, of the first tile on screen (seeded names say it)."""
    name = page.evaluate("__ff.first()")
    if not name or not name.startswith("IMG_"):
        return None
    return count - 1 - int(name[4:].split(".")[0])


def sample(page: Page, past: int, started: float) -> dict[str, Any]:
    page.send("Runtime.discardConsoleEntries")  # the inspector's copy of console lines is not the page's
    page.send("HeapProfiler.collectGarbage")
    row: dict[str, Any] = page.evaluate("__ff.sample()")
    usage = page.send("Runtime.getHeapUsage")
    row["heap_used"], row["heap_total"] = usage["usedSize"], usage["totalSize"]
    metrics = {m["name"]: m["value"] for m in page.send("Performance.getMetrics")["metrics"]}
    row["live_nodes"] = int(metrics.get("Nodes", 0))  # detached nodes not yet collected count too
    row["renderer_mb"] = page.renderer_mb()
    row["past"] = past
    row["elapsed_s"] = time.perf_counter() - started
    row["full_lists"], row["max_limit"], row["api_bytes"] = row.pop("fromTop"), row.pop("maxLimit"), row.pop("bytes")
    print(
        f"  {past:>7,} past · {row['elapsed_s']:6.1f} s · heap {row['heap_used'] / 2**20:6.1f} MB · "
        f"{row['nodes']:>8,} nodes ({row['live_nodes']:,} live) · {row['tiles']:>7,} tiles · "
        f"renderer {row['renderer_mb']:6.0f} MB (JS heap {row['heap_total'] / 2**20:.1f} MB reserved) · "
        f"{row['lists']:,} list requests · {row['api_bytes'] / 1024:,.0f} KB",
        flush=True,
    )
    return row


def run(args: argparse.Namespace, data: Path, work: Path) -> dict[str, Any]:
    project = f"bench-{args.images}"
    result: dict[str, Any] = {"images": args.images, "rows": [], "assets": str(args.assets or "")}
    script = SERVE_WITH_ASSETS.format(assets=str(args.assets)) if args.assets else None
    server = Server(work, args.port or free_port(), project=project, probe_script=script)
    server.data = data  # the seeded project may be kept (`--data`)
    server.start()
    others = OthersLoad()
    page = None
    try:
        page = Page(work)
        result["chromium"] = page.version
        for domain in ("Page", "Runtime", "Performance"):
            page.send(f"{domain}.enable")
        metrics = {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False}
        page.send("Emulation.setDeviceMetricsOverride", metrics)
        for source in (INIT_JS, FIRST_TILE_JS):
            page.send("Page.addScriptToEvaluateOnNewDocument", {"source": source})
        page.send("Page.navigate", {"url": f"{server.url}/?project={project}"})
        result["open_s"] = page.wait("window.__firstTile", 120) / 1000
        page.wait("!!__ff.find().querySelector('[data-testid=live-indicator][data-state=live]')", 60)
        time.sleep(1)  # the first page's thumbnails, before the first sample
        result["rows"], result["end"] = scroll(page, args)
        # What of the renderer's growth is caches: what a critical memory-pressure signal gives back.
        page.send("Memory.simulatePressureNotification", {"level": "critical"})
        page.send("HeapProfiler.collectGarbage")
        time.sleep(2)
        result["pressed_mb"] = page.renderer_mb()
        print(f"  renderer after a memory-pressure signal: {result['pressed_mb']:.0f} MB", flush=True)
        result["page_errors"] = page.errors
        result["others_cores"] = others.cores()
    finally:
        if page is not None:
            page.close()
        server.stop()
    return result


def wait_for_more(page: Page, height: int, oldest: str, timeout_s: float) -> None:
    """At the end of what is loaded: wait for the next page to make the grid taller.

    A user who waits at the bottom and sees nothing come scrolls up a little and back down: so does
    this, every few seconds: the gallery before windowing loaded only when what intersects changed, and
    could miss that change while a page was loading.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            page.wait(f"__ff.scroller().scrollHeight > {height} || __ff.onScreen({json.dumps(oldest)})", 2)
            return
        except TimeoutError:
            if time.monotonic() > deadline:
                raise
            page.evaluate("__ff.scroller().scrollBy(0, -3 * __ff.scroller().clientHeight)")
            time.sleep(0.2)
            page.evaluate("__ff.scroller().scrollBy(0, 3 * __ff.scroller().clientHeight)")


def scroll(page: Page, args: argparse.Namespace) -> tuple[list[dict[str, Any]], bool]:
    """Scroll down `--step-screens` screens at a time to the oldest image; a sample at each checkpoint."""
    count = args.images
    oldest = json.dumps("IMG_00000.jpg")
    todo = [c for c in args.checkpoints if c < count]
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    at_end = False
    while True:
        past = position(page, count) or 0
        while todo and past >= todo[0]:
            todo.pop(0)
            rows.append(sample(page, past, started))
        at_end = bool(page.evaluate(f"__ff.onScreen({oldest})"))
        if at_end:
            rows.append(sample(page, past, started))
            rows[-1]["end"] = True
            break
        if time.perf_counter() - started > args.budget_s:
            rows.append(sample(page, past, started))
            print(f"  time budget of {args.budget_s:.0f} s spent at {past:,} images", flush=True)
            break
        moved = page.evaluate(f"__ff.step(__ff.scroller().clientHeight * {args.step_screens})")
        if not moved["moved"]:
            wait_for_more(page, moved["height"], json.loads(oldest), args.step_timeout)
        page.wait("__ff.centre()", args.step_timeout)
    return rows, at_end


# The gallery before DOM windowing (every tile it had shown kept in the DOM), measured with this script
# (`--assets` on a copy of its browser code, `--json`, trimmed) on the machine of the first "after" run.
_BEFORE_KEYS = (
    "past",
    "elapsed_s",
    "heap_used",
    "nodes",
    "live_nodes",
    "tiles",
    "renderer_mb",
    "lists",
    "full_lists",
    "max_limit",
    "api_bytes",
)
BEFORE: dict[str, Any] = {
    "open_s": 3.14639999999851,
    "budget_s": 300.0,
    "rows": [
        dict(zip(_BEFORE_KEYS, row, strict=True))
        for row in (
            (0, 0.2, 10334336, 1647, 1762, 60, 125.6, 1, 0, 60, 42361),
            (1000, 14.0, 11862944, 26127, 26244, 1080, 184.3, 18, 0, 60, 762226),
            (5020, 78.6, 15018588, 122607, 122722, 5100, 364.0, 85, 0, 60, 3599341),
            (10000, 243.8, 19534116, 242127, 242242, 10080, 575.9, 168, 0, 60, 7113976),
            (11625, 303.2, 19046764, 281007, 281122, 11700, 647.5, 195, 0, 60, 8257291),
        )
    ],
}


def render(result: dict[str, Any], before: dict[str, Any], machine: str) -> str:
    rows = result["rows"]
    brows = before.get("rows", [])
    step = result.get("step_screens", 10)
    lines = [
        "## Scrolling a 100,000-image project",
        "",
        f"Measured by `benchmarks/scroll.py` on {machine}; Chromium {result.get('chromium', chromium_version())}. "
        f"Machine load: other processes used {result['idle_cores']:.2f} cores just before the run and "
        f"{result['others_cores']:.2f} during it.",
        "",
        f"One `fotoflo serve` over a seeded project of {result['images']:,} images and one headless Chromium page "
        f"(1280×800, driven over a bare DevTools connection: no network domain keeping copies of what it "
        "fetched). The grid is "
        f"scrolled down {step:g} screens at a time, each time until tiles fill the middle of the view, to the "
        f"oldest image or for {result['budget_s']:.0f} s. At each checkpoint, after a forced garbage collection: "
        "the JS heap (`Runtime.getHeapUsage`), every DOM node (shadow roots included), the tiles in the DOM, the "
        "renderer's private memory (`RssAnon`), and the list requests and `/api/` JSON since the page opened "
        "(from its resource timing).",
        "",
    ]
    opened = f"**{result['open_s']:.2f} s**"
    if "open_s" in before:
        opened = f"{before['open_s']:.2f} s before, {opened} after"
    lines += [f"First tiles on screen after navigation start: {opened} (target ≤ 1.5 s).", ""]
    header = [
        "| images scrolled past | time | JS heap | DOM nodes | tiles in the DOM | renderer | list requests "
        "| API JSON |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += header
    for r in rows:
        b = _nearest(brows, r["past"]) if brows else None
        cells = [
            _pair(b, r, "elapsed_s", "{:.0f} s", brows),
            _pair(b, r, "heap_used", "{:.1f} MB", brows, 2**20),
            _pair(b, r, "nodes", "{:,}", brows),
            _pair(b, r, "tiles", "{:,}", brows),
            _pair(b, r, "renderer_mb", "{:.0f} MB", brows),
            _pair(b, r, "lists", "{:,}", brows),
            _pair(b, r, "api_bytes", "{:,.0f} KB", brows, 1024),
        ]
        lines.append(f"| {_past(r)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Steps of {step:g} screens land beyond the tiles made ahead, so the DOM holds what is made around the "
        "view (two screens above, 90 tiles or two screens below); scrolling a screen at a time it also keeps up "
        "to 600 tiles above the view (`KEEP_BEHIND` in `grid.js`), about 720 in all at 1280×800.",
    ]
    if brows:
        nodes, heap, renderer = _slopes(brows)
        lines += [
            "",
            "Each cell is *before → after*. Before is the gallery that kept every tile it had shown (the code of the "
            f"previous commit, served with `--assets`; {_reach(before)}; its time includes stalls where it stopped "
            "loading until scrolled up and down again, which the benchmark does after 2 s). Every image it "
            f"scrolled past cost {nodes:.0f} DOM nodes, {heap:,.0f} B of JS heap and {renderer:.0f} KB of "
            "renderer memory: at 100,000 images, "
            f"{100_000 * nodes / 1e6:.1f} million nodes and {100_000 * renderer / 2**20:.1f} GB.",
        ]
    lines += ["", *verdict(result)]
    return "\n".join(lines)


def _slopes(rows: list[dict[str, Any]]) -> tuple[float, float, float]:
    """DOM nodes, JS heap bytes and renderer KB per image scrolled past, first row past 0 to the last."""
    a = next((r for r in rows if r["past"] > 0), rows[0])
    b = rows[-1]
    span = max(1, b["past"] - a["past"])
    return (
        (b["nodes"] - a["nodes"]) / span,
        (b["heap_used"] - a["heap_used"]) / span,
        (1024 * (b["renderer_mb"] - a["renderer_mb"]) / span),
    )


def verdict(result: dict[str, Any]) -> list[str]:
    rows = result["rows"]
    out = ["### Verdict", ""]
    base = next((r for r in rows if r["past"] >= FLAT_FROM), None)
    last = rows[-1]
    if base is None or base is last:
        out.append(f"- Did not scroll past {FLAT_FROM:,} images: no verdict on memory.")
    else:
        span = max(1, last["past"] - base["past"])
        grown = 100 * (last["renderer_mb"] - base["renderer_mb"]) / base["renderer_mb"]
        early = max(r["tiles"] for r in rows if r["past"] <= base["past"])
        late = [r for r in rows if r["past"] >= base["past"]]
        most = max(r["tiles"] for r in late)
        bounded = most <= early * (1 + FLAT_PCT / 100)
        live = [r["live_nodes"] for r in late]
        heap = last["heap_used"] - base["heap_used"]
        out.append(
            f"- **Browser memory from {base['past']:,} to {last['past']:,} images scrolled past: the renderer "
            f"{base['renderer_mb']:.0f} → {last['renderer_mb']:.0f} MB ({grown:+.1f} %, "
            f"{2**20 * (last['renderer_mb'] - base['renderer_mb']) / span:+,.0f} B per image) → "
            f"{'flat' if grown <= FLAT_PCT else 'NOT flat'}** (criterion: at most {FLAT_PCT:.0f} % after the first "
            f"{FLAT_FROM:,}); {result['pressed_mb']:.0f} MB after a critical memory-pressure signal at the end."
        )
        out.append(
            f"- **DOM: {'bounded' if bounded else 'NOT bounded'}**: at most {most:,} tiles at a checkpoint from "
            f"there on, against {early:,} up to it; the renderer's own count of nodes (detached ones not yet "
            f"collected included) {min(live):,}–{max(live):,}. JS heap {base['heap_used'] / 2**20:.1f} → "
            f"{last['heap_used'] / 2**20:.1f} MB ({heap / span:+,.0f} B per image scrolled past)."
        )
    full = last["full_lists"]
    out.append(
        f"- **Paging:** {last['lists']:,} list requests of at most {last['max_limit']} images each for "
        f"{last['past']:,} images scrolled past, {full} of them from the top again after the first "
        f"→ {'pages, never the whole list' if full == 0 and last['max_limit'] <= 500 else 'NOT only pages'}; "
        f"{last['api_bytes'] / max(1, last['past']):,.0f} B of JSON per image."
    )
    end = "reached the oldest image" if result.get("end") else "did not reach the oldest image in its time budget"
    out.append(f"- The run {end} after {last['elapsed_s']:.0f} s; {len(result.get('page_errors', []))} page error(s).")
    return out


def _nearest(rows: list[dict[str, Any]], past: int) -> dict[str, Any] | None:
    if not rows:
        return None
    best = min(rows, key=lambda r: abs(r["past"] - past))
    return best if abs(best["past"] - past) <= max(500, 0.05 * past) else None


def _past(row: dict[str, Any]) -> str:
    return f"{row['past']:,}" + (" (the end)" if row.get("end") else "")


def _pair(
    before: dict[str, Any] | None, after: dict[str, Any], key: str, fmt: str, brows: list[Any], unit: float = 1
) -> str:
    """`after`'s value, after `before`'s when there is a before run ("–" where it did not get that far)."""

    def show(row: dict[str, Any]) -> str:
        return fmt.format(row[key] / unit if unit != 1 else row[key])

    if not brows:
        return show(after)
    return f"{'–' if before is None else show(before)} → {show(after)}"


def _reach(before: dict[str, Any]) -> str:
    rows = before.get("rows", [])
    if not rows:
        return "no rows"
    last = rows[-1]
    if last.get("end"):
        return f"it reached the end in {last['elapsed_s']:.0f} s"
    return f"it got {last['past']:,} images down in its {before.get('budget_s', 0):.0f} s, hence the dashes"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100_000, help="images in the seeded project")
    parser.add_argument("--quick", action="store_true", help="20,000 images, checkpoints to 10,000, 2 minutes")
    parser.add_argument("--checkpoints", type=int, nargs="+", default=None, help="images scrolled past to sample at")
    parser.add_argument("--budget-s", type=float, default=None, help="seconds of scrolling at most (default 300)")
    parser.add_argument("--step-screens", type=float, default=10.0, help="screens scrolled per step (default 10)")
    parser.add_argument("--step-timeout", type=float, default=60.0, help="seconds one step may take")
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument("--data", type=Path, default=None, help="data directory to keep the seeded project in")
    parser.add_argument("--assets", type=Path, default=None, help="serve main.js (and imports), gallery.css from here")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw result here")
    parser.add_argument("--before", type=Path, default=None, help="a --json result to show as 'before'")
    parser.add_argument("--wait-idle", type=float, default=60.0, help="seconds to wait for other processes to quieten")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch docs/benchmarks.md")
    args = parser.parse_args()
    if args.quick:
        args.images = 20_000 if args.images == 100_000 else args.images
        args.checkpoints = args.checkpoints or list(QUICK_CHECKPOINTS)
        args.budget_s = args.budget_s or 90.0
    args.checkpoints = args.checkpoints or list(CHECKPOINTS)
    args.budget_s = args.budget_s or 300.0

    import panel

    with tempfile.TemporaryDirectory(prefix="fotoflo-scroll-") as tmp:
        work = Path(tmp)
        data = args.data or work / "data"
        data.mkdir(parents=True, exist_ok=True)
        (work / "hot").mkdir()
        took = seed(data, f"bench-{args.images}", args.images)
        print(f"seeded bench-{args.images}: {'reused' if took is None else f'{took:.0f} s'}", flush=True)
        idle = wait_for_idle(args.wait_idle) if args.wait_idle > 0 else 0.0
        result = run(args, data, work)
    result["idle_cores"] = idle
    result["budget_s"] = args.budget_s
    result["step_screens"] = args.step_screens
    result["seed_s"] = took
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    before = json.loads(args.before.read_text()) if args.before else BEFORE
    section = render(result, before, machine_description([f"Panel {panel.__version__}"]))
    publish("scroll", section, write=not args.no_write)


if __name__ == "__main__":
    main()
