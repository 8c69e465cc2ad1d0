"""`Gallery(data=...)` outside `fotoflo serve`: its own API server, cross-origin, live from the kernel."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import ROOT, free_port, wait_until
from tests.e2e.conftest import photo_jpeg
from tests.e2e.helpers import tile_ids


def test_gallery_of_a_data_directory_updates_when_the_kernel_ingests(tmp_path: Path, open_page):
    port = free_port()
    inbox = tmp_path / "inbox"
    log_path = tmp_path / "app.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "tests/e2e/notebook_like_app.py", str(tmp_path / "data"), str(inbox), str(port)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until(lambda: "API http://127.0.0.1:" in log_path.read_text(), timeout_s=60)
        api, _, token = log_path.read_text().split("API ", 1)[1].split()[:3]
        assert api != f"http://127.0.0.1:{port}", "the API runs on its own port, like beside Jupyter"

        def page_up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(page_up, timeout_s=30)
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
    finally:
        proc.terminate()
        proc.wait(timeout=15)
