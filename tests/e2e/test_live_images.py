"""A `panel serve` app bound to `LiveImages` updates in the browser as images arrive, in every session."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import photo_jpeg
from tests.e2e.helpers import drop_file
from tests.support import ROOT
from tests.support.servers import free_port
from tests.support.waiting import wait_until

# The tiny app of docs/live.md: a count bound with `pn.bind`; the second line says whether the bound
# function ran on its own session's turn (Panel's current document is the session's), as promised.
APP = """
import panel as pn

from dashboard.live import live_images
from dashboard.plugin import app

live = live_images(app)
doc = pn.state.curdoc

pn.Column(
    pn.bind(lambda n: f"{n} images", live.param.count),
    pn.bind(lambda n: f"update {n} in its session: {pn.state.curdoc is doc}", live.param.count),
).servable()
"""


@pytest.fixture
def live_app(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    script = tmp_path / "live_count.py"
    script.write_text(APP)
    port = free_port()
    watch = tmp_path / "hot"
    env = {**os.environ, "FOTOFLO_DATA": str(tmp_path / "data"), "FOTOFLO_WATCH": str(watch),
           "FOTOFLO_PROJECT": "studio", "PYTHONUNBUFFERED": "1"}  # fmt: skip
    log_path = tmp_path / "panel.log"
    log = open(log_path, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "panel", "serve", str(script), "--plugins", "dashboard.plugin",
         "--port", str(port), "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, log_path.read_text()
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, timeout_s=60)
        yield f"{url}/live_count", watch
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
        text = log_path.read_text(errors="replace")
        assert "Traceback" not in text, text


def shows(page: Any, text: str) -> None:
    page.get_by_text(text, exact=True).wait_for(timeout=15_000)


def test_a_count_bound_with_pn_bind_updates_in_every_browser_session(live_app, browser):
    url, watch = live_app
    contexts = [browser.new_context() for _ in range(3)]
    try:
        first, second, third = (context.new_page() for context in contexts)
        for page in (first, second, third):
            page.goto(url)
            shows(page, "0 images")

        drop_file(watch, "one.jpg", photo_jpeg(1, (600, 400)))

        for page in (first, second, third):
            shows(page, "1 images")
            shows(page, "update 1 in its session: True")

        # A closed session leaves the others updating.
        contexts.pop(0).close()
        drop_file(watch, "two.jpg", photo_jpeg(2, (600, 400)))
        for page in (second, third):
            shows(page, "2 images")
            shows(page, "update 2 in its session: True")
    finally:
        for context in contexts:
            context.close()
