"""Guests and favourites through a real `fotoflo serve --auth`: a guest names themself on a share link, marks
and unmarks (idempotent), sees their own while owners see everyone's, and sends their picks as a collection;
every change on the event stream. And the local user's favourites with authentication off."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from dashboard.auth.access import SESSION_COOKIE
from dashboard.events import COLLECTION_SAVED, FAVORITE_CHANGED, FAVORITES_SUBMITTED
from tests.support.api import assert_json_error, checked_client, upload
from tests.support.auth import AuthServer, guest, make_link, new_images
from tests.support.images import small_jpeg
from tests.support.servers import Server
from tests.support.sse import SseStream, sse


@pytest.fixture
def server(auth_project: Server) -> Server:
    """This module's tests run on the server with authentication on."""
    return auth_project


def by_image(favorites: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(f["image_id"], f["by"]) for f in favorites}


def next_of(stream: SseStream, kind: str) -> dict[str, Any]:
    """The data of the stream's next event of this kind (others, like image.created, are skipped)."""
    while True:
        event = stream.next()
        if event.event == kind:
            data: dict[str, Any] = event.json()
            return data


def test_a_browser_is_asked_its_guest_name_once(server: Server, owner: httpx.Client) -> None:
    html = {"Accept": "text/html"}
    link = make_link(owner, server)
    with checked_client() as browser:
        asked = browser.get(server.url + link, headers=html)
        assert asked.status_code == 200 and 'name="name"' in asked.text and 'name="email"' in asked.text
        assert 'name="password"' not in asked.text and SESSION_COOKIE not in browser.cookies
        again = browser.post(server.url + link, data={"name": " "}, headers={"Origin": server.url, **html})
        assert again.status_code == 400 and 'name="name"' in again.text and "1 to 100 characters" in again.text
        named = browser.post(server.url + link, data={"name": "Anna"}, headers={"Origin": server.url, **html})
        assert named.status_code == 303 and SESSION_COOKIE in browser.cookies
        assert browser.get(server.url + link, headers=html).status_code == 303  # asked once
    guarded = make_link(owner, server, password="correct horse")
    with checked_client() as browser:
        asked = browser.get(server.url + guarded, headers=html)
        assert 'name="name"' in asked.text and 'name="password"' in asked.text
        wrong = browser.post(server.url + guarded, data={"name": "Anna", "password": "wrong"},
                             headers={"Origin": server.url, **html})  # fmt: skip
        assert wrong.status_code == 401 and 'name="name"' in wrong.text and "wrong password" in wrong.text
    # A viewer's link lets its holder only look: nothing to sign, the gallery at once.
    with checked_client() as browser:
        assert browser.get(server.url + make_link(owner, server, role="viewer"), headers=html).status_code == 303


def test_a_guest_names_themself_once_on_a_share_link(server: Server, owner: httpx.Client) -> None:
    [image] = new_images(owner, server, 1)
    link = make_link(owner, server)
    with guest(server, link, "  Anna   Berg ", "anna@example.com") as anna:
        session = anna.client.cookies[SESSION_COOKIE]
        # Opening the link again keeps the guest who they are: no new session, no second question.
        again = anna.client.get(server.url + link, headers={"Accept": "text/html"})
        assert again.status_code == 303 and anna.client.cookies[SESSION_COOKIE] == session
        marked = anna.mark(image)
        assert marked.status_code == 200, marked.text
        assert marked.json()["by"] == "Anna Berg"  # spaces tidied
    # Owners see who did what.
    assert by_image(owner.get(server.api("/favorites")).json()["favorites"]) == {(image, "Anna Berg")}

    with checked_client() as client:
        for form in ({"name": "x" * 101}, {"name": "Ben", "email": "not an address"}):
            refused = client.post(server.url + link, data=form, headers={"Origin": server.url})
            assert_json_error(refused, 400, "bad_guest")
            assert SESSION_COOKIE not in client.cookies
        foreign = client.post(server.url + link, data={"name": "Eve"}, headers={"Origin": "http://evil.example"})
        assert_json_error(foreign, 403, "bad_origin")


def test_put_and_delete_are_idempotent_and_each_change_is_one_event(
    auth_server: AuthServer, server: Server, owner: httpx.Client
) -> None:
    a, b = new_images(owner, server, 2)
    link = make_link(owner, server)
    headers = {"Authorization": f"Bearer {auth_server.tokens['owner']}"}
    with sse(server.api("/events"), headers=headers) as stream, guest(server, link, "Anna") as anna:
        first, second = anna.mark(a), anna.mark(a)
        assert first.status_code == second.status_code == 200
        assert first.json() == second.json() and first.json()["favorite"] is True and first.json()["at"]
        assert next_of(stream, FAVORITE_CHANGED) == {"image_id": a, "by": "Anna", "favorite": True}
        assert anna.mark(b).status_code == 200  # the next event is b's: a's second mark sent none
        assert next_of(stream, FAVORITE_CHANGED) == {"image_id": b, "by": "Anna", "favorite": True}
        for _ in range(2):
            gone = anna.unmark(a)
            assert gone.status_code == 200 and gone.json() == {"image_id": a, "by": "Anna", "at": None,
                                                               "favorite": False}  # fmt: skip
        assert next_of(stream, FAVORITE_CHANGED) == {"image_id": a, "by": "Anna", "favorite": False}
        assert anna.unmark(b).status_code == 200
        assert next_of(stream, FAVORITE_CHANGED) == {"image_id": b, "by": "Anna", "favorite": False}
        assert_json_error(anna.mark("no-such-image"), 404, "unknown_image")
        assert_json_error(anna.client.put(server.api(f"/images/{a}/favorite")), 403, "csrf_failed")
    changes = owner.get(server.api("/changes")).json()["changes"]
    assert [c["kind"] for c in changes if c["kind"] == FAVORITE_CHANGED] == [FAVORITE_CHANGED] * 4


def test_a_guest_sees_their_own_and_owners_and_editors_everyone_s(
    auth_server: AuthServer, server: Server, owner: httpx.Client
) -> None:
    a, b, c = new_images(owner, server, 3)
    link = make_link(owner, server)
    with guest(server, link, "Anna") as anna, guest(server, link, "Ben") as ben:
        for who, image in ((anna, a), (anna, b), (ben, b), (ben, c)):
            assert who.mark(image).status_code == 200
        assert by_image(anna.client.get(server.api("/favorites")).json()["favorites"]) == {(a, "Anna"), (b, "Anna")}
        own = ben.client.get(server.api("/favorites?by=Anna")).json()["favorites"]  # not theirs to ask
        assert by_image(own) == {(b, "Ben"), (c, "Ben")}
    everyone = {(a, "Anna"), (b, "Anna"), (b, "Ben"), (c, "Ben")}
    with auth_server.client("editor") as editor, auth_server.client("client") as client:
        for reader in (owner, editor):
            listed = reader.get(server.api("/favorites")).json()["favorites"]
            assert by_image(listed) == everyone
            assert set(listed[0]) == {"image_id", "by", "at"}
            assert by_image(reader.get(server.api("/favorites?by=Ben")).json()["favorites"]) == {(b, "Ben"), (c, "Ben")}
        # A token is a person too: its own favourites, under its name.
        assert client.put(server.api(f"/images/{c}/favorite")).json()["by"] == "the client"
        assert by_image(client.get(server.api("/favorites")).json()["favorites"]) == {(c, "the client")}
    assert_json_error(owner.get(f"{server.url}/api/projects/no-such-project/favorites"), 404, "unknown_project")


def test_a_guest_s_feed_tells_no_one_s_favourites(server: Server, owner: httpx.Client) -> None:
    """Who else is on the link and what they chose stays with the photographer (as `GET /favorites` does)."""
    [image] = new_images(owner, server, 1)
    link = make_link(owner, server)
    with guest(server, link, "Anna") as anna, guest(server, link, "Ben") as ben:
        with (
            sse(server.api("/events"), headers=owner.headers) as photographer,
            sse(
                server.api("/events"), headers={"Cookie": f"{SESSION_COOKIE}={ben.client.cookies[SESSION_COOKIE]}"}
            ) as bens_page,
        ):
            assert anna.mark(image).status_code == 200
            assert next_of(photographer, FAVORITE_CHANGED)["by"] == "Anna"
            assert ben.client.post(server.api("/favorites/submit"), json={}, headers=ben.csrf).status_code == 201
            assert next_of(photographer, FAVORITES_SUBMITTED)["by"] == "Ben"
            new_images(owner, server, 1)  # after them in the feed: what Ben's page gets up to it
            seen = [bens_page.next().event]
            while seen[-1] != "image.created":
                seen.append(bens_page.next().event)
        assert seen == [COLLECTION_SAVED, "image.created"], seen  # his own collection, then the new image
        changes = ben.client.get(server.api("/changes")).json()["changes"]
        assert not [c for c in changes if c["kind"] in (FAVORITE_CHANGED, FAVORITES_SUBMITTED)]
    listed = owner.get(server.api("/changes")).json()["changes"]
    assert {c["kind"] for c in listed} >= {FAVORITE_CHANGED, FAVORITES_SUBMITTED}


def test_sending_the_picks_saves_a_collection_named_after_the_guest_and_tells_the_photographer(
    auth_server: AuthServer, server: Server, owner: httpx.Client
) -> None:
    a, b, c = new_images(owner, server, 3)
    link = make_link(owner, server)
    headers = {"Authorization": f"Bearer {auth_server.tokens['owner']}"}
    with sse(server.api("/events"), headers=headers) as stream, guest(server, link, "Anna") as anna:
        for image in (c, a):
            assert anna.mark(image).status_code == 200
        sent = anna.client.post(server.api("/favorites/submit"), headers=anna.csrf)
        assert sent.status_code == 201, sent.text
        collection = sent.json()
        assert (collection["name"], collection["image_ids"]) == ("Anna", [c, a])  # in the order marked
        saved = next_of(stream, COLLECTION_SAVED)
        assert (saved["collection_id"], saved["op"], saved["by"]) == (collection["id"], "save", "Anna")
        assert next_of(stream, FAVORITES_SUBMITTED) == {"by": "Anna", "collection_id": collection["id"], "count": 2}
        # The guest's own collection: they may change it; the photographer has it among the project's.
        renamed = anna.client.patch(server.api(f"/collections/{collection['id']}"),
                                    json={"op": "rename", "name": "Anna's picks"}, headers=anna.csrf)  # fmt: skip
        assert renamed.status_code == 200, renamed.text
        names = [x["name"] for x in owner.get(server.api("/collections")).json()["collections"]]
        assert names == ["Anna's picks"]
        again = anna.client.post(server.api("/favorites/submit"), headers=anna.csrf)
        assert again.status_code == 201 and again.json()["name"] == "Anna"
        assert_json_error(anna.client.post(server.api("/favorites/submit"), json={"name": "x"}, headers=anna.csrf),
                          400, "bad_argument")  # fmt: skip
    assert b not in collection["image_ids"]


def test_a_viewer_link_s_guest_may_look_but_not_mark(server: Server, owner: httpx.Client) -> None:
    [image] = new_images(owner, server, 1)
    link = make_link(owner, server, role="viewer")
    with guest(server, link, "Vera") as vera:
        assert_json_error(vera.mark(image), 403, "forbidden")
        assert vera.client.get(server.api("/favorites")).json() == {"favorites": []}
        assert_json_error(vera.client.post(server.api("/favorites/submit"), headers=vera.csrf), 403, "forbidden")


def test_the_local_user_s_favorites_with_authentication_off(shared_project: Server, client: httpx.Client) -> None:
    server = shared_project
    response = upload(client, server, ("local.jpg", small_jpeg(99_999)))
    image = response.json()["images"][0]["id"]
    assert client.put(server.api(f"/images/{image}/favorite")).json()["by"] == "local user"
    assert by_image(client.get(server.api("/favorites")).json()["favorites"]) == {(image, "local user")}
    sent = client.post(server.api("/favorites/submit"))
    assert sent.status_code == 201 and sent.json()["name"] == "local user"
    assert client.delete(server.api(f"/images/{image}/favorite")).status_code == 200
    assert client.get(server.api("/favorites")).json() == {"favorites": []}
