"""The Python side of Collection mode: the selection follows the browser, saving goes through the curator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import panel as pn
import pytest

from dashboard import embedded
from dashboard.collections import Collections
from dashboard.gallery import LiveGallery
from tests.support.images import jpeg_bytes


@pytest.fixture
def stop_background() -> Iterator[None]:
    yield
    embedded.stop_all()


def test_collection_mode_renders_the_gallery_component_with_curation_loaded():
    view = Collections(project="wedding", api_url="http://127.0.0.1:9")
    component = view.__panel__()
    assert isinstance(component, LiveGallery) and component.mode == "collection"
    assert "class CollectionsPanel" in LiveGallery._esm and "class LiveGallery" in LiveGallery._esm
    assert pn.panel(view).get_root().data.mode == "collection"


def test_selection_mode_and_open_collection_follow_the_browser_both_ways():
    view = Collections(api_url="http://127.0.0.1:9")
    component = view.__panel__()
    component.selection = ["b", "a"]
    component.collection = "c1"
    component.mode = "grid"  # the user clicked "Single"
    assert (view.selection, view.collection, view.mode) == (["b", "a"], "c1", "grid")
    view.mode = "collection"  # a notebook switches the page back
    assert component.mode == "collection"


def test_save_keeps_the_browser_selection_as_a_collection(tmp_path: Path, stop_background):
    view = Collections(data=tmp_path / "studio", project="nb")
    images = []
    for seed in range(3):
        photo = tmp_path / f"p{seed}.jpg"
        photo.write_bytes(jpeg_bytes(seed=seed))
        images.append(view.ingest(photo).image.id)
    view.__panel__().selection = [images[2], images[0]]

    saved = view.save("Selects")

    assert (saved.name, saved.image_ids) == ("Selects", (images[2], images[0]))
    assert [c.id for c in view.saved()] == [saved.id]
    auth = {"Authorization": f"Bearer {view.__panel__().api_token}"}  # the kernel's server answers its galleries only
    listed = httpx.get(f"{view.api_url}/api/projects/nb/collections", headers=auth).json()["collections"]
    assert [(c["name"], c["count"]) for c in listed] == [("Selects", 2)]
    again = view.save("Selects", [images[1]])
    assert again.name != "Selects" and again.name.startswith("Selects"), "same names are kept distinct"


def test_a_view_of_a_server_saves_and_lists_there(server, tmp_path: Path):
    # No Fotoflo runs in this process: the view must reach the server of its `api_url`, not a local one.
    uploaded = [
        httpx.post(server.api("/upload"), files={"file": (f"p{seed}.jpg", jpeg_bytes(seed=seed), "image/jpeg")})
        for seed in range(2)
    ]
    ids = [response.json()["images"][0]["id"] for response in uploaded]
    view = Collections(api_url=server.url, project=server.project)
    view.__panel__().selection = [ids[1], ids[0]]

    saved = view.save("Remote picks")

    assert (saved.name, saved.image_ids, saved.project) == ("Remote picks", (ids[1], ids[0]), server.project)
    listed = httpx.get(server.api("/collections")).json()["collections"]
    assert [(c["id"], c["name"], c["count"]) for c in listed] == [(saved.id, "Remote picks", 2)]
    assert view.saved() == [saved]
