"""`Gallery(data=...)` outside `fotoflo serve`: its own API server, cross-origin, live from the kernel."""

from __future__ import annotations

import contextlib
import csv
import io
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import photo_jpeg
from tests.e2e.helpers import tile_ids
from tests.support import ROOT
from tests.support.servers import free_port
from tests.support.waiting import wait_until


def test_gallery_of_a_data_directory_updates_when_the_kernel_ingests(tmp_path: Path, open_page):
    with notebook_app(tmp_path) as (api, token, port, inbox):
        assert api != f"http://127.0.0.1:{port}", "the API runs on its own port, like beside Jupyter"
        page = open_page(f"http://127.0.0.1:{port}/")
        assert tile_ids(page) == []
        inbox.mkdir(exist_ok=True)
        (inbox / "from-a-cell.jpg").write_bytes(photo_jpeg(1, (600, 400)))
        wait_until(lambda: len(tile_ids(page)) == 1, timeout_s=15)
        assert httpx.get(f"{api}/api/projects/notebook/images").status_code == 401, "the kernel's token is needed"
        auth = {"Authorization": f"Bearer {token}"}
        image = httpx.get(f"{api}/api/projects/notebook/images", headers=auth).json()["images"][0]
        assert image["filename"] == "from-a-cell.jpg"
        assert tile_ids(page) == [image["id"]]
        loaded = page.locator(f"[data-image-id='{image['id']}'] img.ff-loaded")
        loaded.wait_for(timeout=10_000)  # the thumbnail came from the API server, cross-origin


def test_a_project_set_after_the_gallery_is_shown_reaches_the_page(tmp_path: Path, open_page):
    (tmp_path / "inbox").mkdir()
    with notebook_app(tmp_path) as (_, _, port, inbox):
        page = open_page(f"http://127.0.0.1:{port}/")
        (inbox / "first.jpg").write_bytes(photo_jpeg(1, (600, 400)))
        wait_until(lambda: len(tile_ids(page)) == 1, timeout_s=15)
        first = tile_ids(page)

        (inbox / "project.txt").write_text("second")  # a cell: gallery.project = "second"
        page.wait_for_selector(".ff-title:text-is('second')", timeout=15_000)
        wait_until(lambda: tile_ids(page) == [], timeout_s=10)
        # "second" has no image yet (the API answers 404 unknown_project): the page retries until it has one.
        (inbox / "second.jpg").write_bytes(photo_jpeg(2, (600, 400)))  # ingested into "second"
        wait_until(lambda: len(tile_ids(page)) == 1, timeout_s=30)
        page.wait_for_selector("[data-testid=live-indicator][data-state=live]", timeout=15_000)
        assert tile_ids(page) != first, "the page shows the new project's image, live"
        assert not page.console.errors


@contextlib.contextmanager
def notebook_app(tmp_path: Path, *mode: str) -> Iterator[tuple[str, str, int, Path]]:
    """tests/e2e/notebook_like_app.py running: (its API URL, the kernel's token, the page's port, the inbox)."""
    port = free_port()
    inbox = tmp_path / "inbox"
    log_path = tmp_path / "app.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "tests/e2e/notebook_like_app.py", str(tmp_path / "data"), str(inbox), str(port),
             *mode],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until(lambda: "API http://127.0.0.1:" in log_path.read_text(), timeout_s=60)
        api, _, token = log_path.read_text().split("API ", 1)[1].split()[:3]
        wait_until(lambda: _up(f"http://127.0.0.1:{port}/"), timeout_s=30)
        yield api, token, port, inbox
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.fixture
def collection_app(tmp_path: Path) -> Iterator[tuple[str, str, int, Path]]:
    """The notebook-like app in Collection mode: (API URL, its token, page port, inbox)."""
    with notebook_app(tmp_path, "collection") as app:
        yield app


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_exports_from_a_notebook_gallery_carry_the_kernel_s_token(collection_app, open_page):
    """A link cannot send the token: in a notebook the page fetches each export with it and saves it."""
    api, token, port, inbox = collection_app
    auth = {"Authorization": f"Bearer {token}"}
    names = ["a.jpg", "b.jpg"]
    for i, name in enumerate(names):
        (inbox / name).write_bytes(photo_jpeg(30 + i, (320, 240)))
    images_url = f"{api}/api/projects/notebook/images"
    wait_until(lambda: len(httpx.get(images_url, headers=auth).json()["images"]) == 2, timeout_s=20)
    by_name = {i["filename"]: i for i in httpx.get(images_url, headers=auth).json()["images"]}
    made = httpx.post(f"{api}/api/projects/notebook/collections", headers=auth,
                      json={"name": "Picks", "image_ids": [by_name[n]["id"] for n in names]}).json()  # fmt: skip
    assert httpx.get(f"{api}/api/projects/notebook/collections/{made['id']}/export.txt").status_code == 401
    page = open_page(f"http://127.0.0.1:{port}/")
    page.locator(f"[data-testid=collections] [data-collection-id='{made['id']}']").click()
    page.wait_for_selector(f"[data-testid=collection-view][data-collection-id='{made['id']}']")
    with page.expect_download() as txt:
        page.locator("[data-testid=collection-export-txt]").click()
    assert txt.value.suggested_filename == "Picks.txt"
    assert Path(txt.value.path()).read_text(encoding="utf-8") == "a.jpg\nb.jpg\n"
    with page.expect_download() as sheet:
        page.locator("[data-testid=collection-export-csv]").click()
    rows = list(csv.DictReader(io.StringIO(Path(sheet.value.path()).read_text(encoding="utf-8"))))
    assert [r["filename"] for r in rows] == names
    with page.expect_download() as archive:
        page.locator("[data-testid=collection-export-zip]").click()
    with zipfile.ZipFile(archive.value.path()) as z:
        assert z.namelist() == names
    status = page.locator("[data-testid=export-status]")
    wait_until(lambda: status.inner_text().startswith("ZIP downloaded · 2 files"), timeout_s=15)
    assert not page.console.errors
