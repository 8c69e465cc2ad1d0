"""The Live badge tells the truth, and after any outage the missed images arrive by themselves."""

from __future__ import annotations

import time

import httpx

from tests.e2e.conftest import photo_jpeg
from tests.e2e.helpers import badge_state, dom_report, drop_file, mark_tiles, marked_survivors, tile_ids, watch_dom
from tests.support.waiting import wait_until


def _expect_badge(page, state: str, timeout_s: float) -> float:
    """Wait for the badge to show `state`; returns how long it took."""
    start = time.monotonic()
    page.wait_for_selector(f"[data-testid=live-indicator][data-state={state}]", timeout=timeout_s * 1000)
    return time.monotonic() - start


def test_cut_connection_goes_offline_then_catches_up(server, open_page, proxy_factory):
    for i in range(3):
        drop_file(server.watch, f"first-{i}.jpg", photo_jpeg(i, (600, 400)))
    wait_until(lambda: len(httpx.get(server.api("/images")).json()["images"]) == 3)
    proxy = proxy_factory(server.port)
    page = open_page(f"http://127.0.0.1:{proxy.port}/")
    assert mark_tiles(page, "before-outage") == 3
    watch_dom(page)

    proxy.cut()
    # The promise: `offline` within 5 s of losing the connection.
    _expect_badge(page, "offline", timeout_s=5)
    for i in range(4):
        drop_file(server.watch, f"during-outage-{i}.jpg", photo_jpeg(50 + i, (600, 400)))
    wait_until(lambda: len(httpx.get(server.api("/images")).json()["images"]) == 7)
    assert len(tile_ids(page)) == 3, "nothing can arrive while cut off"

    proxy.restore()
    _expect_badge(page, "live", timeout_s=20)
    wait_until(lambda: len(tile_ids(page)) == 7, timeout_s=10)
    listed = [i["id"] for i in httpx.get(server.api("/images")).json()["images"]]
    assert tile_ids(page) == listed, "the missed images arrived, newest first, each once"
    assert marked_survivors(page, "before-outage") == 3, "no tile was re-created"
    report = dom_report(page)
    assert report["sameDocument"], "the page was reloaded"
    assert report["removed"] == []
    log = page.console.text()
    assert "[fotoflo] connection lost" in log
    assert "[fotoflo] connection re-established" in log


def test_server_restart_goes_offline_then_catches_up(server_factory, open_page):
    server = server_factory()
    drop_file(server.watch, "before.jpg", photo_jpeg(1, (600, 400)))
    wait_until(lambda: len(httpx.get(server.api("/images")).json()["images"]) == 1)
    page = open_page(server.url)
    mark_tiles(page, "before-restart")
    watch_dom(page)

    server.stop()
    _expect_badge(page, "offline", timeout_s=5)
    # Shot while the server was down: the restarted server's start scan picks these up.
    for i in range(3):
        drop_file(server.watch, f"while-down-{i}.jpg", photo_jpeg(10 + i, (600, 400)))

    restarted = server_factory(data=server.data, watch=server.watch, port=server.port)
    _expect_badge(page, "live", timeout_s=30)
    wait_until(lambda: len(tile_ids(page)) == 4, timeout_s=15)
    listed = [i["id"] for i in httpx.get(restarted.api("/images")).json()["images"]]
    assert tile_ids(page) == listed
    assert marked_survivors(page, "before-restart") == 1
    report = dom_report(page)
    assert report["sameDocument"] and report["removed"] == []
    # Thumbnails of the old tile still load: signed URLs survive the restart (secret in the data dir).
    status = page.evaluate("url => fetch(url).then(r => r.status)", listed[-1] and _thumb(restarted, listed[-1]))
    assert status == 200


def test_silent_stall_is_detected_by_missing_heartbeats(server, open_page, proxy_factory):
    proxy = proxy_factory(server.port)
    page = open_page(f"http://127.0.0.1:{proxy.port}/")
    assert badge_state(page) == "live"
    # Freeze the stream without closing it: stop the server process (SIGSTOP) so no heartbeat comes.
    import os
    import signal

    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        _expect_badge(page, "offline", timeout_s=5)
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    _expect_badge(page, "live", timeout_s=20)
    drop_file(server.watch, "after-stall.jpg", photo_jpeg(77, (600, 400)))
    wait_until(lambda: len(tile_ids(page)) == 1, timeout_s=10)


def _thumb(server, image_id: str) -> str:
    return httpx.get(server.api(f"/images/{image_id}")).json()["thumbnail_url"]


def test_the_page_asks_for_the_heartbeat_the_server_is_set_to(server_factory, browser):
    server = server_factory(extra_args=("--heartbeat-s", "0.5"))
    context = browser.new_context()
    try:
        page = context.new_page()
        streams: list[str] = []
        page.on("request", lambda r: streams.append(r.url) if "/events?" in r.url else None)
        page.goto(server.url)
        page.wait_for_selector("[data-testid=live-indicator][data-state=live]", timeout=20_000)
        assert streams and all(url.endswith("/api/projects/default/events?heartbeat=0.5") for url in streams), streams
    finally:
        context.close()
