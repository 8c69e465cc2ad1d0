"""Two servers behind a real nginx (Debian's, with the shipped docs/deploy/nginx.conf), as a studio runs them.

The browser knows the site as `photos.test` over HTTPS (a self-signed certificate); nginx spreads every
request round robin over two `fotoflo serve` processes on one PostgreSQL and Redis, with the image files
in a bucket of moto's S3 server (standing in for S3).
"""

from __future__ import annotations

import secrets
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboard.auth.access import SESSION_COOKIE
from tests.e2e.conftest import photo_jpeg
from tests.e2e.helpers import badge_state, tile_ids
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.nginx import Nginx, start_nginx
from tests.support.servers import Server, free_port
from tests.support.waiting import wait_until

NAME = "photos.test"


Site = tuple[Nginx, list[Server]]


@pytest.fixture
def start_site(
    tmp_path: Path, pg_url: str, redis_server: Any, s3_bucket: str, server_factory: Any
) -> Iterator[Callable[..., Site]]:
    """nginx on its ports in front of two servers (started after it, on the ports its config names).

    The servers share only what several machines would: PostgreSQL (images, feed, sign-in), Redis (the
    bus), a bucket on the S3 stand-in (the image files) and the URL-signing secret; each has its own
    data directory.
    """
    started: list[Nginx] = []
    secret = secrets.token_urlsafe(32)

    def start(*extra_args: str) -> Site:
        ports = [free_port(), free_port()]
        nginx = start_nginx(tmp_path / "nginx", ports, name=NAME)
        started.append(nginx)
        args = ("--db", pg_url, "--bus", redis_server.url, "--blobs", f"s3://{s3_bucket}/studio",
                "--secret", secret, "--allowed-host", f"{NAME}:{nginx.https_port}", "--trusted-proxy", "127.0.0.1",
                *extra_args)  # fmt: skip
        return nginx, [server_factory(port=port, data=tmp_path / f"data-{port}", extra_args=args) for port in ports]

    yield start
    for nginx in started:
        nginx.stop()
        assert "[alert]" not in nginx.log() and "[emerg]" not in nginx.log(), nginx.log()


@pytest.fixture
def site_browser(browser: Any) -> Iterator[Any]:
    """Chromium that resolves `photos.test` to loopback (and accepts the test's own certificate)."""
    other = browser.browser_type.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {NAME} 127.0.0.1"]
    )
    try:
        yield other.new_context(ignore_https_errors=True)
    finally:
        other.close()


def through(nginx: Nginx, path: str = "/api/projects/default", **headers: str) -> httpx.Client:
    """A client of the site: to nginx's port, as `photos.test` (Host and Origin), over HTTPS."""
    return httpx.Client(
        base_url=f"https://127.0.0.1:{nginx.https_port}{path}",
        headers={"Host": f"{NAME}:{nginx.https_port}", "Origin": nginx.url, **headers},
        verify=False,
    )


def upload(client: httpx.Client, name: str, seed: int) -> None:
    response = client.post("/upload", files={"file": (name, photo_jpeg(seed), "image/jpeg")})
    assert response.status_code in (200, 201), response.text


def received(server: Server) -> int:
    return server.log().count("image received")


def streaming(server: Server) -> bool:
    """Whether the server holds an open event stream (the page's: no other client streams here)."""
    log = server.log()
    return log.count("SSE open ") > log.count("SSE closed ")


def test_a_gallery_behind_nginx_stays_live_while_one_server_dies(start_site, site_browser) -> None:
    nginx, servers = start_site()
    page = site_browser.new_page()
    page.goto(f"{nginx.url}/")
    page.wait_for_selector("[data-testid=live-indicator][data-state=live]", timeout=20_000)
    with through(nginx) as client:
        # Two at a time: the page's own requests (a thumbnail after each upload) fall between single
        # uploads and would, round robin, leave every upload to the same server.
        sent = 0
        with ThreadPoolExecutor(2) as pool:
            while sent < 4 or not all(received(s) for s in servers):
                assert sent < 20, "nginx sent every upload to one server"
                list(pool.map(lambda i: upload(client, f"before-{i}.jpg", i), (sent, sent + 1)))
                sent += 2
        wait_until(lambda: len(tile_ids(page)) == sent, timeout_s=20)

        # The server the page's event stream goes through crashes: the stream must resume on the other.
        [holder] = [s for s in servers if streaming(s)]
        holder.proc.send_signal(signal.SIGKILL)
        holder.proc.wait()
        for i in range(4):
            upload(client, f"after-{i}.jpg", 100 + i)
        listed = client.get("/images").json()["images"]
    assert len(listed) == sent + 4
    wait_until(lambda: len(tile_ids(page)) == sent + 4, timeout_s=30)
    assert tile_ids(page) == [image["id"] for image in listed]  # nothing missed, nothing doubled, newest first
    wait_until(lambda: badge_state(page) == "live", timeout_s=20)


def served_signed_in(server: Server, since: int = 0) -> bool:
    """Whether the server answered the gallery page or its event stream (both need a session) since `since`."""
    log = server.log()[since:]
    return any(f"200 GET {path}" in log for path in ("/ (", "/?project=", "/api/projects/default/events"))


def test_sign_in_and_share_links_work_whichever_server_answers(start_site, site_browser) -> None:
    nginx, servers = start_site("--auth")
    token = owner_token(servers)
    page = site_browser.new_page()
    page.goto(f"{nginx.url}/")
    page.locator("input[name=token]").fill(token)
    page.locator("input[name=token]").press("Enter")
    page.wait_for_selector("[data-testid=live-indicator][data-state=live]", timeout=20_000)
    cookies = {c["name"]: c for c in site_browser.cookies()}
    assert cookies[SESSION_COOKIE]["secure"]  # nginx said HTTPS, and the server believes its --trusted-proxy
    for _ in range(2):  # round robin: the session cookie from one server's sign-in works on both
        page.reload()
        page.wait_for_selector("[data-testid=live-indicator][data-state=live]", timeout=20_000)
    assert all(served_signed_in(s) for s in servers)

    with through(nginx, Authorization=f"Bearer {token}") as owner:
        made = owner.post("/shares", json={"role": "viewer", "name": "Anna"})
        assert made.status_code == 201, made.text
        link = made.json()["path"]
    logged = [len(s.log()) for s in servers]
    guest = site_browser.browser.new_context(ignore_https_errors=True).new_page()
    guest.goto(f"{nginx.url}{link}")
    for _ in range(2):
        guest.wait_for_selector("[data-testid=live-indicator][data-state=live]", timeout=20_000)
        guest.reload()
    assert all(served_signed_in(s, since) for s, since in zip(servers, logged, strict=True))


def owner_token(servers: list[Server]) -> str:
    """The owner token the first server made at its start and printed once (a second server makes none)."""
    found = [w for s in servers for w in s.log().split() if w.startswith("fft_")]
    assert len(found) == 1, [s.log() for s in servers]
    return found[0]
