"""The notifications' store on SQLite (`DATA/notify.sqlite`) and on PostgreSQL (the `notify_*` tables of `--db`),
and two servers on one PostgreSQL database: one digest, sent by whichever holds the lock."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from dashboard.events import IMAGE_CREATED
from dashboard.notify.notifier import LOCK_KEY, Notifier
from dashboard.notify.store import DELIVERED, FAILED, PENDING, NotifyStore, SQLiteNotifyStore
from dashboard.store.postgres import PostgresStore
from tests.support.notify import webhook_receiver
from tests.support.records import image_record
from tests.support.waiting import wait_until


@pytest.fixture(params=["sqlite", "postgres"])
def notify(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NotifyStore]:
    if request.param == "sqlite":
        store: NotifyStore = SQLiteNotifyStore(tmp_path_factory.mktemp("notify") / "notify.sqlite")
    else:
        from dashboard.notify.postgres import PostgresNotifyStore

        store = PostgresNotifyStore(request.getfixturevalue("pg_url"))
    yield store
    store.close()


def test_webhooks_and_recipients_are_kept_per_project(notify: NotifyStore) -> None:
    hook, secret = notify.add_webhook("p", "https://hooks.example/a", [IMAGE_CREATED], start_seq=3)
    notify.add_webhook("q", "https://hooks.example/b", [IMAGE_CREATED], start_seq=0)
    assert secret.startswith("whsec_") and notify.get_webhook(hook.id) == hook
    assert [(h.url, h.events) for h in notify.webhooks("p")] == [("https://hooks.example/a", (IMAGE_CREATED,))]
    assert notify.add_email("p", "anna@studio.example", start_seq=3)
    assert not notify.add_email("p", "anna@studio.example", start_seq=3)  # already one
    assert notify.emails("p") == [("p", "anna@studio.example")]
    assert sorted(notify.targeted_projects()) == ["p", "q"]
    assert notify.cursor("p") == 3  # a new target hears what comes after it, not the past
    assert notify.remove_email("p", "anna@studio.example") and not notify.remove_email("p", "anna@studio.example")
    notify.remove_webhook(hook.id)
    assert notify.get_webhook(hook.id) is None and notify.targeted_projects() == ["q"]


def test_the_cursor_moves_once_and_each_item_keeps_its_state(notify: NotifyStore) -> None:
    notify.add_webhook("p", "https://hooks.example/a", [IMAGE_CREATED], start_seq=0)
    items = [("webhook", "w1", '{"n": 1}'), ("email", "anna@studio.example", '{"n": 1}')]
    assert notify.enqueue("p", 0, 4, items)
    assert not notify.enqueue("p", 0, 4, items)  # another sender counted them: nothing twice
    assert notify.cursor("p") == 4
    now = time.time()
    first, second = notify.due(now + 1)
    assert {first.target, second.target} == {"w1", "anna@studio.example"} and first.state == PENDING
    notify.retry(first.id, attempts=1, next_at=now + 60, error="answered 503")
    assert [i.id for i in notify.due(now + 1)] == [second.id]  # waits its turn
    assert [i.id for i in notify.due(now + 61)] == [first.id, second.id]
    notify.delivered(first.id, now + 61)
    notify.failed(second.id, attempts=1, error="answered 410", now_s=now + 61)
    states = {i.id: (i.state, i.attempts, i.last_error) for i in notify.outbox("p")}
    assert states == {first.id: (DELIVERED, 2, None), second.id: (FAILED, 1, "answered 410")}
    assert notify.due(now + 3600) == []


def test_two_servers_on_one_database_send_each_digest_once(pg_url: str) -> None:
    from dashboard.notify.postgres import PostgresNotifyStore

    stores = [PostgresStore(pg_url) for _ in range(2)]
    notifies = [PostgresNotifyStore(pg_url) for _ in range(2)]
    stores[0].ensure_project("p")
    with webhook_receiver() as receiver:
        notifies[0].add_webhook("p", receiver.url, [IMAGE_CREATED], start_seq=0)
        senders = [
            Notifier(store, notify, interval_s=0.3, lock=store.advisory_lock(LOCK_KEY))
            for store, notify in zip(stores, notifies, strict=True)
        ]
        try:
            for sender in senders:
                sender.start()
            for seq in range(1, 4):
                stores[0].add_image(image_record(seq, "p"))
            wait_until(lambda: len(receiver.received) == 1, timeout_s=15)
            time.sleep(1.5)  # five intervals more: the other server sends nothing
            assert len(receiver.received) == 1
            assert json.loads(receiver.received[0].body)["summary"] == ["3 new images"]

            # The sender stops; the other takes the lock over and goes on from the cursor.
            leader = next(s for s in senders if s._lock is not None and s._lock.held())
            leader.stop()
            for seq in range(4, 6):
                stores[1].add_image(image_record(seq, "p"))
            wait_until(lambda: len(receiver.received) == 2, timeout_s=15)
            assert json.loads(receiver.received[1].body)["summary"] == ["2 new images"]
        finally:
            for sender in senders:
                sender.stop()
            for closable in (*notifies, *stores):
                closable.close()
