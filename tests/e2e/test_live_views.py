"""The studio page (`dashboard_page`: the gallery beside the live dashboard) updates in the browser on ingest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import photo_jpeg, screenshot
from tests.e2e.helpers import drop_file, tile_ids
from tests.support.servers import panel_app
from tests.support.waiting import wait_until

APP = """
from dashboard.plugin import app
from dashboard.studio import dashboard_page

dashboard_page(app).servable(title="Studio")
"""


@pytest.fixture
def studio_app(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with panel_app(tmp_path, "studio", APP) as (url, watch):
        yield f"{url}/studio", watch


def shown_count(page: Any) -> str:
    """The number the count indicator shows (its text is the label, then the number)."""
    words = page.locator(".ff-studio-count").evaluate("e => (e.shadowRoot || e).textContent").split()
    return words[-1] if words else ""


def table_files(page: Any) -> list[str]:
    cells = page.locator(".ff-studio-table .tabulator-row .tabulator-cell[tabulator-field=file]")
    return cells.all_inner_texts()


def test_the_studio_page_counts_and_lists_each_new_image(studio_app, open_page):
    url, watch = studio_app
    page = open_page(url, width=1600, height=1000)
    wait_until(lambda: shown_count(page) == "0", timeout_s=15)
    assert table_files(page) == []

    drop_file(watch, "one.jpg", photo_jpeg(1, (600, 400)))
    wait_until(lambda: shown_count(page) == "1", timeout_s=15)
    wait_until(lambda: table_files(page) == ["one.jpg"], timeout_s=15)

    drop_file(watch, "two.jpg", photo_jpeg(2, (600, 400)))
    wait_until(lambda: shown_count(page) == "2", timeout_s=15)
    wait_until(lambda: table_files(page) == ["one.jpg", "two.jpg"], timeout_s=15)
    wait_until(lambda: len(tile_ids(page)) == 2, timeout_s=15)  # the gallery beside it is live too
    assert not page.console.errors, page.console.errors
    screenshot(page, "studio-dashboard")


def test_fotoflo_serve_shows_the_studio_page_at_mode_dashboard(server, open_page):
    page = open_page(f"{server.url}/?mode=dashboard", width=1600, height=1000)
    wait_until(lambda: shown_count(page) == "0", timeout_s=20)
    drop_file(server.watch, "one.jpg", photo_jpeg(3, (600, 400)))
    wait_until(lambda: shown_count(page) == "1", timeout_s=15)
    wait_until(lambda: table_files(page) == ["one.jpg"], timeout_s=15)
    wait_until(lambda: len(tile_ids(page)) == 1, timeout_s=15)
    assert not page.console.errors, page.console.errors
