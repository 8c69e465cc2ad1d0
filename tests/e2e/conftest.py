"""Browser fixtures: Debian's Chromium driven by Playwright against a real `fotoflo serve`."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dashboard.samples import photo_jpeg, seed_project

__all__ = ["photo_jpeg", "seed_project"]

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("FOTOFLO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
DOCS = ROOT / "docs"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/test does)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Console:
    """Everything a page printed to its console, for asserting on logs."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.errors: list[str] = []

    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def open_page(browser: object) -> Iterator[Callable[..., object]]:
    """Open a fresh page (own context) at a URL; returns the Playwright page with `.console`."""
    contexts = []

    def open_(url: str, *, width: int = 1280, height: int = 800) -> object:
        context = browser.new_context(viewport={"width": width, "height": height})  # type: ignore[attr-defined]
        contexts.append(context)
        page = context.new_page()
        console = Console()
        page.on("console", lambda m: console.lines.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.errors.append(str(e)))
        page.console = console
        page.goto(url)
        page.wait_for_selector("[data-testid=live-indicator][data-state=live]", timeout=20_000)
        return page

    yield open_
    for context in contexts:
        context.close()


def screenshot(page: object, name: str, *, docs: bool = False) -> Path:
    """Save a screenshot as a test artifact (and, when asked, as the committed one in docs/)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))  # type: ignore[attr-defined]
    if docs and os.environ.get("FOTOFLO_UPDATE_SCREENSHOTS"):
        (DOCS / "screenshots").mkdir(parents=True, exist_ok=True)
        (DOCS / "screenshots" / f"{name}.png").write_bytes(path.read_bytes())
    return path


# -- a TCP proxy the test controls --------------------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:port → target; `cut()` drops every connection and refuses new ones."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._open = True
        self._stopping = False
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept_loop, name="e2e-proxy", daemon=True)
        self._accepter.start()

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            if not self._open:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                t = threading.Thread(target=self._pipe, args=(a, b), name="e2e-proxy-pipe", daemon=True)
                t.start()
                self._threads.append(t)

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                self._close(s)

    def _close(self, s: socket.socket) -> None:
        with self._lock:
            self._conns.discard(s)
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()

    def cut(self) -> None:
        self._open = False
        with self._lock:
            conns = list(self._conns)
        for s in conns:
            self._close(s)

    def restore(self) -> None:
        self._open = True

    def stop(self) -> None:
        self.cut()
        self._stopping = True
        self._accepter.join(timeout=5)
        for t in self._threads:
            t.join(timeout=5)
        self._listener.close()


@pytest.fixture
def proxy_factory() -> Iterator[Callable[[int], TcpProxy]]:
    proxies: list[TcpProxy] = []

    def make(target_port: int) -> TcpProxy:
        proxy = TcpProxy(target_port)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()
