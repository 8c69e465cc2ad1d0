"""The sync panel in Chromium: `fotoflo sync --ui` started, driven by its buttons, showing the queue drain."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT
from tests.support.images import jpeg_bytes
from tests.support.servers import Server, ServerFactory, free_port
from tests.support.waiting import wait_until


@pytest.fixture
def sync_ui(server_factory: ServerFactory, tmp_path: Path) -> Iterator[tuple[str, Server]]:
    """A real server, and `fotoflo sync FOLDER --ui` on a folder of three photos and one text file."""
    server = server_factory()
    folder = tmp_path / "shoot"
    folder.mkdir()
    for n in range(3):
        (folder / f"IMG_{n}.JPG").write_bytes(jpeg_bytes((160, 120), seed=9500 + n))
    (folder / "notes.jpg").write_bytes(b"not a photo")
    port = free_port()
    log = open(tmp_path / "ui.log", "wb")  # noqa: SIM115 (the child holds it)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dashboard.cli", "sync", str(folder), "--server", server.url, "--project",
         server.project, "--state", str(tmp_path / "state"), "--ui", "--ui-port", str(port)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"

    def up() -> bool:
        assert proc.poll() is None, (tmp_path / "ui.log").read_text()
        try:
            return httpx.get(url, timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, timeout_s=60)
        yield url, server
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def test_start_shows_progress_and_the_refused_file_with_its_reason(sync_ui, browser) -> None:
    url, server = sync_ui
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(url)
        page.get_by_role("button", name="Start").click(timeout=30_000)

        page.get_by_text("notes.jpg").first.wait_for(timeout=30_000)
        page.get_by_text("not an image").first.wait_for(timeout=30_000)
        page.get_by_text("3 done").first.wait_for(timeout=30_000)
        assert httpx.get(server.api("/images")).json()["total"] == 3
        assert page.get_by_role("link", name="Open the gallery").get_attribute("href") == (
            f"{server.url}/?project={server.project}"
        )
        page.get_by_role("button", name="Stop").click()
        page.get_by_text("Stopped; the queue is kept.").wait_for(timeout=10_000)
    finally:
        context.close()


def test_the_panel_answers_only_its_own_host(sync_ui) -> None:
    """A page whose name was rebound to 127.0.0.1 cannot load the panel (and so drive the client)."""
    url, _ = sync_ui
    assert httpx.get(url, headers={"Host": "rebind.example"}).status_code == 421
    assert httpx.get(url, headers={"Host": "localhost"}).status_code == 200
