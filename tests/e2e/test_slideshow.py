"""The slideshow (`/?mode=slideshow`): it goes round at its pace, takes a remote's keys, shows arrivals next
(a burst one after each slide of the show), shows a collection's images alone, and a share link's guest
sees what the link grants. Orders are asserted, not times (the pace is 1 s)."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
from axe_playwright_python.sync_playwright import Axe

from dashboard.auth import Role, SQLiteAuthStore
from tests.e2e.conftest import photo_jpeg, screenshot
from tests.support.servers import Server, ServerFactory
from tests.support.waiting import wait_until

SHOW = "[data-testid=slideshow]"

#: Every slide the page shows from now on, as [id, shown as an arrival], in `window.__shown`.
RECORD = """root => {
  window.__shown = [];
  const note = () => window.__shown.push([root.dataset.imageId, root.dataset.arrival === "true"]);
  if (root.dataset.imageId) note();
  new MutationObserver(note).observe(root, { attributes: true, attributeFilter: ["data-image-id"] });
}"""


def upload(api: httpx.Client, server: Server, name: str, seed: int) -> str:
    sent = api.post(server.api("/upload"), files={"file": (name, photo_jpeg(seed, (400 + 40 * seed, 300)))})
    assert sent.status_code in (200, 201), sent.text
    return str(sent.json()["images"][0]["id"])


def shown(page: Any) -> list[tuple[str, bool]]:
    return [(i, a) for i, a in page.evaluate("() => window.__shown")]


def current(page: Any) -> str | None:
    return page.locator(SHOW).get_attribute("data-image-id")


def after(order: list[str], image_id: str, *, passing: tuple[str, ...] = ()) -> str:
    """The show's next slide after `image_id` in `order` (round), passing over `passing`."""
    at = order.index(image_id)
    return next(i for i in order[at + 1 :] + order[: at + 1] if i not in passing)


def press_and_see(page: Any, key: str) -> tuple[str, bool]:
    """Press `key` and wait for the slide it brings (one more in the record)."""
    count = len(shown(page))
    page.keyboard.press(key)
    wait_until(lambda: len(shown(page)) > count, timeout_s=10)
    return shown(page)[-1]


def no_bad_axe_finding(page: Any, width: int, height: int) -> None:
    """At `width` x `height`, as tests/e2e/test_responsive.py audits: no sideways scrolling, the controls on
    screen, no moderate, serious or critical axe-core finding; and the picture fills the screen."""
    page.set_viewport_size({"width": width, "height": height})
    page.mouse.move(width / 2, height / 2)  # the controls show (they go when nothing happens)
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width, f"{width}: scrolls sideways"
    for testid in ("slideshow-next", "slideshow-leave", "live-indicator"):
        box = page.locator(f"[data-testid={testid}]").bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width and box["y"] + box["height"] <= height, box
    found = Axe().run(page).response["violations"]
    bad = [v for v in found if v["impact"] in ("moderate", "serious", "critical")]
    assert not bad, f"{width}x{height}: " + "; ".join(f"{v['id']}: {v['nodes'][0]['target']}" for v in bad)
    # The picture is contained in the whole screen, portrait or landscape.
    box = page.locator(f"{SHOW} .ff-show-layer.ff-front").bounding_box()
    assert box and (round(box["width"]), round(box["height"])) == (width, height), box


def test_the_show_goes_round_takes_keys_and_interleaves_arrivals(server: Server, open_page: Callable[..., Any]) -> None:
    with httpx.Client(timeout=15) as api:
        order = [upload(api, server, f"show-{i}.jpg", i) for i in range(4)]  # the show's order: as they came
        page = open_page(server.url + "/?mode=slideshow&pace=1", width=1440, height=900)
        show = page.locator(SHOW)
        show.evaluate(RECORD)
        # At its pace, round and round in the order the images came.
        wait_until(lambda: len(shown(page)) >= 6, timeout_s=30)
        seen = [i for i, _ in shown(page)]
        assert all(b == after(order, a) for a, b in pairwise(seen)), (seen, order)
        assert "1 s per image" in show.locator("[data-testid=slideshow-status]").text_content()

        # Space pauses; a remote's keys go back and forth, Home to the first.
        page.keyboard.press("Space")
        wait_until(lambda: show.get_attribute("data-paused") == "true")
        assert press_and_see(page, "Home") == (order[0], False)
        assert press_and_see(page, "PageDown") == (order[1], False)
        assert press_and_see(page, "ArrowLeft") == (order[0], False)
        count = len(shown(page))
        page.wait_for_timeout(2500)  # two paces: a paused show stays where it is
        assert len(shown(page)) == count and current(page) == order[0]
        assert "Paused" in show.locator("[data-testid=slideshow-status]").text_content()

        # A burst while paused waits, then takes turns with the show: one arrival after each of its slides.
        burst = [upload(api, server, f"burst-{i}.jpg", 10 + i) for i in range(3)]
        wait_until(lambda: "3 new waiting" in show.locator("[data-testid=slideshow-status]").text_content())
        steps = [press_and_see(page, "ArrowRight") for _ in range(6)]
        assert steps == [(burst[0], True), (order[1], False), (burst[1], True), (order[2], False),
                         (burst[2], True), (order[3], False)], steps  # fmt: skip

        # Running again, an image uploaded meanwhile is shown next, then the show goes on where it was.
        page.keyboard.press("Space")
        wait_until(lambda: show.get_attribute("data-paused") == "false")
        late = upload(api, server, "late.jpg", 20)
        wait_until(lambda: (late, True) in shown(page), timeout_s=15)
        at = shown(page).index((late, True))
        wait_until(lambda: len(shown(page)) > at + 1, timeout_s=15)
        before, then = shown(page)[at - 1][0], shown(page)[at + 1]
        assert then == (after([*order, *burst, late], before, passing=(late,)), False), (before, then)

        # Slower and faster by + and -; the URL keeps the pace for a reload.
        page.keyboard.press("-")
        wait_until(lambda: "pace=2" in page.url)
        page.keyboard.press("+")
        wait_until(lambda: "pace=1" in page.url)

        no_bad_axe_finding(page, 1440, 900)
        no_bad_axe_finding(page, 390, 844)
        screenshot(page, "slideshow-phone")
        assert not page.console.errors, page.console.errors


def test_a_collection_show_and_what_a_share_link_grants(
    server_factory: ServerFactory, tmp_path: Path, open_page: Callable[..., Any]
) -> None:
    store = SQLiteAuthStore(tmp_path / "data" / "auth.sqlite")
    owner = store.create_token(name="owner", role=Role.OWNER)[1]
    store.close()
    server = server_factory(extra_args=("--auth", "--no-watch"))
    with httpx.Client(timeout=15, headers={"Authorization": f"Bearer {owner}"}) as api:
        ids = [upload(api, server, f"c{i}.jpg", i) for i in range(4)]
        proofs = api.post(server.api("/collections"), json={"name": "Proofs", "image_ids": [ids[2], ids[0]]}).json()
        other = api.post(server.api("/collections"), json={"name": "Other", "image_ids": [ids[1]]}).json()
        link = api.post(server.api("/shares"), json={"role": "client", "collection_id": proofs["id"]}).json()

        # The guest starts the collection's slideshow from the gallery's open collection.
        page = open_page(server.url + link["path"], guest="Anna")
        page.locator("[data-testid=collection-card-name]", has_text="Proofs").click()
        page.locator("[data-testid=collection-slideshow]").click()
        page.wait_for_url(f"**/?mode=slideshow&project=default&show=collection:{proofs['id']}")
        page.goto(server.url + f"/?mode=slideshow&show=collection:{proofs['id']}&pace=1")
        page.wait_for_selector("[data-testid=live-indicator][data-state=live]", timeout=20_000)
        show = page.locator(SHOW)
        show.evaluate(RECORD)
        wait_until(lambda: len(shown(page)) >= 4, timeout_s=30)
        # The collection's images alone, in its order; an image uploaded to the project is not one of them.
        upload(api, server, "elsewhere.jpg", 30)
        count = len(shown(page))
        wait_until(lambda: len(shown(page)) >= count + 3, timeout_s=30)
        seen = [i for i, _ in shown(page)]
        assert set(seen) == {ids[2], ids[0]}, seen
        assert all(b == after([ids[2], ids[0]], a) for a, b in pairwise(seen)), seen
        # An image added to the collection is its arrival: shown next.
        api.patch(server.api(f"/collections/{proofs['id']}"), json={"op": "add", "image_ids": [ids[3]]})
        wait_until(lambda: (ids[3], True) in shown(page), timeout_s=15)
        assert page.title() == "Slideshow: Proofs"

        # The whole project as this link's guest sees it: the collection's images, nothing more.
        page.goto(server.url + "/?mode=slideshow&pace=1")
        page.wait_for_selector("[data-testid=live-indicator][data-state=live]", timeout=20_000)
        show.evaluate(RECORD)
        wait_until(lambda: len(shown(page)) >= 4, timeout_s=30)
        assert {i for i, _ in shown(page)} == {ids[2], ids[0], ids[3]}, shown(page)
        # Another collection is not theirs to show.
        page.goto(server.url + f"/?mode=slideshow&show=collection:{other['id']}&pace=1")
        message = page.locator("[data-testid=slideshow-message]")
        wait_until(lambda: "cannot be shown" in (message.text_content() or ""), timeout_s=20)
        assert current(page) is None
