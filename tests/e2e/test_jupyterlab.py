"""A notebook in JupyterLab (Debian Chromium): the gallery renders in a cell and grows from a later cell.

Twice: with the browser beside the kernel (it reaches the kernel's loopback server directly), and as on
JupyterHub or a remote Jupyter server: the page at another origin (`http://jupyter.test:PORT/user/tester/`)
and every request to anything but the Jupyter server refused, so that the gallery can only reach the
kernel's server through the Jupyter server's proxy (jupyter-server-proxy).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from dashboard.samples import photo_jpeg
from tests.e2e.conftest import screenshot
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.servers import free_port
from tests.support.waiting import wait_until

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "03-live-hot-folder.ipynb"
TILES = "[data-testid=gallery] [data-image-id]"


REMOTE_NAME = "jupyter.test"  # the name the browser knows the remote Jupyter server by
BASE_URL = "/user/tester/"  # as JupyterHub serves a user's server


@pytest.fixture
def jupyterlab(tmp_path: Path) -> Iterator[str]:
    """A JupyterLab server on a loopback port, without token, serving a copy of the live notebook at
    `BASE_URL`, answering to any name (as a remote server does), with jupyter-server-proxy."""
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    port = free_port()
    log = (tmp_path / "jupyterlab.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1", "--allow-root",
         f"--ServerApp.root_dir={root}", "--ServerApp.token=", "--ServerApp.password=",
         f"--ServerApp.base_url={BASE_URL}", "--ServerApp.allow_remote_access=True",
         "--LabApp.news_url=", "--LabServerApp.announcements_url=", "--LabApp.check_for_updates_class="
         "jupyterlab.NeverCheckForUpdate"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config")},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}{BASE_URL.rstrip('/')}"

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


@pytest.fixture
def remote_browser(browser) -> Iterator[object]:
    """Chromium that resolves `REMOTE_NAME` to this machine (the Jupyter server is, to it, another host) and
    reaches nothing else: every other request, loopback included, goes to a proxy that is not there."""
    nowhere = f"127.0.0.1:{free_port()}"
    args = [f"--host-resolver-rules=MAP {REMOTE_NAME} 127.0.0.1", f"--proxy-server=http://{nowhere}",
            f"--proxy-bypass-list=<-loopback>;{REMOTE_NAME}"]  # fmt: skip
    remote = browser.browser_type.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *args])
    yield remote
    remote.close()


def test_gallery_in_a_notebook_grows_when_a_later_cell_ingests(jupyterlab: str, browser) -> None:
    _walk_through_the_live_notebook(browser, jupyterlab, jupyterlab)


def test_gallery_in_a_notebook_on_a_remote_jupyter_server_stays_live_through_its_proxy(
    jupyterlab: str, remote_browser
) -> None:
    remote = jupyterlab.replace("127.0.0.1", REMOTE_NAME)
    _walk_through_the_live_notebook(remote_browser, remote, jupyterlab, only_jupyter=True)


def _walk_through_the_live_notebook(browser, page_url: str, api_url: str, *, only_jupyter: bool = False) -> None:
    """Run the live notebook's cells at `page_url`; the gallery and the count grow from a cell, then from a
    file dropped into the hot folder while the kernel is idle. `only_jupyter`: every request the page makes
    to another host or port than the Jupyter server's is refused (the kernel's port is out of reach)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    refused: list[str] = []
    proxied: list[str] = []
    if only_jupyter:
        jupyter = urlsplit(page_url).netloc

        # The browser was started with a proxy that does not exist for everything but the Jupyter server:
        # whatever else the page asks for fails (no interception: JupyterLab runs as it does anywhere).
        context.on("requestfailed", lambda r: refused.append(r.url) if urlsplit(r.url).netloc != jupyter else None)
        context.on("request", lambda r: proxied.append(r.url) if "/proxy/" in r.url else None)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{page_url}/lab/tree/{NOTEBOOK.name}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        wait_until(lambda: _kernel_idle(api_url), timeout_s=60)
        # Title, setup, the watcher, the gallery: one by one, as a person does with Shift+Enter.
        for index in range(4):
            _run_cell(page, index)
        try:
            page.wait_for_selector("[data-testid=live-indicator][data-state=live]", timeout=90_000)
        finally:
            screenshot(page, "jupyterlab-remote" if only_jupyter else "jupyterlab")
        assert page.locator(TILES).count() == 0

        # The cell that saves five files into the hot folder: the gallery above grows while it runs.
        _run_cell(page, 5)
        wait_until(lambda: page.locator(TILES).count() == 5, timeout_s=90)
        names = page.eval_on_selector_all(TILES, "ts => ts.map(t => t.title.split('\\n')[0])")
        assert names == [f"IMG_{i:04d}.JPG" for i in reversed(range(5))], "newest first"
        assert page.locator("[data-testid=live-indicator]").get_attribute("data-state") == "live"
        wait_until(lambda: _count_shown(page) == "5", timeout_s=30)

        # A file dropped into the hot folder while no cell runs: the count (a Panel indicator bound to the
        # kernel's live model) and the gallery grow by themselves.
        wait_until(lambda: _kernel_idle(api_url), timeout_s=60)
        printed = page.locator(".jp-OutputArea-output", has_text="watching").first.inner_text()
        hot = Path(printed.split("watching", 1)[1].split()[0])
        (hot / "IMG_0100.JPG").write_bytes(photo_jpeg(7, (900, 600)))
        wait_until(lambda: page.locator(TILES).count() == 6, timeout_s=60)
        wait_until(lambda: _count_shown(page) == "6", timeout_s=30)
        assert page.locator(TILES).first.get_attribute("title").startswith("IMG_0100.JPG")
        img = page.locator(TILES).first.locator("img")
        img.scroll_into_view_if_needed()  # tiles load their thumbnails when in view
        wait_until(lambda: page.evaluate("i => i.complete && i.naturalWidth > 0", img.element_handle()), timeout_s=30)
        assert not errors
        if only_jupyter:
            assert any("/events" in url for url in proxied) and any("/files/" in url for url in proxied), proxied
            # Refused: only Panel's CDN stylesheets, which its notebook output names even when inline.
            assert not [url for url in refused if urlsplit(url).hostname == "127.0.0.1"], "the kernel's port tried"
    finally:
        context.close()


def _count_shown(page) -> str:
    """The value the live count indicator (`image_count`) shows, digits only."""
    shown = page.locator(".ff-studio-count")  # Panel draws the value in the element's shadow root
    text = shown.first.evaluate("e => (e.shadowRoot || e).textContent") if shown.count() else ""
    return re.sub(r"\D", "", text.split("Images")[-1])
