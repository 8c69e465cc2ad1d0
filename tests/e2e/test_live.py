"""The seed's live tests, automated: uploads and hot-folder drops reach every open window."""

from __future__ import annotations

import httpx
from axe_playwright_python.sync_playwright import Axe

from dashboard.samples import raw_dng
from tests.e2e.conftest import photo_jpeg, screenshot
from tests.e2e.helpers import badge_state, dom_report, drop_file, mark_tiles, marked_survivors, tile_ids, watch_dom
from tests.support.waiting import wait_until


def test_upload_in_one_window_appears_in_the_other(server, open_page):
    for i in range(3):
        drop_file(server.watch, f"before-{i}.jpg", photo_jpeg(i))
    wait_until(lambda: len(httpx.get(server.api("/images")).json()["images"]) == 3)
    a = open_page(server.url)
    b = open_page(server.url)
    assert len(tile_ids(a)) == len(tile_ids(b)) == 3
    watch_dom(b)

    a.locator("[data-testid=upload]").set_input_files(
        files=[{"name": "from-window-a.jpg", "mimeType": "image/jpeg", "buffer": photo_jpeg(100)}]
    )

    wait_until(lambda: len(tile_ids(b)) == 4, timeout_s=10)
    newest = httpx.get(server.api("/images?limit=1")).json()["images"][0]
    assert newest["filename"] == "from-window-a.jpg"
    assert tile_ids(b)[0] == newest["id"], "the upload lands at the top of the other window"
    wait_until(lambda: tile_ids(a)[:1] == [newest["id"]], timeout_s=10)
    report = dom_report(b)
    assert report["sameDocument"], "the other window was reloaded"
    assert report["removed"] == [] and report["min"] == 3
    assert badge_state(a) == badge_state(b) == "live"


def test_hot_folder_drop_appears_in_both_windows(server, open_page):
    a = open_page(server.url)
    b = open_page(server.url)
    assert tile_ids(a) == tile_ids(b) == []

    drop_file(server.watch, "tethered-0001.jpg", photo_jpeg(1))

    for page in (a, b):
        page.wait_for_selector("[data-image-id]", timeout=10_000)
        assert len(tile_ids(page)) == 1
    image = httpx.get(server.api("/images")).json()["images"][0]
    assert tile_ids(a) == tile_ids(b) == [image["id"]]
    assert image["filename"] == "tethered-0001.jpg"


def test_ten_rapid_drops_newest_first_without_duplicates_or_recreated_tiles(server, open_page):
    for i in range(5):
        drop_file(server.watch, f"old-{i}.jpg", photo_jpeg(200 + i, (600, 400)))
    wait_until(lambda: len(httpx.get(server.api("/images")).json()["images"]) == 5)
    page = open_page(server.url)
    assert mark_tiles(page, "original") == 5
    watch_dom(page)

    for i in range(10):
        drop_file(server.watch, f"burst-{i:02d}.jpg", photo_jpeg(300 + i, (600, 400)))

    wait_until(lambda: len(tile_ids(page)) >= 15, timeout_s=20)
    ids = tile_ids(page)
    listed = [img["id"] for img in httpx.get(server.api("/images?limit=50")).json()["images"]]
    assert len(ids) == len(set(ids)) == 15, "no duplicates"
    assert ids == listed, "newest first, in feed order"
    assert marked_survivors(page, "original") == 5, "existing tiles are the same DOM nodes"
    report = dom_report(page)
    assert report["removed"] == [], f"tiles were removed: {report['removed']}"
    assert report["min"] == 5, "the tile count never dropped"
    assert report["sameDocument"]


def test_console_logs_connection_and_images(server, open_page):
    page = open_page(server.url)
    drop_file(server.watch, "logged.jpg", photo_jpeg(5))
    page.wait_for_selector("[data-image-id]", timeout=10_000)
    log = page.console.text()
    assert "[fotoflo] connection opened" in log
    assert "[fotoflo] image received" in log and "logged.jpg" in log
    assert page.console.errors == []
    server_log = server.log()
    assert "session opened" in server_log
    assert "image received logged.jpg" in server_log
    assert "SSE open default" in server_log


def test_refused_upload_shows_its_error_and_keeps_serving(server, open_page):
    page = open_page(server.url)
    page.locator("[data-testid=upload]").set_input_files(
        files=[
            {"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"this is not a photograph"},
            {"name": "good.jpg", "mimeType": "image/jpeg", "buffer": photo_jpeg(9)},
        ]
    )
    error = page.locator("[data-testid=upload-error]")
    error.wait_for(timeout=10_000)
    assert error.get_attribute("data-filename") == "notes.jpg"
    assert "not an image" in error.inner_text()
    page.wait_for_selector("[data-image-id]", timeout=10_000)
    assert len(tile_ids(page)) == 1
    screenshot(page, "upload-error")


def test_drag_and_drop_anywhere_uploads_many_files_with_progress(server, open_page):
    page = open_page(server.url)
    names = ["drop-a.jpg", "drop-b.jpg", "drop-c.jpg"]
    payloads = [list(photo_jpeg(700 + i, (800, 533))) for i in range(3)]
    page.locator("[data-testid=gallery]").evaluate(
        """(root, [names, payloads]) => {
          const dt = new DataTransfer();
          names.forEach((name, i) => {
            dt.items.add(new File([new Uint8Array(payloads[i])], name, { type: 'image/jpeg' }));
          });
          const target = root.querySelector('.ff-scroll');
          for (const type of ['dragenter', 'dragover', 'drop']) {
            target.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
          }
        }""",
        [names, payloads],
    )
    rows = page.locator("[data-testid=upload-list] li")
    assert sorted(rows.evaluate_all("els => els.map(e => e.dataset.filename)")) == names
    wait_until(lambda: len(tile_ids(page)) == 3, timeout_s=15)
    listed = {i["filename"] for i in httpx.get(server.api("/images")).json()["images"]}
    assert listed == set(names)


def test_a_new_version_updates_its_tile_in_place(server_factory, open_page):
    server = server_factory()
    first = photo_jpeg(700, (640, 480))
    v1 = httpx.post(server.api("/upload"), files={"file": ("IMG_0700.JPG", first, "image/jpeg")}).json()["images"][0]
    page = open_page(server.url)
    tile = page.locator(f"[data-image-id='{v1['id']}']")
    tile.wait_for()
    mark_tiles(page, "before")

    edited = photo_jpeg(701, (640, 480))
    response = httpx.post(
        server.api("/upload"),
        params={"replaces": v1["id"], "base_sha256": v1["sha256"], "device_id": "laptop"},
        files={"file": ("IMG_0700.JPG", edited, "image/jpeg")},
    )
    assert response.status_code == 201 and response.json()["images"][0]["version"] == 2
    wait_until(lambda: "v=2" in (tile.locator("img").get_attribute("src") or ""), timeout_s=10)
    assert tile_ids(page) == [v1["id"]], "the same tile, not a new one"
    assert marked_survivors(page, "before") == 1
    versions = httpx.get(server.api(f"/images/{v1['id']}/versions")).json()["versions"]
    assert [(v["version"], v["sha256"]) for v in versions] == [
        (1, v1["sha256"]),
        (2, response.json()["images"][0]["sha256"]),
    ]


def test_a_raw_and_its_jpeg_dropped_apart_are_one_tile_that_swaps_to_the_jpeg(server, open_page):
    page = open_page(server.url)
    watch_dom(page)
    taken = "2026:11:20 14:03:09"
    raw = raw_dng(1200, 800, seed=800, captured=taken)
    drop_file(server.watch, "IMG_0800.CR3", raw)
    wait_until(lambda: len(tile_ids(page)) == 1, timeout_s=15)  # the RAW at once, by its embedded preview
    [image_id] = tile_ids(page)
    tile = page.locator(f"[data-image-id='{image_id}']")
    mark_tiles(page, "raw")

    drop_file(server.watch, "IMG_0800.JPG", photo_jpeg(800, (1200, 800), captured=taken))

    wait_until(lambda: "v=2" in (tile.locator("img").get_attribute("src") or ""), timeout_s=15)
    assert tile_ids(page) == [image_id], "one tile for the pair"
    assert marked_survivors(page, "raw") == 1, "the same tile, its thumbnail swapped"
    assert dom_report(page)["removed"] == []
    image = httpx.get(server.api(f"/images/{image_id}")).json()
    assert [(f["role"], f["filename"]) for f in image["files"]] == [("jpeg", "IMG_0800.JPG"), ("raw", "IMG_0800.CR3")]

    # The lightbox offers both files, on a phone too, and the RAW's link downloads the RAW.
    page.set_viewport_size({"width": 390, "height": 844})
    tile.click()
    page.locator("[data-testid=lightbox]").wait_for(state="visible")
    raw_link = page.locator("[data-testid=download-raw]")
    raw_link.scroll_into_view_if_needed()
    assert raw_link.is_visible() and raw_link.inner_text() == "Download RAW (DNG)"
    assert raw_link.get_attribute("download") == "IMG_0800.CR3"
    assert httpx.get(server.url + raw_link.get_attribute("href")).content == raw
    assert page.locator("[data-testid=download]").is_visible()
    found = Axe().run(page).response["violations"]
    assert not [v["id"] for v in found if v["impact"] in ("serious", "critical")], found
    assert page.console.errors == []
