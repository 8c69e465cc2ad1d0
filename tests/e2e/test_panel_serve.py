"""The documented `panel serve` path: the app script plus the API plugin, live in a browser."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import photo_jpeg
from tests.e2e.helpers import drop_file, tile_ids
from tests.support import ROOT
from tests.support.servers import free_port
from tests.support.waiting import wait_until


@pytest.fixture
def panel_served(tmp_path: Path):
    port = free_port()
    watch = tmp_path / "hot"
    env = {**os.environ, "FOTOFLO_DATA": str(tmp_path / "data"), "FOTOFLO_WATCH": str(watch),
           "FOTOFLO_PROJECT": "studio", "PYTHONUNBUFFERED": "1"}  # fmt: skip
    log = open(tmp_path / "panel.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "panel", "serve", "apps/fotoflo_app.py", "--plugins", "dashboard.plugin",
         "--port", str(port), "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, (tmp_path / "panel.log").read_text()
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, timeout_s=60)
        yield url, watch
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def test_panel_serve_with_the_api_plugin_is_live(panel_served, open_page):
    url, watch = panel_served
    page = open_page(f"{url}/fotoflo_app")
    assert page.locator(".ff-title").inner_text() == "studio"
    drop_file(watch, "via-panel-serve.jpg", photo_jpeg(3, (600, 400)))
    wait_until(lambda: len(tile_ids(page)) == 1, timeout_s=15)
    images = httpx.get(f"{url}/api/projects/studio/images").json()["images"]
    assert tile_ids(page) == [images[0]["id"]]
