"""Browser fixtures: Debian's Chromium driven by Playwright against a real `fotoflo serve`."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dashboard.samples import photo_jpeg, seed_project
from tests.support.browser import CHROMIUM, launch_chromium
from tests.support.proxy import TcpProxy

__all__ = ["photo_jpeg", "seed_project"]

pytestmark = pytest.mark.e2e

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
        browser = launch_chromium(pw)
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
    """Open a fresh page (own context) at a URL; returns the Playwright page with `.console`.

    `guest`: the name to give on a share link's guest form; `token`: the API token to sign in with on the
    `/login` page the URL shows.
    """
    contexts = []

    def open_(
        url: str, *, width: int = 1280, height: int = 800, guest: str | None = None, token: str | None = None
    ) -> object:
        context = browser.new_context(viewport={"width": width, "height": height})  # type: ignore[attr-defined]
        contexts.append(context)
        page = context.new_page()
        console = Console()
        page.on("console", lambda m: console.lines.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.errors.append(str(e)))
        page.console = console
        page.goto(url)
        if guest is not None:  # a client's share link asks a new browser for its guest's name first
            page.fill("input[name=name]", guest)
            page.click("[data-testid=guest-open]")
        if token is not None:  # the sign-in page
            page.fill("input[name=token]", token)
            page.click("button[type=submit]")
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
