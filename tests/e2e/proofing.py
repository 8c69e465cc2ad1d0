"""What the proofing tests share: a server with sign-in and an owner named "Studio", and what a tile and the
lightbox show of hearts and comments. (The photographer's window: `open_page(server.url + "/login", token=…)`.)"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from dashboard.auth import Role, SQLiteAuthStore
from dashboard.samples import photo_jpeg
from tests.support.servers import Server, ServerFactory

COMMENTS = "[data-testid=lightbox] [data-testid=comments]"


@contextmanager
def studio_server(
    server_factory: ServerFactory, tmp_path: Path, images: int, extra_args: Sequence[str] = ()
) -> Iterator[tuple[Server, str, httpx.Client]]:
    """A server with sign-in and `images` photos, its owner token (named "Studio") and an API client with it."""
    store = SQLiteAuthStore(tmp_path / "data" / "auth.sqlite")
    token = store.create_token(name="Studio", role=Role.OWNER)[1]
    store.close()
    server = server_factory(extra_args=("--auth", "--no-watch", *extra_args))
    with httpx.Client(timeout=15, headers={"Authorization": f"Bearer {token}"}) as api:
        for seed in range(images):
            sent = api.post(server.api("/upload"), files={"file": (f"p{seed}.jpg", photo_jpeg(seed))})
            assert sent.status_code == 201, sent.text
        yield server, token, api


def tile(page: Any, image_id: str, inner: str = "") -> Any:
    return page.locator(f".ff-grid [data-image-id='{image_id}'] {inner}".strip())


def heart_count(page: Any, image_id: str) -> str:
    return str(tile(page, image_id, "[data-testid=heart-count]").inner_text())


def comment_badge(page: Any, image_id: str) -> str:
    """The comment count a tile shows ("" when it shows none)."""
    found = tile(page, image_id, "[data-testid=comment-count]")
    return str(found.get_attribute("data-count")) if found.count() else ""


def thread(page: Any) -> list[tuple[str, str, bool, bool]]:
    """The lightbox's comments in order: (author, text, is a reply, resolved)."""
    rows = page.eval_on_selector_all(
        f"{COMMENTS} [data-testid=comment]",
        """cs => cs.map(c => [c.querySelector('[data-testid=comment-author]').textContent,
            c.querySelector('[data-testid=comment-body]').textContent, Boolean(c.closest('.ff-replies')),
            c.dataset.resolved === 'true'])""",
    )
    return [tuple(row) for row in rows]
