"""The Python side of the gallery: params, the browser component it renders, notebook mode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import panel as pn
import pytest

from dashboard import embedded
from dashboard.gallery import Gallery, LiveGallery
from tests.conftest import jpeg_bytes


@pytest.fixture
def stop_background() -> Iterator[None]:
    yield
    embedded.stop_all()


def test_gallery_renders_the_keyed_component_with_its_settings():
    gallery = Gallery(project="shoot-42", mode="wall", api_url="http://127.0.0.1:9")
    view = gallery.__panel__()
    assert isinstance(view, LiveGallery)
    assert (view.project, view.mode, view.api_base) == ("shoot-42", "wall", "http://127.0.0.1:9")
    model = pn.panel(gallery).get_root()
    assert model.data.project == "shoot-42" and model.data.mode == "wall"


def test_live_and_selected_follow_the_browser_state():
    gallery = Gallery(api_url="http://127.0.0.1:9")
    assert gallery.live is False
    gallery.__panel__().state = "live"
    assert gallery.live is True
    gallery.__panel__().state = "offline"
    assert gallery.live is False
    gallery.__panel__().selected = "abc"
    assert gallery.selected == "abc"


def test_gallery_of_a_data_directory_serves_its_api_and_ingests(tmp_path: Path, stop_background):
    gallery = Gallery(data=tmp_path / "studio", project="nb")
    assert gallery.api_url.startswith("http://127.0.0.1:")
    assert gallery.__panel__().api_base == gallery.api_url
    photo = tmp_path / "cell.jpg"
    photo.write_bytes(jpeg_bytes(seed=3))

    result = gallery.ingest(photo)

    assert result.created
    page = httpx.get(f"{gallery.api_url}/api/projects/nb/images").json()
    assert [i["id"] for i in page["images"]] == [result.image.id]
    # A notebook page comes from the Jupyter server: the API must allow reading it cross-origin.
    response = httpx.get(f"{gallery.api_url}/api/projects/nb/images", headers={"Origin": "http://localhost:8888"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    # The stream sends Last-Event-ID, so the browser asks first (a CORS preflight).
    preflight = httpx.options(
        f"{gallery.api_url}/api/projects/nb/events",
        headers={"Origin": "http://localhost:8888", "Access-Control-Request-Headers": "last-event-id"},
    )
    assert preflight.status_code == 204
    assert "Last-Event-ID" in preflight.headers["Access-Control-Allow-Headers"]
    second = Gallery(data=tmp_path / "studio", project="nb")
    assert second.api_url == gallery.api_url, "one server per data directory"
