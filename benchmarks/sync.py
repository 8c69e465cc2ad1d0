"""Sync benchmark: files/s and MB/s through the sync client, and drop on the client → tile in a browser.

    python benchmarks/sync.py                 # measure, then rewrite the "sync" section of docs/benchmarks.md
    python benchmarks/sync.py --no-write      # print the section instead
    python benchmarks/sync.py --count 20 --latency-files 10   # a quick look

One real `fotoflo serve` on loopback (no hot folder) and the real `SyncClient` in this process:
- Throughput: a folder of `--count` photo-like JPEGs (`dashboard.samples.photo_jpeg` at `--size`) synced
  from scratch (scan, hash, ask, upload, ingest on the server) until the queue is empty,
  at each `--workers` setting; files/s and MB/s, median of `--repeat` runs, each into a fresh project.
- Latency: the gallery of a project open in Chromium; files are dropped into the watched sync folder one
  at a time as a tethering app does (written under a temp name, renamed) and each rename is timed to the
  tile appearing in the page (one machine, one clock); p50 and p95 over `--latency-files` files.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (
    SEEN_JS,
    OtherLoad,
    Server,
    free_port,
    machine_description,
    percentile,
    write_section,
)

from dashboard.samples import photo_jpeg
from dashboard.store.sqlite import SQLiteStore
from dashboard.sync import SyncClient
from tests.support.browser import launch_chromium


def ensure_project(server: Server, name: str) -> str:
    """Make project `name` on `server`; returns `name`."""
    store = SQLiteStore(server.data / "fotoflo.sqlite")  # beside the server: SQLite's locks make it safe
    try:
        store.ensure_project(name)
    finally:
        store.close()
    return name


def corpus(count: int, size: tuple[int, int], first_seed: int = 0) -> list[tuple[str, bytes]]:
    return [(f"IMG_{n:04d}.JPG", photo_jpeg(n, size)) for n in range(first_seed, first_seed + count)]


def throughput(server: Server, work: Path, photos: list[tuple[str, bytes]], workers: int, run: int) -> dict[str, Any]:
    folder = work / f"tp-{workers}-{run}"
    folder.mkdir()
    for name, data in photos:
        (folder / name).write_bytes(data)
    project = ensure_project(server, f"throughput-{workers}-{run}")
    client = SyncClient(folder, server.url, project, state_dir=work / f"state-{workers}-{run}", workers=workers)
    try:
        with OtherLoad() as load:
            start = time.perf_counter()
            client.start(watch=False)
            client.scan()
            assert client.wait_idle(timeout_s=1800), client.status()
            elapsed = time.perf_counter() - start
    finally:
        client.close()
    total = httpx.get(f"{server.url}/api/projects/{project}/images?limit=1").json()["total"]
    assert total == len(photos), (total, len(photos))
    size = sum(len(d) for _, d in photos)
    return {"workers": workers, "s": elapsed, "files_s": len(photos) / elapsed, "mb_s": size / 1e6 / elapsed,
            "others": load.others_cores}  # fmt: skip


def latency(server: Server, work: Path, photos: list[tuple[str, bytes]], warmup: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    folder = work / "drop"
    folder.mkdir()
    project = ensure_project(server, "latency")
    client = SyncClient(folder, server.url, project, state_dir=work / "state-latency")
    out: list[float] = []
    try:
        client.start()
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.goto(f"{server.url}/?project={project}")
            page.wait_for_selector("[data-testid=live-indicator][data-state=live]", timeout=60_000)
            page.evaluate(SEEN_JS)
            for n, (name, data) in enumerate(photos):
                temp = folder / f".{name}.part"
                temp.write_bytes(data)
                os.replace(temp, folder / name)
                dropped = time.time() * 1000
                page.wait_for_function("name => name in window.__seen", arg=name, timeout=60_000, polling=10)
                if n >= warmup:
                    out.append(page.evaluate("name => window.__seen[name]", name) - dropped)
                page.wait_for_timeout(200)
            browser.close()
    finally:
        client.close()
    return out


def render(rows: list[dict[str, Any]], lat: list[float], args: argparse.Namespace, mean_mb: float) -> str:
    lines = [
        "## Sync client",
        "",
        f"Measured by `benchmarks/sync.py` on {machine_description()}; client and server on one machine,"
        " over loopback.",
        "",
        f"### Throughput: {args.count} photos of {args.size[0]}×{args.size[1]} ({mean_mb:.1f} MB each on"
        f" average), synced from scratch; median of {args.repeat} run(s)",
        "",
        "| uploads at once | time | files/s | MB/s | other processes |",
        "|---|---|---|---|---|",
    ]
    for workers in args.workers:
        runs = [r for r in rows if r["workers"] == workers]
        med = sorted(runs, key=lambda r: r["s"])[len(runs) // 2]
        lines.append(
            f"| {workers} | {med['s']:.1f} s | {med['files_s']:.1f} | {med['mb_s']:.1f} | "
            f"{statistics.mean(r['others'] for r in runs):.1f} cores |"
        )
    lines += [
        "",
        "Each file is hashed, looked up by SHA-256, streamed and ingested (decode, preview and thumbnail,"
        " fsynced blobs, one transaction) on the same cores, so the server's ingest sets the pace.",
        "",
        f"### Drop on the client → tile in a browser on the server ({len(lat)} files, one at a time)",
        "",
        "| files | p50 | p95 | max |",
        "|---|---|---|---|",
        f"| {len(lat)} | {percentile(lat, 50):.0f} ms | {percentile(lat, 95):.0f} ms | {max(lat):.0f} ms |"
        if lat
        else "| 0 | – | – | – |",
        "",
        "From the rename into the watched folder to the tile in Chromium: the watcher's close-write debounce,"
        " hashing, the SHA-256 lookup, the upload and ingest, the SSE event and the page's frame.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=60, help="photos for the throughput runs (default 60)")
    parser.add_argument("--size", type=int, nargs=2, default=(3000, 2000), help="photo size (default 3000 2000)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="uploads at once to compare")
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs per setting (default 3)")
    parser.add_argument("--latency-files", type=int, default=30, help="files for the latency run (default 30)")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing it")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fotoflo-bench-sync-") as tmp:
        work = Path(tmp)
        print("making the corpus…", flush=True)
        photos = corpus(args.count, tuple(args.size))
        drops = corpus(args.latency_files + 2, tuple(args.size), first_seed=50_000)
        server = Server(work, free_port())  # no hot folder: the sync client is the way in
        try:
            server.start()
            rows = []
            for run in range(args.repeat):
                for workers in args.workers:
                    rows.append(throughput(server, work, photos, workers, run))
                    print(rows[-1], flush=True)
            lat = latency(server, work, drops, warmup=2) if args.latency_files else []
            print({"p50_ms": percentile(lat, 50), "p95_ms": percentile(lat, 95)}, flush=True)
        finally:
            server.stop()
    section = render(rows, lat, args, statistics.mean(len(d) for _, d in photos) / 1e6)
    if args.no_write:
        print(section)
    else:
        write_section("sync", section)
        print("wrote the sync section of docs/benchmarks.md")


if __name__ == "__main__":
    main()
