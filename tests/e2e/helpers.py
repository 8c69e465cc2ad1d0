"""What a test reads off a gallery page: tile ids in order, DOM identity marks, badge state."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

Page = Any  # playwright.sync_api.Page

WATCH_JS = """
(root) => {
  // Record every tile node ever removed and the smallest tile count seen from now on.
  const count = () => root.querySelectorAll('.ff-grid [data-image-id]').length;
  window.__ff = { min: count(), removed: [] };
  new MutationObserver((records) => {
    for (const r of records) {
      for (const n of r.removedNodes) if (n.dataset && n.dataset.imageId) window.__ff.removed.push(n.dataset.imageId);
    }
    window.__ff.min = Math.min(window.__ff.min, count());
  }).observe(root, { childList: true, subtree: true });
  window.__ffNoReload = 'same-document';
}
"""


def gallery(page: Page) -> Any:
    return page.locator("[data-testid=gallery]")


def tile_ids(page: Page) -> list[str]:
    return gallery(page).evaluate(
        "root => Array.from(root.querySelectorAll('.ff-grid [data-image-id]')).map(e => e.dataset.imageId)"
    )


def badge_state(page: Page) -> str:
    return page.locator("[data-testid=live-indicator]").get_attribute("data-state")


def watch_dom(page: Page) -> None:
    """Start recording removed tiles and the minimum tile count; mark the document."""
    gallery(page).evaluate(WATCH_JS)


def dom_report(page: Page) -> dict[str, Any]:
    return page.evaluate("() => ({ ...window.__ff, sameDocument: window.__ffNoReload === 'same-document' })")


def mark_tiles(page: Page, tag: str) -> int:
    """Stamp every current tile node; `marked_survivors` later tells which nodes are the same objects."""
    return gallery(page).evaluate(
        "(root, tag) => { const t = root.querySelectorAll('.ff-grid [data-image-id]');"
        " t.forEach(e => { e.__ffTag = tag; }); return t.length; }",
        tag,
    )


def marked_survivors(page: Page, tag: str) -> int:
    return gallery(page).evaluate(
        "(root, tag) => Array.from(root.querySelectorAll('.ff-grid [data-image-id]'))"
        ".filter(e => e.__ffTag === tag).length",
        tag,
    )


def drop_file(folder: Path, name: str, data: bytes) -> Path:
    """Save a file into a hot folder the way a tethering app does: write a temp name, then rename."""
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f".{name}.part"
    temp.write_bytes(data)
    target = folder / name
    os.replace(temp, target)
    return target


def copy_in(folder: Path, source: Path) -> Path:
    target = folder / source.name
    shutil.copyfile(source, target)
    return target
