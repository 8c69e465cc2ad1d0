"""The Python side of the gallery: params, the browser component it renders, notebook mode."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import panel as pn
import pytest

import dashboard
from dashboard import embedded
from dashboard.app import App
from dashboard.collections import Collections
from dashboard.config import Settings
from dashboard.gallery import (
    ASSETS,
    PAGE_HEARTBEAT_S,
    PAGE_SIZE,
    WALL_STRIP,
    Gallery,
    LiveGallery,
    esm_bundle,
    page_heartbeat_s,
)
from dashboard.live import close_all, live_images, live_remote, registry
from tests.support.api import checked_client, upload
from tests.support.images import jpeg_bytes
from tests.support.servers import Server


@pytest.fixture
def stop_background() -> Iterator[None]:
    yield
    close_all()  # the live models first: they follow the background servers' hubs
    embedded.stop_all()


def test_gallery_renders_the_keyed_component_with_its_settings():
    gallery = Gallery(project="shoot-42", mode="wall", api_url="http://127.0.0.1:9")
    view = gallery.__panel__()
    assert isinstance(view, LiveGallery)
    assert (view.project, view.mode, view.api_base) == ("shoot-42", "wall", "http://127.0.0.1:9")
    model = pn.panel(gallery).get_root()
    assert model.data.project == "shoot-42" and model.data.mode == "wall"


def test_connected_and_selected_follow_the_browser_state():
    gallery = Gallery(api_url="http://127.0.0.1:9")
    assert gallery.connected is False
    gallery.__panel__().state = "live"
    assert gallery.connected is True
    gallery.__panel__().state = "offline"
    assert gallery.connected is False
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


def test_a_view_acts_on_the_app_it_was_given_never_on_another_in_the_process(tmp_path: Path):
    first, second = (App(Settings(data=tmp_path / name, watch=None)) for name in ("first", "second"))
    try:
        for app in (first, second):
            app.start()
        photo = tmp_path / "cell.jpg"
        photo.write_bytes(jpeg_bytes(seed=5))
        # Two apps in one process (two studios, a test): each view saves into the one it was given.
        saved = Collections(app=first, project="default").save("Picks", [Gallery(app=first).ingest(photo).image.id])
        assert [c.id for c in first.store.list_collections("default")] == [saved.id]
        assert second.store.list_collections("default") == [] and second.store.count_images("default") == 0
        # A view of a server elsewhere has no app here: it says so rather than pick one.
        with pytest.raises(RuntimeError, match="runs elsewhere"):
            Gallery(api_url="http://127.0.0.1:9").ingest(photo)
    finally:
        for app in (first, second):
            app.stop()


def test_params_set_after_construction_reach_the_browser_component():
    gallery = Gallery(project="a", api_url="http://127.0.0.1:9")
    model = pn.panel(gallery).get_root()
    view = gallery.__panel__()

    gallery.param.update(project="b", api_url="http://127.0.0.1:10", height=300)

    assert (view.project, view.api_base, view.height, view.sizing_mode) == (
        "b",
        "http://127.0.0.1:10",
        300,
        "stretch_width",
    )
    assert (model.data.project, model.data.api_base) == ("b", "http://127.0.0.1:10")
    gallery.height = None
    assert (view.height, view.sizing_mode) == (None, "stretch_both")


def test_the_page_filters_are_params_both_ways():
    gallery = Gallery(api_url="http://127.0.0.1:9", min_rating=2)
    model = pn.panel(gallery).get_root()
    view = gallery.__panel__()
    assert (view.min_rating, model.data.min_rating) == (2, 2), "a filter given at construction opens the page with it"

    gallery.param.update(flag="pick", label="red")  # set in Python: the page shows it and lists again
    assert (view.flag, view.label) == ("pick", "red")
    assert (model.data.flag, model.data.label) == ("pick", "red")

    model.data.min_rating = 4  # picked in the page's select
    model.data.flag = None  # "Any flag"
    assert (gallery.min_rating, gallery.flag, gallery.label) == (4, None, "red")
    assert view.min_rating == 4

    with pytest.raises(ValueError):
        gallery.flag = "maybe"


def test_collections_filters_follow_the_page_too():
    view = Collections(api_url="http://127.0.0.1:9")
    model = pn.panel(view).get_root()
    model.data.label = "green"
    assert view.label == "green"
    view.min_rating = 5
    assert model.data.min_rating == 5


def test_the_mode_switches_to_and_from_the_wall_with_the_walls_page_size():
    gallery = Gallery(api_url="http://127.0.0.1:9")
    model = pn.panel(gallery).get_root()
    view = gallery.__panel__()

    gallery.mode = "wall"  # the page starts again as a wall (main.js), asking for what the wall shows
    assert (view.mode, view.page_size) == ("wall", WALL_STRIP + 1)
    assert (model.data.mode, model.data.page_size) == ("wall", WALL_STRIP + 1)

    gallery.mode = "collection"
    assert (model.data.mode, model.data.page_size) == ("collection", PAGE_SIZE)


def test_gallery_live_is_the_projects_shared_model_and_the_filters_stay_the_gallerys(tmp_path: Path, stop_background):
    gallery = Gallery(data=tmp_path / "studio", project="nb")
    assert registry.every() == [], "no feed is followed until someone reads `live`"

    live = gallery.live

    app = gallery.local_app()
    assert live is not None and live is live_images(app, "nb") is dashboard.open(tmp_path / "studio", "nb").live()
    assert gallery.live is live and Gallery(data=tmp_path / "studio", project="nb").live is live
    photo = tmp_path / "cell.jpg"
    photo.write_bytes(jpeg_bytes(seed=4))
    image = gallery.ingest(photo).image
    assert live.wait_for(lambda m: m.count == 1)
    assert live.latest == image
    # One session's filter is its gallery's, never the shared model's that every session sees.
    gallery.param.update(min_rating=3, flag="pick")
    assert (live.min_rating, live.flag) == (None, None) and live.filtered == [image]
    # Another project: `live` is that project's model.
    app.store.ensure_project("other")
    gallery.project = "other"
    assert gallery.live is live_images(app, "other") and gallery.live is not live
    # Closed (by anyone: `close()` ends the model for all its users), the next read makes it anew.
    other = gallery.live
    other.close()
    assert gallery.live is not other and not gallery.live.closed and gallery.live.wait_for(lambda m: m.count == 0)
    # Given, it is the one given; a gallery with no connection in Python has none.
    assert Gallery(api_url="http://127.0.0.1:9", live=live).live is live
    assert Gallery().live is None
    with pytest.raises(TypeError):
        Gallery(live="nb")


def test_gallery_live_of_a_server_follows_its_stream(server: Server, tmp_path: Path):
    gallery = Gallery(api_url=server.url, project=server.project)
    try:
        live = gallery.live
        assert live is live_remote(server.url, server.project)
        assert live.wait_for(lambda m: m.connected)
        with checked_client() as client:
            assert upload(client, server, ("one.jpg", jpeg_bytes(seed=8))).status_code == 201
        assert live.wait_for(lambda m: m.count == 1)
    finally:
        close_all()


def test_in_a_served_session_a_remote_live_model_does_not_wait_for_its_server(monkeypatch: pytest.MonkeyPatch):
    # A server that takes the connection and never answers: outside a session the first read would wait.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    monkeypatch.setattr("dashboard.live.sessions.served_session", lambda: object())
    try:
        started = time.monotonic()
        live = Gallery(api_url=url).live
        assert time.monotonic() - started < 1 and live is not None and not live.connected
    finally:
        silent.close()  # its waiting connections are reset: the model's reader gives up at once
        close_all()


def test_a_gallery_pointed_at_a_notebook_server_later_carries_its_token(tmp_path: Path, stop_background):
    served = Gallery(data=tmp_path / "studio", project="nb")
    view = served.__panel__()
    view.page_origin = "http://localhost:8888"
    gallery = Gallery(api_url="http://127.0.0.1:9", project="nb")
    gallery.__panel__().page_origin = "http://localhost:8888"
    assert gallery.__panel__().api_token == ""

    gallery.api_url = served.api_url

    assert gallery.__panel__().api_token == view.api_token
    assert gallery.__panel__().allowed_origin == "http://localhost:8888", "the origin handshake is made again"
    preflight = httpx.options(
        f"{served.api_url}/api/projects/nb/images",
        headers={"Origin": "http://localhost:8888", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.headers.get("Access-Control-Allow-Origin") == "http://localhost:8888"


def test_the_wall_asks_for_what_it_shows_and_pages_follow_the_server_heartbeat():
    assert Gallery(mode="wall", api_url="http://127.0.0.1:9").__panel__().page_size == WALL_STRIP + 1
    assert Gallery(api_url="http://127.0.0.1:9").__panel__().page_size == PAGE_SIZE
    # A faster server heartbeat is followed; a slower one would break the badge's 5 s promise.
    assert [page_heartbeat_s(s) for s in (0.5, 1.0, 15.0)] == [0.5, 1.0, PAGE_HEARTBEAT_S]
    gallery = Gallery(api_url="http://127.0.0.1:9", heartbeat_s=0.5)
    assert gallery.__panel__().heartbeat_s == 0.5


def test_the_browser_modules_are_joined_in_the_order_their_imports_give(tmp_path: Path):
    (tmp_path / "main.js").write_text(
        'import { b } from "./b.js";\nimport { a } from "./a.js";\nexport function render() {}\n'
    )
    (tmp_path / "b.js").write_text('import { a } from "./a.js";\nexport const b = a + 1;\nconst hidden = 2;\n')
    (tmp_path / "a.js").write_text("export const a = 1;\n")

    joined = esm_bundle(tmp_path / "main.js")

    assert [line for line in joined.splitlines() if line.startswith("// ----")] == [
        "// ---- a.js", "// ---- b.js", "// ---- main.js",
    ]  # fmt: skip
    assert "const { a } = __fotoflo_a;" in joined and "return { b };" in joined
    assert [line for line in joined.splitlines() if line.startswith("export ")] == ["export function render() {}"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"main.js": 'import { x } from "./a.js";\n', "a.js": 'import { y } from "./main.js";\n'}, "import cycle"),
        ({"main.js": 'import { x } from "./a.js";\n', "a.js": "export const y = 1;\n"}, "does not export x"),
        ({"main.js": 'import { x } from "./gone.js";\n'}, "gone.js: no such file"),
        ({"main.js": 'import x from "./a.js";\n', "a.js": ""}, "only `import { a, b }"),
    ],
)
def test_a_broken_module_graph_is_refused_naming_the_file(tmp_path: Path, files: dict[str, str], message: str):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)):
        esm_bundle(tmp_path / "main.js")


def test_the_shipped_gallery_modules_join_without_error():
    joined = esm_bundle(ASSETS / "main.js")
    modules = ("dom", "api", "records", "ratings", "tiles", "header", "stream", "listing", "grid", "arrivals", "keys")
    for module in (*modules, "lightbox", "upload", "pool", "curation", "collection", "export", "wall"):
        assert joined.count(f"// ---- {module}.js\n") == 1
    assert LiveGallery._esm == joined


def test_every_gallery_param_is_in_the_docs_table():
    table = (ASSETS.parents[1] / "docs" / "gallery.md").read_text().split("## In Python", 1)[1]
    missing = [name for name in Gallery.param if name != "name" and f"`{name}`" not in table]
    assert missing == [], f"docs/gallery.md's params table misses {missing}"
