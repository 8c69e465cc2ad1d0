"""A notebook in JupyterLab (Debian Chromium): the gallery renders in a cell and grows from a later cell."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import screenshot
from tests.support.servers import free_port
from tests.support.waiting import wait_until

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "03-live-hot-folder.ipynb"
TILES = "[data-testid=gallery] [data-image-id]"


@pytest.fixture
def jupyterlab(tmp_path: Path) -> Iterator[str]:
    """A JupyterLab server on a loopback port, without token, serving a copy of the live notebook."""
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    port = free_port()
    log = (tmp_path / "jupyterlab.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1", "--allow-root",
         f"--ServerApp.root_dir={root}", "--ServerApp.token=", "--ServerApp.password=",
         "--LabApp.news_url=", "--LabServerApp.announcements_url=", "--LabApp.check_for_updates_class="
         "jupyterlab.NeverCheckForUpdate"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config")},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/api/status", timeout=2).status_code == 200
        except httpx.HTTPError:
            return proc.poll() is not None

    try:
        wait_until(up, timeout_s=60)
        assert proc.poll() is None, (tmp_path / "jupyterlab.log").read_text()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _kernel_idle(url: str) -> bool:
    response = httpx.get(f"{url}/api/kernels", timeout=5)
    kernels = response.json() if response.status_code == 200 else None  # a busy server may answer an error
    return isinstance(kernels, list) and bool(kernels) and all(k["execution_state"] == "idle" for k in kernels)


def _run_cell(page, index: int, *, wait: bool = True) -> None:
    """Select cell `index`, press Shift+Enter; for a code cell, wait until the kernel took it."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Shift+Enter")
    if wait and "jp-CodeCell" in (cell.get_attribute("class") or ""):
        prompt = cell.locator(".jp-InputPrompt")
        wait_until(lambda: re.search(r"\[(\d+|\*)\]", prompt.inner_text()) is not None, timeout_s=90)


def test_gallery_in_a_notebook_grows_when_a_later_cell_ingests(jupyterlab: str, browser) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{jupyterlab}/lab/tree/{NOTEBOOK.name}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        wait_until(lambda: _kernel_idle(jupyterlab), timeout_s=60)
        # Title, setup, the watcher, the gallery: one by one, as a person does with Shift+Enter.
        for index in range(4):
            _run_cell(page, index)
        try:
            page.wait_for_selector("[data-testid=live-indicator][data-state=live]", timeout=90_000)
        finally:
            screenshot(page, "jupyterlab")
        assert page.locator(TILES).count() == 0

        # The cell that saves five files into the hot folder: the gallery above grows while it runs.
        _run_cell(page, 5)
        wait_until(lambda: page.locator(TILES).count() == 5, timeout_s=90)
        names = page.eval_on_selector_all(TILES, "ts => ts.map(t => t.title.split('\\n')[0])")
        assert names == [f"IMG_{i:04d}.JPG" for i in reversed(range(5))], "newest first"
        assert page.locator("[data-testid=live-indicator]").get_attribute("data-state") == "live"
        assert not errors
    finally:
        context.close()
