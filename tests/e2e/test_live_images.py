"""A `panel serve` app bound to `LiveImages` updates in the browser as images arrive, in every session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import photo_jpeg
from tests.e2e.helpers import drop_file
from tests.support.servers import panel_app

# The tiny app of docs/live.md: a count bound with `pn.bind`; the second line says whether the bound
# function ran on its own session's turn (Panel's current document is the session's), as promised.
APP = """
import panel as pn

from dashboard.live import live_images
from dashboard.plugin import app

live = live_images(app)
doc = pn.state.curdoc

pn.Column(
    pn.bind(lambda n: f"{n} images", live.param.count),
    pn.bind(lambda n: f"update {n} in its session: {pn.state.curdoc is doc}", live.param.count),
).servable()
"""


@pytest.fixture
def live_app(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with panel_app(tmp_path, "live_count", APP) as (url, watch):
        yield f"{url}/live_count", watch


def shows(page: Any, text: str) -> None:
    page.get_by_text(text, exact=True).wait_for(timeout=15_000)


def test_a_count_bound_with_pn_bind_updates_in_every_browser_session(live_app, browser):
    url, watch = live_app
    contexts = [browser.new_context() for _ in range(3)]
    try:
        first, second, third = (context.new_page() for context in contexts)
        for page in (first, second, third):
            page.goto(url)
            shows(page, "0 images")

        drop_file(watch, "one.jpg", photo_jpeg(1, (600, 400)))

        for page in (first, second, third):
            shows(page, "1 images")
            shows(page, "update 1 in its session: True")

        # A closed session leaves the others updating.
        contexts.pop(0).close()
        drop_file(watch, "two.jpg", photo_jpeg(2, (600, 400)))
        for page in (second, third):
            shows(page, "2 images")
            shows(page, "update 2 in its session: True")
    finally:
        for context in contexts:
            context.close()
