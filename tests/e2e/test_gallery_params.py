"""A `panel serve` app's `Gallery`: the page's filters and mode are its params, both ways, per session.

A filter picked in the page is seen by Python (a `pn.bind` on `gallery.param.min_rating` shows it in the
page); one set by Python (a button's callback) changes the page's selects and lists its grid again; the
mode switches to the wall and back. `gallery.live` is the project's shared model.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import photo_jpeg
from tests.e2e.helpers import badge_state, drop_file, tile_ids
from tests.support.servers import panel_app
from tests.support.waiting import wait_until

APP = """
import panel as pn

from dashboard.gallery import Gallery
from dashboard.plugin import app

gallery = Gallery(app=app, project=app.settings.project, height=600)


def show_filters(min_rating, flag, label):
    return f"filters: {min_rating} {flag} {label}"


def picks(_):
    gallery.param.update(min_rating=None, flag="pick")


buttons = {"Picks": picks, "Wall": lambda _: setattr(gallery, "mode", "wall"),
           "Single": lambda _: setattr(gallery, "mode", "grid")}
row = pn.Row()
for name, callback in buttons.items():
    button = pn.widgets.Button(name=name)
    button.on_click(callback)
    row.append(button)

pn.Column(
    pn.bind(show_filters, gallery.param.min_rating, gallery.param.flag, gallery.param.label),
    pn.bind(lambda n: f"{n} images in the project", gallery.live.param.count),
    row,
    gallery,
).servable()
"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with panel_app(tmp_path, "bound", APP) as (url, watch):
        yield url, watch


def shows(page: Any, text: str) -> None:
    page.get_by_text(text, exact=True).wait_for(timeout=15_000)


def select(page: Any, name: str) -> Any:
    return page.locator(f"[data-testid=filter-{name}]")


def seed(url: str, watch: Path) -> list[str]:
    """Three images, newest first: rated 4 unflagged, rated 1 picked, rated 3 picked."""
    api = f"{url}/api/projects/studio"
    for seed_ in range(3):
        drop_file(watch, f"img{seed_}.jpg", photo_jpeg(60 + seed_, (480, 320)))
    wait_until(lambda: httpx.get(f"{api}/images").json()["total"] == 3, timeout_s=20)
    ids = [image["id"] for image in httpx.get(f"{api}/images").json()["images"]]
    marks_of = ({"rating": 4}, {"rating": 1, "flag": "pick"}, {"rating": 3, "flag": "pick"})
    for image_id, marks in zip(ids, marks_of, strict=True):
        assert httpx.post(f"{api}/images/{image_id}/rating", json=marks).status_code == 200
    return ids


def test_filters_flow_both_ways_between_the_page_and_python(served, open_page):
    url, watch = served
    newest, rated_1_pick, rated_3_pick = seed(url, watch)
    page = open_page(f"{url}/bound")
    shows(page, "filters: None None None")
    shows(page, "3 images in the project")  # gallery.live, the project's shared model
    wait_until(lambda: tile_ids(page) == [newest, rated_1_pick, rated_3_pick])

    # Picked in the page: Python sees it, the grid lists what passes.
    select(page, "rating").select_option("3")
    shows(page, "filters: 3 None None")
    wait_until(lambda: tile_ids(page) == [newest, rated_3_pick])
    select(page, "flag").select_option("pick")
    shows(page, "filters: 3 pick None")
    wait_until(lambda: tile_ids(page) == [rated_3_pick])

    # Set in Python (a button's callback in this session): the selects show it, the grid lists again.
    page.get_by_role("button", name="Picks").click()
    shows(page, "filters: None pick None")
    wait_until(lambda: select(page, "rating").input_value() == "" and select(page, "flag").input_value() == "pick")
    wait_until(lambda: tile_ids(page) == [rated_1_pick, rated_3_pick])
    assert page.locator("[data-testid=image-count]").inner_text() == "2 images (filtered)"

    # The filters are this session's: another browser's page opens with none.
    other = open_page(f"{url}/bound")
    shows(other, "filters: None None None")
    wait_until(lambda: tile_ids(other) == [newest, rated_1_pick, rated_3_pick])
    assert select(other, "flag").input_value() == ""
    assert not page.console.errors and not other.console.errors


def test_python_switches_the_page_to_the_wall_and_back(served, open_page):
    url, watch = served
    newest, rated_1_pick, rated_3_pick = seed(url, watch)
    page = open_page(f"{url}/bound")
    wait_until(lambda: len(tile_ids(page)) == 3)
    select(page, "flag").select_option("pick")
    wait_until(lambda: tile_ids(page) == [rated_1_pick, rated_3_pick])

    page.get_by_role("button", name="Wall").click()
    # A wall now, not a grid labelled as one: its stage shows the newest image (the wall shows every
    # image, whatever the filters), its header has no filters.
    root = page.locator("[data-testid=gallery]")
    wait_until(lambda: "ff-mode-wall" in (root.get_attribute("class") or ""))
    stage = page.locator(".ff-wall-main")
    wait_until(lambda: stage.get_attribute("data-image-id") == newest and bool(stage.get_attribute("src")))
    assert select(page, "flag").count() == 0 and page.locator("[data-testid=mode]").count() == 0
    wait_until(lambda: badge_state(page) == "live")

    page.get_by_role("button", name="Single").click()
    wait_until(lambda: page.locator("[data-testid=mode]").get_attribute("data-value") == "grid")
    # Back to the grid with the session's filter, which the wall kept.
    wait_until(lambda: tile_ids(page) == [rated_1_pick, rated_3_pick])
    assert select(page, "flag").input_value() == "pick"
    drop_file(watch, "late.jpg", photo_jpeg(70, (480, 320)))
    shows(page, "4 images in the project")
    assert tile_ids(page) == [rated_1_pick, rated_3_pick], "a new unflagged image stays out of the filter"
    assert not page.console.errors
