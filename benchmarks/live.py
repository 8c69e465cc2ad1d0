"""Live benchmark, in a real browser: what one new image costs, and how fast it shows.

    python benchmarks/live.py              # measure, then rewrite the "live" section of docs/benchmarks.md
    python benchmarks/live.py --sizes 100 1000 --latency-files 20

Side by side in one run, on one server process (benchmarks/live_server.py):
- Fotoflo's gallery (`/`): a keyed JSComponent fed by the project's SSE stream;
- the naive Panel gallery (`/naive`): a FlexBox of HTML panes, one inserted per new image.
Bytes per new image are counted by Chromium itself (DevTools protocol: websocket frames both ways
and the SSE stream's data) at several project sizes; thumbnails are counted apart, since both
fetch the same one. Latency is file complete in the hot folder (after the rename) → tile in the
page's DOM, timed by the page's own clock, for single drops and for bursts.
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

from _common import machine_description, percentile, write_section

from dashboard.samples import photo_jpeg, seed_project

CHROMIUM = os.environ.get("FOTOFLO_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ROOT = Path(__file__).resolve().parent.parent

SEEN_JS = """
() => {
  window.__seen = {};
  const scan = (root) => {
    for (const el of root.querySelectorAll('[data-image-id]')) {
      const name = (el.getAttribute('title') || '').split('\\n')[0];
      if (name && !(name in window.__seen)) window.__seen[name] = Date.now();
    }
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) scan(el.shadowRoot);
  };
  const tick = () => { scan(document); requestAnimationFrame(tick); };
  tick();
}
"""

APPROACHES = {"fotoflo": "/", "naive": "/naive"}


@dataclass
class Traffic:
    """Bytes the page received and sent, by channel, as Chromium reports them."""

    urls: dict[str, str] = field(default_factory=dict)
    ws_in: int = 0
    ws_out: int = 0
    sse: int = 0
    thumbs: int = 0
    other: int = 0

    def reset(self) -> None:
        self.ws_in = self.ws_out = self.sse = self.thumbs = self.other = 0

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
        elif "/files/" in url:
            self.thumbs += size
        else:
            self.other += size


class Bench:
    def __init__(self, work: Path, port: int) -> None:
        self.work = work
        self.data = work / "data"
        self.watch = work / "hot"
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start_server(self) -> None:
        log = open(self.work / "server.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "live_server.py"), "--data", str(self.data),
             "--watch", str(self.watch), "--port", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError((self.work / "server.log").read_text())

    def stop_server(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def wait_for(page: Any, predicate_js: str, timeout_s: float, arg: Any = None) -> None:
    page.wait_for_function(predicate_js, arg=arg, timeout=timeout_s * 1000, polling=20)


def bytes_per_image(bench: Bench, browser: Any, sizes: list[int], per_size: int) -> list[dict[str, Any]]:
    rows = []
    seed = 10_000
    for n in sizes:
        project = f"bench-{n}"
        for approach, path in APPROACHES.items():
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            traffic = Traffic()
            traffic.attach(context.new_cdp_session(page))
            row: dict[str, Any] = {"n": n, "approach": approach}
            start = time.monotonic()
            try:
                page.goto(f"{bench.url}{path}?project={project}", timeout=300_000)
                page.locator("[data-image-id]").first.wait_for(timeout=300_000)
                row["open_s"] = time.monotonic() - start
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
                    wait_for(page, "name => name in window.__seen", 120, name)
                page.wait_for_timeout(500)
                row["event_bytes"] = (traffic.ws_in + traffic.ws_out + traffic.sse) / per_size
                row["ws_bytes"] = (traffic.ws_in + traffic.ws_out) / per_size
                row["sse_bytes"] = traffic.sse / per_size
                row["thumb_bytes"] = traffic.thumbs / per_size
            except Exception as exc:  # a page that cannot open in 5 minutes is a result too
                row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
            finally:
                context.close()
            rows.append(row)
            print(row, flush=True)
    return rows


def latency(bench: Bench, browser: Any, files: int, bursts: int, burst_size: int) -> list[dict[str, Any]]:
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


def render(bytes_rows: list[dict[str, Any]], latency_rows: list[dict[str, Any]], machine: str) -> str:
    lines = [
        "## Live gallery",
        "",
        f"Measured by `benchmarks/live.py` on {machine}; Chromium {chromium_version()}.",
        "",
        "### Bytes on the wire per new image (event channel only; the thumbnail is fetched apart)",
        "",
        "| images in project | Fotoflo (SSE + websocket) | naive FlexBox (websocket) | ratio | "
        "Fotoflo page open | naive page open |",
        "|---|---|---|---|---|---|",
    ]
    by = {(r["n"], r["approach"]): r for r in bytes_rows}
    for n in sorted({r["n"] for r in bytes_rows}):
        f, nv = by.get((n, "fotoflo"), {}), by.get((n, "naive"), {})
        ratio = (f"{nv['event_bytes'] / f['event_bytes']:.0f}×"
                 if "event_bytes" in f and "event_bytes" in nv and f["event_bytes"] else "–")  # fmt: skip
        lines.append(f"| {n:,} | {_bytes(f)} | {_bytes(nv)} | {ratio} | {_secs(f)} | {_secs(nv)} |")
    thumbs = [r["thumb_bytes"] for r in bytes_rows if r.get("thumb_bytes")]
    if thumbs:
        lines += [
            "",
            f"Thumbnail per new image (both approaches fetch it): ~{statistics.median(thumbs) / 1024:.0f} KB.",
        ]
    lines += [
        "",
        "### File complete in the hot folder → tile in the page (100-image project, 1600×1067 JPEGs)",
        "",
        "| approach | drops | files | p50 | p95 | max |",
        "|---|---|---|---|---|---|",
    ]
    for r in latency_rows:
        lines.append(
            f"| {r['approach']} | {r['mode']} | {r['count']} | {r['p50_ms']:.0f} ms | {r['p95_ms']:.0f} ms "
            f"| {r['max_ms']:.0f} ms |"
        )
    fotoflo = {r["mode"]: r for r in latency_rows if r["approach"] == "fotoflo"}
    flat = [r["event_bytes"] for r in bytes_rows if r["approach"] == "fotoflo" and "event_bytes" in r]
    flat_ok = bool(flat) and max(flat) <= 1024 and max(flat) - min(flat) < 64
    lines += [
        "",
        "Targets (issue 3): p50 ≤ 150 ms, p95 ≤ 400 ms; ≤ 1 KB per image, flat in N.",
        f"- latency (single drops): p50 {fotoflo['single']['p50_ms']:.0f} ms, p95 {fotoflo['single']['p95_ms']:.0f} ms"
        f" → {'met' if fotoflo['single']['p50_ms'] <= 150 and fotoflo['single']['p95_ms'] <= 400 else 'NOT met'}",
        f"- bytes per image: {min(flat):.0f}–{max(flat):.0f} B → {'met' if flat_ok else 'NOT met'}"
        if flat
        else "- bytes: not measured",
    ]
    return "\n".join(lines)


def _bytes(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"did not finish ({row['error']})"
    return f"{row['event_bytes']:,.0f} B" if "event_bytes" in row else "–"


def _secs(row: dict[str, Any]) -> str:
    return f"{row['open_s']:.1f} s" if "open_s" in row else "–"


def chromium_version() -> str:
    try:
        return subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=30).stdout.split()[1]
    except Exception:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--per-size", type=int, default=5, help="new images counted per project size")
    parser.add_argument("--latency-files", type=int, default=30)
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--burst-size", type=int, default=10)
    parser.add_argument("--port", type=int, default=5099)
    parser.add_argument("--no-write", action="store_true", help="print, do not touch docs/benchmarks.md")
    args = parser.parse_args()

    import panel
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="fotoflo-live-") as tmp:
        bench = Bench(Path(tmp), args.port)
        for n in args.sizes:
            seed_project(bench.data, f"bench-{n}", n)
        seed_project(bench.data, "default", 100)
        bench.watch.mkdir(parents=True)
        bench.start_server()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                bytes_rows = bytes_per_image(bench, browser, args.sizes, args.per_size)
                # A fresh server for latency: tearing down a naive 10,000-pane session keeps the
                # old one's loop busy for a long while, which would be charged to the next drops.
                bench.stop_server()
                bench.start_server()
                latency_rows = latency(bench, browser, args.latency_files, args.bursts, args.burst_size)
                browser.close()
        finally:
            bench.stop_server()
    machine = machine_description([f"Panel {panel.__version__}"])
    section = render(bytes_rows, latency_rows, machine)
    print(section)
    if not args.no_write:
        write_section("live", section)


if __name__ == "__main__":
    main()
