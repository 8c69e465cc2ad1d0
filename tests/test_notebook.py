"""The notebook API: a project from a data directory or a server URL, as records, a DataFrame and pictures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import dashboard
from dashboard import embedded
from dashboard.notebook import COLUMNS, Project
from dashboard.samples import photo_jpeg


@pytest.fixture
def shoot(tmp_path: Path) -> Iterator[Project]:
    project = dashboard.open(tmp_path / "data", project="nb")
    cards = tmp_path / "card"
    cards.mkdir()
    for i in range(6):
        path = cards / f"DSCF{i:04d}.JPG"
        path.write_bytes(
            photo_jpeg(i, (320, 240), captured=f"2026:11:28 14:0{i // 2}:1{i}", iso=(200, 800)[i % 2],
                       focal_length_mm=23.0 + i)
        )  # fmt: skip
        project.ingest(path)
    yield project
    project.close()
    embedded.stop_all()


def test_frame_has_a_row_per_image_with_exif_ratings_and_collections(shoot: Project):
    newest = shoot.images()[0]
    shoot.rate(newest["id"], rating=5, flag="pick", label="green")
    saved = shoot.save_collection("Selects", [newest["id"]])

    frame = shoot.frame()

    assert list(frame.columns) == list(COLUMNS) and len(frame) == 6
    assert list(frame.filename) == [f"DSCF{i:04d}.JPG" for i in reversed(range(6))], "newest first"
    first = frame.iloc[0]
    assert (first.rating, first.flag, first.label, first.collections) == (5, "pick", "green", ["Selects"])
    assert str(frame.captured_at.iloc[-1]) == "2026-11-28 14:00:10"
    assert sorted(frame.iso.unique()) == [200, 800]
    assert first.thumbnail_url.startswith(shoot.url + "/files/"), "absolute: a notebook page is not ours"
    assert httpx.get(first.thumbnail_url).status_code == 200
    assert list(shoot.frame(flag="pick").id) == [newest["id"]]
    assert shoot.export(saved["id"], "txt") == b"DSCF0005.JPG\n"


def test_pictures_count_what_the_frame_holds(shoot: Project):
    frame = shoot.frame()
    timeline = shoot.timeline(frame)
    bars = timeline.renderers[0].data_source.data
    assert sum(bars["top"]) == 6 and len(bars["top"]) == 3, "two shots in each of three minutes"
    iso = shoot.exif_distribution("iso", frame).renderers[0].data_source.data
    assert (list(iso["x"]), list(iso["top"])) == (["200", "800"], [3, 3])
    sheet = shoot.contact_sheet(frame[frame.iso == 800]).object
    assert sheet.count("<img ") == 3 and "DSCF0001.JPG" in sheet and "DSCF0000.JPG" not in sheet


def test_views_talk_to_the_project_server(shoot: Project):
    gallery = shoot.gallery(height=400)
    assert (gallery.api_url, gallery.project, gallery.__panel__().height) == (shoot.url, "nb", 400)
    view = shoot.collection_view()
    assert view.mode == "collection" and view.api_url == shoot.url
    panel = shoot.sync_panel("/tmp/laptop-card")
    assert (panel.state.folder, panel.state.server, panel.state.project) == ("/tmp/laptop-card", shoot.url, "nb")
    assert not panel.state.running, "showing the panel starts nothing"


def test_a_running_server_by_url_reads_but_does_not_ingest(server_factory, tmp_path: Path):
    server = server_factory()
    httpx.post(server.api("/upload"), files={"file": ("a.jpg", photo_jpeg(1, (320, 240)), "image/jpeg")})
    remote = dashboard.open(server.url, project=server.project)
    try:
        assert list(remote.frame().filename) == ["a.jpg"]
        with pytest.raises(RuntimeError, match="remote server"):
            remote.ingest(tmp_path / "x.jpg")
        with dashboard.open(server.url, project="nope") as missing, pytest.raises(LookupError, match="'nope'"):
            missing.images()
    finally:
        remote.close()


def test_a_server_with_access_control_is_read_with_a_token(server_factory, tmp_path: Path):
    from dashboard.auth.roles import Role
    from dashboard.auth.store import SQLiteAuthStore

    store = SQLiteAuthStore(tmp_path / "data" / "auth.sqlite")
    _, viewer = store.create_token(name="notebook", role=Role.VIEWER)
    store.close()
    server = server_factory(extra_args=("--auth",))
    with dashboard.open(server.url, project=server.project) as anonymous, pytest.raises(LookupError):
        anonymous.images()
    with dashboard.open(server.url, project=server.project, token=viewer) as shoot:
        assert shoot.images() == []
        with pytest.raises(ValueError, match="a viewer may not"):
            shoot.save_collection("Nope", [])
        gallery = shoot.gallery()  # its live model reads the server with the token, which no repr shows
        live = gallery.live
        assert live is not None and live.wait_for(lambda m: m.connected, timeout_s=30) and live.error is None
        assert viewer not in repr(gallery) and viewer not in str(gallery.param.values())
        live.close()


def test_a_project_of_any_name_is_read_and_curated(tmp_path: Path):
    # Unquoted, the space, slash and question mark would send every request to another path.
    name = "a b/c?d"
    odd = dashboard.open(tmp_path / "data", project=name)
    try:
        photo = tmp_path / "x.jpg"
        photo.write_bytes(photo_jpeg(1, (320, 240)))
        odd.ingest(photo)
        [image] = odd.images()
        odd.rate(image["id"], rating=3, flag="pick")
        saved = odd.save_collection("Odd", [image["id"]])
        assert [(c["name"], c["image_ids"]) for c in odd.collections()] == [("Odd", [image["id"]])]
        assert odd.export(saved["id"], "txt") == b"x.jpg\n"
        [record] = odd.records()
        assert (record.project, record.rating, record.flag) == (name, 3, "pick")
        assert odd.api("/images") == "/api/projects/a%20b%2Fc%3Fd/images"
    finally:
        odd.close()
        embedded.stop_all()


def test_the_kernel_s_server_answers_to_a_page_s_name_once_the_page_reported_it(shoot: Project):
    """Through the Jupyter server's proxy a request carries the page's `Host` (JupyterHub's name, say)."""
    server = embedded.running(shoot.url)
    assert server is not None
    images = f"{server.url}/api/projects/nb/images"
    auth = {"Authorization": f"Bearer {server.token}"}

    def status(host: str) -> int:
        return httpx.get(images, headers={**auth, "Host": host}, timeout=10).status_code

    assert status("hub.example.org") == 421  # Misdirected Request: no page of that name has shown a gallery
    server.allow_origin("https://hub.example.org")  # a page there reported its origin over the comm
    assert status("hub.example.org") == 200
    assert status("evil.example") == 421
    assert httpx.get(images, headers={"Host": "hub.example.org"}, timeout=10).status_code == 401  # no token
