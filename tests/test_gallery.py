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
    token = gallery.__panel__().api_token
    assert len(token) >= 40, "a per-process random token travels with the component"
    auth = {"Authorization": f"Bearer {token}"}
    page = httpx.get(f"{gallery.api_url}/api/projects/nb/images", headers=auth).json()
    assert [i["id"] for i in page["images"]] == [result.image.id]
    # Anyone else on this machine (another user, any website's page) is refused.
    refused = httpx.get(f"{gallery.api_url}/api/projects/nb/images")
    assert (refused.status_code, refused.json()["error"]["code"]) == (401, "unauthenticated")
    wrong = httpx.delete(
        f"{gallery.api_url}/api/projects/nb/images/{result.image.id}", headers={"Authorization": "Bearer x"}
    )
    assert wrong.status_code == 401
    # A notebook page comes from the Jupyter server: CORS for its origin only once the page said it.
    notebook = {"Origin": "http://localhost:8888"}
    before = httpx.get(f"{gallery.api_url}/api/projects/nb/images", headers={**auth, **notebook})
    assert "Access-Control-Allow-Origin" not in before.headers
    gallery.__panel__().page_origin = "http://localhost:8888"
    assert gallery.__panel__().allowed_origin == "http://localhost:8888"
    response = httpx.get(f"{gallery.api_url}/api/projects/nb/images", headers={**auth, **notebook})
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:8888"
    assert response.headers["Vary"] == "Origin"
    # The stream sends Last-Event-ID and the token, so the browser asks first (a CORS preflight).
    preflight = httpx.options(
        f"{gallery.api_url}/api/projects/nb/events",
        headers={**notebook, "Access-Control-Request-Headers": "authorization,last-event-id"},
    )
    assert preflight.status_code == 204
    assert "Last-Event-ID" in preflight.headers["Access-Control-Allow-Headers"]
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    other = httpx.options(
        f"{gallery.api_url}/api/projects/nb/events",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Headers": "authorization"},
    )
    assert other.status_code == 405 and "Access-Control-Allow-Origin" not in other.headers
    # Its Host check: a rebinding name reaches nothing, even with the token.
    rebound = httpx.get(f"{gallery.api_url}/api/projects/nb/images", headers={**auth, "Host": "rebind.example"})
    assert (rebound.status_code, rebound.json()["error"]["code"]) == (421, "bad_host")
    # Signed file URLs stay usable by <img>, without the token.
    assert httpx.get(gallery.api_url + page["images"][0]["thumbnail_url"]).status_code == 200
    second = Gallery(data=tmp_path / "studio", project="nb")
    assert second.api_url == gallery.api_url, "one server per data directory"
