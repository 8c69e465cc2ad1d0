"""Notifications (dashboard/notify/): digests of the feed, signed webhooks, e-mail over SMTP, the outbox's
retries, across a restart; against a real `fotoflo serve`, a real webhook receiver and a real SMTP server."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dashboard.events import FAVORITES_SUBMITTED, IMAGE_CREATED, Change
from dashboard.notify.deliver import SmtpConfig, check_webhook_url, signature
from dashboard.notify.digest import COMMENT_CREATED, Digest, html_text
from dashboard.notify.notifier import RETRY_CAP_S, Notifier, backoff_s
from dashboard.notify.store import DELIVERED, FAILED, PENDING, SQLiteNotifyStore
from dashboard.store.sqlite import SQLiteStore
from tests.support import ROOT
from tests.support.api import assert_json_error, checked_client
from tests.support.auth import guest, make_link, new_images, running_auth_server
from tests.support.notify import Delivery, WebhookReceiver, smtp_server, webhook_receiver
from tests.support.records import image_record
from tests.support.servers import Server, ServerFactory
from tests.support.waiting import wait_until

INTERVAL_S = 4.0  # long enough for a burst of uploads to fall in one digest on a busy machine


def verify(secret: str, delivery: Delivery, *, max_age_s: float = 300) -> dict[str, Any]:
    """The receiver's side, as docs/notifications.md shows it: check the timestamp and the signature."""
    timestamp = delivery.headers["x-fotoflo-timestamp"]
    assert abs(time.time() - int(timestamp)) < max_age_s
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + delivery.body, hashlib.sha256)
    expected = "sha256=" + mac.hexdigest()
    assert hmac.compare_digest(expected, delivery.headers["x-fotoflo-signature"])
    return dict(json.loads(delivery.body))


# -- the pieces -----------------------------------------------------------------------------


def change(seq: int, kind: str, **data: Any) -> Change:
    return Change("p", seq, kind, "2026-01-01T00:00:00+00:00", data=data)


def test_a_digest_counts_images_picks_and_comments_by_kind() -> None:
    changes = [change(i, IMAGE_CREATED) for i in range(1, 13)]
    changes += [change(13, "favorite.changed"), change(14, FAVORITES_SUBMITTED, by="Anna", count=24)]
    changes += [change(15 + i, COMMENT_CREATED) for i in range(3)]
    digest = Digest.of("p", 0, 17, changes)
    assert digest.lines() == ["12 new images", "Anna sent 24 picks", "3 new comments"]
    assert digest.counts() == {IMAGE_CREATED: 12, FAVORITES_SUBMITTED: 1, COMMENT_CREATED: 3}
    assert digest.only([IMAGE_CREATED]).lines() == ["12 new images"]
    assert digest.only([COMMENT_CREATED]).lines() == ["3 new comments"]
    assert Digest.of("p", 0, 1, [change(1, "image.deleted")]).empty
    assert Digest.of("p", 0, 1, [change(1, IMAGE_CREATED)]).lines() == ["1 new image"]


def test_the_html_alternative_escapes_what_guests_wrote() -> None:
    body = Digest.of("p<x>", 0, 1, [change(1, FAVORITES_SUBMITTED, by="<script>alert(1)</script>", count=2)]).to_dict()
    page = html_text(body)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; sent 2 picks" in page
    assert "p&lt;x&gt;" in page


def test_the_signature_is_hmac_sha256_of_timestamp_and_body() -> None:
    body = b'{"type":"digest"}'
    sig = signature("whsec_x", "1700000000", body)
    assert sig == "sha256=" + hmac.new(b"whsec_x", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("whsec_x", "1700000001", body) != sig  # the timestamp is signed: no replay with a new one


@pytest.mark.parametrize(
    "url", ["ftp://host/x", "file:///etc/passwd", "javascript:alert(1)", "gopher://h/", "http://", "//host/x",
            "http://user:pw@host/x"],
)  # fmt: skip
def test_only_http_and_https_urls_can_be_webhooks(url: str) -> None:
    with pytest.raises(ValueError):
        check_webhook_url(url)


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff_s(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert backoff_s(40) == RETRY_CAP_S


def test_the_smtp_password_is_in_no_repr() -> None:
    config = SmtpConfig.parse("smtps://anna:s%40cret@mail.example")
    assert (config.host, config.port, config.tls, config.user, config.password) == (
        "mail.example", 465, True, "anna", "s@cret"
    )  # fmt: skip
    assert "s@cret" not in repr(config) and "s%40cret" not in repr(config)


def test_a_cursor_moved_by_another_sender_queues_nothing(tmp_path: Path) -> None:
    notify = SQLiteNotifyStore(tmp_path / "notify.sqlite")
    try:
        notify.add_webhook("p", "http://127.0.0.1:1/", [IMAGE_CREATED], start_seq=5)
        assert notify.cursor("p") == 5
        assert notify.enqueue("p", 5, 9, [("webhook", "w", "{}")])
        assert not notify.enqueue("p", 5, 9, [("webhook", "w", "{}")])  # counted already: not twice
        assert notify.cursor("p") == 9 and len(notify.outbox("p")) == 1
    finally:
        notify.close()


def test_a_receiver_that_refuses_with_a_4xx_is_given_up_and_429_is_retried(tmp_path: Path) -> None:
    store, notify = SQLiteStore(tmp_path / "fotoflo.sqlite"), SQLiteNotifyStore(tmp_path / "notify.sqlite")
    notifier = Notifier(store, notify, interval_s=0.01)
    try:
        store.ensure_project("p")
        with webhook_receiver() as receiver:
            notify.add_webhook("p", receiver.url, [IMAGE_CREATED], start_seq=0)
            for status, state in ((410, FAILED), (429, PENDING), (408, PENDING), (503, PENDING), (204, DELIVERED)):
                receiver.status = status
                store.add_image(image_record(len(receiver.answered) + 1, "p"))
                notifier.queue_digests()  # opens the window
                time.sleep(0.02)
                notifier.queue_digests()
                notifier.deliver_due()
                assert notify.outbox("p")[0].state == state, (status, notify.outbox("p")[0])
            assert receiver.answered == [410, 429, 408, 503, 204]
            assert len(receiver.received) == 1
    finally:
        notifier.stop()
        notify.close()
        store.close()


# -- a real server: one digest per interval, to a webhook and by e-mail ---------------------------


def test_a_burst_gives_one_signed_webhook_digest_and_one_email(tmp_path: Path) -> None:
    with smtp_server() as mailbox, webhook_receiver() as receiver:
        env_smtp = mailbox.url
        with running_auth_server(
            tmp_path, extra_args=("--notify-interval-s", str(INTERVAL_S)), env={"FOTOFLO_SMTP": env_smtp}
        ) as auth:
            server = auth.server
            with auth.client("owner") as owner:
                made = owner.post(server.api("/webhooks"), json={"url": receiver.url})
                assert made.status_code == 201, made.text
                secret = made.json()["secret"]
                assert secret.startswith("whsec_") and "secret" not in owner.get(server.api("/webhooks")).text
                assert owner.post(server.api("/emails"), json={"address": "anna@studio.example"}).status_code == 201

                ids = new_images(owner, server, 12)
                link = make_link(owner, server)
                with guest(server, link, "Anna") as anna:
                    for image_id in ids[:5]:
                        assert anna.mark(image_id).status_code == 200
                    sent = anna.client.post(server.api("/favorites/submit"), headers=anna.csrf)
                    assert sent.status_code == 201, sent.text

                wait_until(lambda: receiver.received and mailbox.messages, timeout_s=INTERVAL_S * 4)
                time.sleep(INTERVAL_S * 1.5)  # a second interval passes: nothing more is sent
                assert len(receiver.received) == 1 and len(mailbox.messages) == 1

                body = verify(secret, receiver.received[0])
                assert body["counts"] == {IMAGE_CREATED: 12, FAVORITES_SUBMITTED: 1, COMMENT_CREATED: 0}
                assert body["summary"] == ["12 new images", "Anna sent 5 picks"]
                assert body["picks"][0]["by"] == "Anna" and body["project"] == server.project
                assert receiver.received[0].headers["x-fotoflo-delivery"]

                message = mailbox.messages[0]
                assert mailbox.recipients == [["anna@studio.example"]] and mailbox.logins == [mailbox.user]
                assert message["Subject"] == f"Fotoflo · {server.project}: 12 new images, Anna sent 5 picks"
                plain = message.get_body(("plain",))
                html = message.get_body(("html",))
                assert plain is not None and html is not None
                assert "- 12 new images" in plain.get_content() and "<li>Anna sent 5 picks</li>" in html.get_content()

            log = server.log()
            assert (mailbox.password not in log and "smtp://studio:[redacted]@" in log) or "studio:***@" in log
            assert "Traceback" not in log


# -- retries, and a restart between the outbox and the delivery ------------------------------------


def outbox(server: Server) -> list[Any]:
    notify = SQLiteNotifyStore(server.data / "notify.sqlite")
    try:
        return notify.outbox()
    finally:
        notify.close()


def test_a_receiver_down_at_first_gets_the_digest_and_a_restart_delivers_exactly_once(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    receiver = WebhookReceiver()  # not listening yet: connections are refused
    args = ("--notify-interval-s", "0.5")
    server = server_factory(extra_args=args)
    try:
        with checked_client() as owner:
            assert owner.post(server.api("/webhooks"), json={"url": receiver.url}).status_code == 201
            new_images(owner, server, 2)
            wait_until(lambda: [i for i in outbox(server) if i.attempts >= 2], timeout_s=15)  # tried, and again
            assert outbox(server)[0].state == PENDING
            receiver.start()
            wait_until(lambda: receiver.received, timeout_s=15)  # the next retry gets through
            first = json.loads(receiver.received[0].body)
            assert first["summary"] == ["2 new images"]

            # Queued, not delivered (the receiver answers 503), when the server stops.
            receiver.status = 503
            new_images(owner, server, 3)
            wait_until(lambda: 503 in receiver.answered, timeout_s=15)
        server.stop()
        receiver.status = 200
        assert len(receiver.received) == 1
        server = server_factory(data=server.data, port=server.port, extra_args=args)
        wait_until(lambda: len(receiver.received) == 2, timeout_s=15)
        time.sleep(2)  # nothing is sent twice, nothing counted again
        assert [json.loads(d.body)["summary"] for d in receiver.received] == [["2 new images"], ["3 new images"]]
        assert [i.state for i in outbox(server)] == [DELIVERED, DELIVERED]
    finally:
        receiver.stop()


# -- who may configure them; what is refused -----------------------------------------------------


def test_only_owners_manage_webhooks_and_non_http_urls_are_refused(tmp_path: Path) -> None:
    with running_auth_server(tmp_path) as auth:
        server = auth.server
        with auth.client("owner") as owner:
            for bad in ("ftp://example.com/x", "file:///etc/passwd", "javascript:alert(1)", 7):
                assert_json_error(owner.post(server.api("/webhooks"), json={"url": bad}), 400, "bad_argument")
            assert_json_error(
                owner.post(server.api("/webhooks"), json={"url": "http://h/", "events": ["image.deleted"]}), 400
            )
            made = owner.post(server.api("/webhooks"), json={"url": "http://127.0.0.1:9/x", "events": [IMAGE_CREATED]})
            hook = made.json()["webhook"]
            assert hook["events"] == [IMAGE_CREATED]
            for identity in ("editor", "client", "viewer", "outsider"):
                with auth.client(identity) as other:
                    assert other.get(server.api("/webhooks")).status_code == 403
                    assert other.post(server.api("/webhooks"), json={"url": "http://h/"}).status_code == 403
                    assert other.delete(server.api(f"/webhooks/{hook['id']}")).status_code == 403
            with auth.client("anonymous") as nobody:
                assert nobody.get(server.api("/webhooks")).status_code == 401
            assert owner.delete(server.api(f"/webhooks/{hook['id']}")).status_code == 200
            assert_json_error(owner.delete(server.api(f"/webhooks/{hook['id']}")), 404, "unknown_webhook")


def test_the_cli_adds_lists_and_removes_and_refuses_non_http(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = SQLiteStore(data)
    store.ensure_project("studio")
    store.close()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "dashboard.cli", *args, "--data", str(data)]
        return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=60)

    refused = cli("webhook", "add", "file:///etc/passwd", "--project", "studio")
    assert refused.returncode == 2 and "http:// or https://" in refused.stderr
    added = cli("webhook", "add", "https://hooks.example/x", "--project", "studio", "--events", "image.created")
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip()
    assert secret.startswith("whsec_")
    listed = cli("webhook", "list")
    assert "https://hooks.example/x" in listed.stdout and secret not in listed.stdout
    hook_id = listed.stdout.split()[0]
    assert cli("notify", "email", "add", "anna@studio.example", "--project", "studio").returncode == 0
    assert cli("notify", "email", "add", "not an address", "--project", "studio").returncode == 2
    assert "anna@studio.example" in cli("notify", "email", "list").stdout
    assert cli("webhook", "remove", hook_id).returncode == 0
    assert cli("webhook", "list").stdout == ""
    assert cli("webhook", "add", "https://h/x", "--project", "nope").returncode == 2
