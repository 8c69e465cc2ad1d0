"""Curation benchmark, in a real browser: how fast a rating and a saved collection reach another window.

    python benchmarks/curation.py            # measure, then rewrite the "curation" section of docs/benchmarks.md
    python benchmarks/curation.py --images 1000 --trials 20

Two Chromium windows (A and B) on one `fotoflo serve` in Collection mode, on a project of N images.
- Rating: A clicks a star on a tile (the page's own POST) → B's tile shows the new rating; both pages
  run in one browser, so one clock times click → visible.
- Save: A saves a selection of 3 → the collection's card is in B's list.
- Bytes: the SSE frame of one `rating.changed` and one `collection.saved` event, as sent to every window
  (read from the feed), at each N: it must not grow with the project.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import OtherLoad, machine_description, percentile, write_section

from dashboard.samples import seed_project
from tests.support.servers import serve_command, wait_healthy

CHROMIUM = os.environ.get("FOTOFLO_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ROOT = Path(__file__).resolve().parent.parent

# In B: the time each tile's rating changes, by image id and value.
WATCH_RATINGS_JS = """
(root) => {
  window.__rated = {};
  new MutationObserver((records) => {
    for (const r of records) {
      const tile = r.target.closest('[data-image-id]');
      if (!tile || r.attributeName !== 'data-value') continue;
      window.__rated[tile.dataset.imageId + ':' + r.target.dataset.value] = Date.now();
    }
  }).observe(root, { attributes: true, subtree: true, attributeFilter: ['data-value'] });
}
"""

# In A: click a tile's star the way a user does, returning the page's clock at the click.
CLICK_STAR_JS = "(tile, n) => { const t = Date.now(); tile.querySelector(`[data-star='${n}']`).click(); return t; }"

WATCH_CARDS_JS = """
(root) => {
  window.__cards = {};
  new MutationObserver(() => {
    for (const card of root.querySelectorAll('[data-collection-id]')) {
      if (!(card.dataset.collectionId in window.__cards)) window.__cards[card.dataset.collectionId] = Date.now();
    }
  }).observe(root, { childList: true, subtree: true });
}
"""


def serve(data: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(serve_command(data, port, log_level="WARNING", args=["--no-watch"]), cwd=ROOT)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, timeout_s=30)
    except RuntimeError:
        proc.kill()
        raise
    return proc


def sse_frame_bytes(api: str, kind: str) -> int:
    """Bytes of the SSE frame the server sends for the last change of `kind` (as EventsHandler writes it)."""
    last = httpx.get(f"{api}/changes?limit=1").json()["last_seq"]
    recent = httpx.get(f"{api}/changes?after={max(0, last - 100)}").json()["changes"]
    change = [c for c in recent if c["kind"] == kind][-1]
    data = change["image"] if change["image"] else change["data"]
    payload = json.dumps(data, separators=(",", ":"))
    return len(f"id: {change['seq']}\nevent: {kind}\ndata: {payload}\n\n".encode())


def measure(n_images: int, trials: int, port: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        seed_project(data, "default", n_images)
        proc = serve(data, port)
        base = f"http://127.0.0.1:{port}"
        api = f"{base}/api/projects/default"
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                pages = []
                for _ in range(2):
                    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
                    page.goto(f"{base}/?mode=collection")
                    page.wait_for_selector("[data-testid=live-indicator][data-state=live]", timeout=60_000)
                    page.wait_for_selector("[data-testid=collection-pool] [data-image-id]", timeout=60_000)
                    pages.append(page)
                a, b = pages
                b.locator("[data-testid=gallery]").evaluate(WATCH_RATINGS_JS)
                b.locator("[data-testid=gallery]").evaluate(WATCH_CARDS_JS)
                ids = a.eval_on_selector_all("[data-testid=collection-pool] [data-image-id]",
                                             "ts => ts.slice(0, 12).map(t => t.dataset.imageId)")  # fmt: skip

                rating_ms = []
                for trial in range(trials):
                    image_id, stars = ids[trial % len(ids)], 1 + trial % 5
                    clicked = a.locator(f"[data-testid=collection-pool] [data-image-id='{image_id}']").evaluate(
                        CLICK_STAR_JS, stars
                    )
                    key = f"{image_id}:{stars}"
                    deadline = time.monotonic() + 10
                    while (seen := b.evaluate("k => window.__rated[k]", key)) is None and time.monotonic() < deadline:
                        time.sleep(0.005)
                    if seen is not None:
                        rating_ms.append(seen - clicked)
                    b.evaluate("k => { delete window.__rated[k]; }", key)
                    time.sleep(0.05)

                save_ms = []
                for trial in range(max(3, trials // 4)):
                    a.locator("[data-testid=selection-clear]").click()
                    for i, image_id in enumerate(ids[:3]):
                        a.locator(f"[data-testid=collection-pool] [data-image-id='{image_id}']").click(
                            modifiers=["Control"] if i else []
                        )
                    a.locator("[data-testid=collection-name]").fill(f"Bench {trial}")
                    before = set(b.evaluate("() => Object.keys(window.__cards)"))
                    clicked = a.evaluate("() => Date.now()")
                    a.locator("[data-testid=collection-save]").click()
                    deadline = time.monotonic() + 10
                    while time.monotonic() < deadline:
                        cards = b.evaluate("() => window.__cards")
                        new = [t for cid, t in cards.items() if cid not in before]
                        if new:
                            save_ms.append(new[0] - clicked)
                            break
                        time.sleep(0.005)
                browser.close()
            return {
                "images": n_images,
                "rating_ms": rating_ms,
                "save_ms": save_ms,
                "rating_bytes": sse_frame_bytes(api, "rating.changed"),
                "saved_bytes": sse_frame_bytes(api, "collection.saved"),
            }
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def render(rows: list[dict[str, Any]], machine: str) -> str:
    lines = [
        "## Curation: ratings and collections between two windows",
        "",
        "`benchmarks/curation.py`: two Chromium windows in Collection mode on one `fotoflo serve`. A clicks a",
        "star on a tile → B's tile shows it; A saves a selection of 3 → B lists the card. Timed by the pages'",
        "shared clock (one browser). SSE bytes are the frame every open window receives for one event.",
        "",
        machine,
        "",
        "| Images in project | Rating A → B p50 | p95 | Save A → card in B p50 | p95 "
        "| SSE bytes per rating | per saved collection |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]  # fmt: skip
    for row in rows:
        r, s = row["rating_ms"], row["save_ms"]
        lines.append(
            f"| {row['images']:,} | {statistics.median(r):.0f} ms | {percentile(r, 95):.0f} ms "
            f"| {statistics.median(s):.0f} ms | {percentile(s, 95):.0f} ms "
            f"| {row['rating_bytes']} B | {row['saved_bytes']} B |"
        )
    lines.append("")
    lines.append(f"Trials: {len(rows[0]['rating_ms'])} ratings and {len(rows[0]['save_ms'])} saves per size.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--port", type=int, default=5391)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    with OtherLoad() as load:
        rows = [measure(n, args.trials, args.port) for n in args.images]
    # The server and Chromium are this benchmark's own but not reaped children: they count here.
    busy = f"{load.others_cores:.2f} cores busy outside this script on average (its server and Chromium included)"
    section = render(rows, machine_description([busy]))
    print(section)
    if not args.no_write:
        write_section("curation", section)


if __name__ == "__main__":
    main()
