"""Live benchmark, in a real browser: what one new image costs, and how fast it shows.

    python benchmarks/live.py              # measure, then rewrite the "live" section of docs/benchmarks.md
    python benchmarks/live.py --sizes 100 1000 --latency-files 20
    python benchmarks/live.py --data ~/.cache/fotoflo-live   # keep the seeded projects for the next run

Side by side in one run, on one server process (benchmarks/live_server.py):
- Fotoflo's gallery (`/`): a keyed JSComponent fed by the project's SSE stream;
- the naive Panel gallery (`/naive`): a FlexBox of HTML panes, one inserted per new image;
- the refetching gallery (`/refetch`, the seed's "before"): on every SSE event it reloads the whole
  image list from the images API, page by page, and re-renders it.
Bytes per new image are counted by Chromium itself (DevTools protocol: websocket frames both ways,
the SSE stream's data and the API responses) at several project sizes; thumbnails are counted apart,
since all fetch the same one. Page open is navigation start → the first tile's picture on screen
(painted from the page's HTML or in a gallery's tile), by the page's own clock (`performance.now()`),
the median of 3 opens in fresh browser contexts with no DevTools recording; a page that does not get
there within `--open-timeout`
is reported as "> that", and that approach is not tried at larger sizes. Latency is file complete
in the hot folder (after the rename) → tile in the page's DOM, timed by the page's own clock, for
single drops and for bursts. The server is restarted for each project size, so a big page torn
down at one size is not charged to the next.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (
    FIRST_PICTURE_JS,
    ROOT,
    SEEN_JS,
    OtherLoad,
    Server,
    machine_description,
    percentile,
    publish,
    wait_for_idle,
)

from dashboard.samples import photo_jpeg, seed_project
from dashboard.store.sqlite import SQLiteStore
from tests.support.browser import CHROMIUM, launch_chromium

FIRST_TILE_JS = """
(() => {
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth;
  };
  const find = (root) => {
    for (const el of root.querySelectorAll('[data-image-id]')) if (visible(el)) return true;
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot && find(el.shadowRoot)) return true;
    return false;
  };
  const tick = () => {
    if (document.documentElement && find(document)) window.__firstTile = performance.now();
    else requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();
"""

APPROACHES = {"fotoflo": "/", "refetch": "/refetch", "naive": "/naive"}
BASELINES = ("refetch", "naive")


@dataclass
class Traffic:
    """Bytes the page received and sent, by channel, as Chromium reports them."""

    urls: dict[str, str] = field(default_factory=dict)
    ws_in: int = 0
    ws_out: int = 0
    sse: int = 0
    api: int = 0  # JSON from /api/ (the refetching gallery's reloads)
    thumbs: int = 0
    other: int = 0

    def reset(self) -> None:
        self.ws_in = self.ws_out = self.sse = self.api = self.thumbs = self.other = 0

    def attach(self, cdp: Any) -> None:
        cdp.on("Network.requestWillBeSent", lambda e: self.urls.__setitem__(e["requestId"], e["request"]["url"]))
        cdp.on("Network.webSocketFrameReceived", lambda e: self._ws(e, incoming=True))
        cdp.on("Network.webSocketFrameSent", lambda e: self._ws(e, incoming=False))
        cdp.on("Network.dataReceived", self._data)
        cdp.send("Network.enable")

    def _ws(self, event: dict[str, Any], *, incoming: bool) -> None:
        size = len(event["response"]["payloadData"].encode())
        if incoming:
            self.ws_in += size
        else:
            self.ws_out += size

    def _data(self, event: dict[str, Any]) -> None:
        url = self.urls.get(event["requestId"], "")
        size = event.get("encodedDataLength") or event.get("dataLength", 0)
        if "/events" in url:
            self.sse += event.get("dataLength", 0)
        elif "/api/" in url:
            self.api += size
        elif "/files/" in url:
            self.thumbs += size
        else:
            self.other += size


def seed(data: Path, project: str, count: int) -> float | None:
    """Seed `project` with `count` images unless it has images already; the seconds it took, else None."""
    store = SQLiteStore(data / "fotoflo.sqlite")
    try:
        if project in store.projects() and store.count_images(project):
            return None
    finally:
        store.close()
    start = time.perf_counter()
    seed_project(data, project, count)
    return time.perf_counter() - start


def gallery_server(work: Path, port: int, data: Path | None = None) -> Server:
    """The three galleries' server (benchmarks/live_server.py) with a hot folder; `data` may be kept."""
    server = Server(work, port, command=[sys.executable, str(ROOT / "benchmarks" / "live_server.py")])
    server.data = data or work / "data"
    return server


def wait_for(page: Any, predicate_js: str, timeout_s: float, arg: Any = None) -> None:
    page.wait_for_function(predicate_js, arg=arg, timeout=timeout_s * 1000, polling=20)


def time_open(browser: Any, url: str, timeout_s: float, opens: int = 3) -> float:
    """Seconds from navigation start to the first picture on screen: the median of `opens` (one if it took 10 s).

    Each in a fresh context (nothing cached) with no DevTools domain recording, which slows a page down.
    """
    times: list[float] = []
    while len(times) < opens and sum(times) < 10:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            page = context.new_page()
            page.add_init_script(FIRST_PICTURE_JS)
            page.goto(url, timeout=timeout_s * 1000)
            wait_for(page, "() => window.__firstPicture !== undefined", timeout_s)
            times.append(page.evaluate("() => window.__firstPicture") / 1000)
        finally:
            context.close()
    return statistics.median(times)


def bytes_per_image(
    bench: Server, browser: Any, sizes: list[int], per_size: int, open_timeout_s: float
) -> list[dict[str, Any]]:
    rows = []
    seed = 10_000
    given_up: dict[str, str] = {}  # approach → why it is not tried at larger sizes
    for n in sizes:
        project = f"bench-{n}"
        bench.stop()
        bench.start()
        for approach, path in APPROACHES.items():
            row: dict[str, Any] = {"n": n, "approach": approach}
            if approach in given_up:
                row["skipped"] = given_up[approach]
                rows.append(row)
                print(row, flush=True)
                continue
            url = f"{bench.url}{path}?project={project}"
            try:
                row["open_s"] = time_open(browser, url, open_timeout_s)
            except Exception as exc:  # a page that cannot open in time is a result too
                row["open_timeout_s"] = open_timeout_s
                given_up[approach] = f"> {open_timeout_s:.0f} s to open at {n:,}"
                row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
                rows.append(row)
                print(row, flush=True)
                continue
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.add_init_script(FIRST_PICTURE_JS)
            traffic = Traffic()
            traffic.attach(context.new_cdp_session(page))
            try:
                page.goto(url, timeout=open_timeout_s * 1000)
                wait_for(page, "() => window.__firstPicture !== undefined", open_timeout_s)
                if approach == "fotoflo":
                    page.wait_for_selector("[data-testid=live-indicator][data-state=live]", timeout=60_000)
                page.wait_for_timeout(1500)  # let the initial load settle before counting
                page.evaluate(SEEN_JS)
                traffic.reset()
                for _ in range(per_size):
                    seed += 1
                    name = f"wire-{seed}.jpg"
                    files = {"file": (name, photo_jpeg(seed, (600, 400), exif=False), "image/jpeg")}
                    httpx.post(f"{bench.url}/api/projects/{project}/upload", files=files, timeout=60)
                    wait_for(page, "name => name in window.__seen", max(120, open_timeout_s), name)
                page.wait_for_timeout(500)
                row["event_bytes"] = (traffic.ws_in + traffic.ws_out + traffic.sse + traffic.api) / per_size
                row["ws_bytes"] = (traffic.ws_in + traffic.ws_out) / per_size
                row["sse_bytes"] = traffic.sse / per_size
                row["api_bytes"] = traffic.api / per_size
                row["thumb_bytes"] = traffic.thumbs / per_size
            except Exception as exc:  # a page that cannot open in time is a result too
                row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
            finally:
                context.close()
            rows.append(row)
            print(row, flush=True)
    return rows


def latency(bench: Server, browser: Any, files: int, bursts: int, burst_size: int) -> list[dict[str, Any]]:
    rows = []
    seed = 50_000
    for approach, path in APPROACHES.items():
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(f"{bench.url}{path}")
        page.locator("[data-image-id]").first.wait_for(timeout=120_000)
        if approach == "fotoflo":
            page.wait_for_selector("[data-testid=live-indicator][data-state=live]", timeout=60_000)
        page.evaluate(SEEN_JS)
        single: list[float] = []
        burst: list[float] = []
        for mode, rounds, size, out in (("single", files, 1, single), ("burst", bursts, burst_size, burst)):
            for _ in range(rounds):
                payloads = []
                for _ in range(size):
                    seed += 1
                    payloads.append((f"{approach}-{mode}-{seed}.jpg", photo_jpeg(seed, (1600, 1067))))
                complete: dict[str, float] = {}
                for name, payload in payloads:
                    temp = bench.watch / f".{name}.part"
                    temp.write_bytes(payload)
                    os.replace(temp, bench.watch / name)
                    complete[name] = time.time() * 1000
                for name in complete:
                    wait_for(page, "name => name in window.__seen", 60, name)
                seen = page.evaluate("() => window.__seen")
                out.extend(seen[name] - t for name, t in complete.items())
                page.wait_for_timeout(150)
        context.close()
        for mode, values in (("single", single), ("burst", burst)):
            rows.append({
                "approach": approach, "mode": mode, "count": len(values),
                "p50_ms": percentile(values, 50), "p95_ms": percentile(values, 95), "max_ms": max(values),
            })  # fmt: skip
            print(rows[-1], flush=True)
    return rows


def render(
    bytes_rows: list[dict[str, Any]],
    latency_rows: list[dict[str, Any]],
    machine: str,
    seed_s: dict[int, float | None],
    idle_cores: float,
    others_cores: float,
) -> str:
    lines = [
        "## Live gallery",
        "",
        f"Measured by `benchmarks/live.py` on {machine}; Chromium {chromium_version()}. "
        f"Machine load: other processes used {idle_cores:.2f} cores just before the run; during it, "
        f"everything but this script (its server and Chromium included) used {others_cores:.2f} cores on average.",
        "",
        "Three galleries on one server: Fotoflo's (`/`, a keyed JSComponent fed by SSE), the naive Panel "
        "gallery (`/naive`, a FlexBox of HTML panes, one inserted per new image over the Bokeh websocket) and "
        'the refetching gallery (`/refetch`, the seed\'s "before": every SSE event reloads the whole list from '
        "`/api/projects/{p}/images`, 500 a page, and re-renders it).",
        "",
        "### Bytes on the wire per new image (event channel only; the thumbnail is fetched apart)",
        "",
        "Counted by Chromium: websocket frames both ways, the SSE stream's data and the API's JSON. "
        "Ratios are the baseline's bytes over Fotoflo's.",
        "",
        "| images in project | Fotoflo (SSE + websocket) | refetch (SSE + API) | ratio | naive FlexBox (websocket) "
        "| ratio |",
        "|---|---|---|---|---|---|",
    ]
    by = {(r["n"], r["approach"]): r for r in bytes_rows}
    sizes = sorted({r["n"] for r in bytes_rows})
    for n in sizes:
        f, rf, nv = by.get((n, "fotoflo"), {}), by.get((n, "refetch"), {}), by.get((n, "naive"), {})
        lines.append(
            f"| {n:,} | {_bytes(f)} | {_bytes(rf)} | {_ratio(rf, f, 'event_bytes')} | {_bytes(nv)} "
            f"| {_ratio(nv, f, 'event_bytes')} |"
        )
    lines += [
        "",
        "### Page open: navigation start → first tile's picture on screen (the page's own clock)",
        "",
        "The median of 3 opens (1 if it took 10 s), each in a fresh browser context (nothing cached) with no "
        "DevTools domain recording. Fotoflo's first page is painted from its HTML "
        "(`dashboard/first_paint.py`) before the Bokeh and Panel bundles run; the refetching gallery is the plain "
        "page: HTML, one API request, `<img>`s.",
        "",
        "| images in project | Fotoflo | refetch | ratio | naive FlexBox | ratio | seeding the project |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in sizes:
        f, rf, nv = by.get((n, "fotoflo"), {}), by.get((n, "refetch"), {}), by.get((n, "naive"), {})
        took = seed_s.get(n)
        seeded = f"{took:.0f} s" if took is not None else "reused"
        lines.append(
            f"| {n:,} | {_secs(f)} | {_secs(rf)} | {_ratio(rf, f, 'open_s')} | {_secs(nv)} "
            f"| {_ratio(nv, f, 'open_s')} | {seeded} |"
        )
    thumbs = [r["thumb_bytes"] for r in bytes_rows if r.get("thumb_bytes")]
    if thumbs:
        lines += [
            "",
            f"Thumbnail per new image (every approach fetches it): ~{statistics.median(thumbs) / 1024:.0f} KB. "
            'A page that had not shown a picture within the time limit is "> limit", and that approach '
            'is not tried at larger sizes ("not run").',
        ]
    lines += [
        "",
        "### File complete in the hot folder → tile in the page (100-image project, 1600×1067 JPEGs)",
        "",
        "| approach | drops | files | p50 | p95 | max | p50 ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    fotoflo = {r["mode"]: r for r in latency_rows if r["approach"] == "fotoflo"}
    for r in latency_rows:
        base = fotoflo.get(r["mode"], {}).get("p50_ms")
        ratio = f"{r['p50_ms'] / base:.1f}×" if base else "–"
        lines.append(
            f"| {r['approach']} | {r['mode']} | {r['count']} | {r['p50_ms']:.0f} ms | {r['p95_ms']:.0f} ms "
            f"| {r['max_ms']:.0f} ms | {ratio} |"
        )
    flat = [r["event_bytes"] for r in bytes_rows if r["approach"] == "fotoflo" and "event_bytes" in r]
    flat_ok = bool(flat) and max(flat) <= 1024 and max(flat) - min(flat) < 64
    lines += [
        "",
        "Targets (issues 3, 10 and 19): p50 ≤ 150 ms, p95 ≤ 400 ms; ≤ 1 KB per image, flat in N; the first "
        "tile's picture on screen ≤ 0.5 s at 100 and at 100,000 images.",
        f"- latency (single drops): p50 {fotoflo['single']['p50_ms']:.0f} ms, p95 {fotoflo['single']['p95_ms']:.0f} ms"
        f" → {'met' if fotoflo['single']['p50_ms'] <= 150 and fotoflo['single']['p95_ms'] <= 400 else 'NOT met'}",
        f"- bytes per image: {min(flat):.0f}–{max(flat):.0f} B → {'met' if flat_ok else 'NOT met'}"
        if flat
        else "- bytes: not measured",
    ]
    for n in (n for n in (100, 100_000) if "open_s" in by.get((n, "fotoflo"), {})):
        open_s = by[(n, "fotoflo")]["open_s"]
        lines.append(f"- page open at {n:,} images: {open_s:.2f} s → {'met' if open_s <= 0.5 else 'NOT met'}")
    return "\n".join(lines)


def _ratio(baseline: dict[str, Any], fotoflo: dict[str, Any], key: str) -> str:
    if key in baseline and fotoflo.get(key):
        return (
            f"{baseline[key] / fotoflo[key]:,.0f}×" if key == "event_bytes" else f"{baseline[key] / fotoflo[key]:.1f}×"
        )
    if key == "open_s" and "open_timeout_s" in baseline and fotoflo.get(key):
        return f"> {baseline['open_timeout_s'] / fotoflo[key]:.0f}×"
    return "–"


def _bytes(row: dict[str, Any]) -> str:
    if "skipped" in row:
        return f"not run ({row['skipped']})"
    if "open_timeout_s" in row:
        return "–"
    if "error" in row:
        return f"did not finish ({row['error']})"
    return f"{row['event_bytes']:,.0f} B" if "event_bytes" in row else "–"


def _secs(row: dict[str, Any]) -> str:
    if "open_s" in row:
        return f"{row['open_s']:.2f} s"
    if "open_timeout_s" in row:
        return f"> {row['open_timeout_s']:.0f} s"
    return "not run" if "skipped" in row else "–"


def chromium_version() -> str:
    try:
        return subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=30).stdout.split()[1]
    except Exception:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000, 100000])
    parser.add_argument("--per-size", type=int, default=5, help="new images counted per project size")
    parser.add_argument("--latency-files", type=int, default=30)
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--burst-size", type=int, default=10)
    parser.add_argument("--port", type=int, default=5099)
    parser.add_argument(
        "--open-timeout",
        type=float,
        default=300,
        help="seconds a page may take to show its first tile (default 300); slower is reported as > that",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="data directory to keep the seeded projects in and reuse them (default: a temporary one)",
    )
    parser.add_argument("--no-write", action="store_true", help="print, do not touch docs/benchmarks.md")
    args = parser.parse_args()

    import panel
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="fotoflo-live-") as tmp:
        bench = gallery_server(Path(tmp), args.port, args.data)
        bench.data.mkdir(parents=True, exist_ok=True)
        seed_s: dict[int, float | None] = {}
        for n in args.sizes:
            seed_s[n] = seed(bench.data, f"bench-{n}", n)
            print(f"seeded bench-{n}: {seed_s[n] if seed_s[n] is None else round(seed_s[n], 1)} s", flush=True)
        seed(bench.data, "default", 100)
        bench.watch.mkdir(parents=True)
        idle = wait_for_idle(60)
        try:
            with sync_playwright() as pw, OtherLoad() as load:
                browser = launch_chromium(pw)
                bytes_rows = bytes_per_image(bench, browser, args.sizes, args.per_size, args.open_timeout)
                # A fresh server for latency: tearing down a naive 10,000-pane session keeps the
                # old one's loop busy for a long while, which would be charged to the next drops.
                bench.stop()
                bench.start()
                latency_rows = latency(bench, browser, args.latency_files, args.bursts, args.burst_size)
                browser.close()
        finally:
            bench.stop()
    machine = machine_description([f"Panel {panel.__version__}"])
    section = render(bytes_rows, latency_rows, machine, seed_s, idle, load.others_cores)
    publish("live", section, write=not args.no_write)


if __name__ == "__main__":
    main()
