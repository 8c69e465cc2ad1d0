"""Collection mode in two real browser windows: select while images arrive, save, rate, edit, export."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import httpx

from tests.e2e.conftest import photo_jpeg, screenshot, seed_project
from tests.e2e.helpers import drop_file, gallery
from tests.support.waiting import wait_until

POOL = "[data-testid=collection-pool]"
VIEW = "[data-testid=collection-view]"


def pool_ids(page) -> list[str]:
    return page.eval_on_selector_all(f"{POOL} [data-image-id]", "ts => ts.map(t => t.dataset.imageId)")


def selected_ids(page) -> list[str]:
    return page.eval_on_selector_all(f"{POOL} [data-selected=true]", "ts => ts.map(t => t.dataset.imageId)")


def view_ids(page) -> list[str]:
    return page.eval_on_selector_all(f"{VIEW} [data-image-id]", "ts => ts.map(t => t.dataset.imageId)")


def first_visible(page) -> dict:
    return page.eval_on_selector(
        POOL,
        """pool => {
          const box = pool.getBoundingClientRect();
          for (const t of pool.querySelectorAll('[data-image-id]')) {
            const r = t.getBoundingClientRect();
            if (r.top >= box.top) return { id: t.dataset.imageId, top: r.top, left: r.left };
          }
          return null;
        }""",
    )


def tile(page, image_id: str, root: str = POOL):
    return page.locator(f"{root} [data-image-id='{image_id}']")


def collections(server) -> list[dict]:
    return httpx.get(server.api("/collections")).json()["collections"]


def upload(server, name: str, data: bytes) -> dict:
    resp = httpx.post(server.api("/upload"), files={"file": (name, data, "image/jpeg")})
    assert resp.status_code == 201, resp.text
    return resp.json()["images"][0]


def open_collection(page, collection_id: str) -> None:
    page.locator(f"[data-testid=collections] [data-collection-id='{collection_id}']").click()
    page.wait_for_selector(f"{VIEW}[data-collection-id='{collection_id}']")


def test_select_while_images_arrive_then_save_shows_in_the_other_window(tmp_path, server_factory, open_page):
    data = tmp_path / "data"
    seed_project(data, "default", 60)
    server = server_factory(data=data)
    a = open_page(server.url + "/?mode=collection")
    b = open_page(server.url + "/?mode=collection")
    wait_until(lambda: len(pool_ids(a)) == 60 and len(pool_ids(b)) == 60)

    # Scroll down a little and select three images: click, Ctrl-click, Ctrl-click.
    a.eval_on_selector(POOL, "pool => pool.scrollTo(0, 400)")
    wait_until(lambda: a.eval_on_selector(POOL, "pool => pool.scrollTop") >= 400)
    ids = pool_ids(a)
    chosen = [ids[8], ids[10], ids[13]]
    tile(a, chosen[0]).click()
    tile(a, chosen[1]).click(modifiers=["Control"])
    tile(a, chosen[2]).click(modifiers=["Control"])
    assert selected_ids(a) == chosen
    assert a.locator("[data-testid=selection-count]").inner_text() == "3 selected"
    before = first_visible(a)

    new = [drop_file(server.watch, f"new-{i}.jpg", photo_jpeg(100 + i, (640, 480))) for i in range(2)]
    wait_until(lambda: len(pool_ids(a)) == 62, timeout_s=15)
    assert selected_ids(a) == chosen, "arrivals did not change the selection"
    after = first_visible(a)
    assert after["id"] == before["id"] and after["left"] == before["left"]
    assert abs(after["top"] - before["top"]) < 1, "arrivals did not move what the user looks at"
    assert a.locator("[data-testid=new-pill]").inner_text() == "↑ 2 new images"
    newest = [i["id"] for i in httpx.get(server.api("/images?limit=2")).json()["images"]]
    assert pool_ids(a)[:2] == newest, "the new images are in the pool, newest first"
    assert len(new) == 2

    a.locator("[data-testid=collection-name]").fill("Client picks")
    a.locator("[data-testid=collection-save]").click()
    wait_until(lambda: len(collections(server)) == 1)
    saved = collections(server)[0]
    card = b.locator(f"[data-collection-id='{saved['id']}']")
    card.wait_for(timeout=10_000)
    assert "Client picks" in card.inner_text() and "3 images" in card.inner_text()
    assert selected_ids(a) == [], "saving starts a fresh selection"

    open_collection(b, saved["id"])
    assert view_ids(b) == chosen
    screenshot(b, "collection", docs=True)

    # A new image lands in the pool of both windows, never inside the saved collection.
    drop_file(server.watch, "later.jpg", photo_jpeg(200, (640, 480)))
    wait_until(lambda: len(pool_ids(b)) == 63, timeout_s=15)
    assert view_ids(b) == chosen
    body = httpx.get(server.api(f"/collections/{saved['id']}")).json()
    assert body["image_ids"] == chosen and body["count"] == 3
    assert not a.console.errors and not b.console.errors


def test_mode_switch_is_in_the_url_and_kept_on_reload(tmp_path, server_factory, open_page):
    data = tmp_path / "data"
    seed_project(data, "default", 12)
    server = server_factory(data=data)
    page = open_page(server.url)
    mode = page.locator("[data-testid=mode]")
    assert mode.get_attribute("data-value") == "grid"
    assert not page.locator(POOL).count()

    mode.locator("[data-mode=collection]").click()
    wait_until(lambda: "mode=collection" in page.url)
    assert page.locator(POOL).count() == 1
    page.reload()
    page.wait_for_selector("[data-testid=live-indicator][data-state=live]")
    assert page.locator("[data-testid=mode]").get_attribute("data-value") == "collection"
    wait_until(lambda: len(pool_ids(page)) == 12)

    page.locator("[data-testid=mode] [data-mode=grid]").click()
    wait_until(lambda: "mode=single" in page.url)
    page.reload()
    page.wait_for_selector("[data-testid=live-indicator][data-state=live]")
    assert page.locator("[data-testid=mode]").get_attribute("data-value") == "grid"
    assert not page.locator(POOL).count()


def test_keyboard_shift_range_select_new_and_clear(tmp_path, server_factory, open_page):
    data = tmp_path / "data"
    seed_project(data, "default", 20)
    server = server_factory(data=data)
    page = open_page(server.url + "/?mode=collection")
    wait_until(lambda: len(pool_ids(page)) == 20)
    ids = pool_ids(page)

    tile(page, ids[2]).click()
    tile(page, ids[6]).click(modifiers=["Shift"])
    assert selected_ids(page) == ids[2:7]
    page.keyboard.press("Escape")
    assert selected_ids(page) == []

    # Arrows move the focus, Space toggles it.
    tile(page, ids[0]).click()
    page.keyboard.press("Space")  # the clicked one: off again
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")
    assert selected_ids(page) == [ids[1], ids[3]]
    page.locator("[data-testid=selection-clear]").click()
    assert selected_ids(page) == []

    select_new = page.locator("[data-testid=select-new]")
    assert select_new.inner_text() == "Select new (0)"
    for i in range(3):
        upload(server, f"n{i}.jpg", photo_jpeg(300 + i, (320, 240)))
    wait_until(lambda: select_new.inner_text() == "Select new (3)", timeout_s=15)
    select_new.click()
    newest = [i["id"] for i in httpx.get(server.api("/images?limit=3")).json()["images"]]
    assert selected_ids(page) == newest
    assert page.locator("[data-testid=selection-count]").inner_text() == "3 selected"


def test_ratings_flags_and_labels_show_in_every_window_and_filter(tmp_path, server_factory, open_page):
    server = server_factory()
    images = [upload(server, f"r{i}.jpg", photo_jpeg(400 + i, (480, 320))) for i in range(5)]
    ids = [i["id"] for i in reversed(images)]  # newest first, as shown
    a = open_page(server.url)
    b = open_page(server.url + "/?mode=collection")
    wait_until(lambda: len(pool_ids(b)) == 5)

    # Keys on the tile under the pointer, as in Lightroom: 4 stars, pick, red label.
    a.locator(f"[data-image-id='{ids[1]}']").hover()
    for key in ("4", "p", "6"):
        a.keyboard.press(key)
    rating_b = tile(b, ids[1]).locator("[data-testid=rating]")
    wait_until(lambda: rating_b.get_attribute("data-value") == "4", timeout_s=10)
    wait_until(lambda: tile(b, ids[1]).get_attribute("data-flag") == "pick", timeout_s=10)
    wait_until(lambda: tile(b, ids[1]).get_attribute("data-label") == "red", timeout_s=10)
    stored = httpx.get(server.api(f"/images/{ids[1]}")).json()
    assert (stored["rating"], stored["flag"], stored["label"]) == (4, "pick", "red")

    # From the lightbox: click the second star and reject.
    a.locator(f"[data-image-id='{ids[3]}']").click()
    lightbox = a.locator("[data-testid=lightbox]")
    lightbox.locator("[data-testid=rating] [data-star='2']").click()
    lightbox.locator("[data-testid=rating] [data-set-flag=reject]").click()
    assert lightbox.locator("[data-testid=rating]").get_attribute("data-value") == "2"
    wait_until(lambda: tile(b, ids[3]).locator("[data-testid=rating]").get_attribute("data-value") == "2")
    wait_until(lambda: tile(b, ids[3]).get_attribute("data-flag") == "reject")
    a.keyboard.press("Escape")

    # B filters on picks: only the pick is in its pool; a pick made in A enters, an unflag leaves.
    b.locator("[data-testid=filter-flag]").select_option("pick")
    wait_until(lambda: pool_ids(b) == [ids[1]])
    a.locator(f"[data-image-id='{ids[0]}']").hover()
    a.keyboard.press("p")
    wait_until(lambda: pool_ids(b) == [ids[0], ids[1]], timeout_s=10)
    a.locator(f"[data-image-id='{ids[1]}']").hover()
    a.keyboard.press("u")
    wait_until(lambda: pool_ids(b) == [ids[0]], timeout_s=10)
    b.locator("[data-testid=filter-flag]").select_option("")
    b.locator("[data-testid=filter-rating]").select_option("2")
    wait_until(lambda: pool_ids(b) == [ids[1], ids[3]])
    assert not a.console.errors and not b.console.errors


def test_edits_of_one_collection_converge_across_windows(tmp_path, server_factory, open_page):
    data = tmp_path / "data"
    seed_project(data, "default", 10)
    server = server_factory(data=data)
    ids = [i["id"] for i in httpx.get(server.api("/images?limit=10")).json()["images"]]
    made = httpx.post(server.api("/collections"), json={"name": "Story", "image_ids": ids[:5]}).json()
    a = open_page(server.url + "/?mode=collection")
    b = open_page(server.url + "/?mode=collection")
    for page in (a, b):
        open_collection(page, made["id"])
        wait_until(lambda page=page: view_ids(page) == ids[:5])

    # A drags the fourth image onto the left half of the first; B removes the third.
    source = tile(a, ids[3], VIEW)
    target = tile(a, ids[0], VIEW)
    box = target.bounding_box()
    source.drag_to(target, target_position={"x": 5, "y": box["height"] / 2})
    tile(b, ids[2], VIEW).hover()
    tile(b, ids[2], VIEW).locator("[data-action=remove]").click()
    expected = [ids[3], ids[0], ids[1], ids[4]]

    def converged() -> bool:
        api = httpx.get(server.api(f"/collections/{made['id']}")).json()["image_ids"]
        return api == expected and view_ids(a) == expected and view_ids(b) == expected

    wait_until(converged, timeout_s=10)

    # Add from A's pool selection; set a cover and rename in B.
    tile(a, ids[7]).click()
    tile(a, ids[8]).click(modifiers=["Control"])
    a.locator("[data-testid=collection-add]").click()
    expected += [ids[7], ids[8]]
    wait_until(converged, timeout_s=10)
    tile(b, ids[1], VIEW).hover()
    tile(b, ids[1], VIEW).locator("[data-action=cover]").click()
    b.locator("[data-testid=collection-title]").click()
    b.locator("[data-testid=collection-rename]").fill("Story, final")
    b.keyboard.press("Enter")
    wait_until(lambda: a.locator("[data-testid=collection-title]").inner_text() == "Story, final", timeout_s=10)
    body = httpx.get(server.api(f"/collections/{made['id']}")).json()
    assert (body["name"], body["cover_image_id"]) == ("Story, final", ids[1])
    wait_until(lambda: "ff-cover" in (tile(a, ids[1], VIEW).get_attribute("class") or ""))

    # Duplicate, then delete with undo: the card leaves both windows and comes back.
    a.locator("[data-testid=collection-duplicate]").click()
    wait_until(lambda: b.locator("[data-testid=collections] [data-collection-id]").count() == 2, timeout_s=10)
    a.locator("[data-testid=collection-delete]").click()
    card_b = b.locator(f"[data-testid=collections] [data-collection-id='{made['id']}']")
    wait_until(lambda: card_b.count() == 0, timeout_s=10)
    assert b.locator(VIEW).count() == 0, "B's open collection closed when it was deleted"
    a.locator("[data-testid=undo]").click()
    wait_until(lambda: card_b.count() == 1, timeout_s=10)
    assert httpx.get(server.api(f"/collections/{made['id']}")).json()["image_ids"] == expected
    assert not a.console.errors and not b.console.errors


def test_export_names_csv_and_zip_from_the_page(tmp_path, server_factory, open_page):
    server = server_factory()
    originals = {f"IMG_{i:04d}.jpg": photo_jpeg(500 + i, (800, 600)) for i in range(4)}
    images = {name: upload(server, name, body) for name, body in originals.items()}
    order = ["IMG_0002.jpg", "IMG_0000.jpg", "IMG_0003.jpg"]
    made = httpx.post(
        server.api("/collections"), json={"name": "Delivery", "image_ids": [images[n]["id"] for n in order]}
    ).json()
    page = open_page(server.url + "/?mode=collection")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_collection(page, made["id"])

    page.locator("[data-testid=collection-copy]").click()
    wait_until(lambda: page.evaluate("() => navigator.clipboard.readText()") == "".join(f"{n}\n" for n in order))

    with page.expect_download() as txt:
        page.locator("[data-testid=collection-export-txt]").click()
    assert txt.value.suggested_filename == "Delivery.txt"
    assert Path(txt.value.path()).read_text(encoding="utf-8") == "".join(f"{n}\n" for n in order)

    with page.expect_download() as sheet:
        page.locator("[data-testid=collection-export-csv]").click()
    rows = list(csv.DictReader(io.StringIO(Path(sheet.value.path()).read_text(encoding="utf-8"))))
    assert [r["filename"] for r in rows] == order
    assert [r["sha256"] for r in rows] == [images[n]["sha256"] for n in order]

    with page.expect_download() as archive:
        page.locator("[data-testid=collection-export-zip]").click()
    with zipfile.ZipFile(archive.value.path()) as z:
        assert z.namelist() == order
        for name in order:
            assert z.read(name) == originals[name], f"{name} is the original, byte for byte"
    status = page.locator("[data-testid=export-status]")
    wait_until(lambda: status.inner_text().startswith("ZIP downloaded · 3 files"), timeout_s=10)
    assert page.locator("[data-testid=export-progress]").get_attribute("value") == "100"
    assert gallery(page).count() == 1
    assert not page.console.errors


def test_a_deleted_image_leaves_every_window_and_its_collections(tmp_path, server_factory, open_page):
    server = server_factory()
    images = [upload(server, f"d{i}.jpg", photo_jpeg(600 + i, (320, 240))) for i in range(4)]
    ids = [i["id"] for i in reversed(images)]
    made = httpx.post(server.api("/collections"), json={"name": "Cut", "image_ids": ids[:3]}).json()
    grid = open_page(server.url)
    curate = open_page(server.url + "/?mode=collection")
    open_collection(curate, made["id"])
    tile(curate, ids[1]).click()
    assert selected_ids(curate) == [ids[1]]

    assert httpx.delete(server.api(f"/images/{ids[1]}")).status_code == 200

    wait_until(lambda: ids[1] not in pool_ids(curate) and view_ids(curate) == [ids[0], ids[2]], timeout_s=10)
    wait_until(lambda: grid.locator(f"[data-image-id='{ids[1]}']").count() == 0, timeout_s=10)
    assert selected_ids(curate) == [] and curate.locator("[data-testid=selection-count]").inner_text() == "0 selected"
    assert grid.locator("[data-testid=image-count]").inner_text() == "3 images"
    card = curate.locator(f"[data-testid=collections] [data-collection-id='{made['id']}']")
    assert card.get_attribute("data-count") == "2"
    assert not grid.console.errors and not curate.console.errors
