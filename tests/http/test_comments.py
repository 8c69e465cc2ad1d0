"""Comments on images through a real `fotoflo serve --auth`: a guest of a share link writes, the studio replies,
both see every change on their event stream; text is checked and stays plain; who may write, resolve and
delete; a link to one collection sees its images' comments only. And the local user with authentication off."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from dashboard.auth.access import SESSION_COOKIE
from dashboard.events import COMMENT_CREATED, COMMENT_DELETED, COMMENT_UPDATED
from dashboard.store import MAX_COMMENT_CHARS
from tests.support.api import assert_json_error, checked_client, upload
from tests.support.auth import AuthServer, Guest, guest, make_link, new_images
from tests.support.images import small_jpeg
from tests.support.servers import Server
from tests.support.sse import SseStream, sse


@pytest.fixture
def server(auth_project: Server) -> Server:
    """This module's tests run on the server with authentication on."""
    return auth_project


FIELDS = {"id", "image_id", "text", "author", "created_at", "resolved", "reply_to"}


def next_of(stream: SseStream, kind: str) -> dict[str, Any]:
    """The data of the stream's next event of this kind (others, like image.created, are skipped)."""
    while True:
        event = stream.next()
        if event.event == kind:
            data: dict[str, Any] = event.json()
            return data


def say(who: Guest, image: str, text: Any, reply_to: str | None = None) -> httpx.Response:
    return who.client.post(who.server.api(f"/images/{image}/comments"), json={"text": text, "reply_to": reply_to},
                           headers=who.csrf)  # fmt: skip


def comments(client: httpx.Client, server: Server, image: str) -> dict[str, Any]:
    response = client.get(server.api(f"/images/{image}/comments"))
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def session_headers(who: Guest) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={who.client.cookies[SESSION_COOKIE]}"}


def test_a_guest_comments_the_studio_replies_and_both_see_it_live(server: Server, owner: httpx.Client) -> None:
    [image] = new_images(owner, server, 1)
    link = make_link(owner, server)
    with guest(server, link, "Anna") as anna, guest(server, link, "Ben") as ben:
        with (
            sse(server.api("/events"), headers=owner.headers) as studio,
            sse(server.api("/events"), headers=session_headers(ben)) as bens_page,
        ):
            written = say(anna, image, "  Could we crop\nthe left edge?  ")
            assert written.status_code == 201, written.text
            comment = written.json()
            assert set(comment) == FIELDS
            assert (comment["image_id"], comment["text"], comment["author"]) == (image, "Could we crop\nthe left edge?",
                                                                                 "Anna")  # fmt: skip
            assert (comment["resolved"], comment["reply_to"]) == (False, None) and comment["created_at"]
            # Shared, unlike favourites: the studio and the link's other guests get it.
            assert next_of(studio, COMMENT_CREATED) == comment
            assert next_of(bens_page, COMMENT_CREATED) == comment
            answer = {"text": "Yes!", "reply_to": comment["id"]}
            reply = owner.post(server.api(f"/images/{image}/comments"), json=answer)
            assert reply.status_code == 201 and reply.json()["author"] == "the owner"
            assert next_of(bens_page, COMMENT_CREATED) == reply.json()
        listed = comments(anna.client, server, image)
        assert [(c["author"], c["text"], c["reply_to"], c["mine"]) for c in listed["comments"]] == [
            ("Anna", "Could we crop\nthe left edge?", None, True),
            ("the owner", "Yes!", comment["id"], False),
        ]
        assert (listed["may_comment"], listed["may_moderate"]) == (True, False)
        changes = ben.client.get(server.api("/changes")).json()["changes"]
        assert [c["data"]["text"] for c in changes if c["kind"] == COMMENT_CREATED] == [comment["text"], "Yes!"]
    everyone = comments(owner, server, image)
    assert (everyone["may_comment"], everyone["may_moderate"]) == (True, True)
    assert [c["mine"] for c in everyone["comments"]] == [False, True]
    assert owner.get(server.api("/comment-counts")).json() == {"counts": {image: 2}}


def test_text_stays_plain_and_bad_comments_are_refused_clearly(server: Server, owner: httpx.Client) -> None:
    a, b = new_images(owner, server, 2)
    url = server.api(f"/images/{a}/comments")
    markup = '<img src=x onerror="alert(1)"> & <b>bold</b>'
    written = owner.post(url, json={"text": markup})
    assert written.status_code == 201 and written.json()["text"] == markup  # stored and answered as written
    assert written.headers["Content-Type"].startswith("application/json")
    assert comments(owner, server, a)["comments"][0]["text"] == markup
    for body, message in (
        ({"text": "   \n\t "}, "must not be empty"),
        ({"text": "x" * (MAX_COMMENT_CHARS + 1)}, f"at most {MAX_COMMENT_CHARS} characters"),
        ({"text": "ring\x07"}, "control characters"),
        ({"text": 42}, "must be a string"),
        ({}, "text is required"),
        ({"text": "hi", "html": True}, "unknown field"),
        ({"text": "hi", "reply_to": "no-such-comment"}, "is not a comment of image"),
        ({"text": "hi", "reply_to": 7}, "reply_to must be"),
    ):
        refused = owner.post(url, json=body)
        assert_json_error(refused, 400, "bad_argument")
        assert message in refused.json()["error"]["message"], (body, refused.text)
    assert_json_error(owner.post(url, content=b"not json"), 400, "bad_json")
    longest = owner.post(url, json={"text": "y" * MAX_COMMENT_CHARS})
    assert longest.status_code == 201
    # A reply names a comment of the same image; a reply to a reply joins the thread.
    first = written.json()["id"]
    assert_json_error(owner.post(server.api(f"/images/{b}/comments"), json={"text": "x", "reply_to": first}),
                      400, "bad_argument")  # fmt: skip
    reply = owner.post(url, json={"text": "one", "reply_to": first}).json()
    deeper = owner.post(url, json={"text": "two", "reply_to": reply["id"]}).json()
    assert reply["reply_to"] == deeper["reply_to"] == first
    assert_json_error(owner.post(server.api("/images/no-such-image/comments"), json={"text": "x"}),
                      404, "unknown_image")  # fmt: skip
    assert_json_error(owner.get(server.api("/images/no-such-image/comments")), 404, "unknown_image")
    assert_json_error(owner.patch(server.api(f"/images/{a}/comments/nope"), json={"resolved": True}),
                      404, "unknown_comment")  # fmt: skip
    assert_json_error(owner.patch(server.api(f"/images/{b}/comments/{first}"), json={"resolved": True}),
                      404, "unknown_comment")  # another image's comment  # fmt: skip
    assert_json_error(owner.patch(server.api(f"/images/{a}/comments/{first}"), json={"resolved": "yes"}),
                      400, "bad_argument")  # fmt: skip
    assert_json_error(owner.delete(server.api(f"/images/{a}/comments/nope")), 404, "unknown_comment")


def test_who_may_write_resolve_and_delete(auth_server: AuthServer, server: Server, owner: httpx.Client) -> None:
    [image] = new_images(owner, server, 1)
    url = server.api(f"/images/{image}/comments")
    with guest(server, make_link(owner, server), "Anna") as anna, sse(
        server.api("/events"), headers=session_headers(anna)
    ) as annas_page:  # fmt: skip
        mine = say(anna, image, "Mine").json()
        theirs = owner.post(url, json={"text": "The studio's"}).json()
        assert next_of(annas_page, COMMENT_CREATED)["id"] == mine["id"]
        # Without the CSRF token a session writes nothing.
        assert_json_error(anna.client.post(url, json={"text": "forged"}), 403, "csrf_failed")
        # Resolving is the studio's.
        resolve = {"resolved": True}
        assert_json_error(anna.client.patch(f"{url}/{mine['id']}", json=resolve, headers=anna.csrf), 403, "forbidden")
        with auth_server.client("editor") as editor, auth_server.client("client") as client:
            assert_json_error(client.patch(f"{url}/{mine['id']}", json=resolve), 403, "forbidden")
            resolved = editor.patch(f"{url}/{mine['id']}", json=resolve)
            assert resolved.status_code == 200 and resolved.json() == {**mine, "resolved": True}
            assert editor.patch(f"{url}/{mine['id']}", json=resolve).json()["resolved"] is True  # idempotent
            assert next_of(annas_page, COMMENT_UPDATED) == {**mine, "resolved": True}
            assert owner.patch(f"{url}/{mine['id']}", json={"resolved": False}).json()["resolved"] is False
            assert next_of(annas_page, COMMENT_UPDATED)["resolved"] is False
            # A client token is a person too: it deletes its own, not the studio's or the guest's.
            own = client.post(url, json={"text": "The client's"}).json()
            assert own["author"] == "the client"
            assert_json_error(client.delete(f"{url}/{theirs['id']}"), 403, "forbidden")
            assert_json_error(client.delete(f"{url}/{mine['id']}"), 403, "forbidden")
            assert client.delete(f"{url}/{own['id']}").status_code == 200
            assert next_of(annas_page, COMMENT_DELETED)["ids"] == [own["id"]]
            # The guest deletes their own; an editor anyone's, with the replies.
            assert_json_error(anna.client.delete(f"{url}/{theirs['id']}", headers=anna.csrf), 403, "forbidden")
            reply = owner.post(url, json={"text": "Reply", "reply_to": mine["id"]}).json()
            gone = anna.client.delete(f"{url}/{mine['id']}", headers=anna.csrf)
            assert gone.status_code == 200 and gone.json()["deleted"] is True
            deleted = next_of(annas_page, COMMENT_DELETED)
            assert deleted == {"id": mine["id"], "image_id": image, "ids": [mine["id"], reply["id"]]}
            assert editor.delete(f"{url}/{theirs['id']}").status_code == 200
        assert comments(anna.client, server, image)["comments"] == []
    assert owner.get(server.api("/comment-counts")).json() == {"counts": {}}


def test_a_viewer_link_s_guest_reads_but_does_not_write(server: Server, owner: httpx.Client) -> None:
    [image] = new_images(owner, server, 1)
    written = owner.post(server.api(f"/images/{image}/comments"), json={"text": "For everyone"}).json()
    with guest(server, make_link(owner, server, role="viewer"), "Vera") as vera:
        listed = comments(vera.client, server, image)
        assert [c["text"] for c in listed["comments"]] == ["For everyone"]
        assert (listed["may_comment"], listed["may_moderate"]) == (False, False)
        assert_json_error(say(vera, image, "Me too"), 403, "forbidden")
        assert_json_error(vera.client.delete(server.api(f"/images/{image}/comments/{written['id']}"),
                                             headers=vera.csrf), 403, "forbidden")  # fmt: skip
        kinds = [c["kind"] for c in vera.client.get(server.api("/changes")).json()["changes"]]
        assert COMMENT_CREATED in kinds
        assert vera.client.get(server.api("/comment-counts")).json() == {"counts": {image: 1}}


def test_a_collection_link_sees_the_comments_of_its_images_only(server: Server, owner: httpx.Client) -> None:
    shown, hidden = new_images(owner, server, 2)
    proofs = owner.post(server.api("/collections"), json={"name": "Proofs", "image_ids": [shown]}).json()
    for image in (shown, hidden):
        assert owner.post(server.api(f"/images/{image}/comments"), json={"text": f"on {image}"}).status_code == 201
    link = make_link(owner, server, collection_id=proofs["id"])
    with checked_client() as browser:  # a collection's link opens Collection mode: not `guest()`'s redirect
        opened = browser.post(server.url + link, data={"name": "Anna"}, headers={"Origin": server.url})
        assert opened.status_code == 303, opened.text
        anna = Guest(browser, server)
        assert [c["text"] for c in comments(anna.client, server, shown)["comments"]] == [f"on {shown}"]
        assert_json_error(anna.client.get(server.api(f"/images/{hidden}/comments")), 404, "unknown_image")
        assert_json_error(say(anna, hidden, "Let me in"), 404, "unknown_image")
        assert say(anna, shown, "Lovely").status_code == 201
        changes = anna.client.get(server.api("/changes")).json()["changes"]
        assert {c["data"]["image_id"] for c in changes if c["kind"] == COMMENT_CREATED} == {shown}
        assert anna.client.get(server.api("/comment-counts")).json() == {"counts": {shown: 2}}


def test_the_local_user_comments_with_authentication_off(shared_project: Server, client: httpx.Client) -> None:
    server = shared_project
    image = upload(client, server, ("commented.jpg", small_jpeg(88_888))).json()["images"][0]["id"]
    url = server.api(f"/images/{image}/comments")
    written = client.post(url, json={"text": "Note to self"})
    assert written.status_code == 201 and written.json()["author"] == "local user"
    listed = client.get(url).json()
    assert listed["comments"][0]["mine"] and listed["may_comment"] and listed["may_moderate"]
    assert client.patch(f"{url}/{written.json()['id']}", json={"resolved": True}).json()["resolved"] is True
    assert client.delete(f"{url}/{written.json()['id']}").status_code == 200
