"""Comments on images on SQLite, PostgreSQL and Supabase: each write with its `comment.*` entry, text cleaned and
refused alike, threads one level deep, resolving idempotent, deleting a thread with its replies, and an image's
deletion taking its comments along."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.events import COMMENT_CREATED, COMMENT_DELETED, COMMENT_UPDATED
from dashboard.store import (
    MAX_COMMENT_CHARS,
    Comments,
    InvalidValue,
    UnknownComment,
    UnknownImage,
    UnknownProject,
)
from dashboard.store.sqlite import _MIGRATIONS, SQLiteStore
from tests.support.records import image_record
from tests.support.services import StoreBackend

ANNA = {"author": "Anna", "author_key": "guest:s1:g1"}
OWNER = {"author": "the owner", "author_key": "token:t1"}


@pytest.fixture
def store(store_backend: StoreBackend) -> Iterator[SQLiteStore]:
    store = store_backend.open()
    assert isinstance(store, Comments)
    store.ensure_project("alpha")
    yield store  # type: ignore[misc]


#: Every store: SQLite, PostgreSQL, and Supabase (through the fake of its HTTP API).
STORES = pytest.mark.parametrize("store_backend", ["sqlite", "postgres", "supabase"], indirect=True)
_numbers = itertools.count()


def images(store: SQLiteStore, count: int) -> list[str]:
    return [store.add_image(image_record(next(_numbers), "alpha"))[0].id for _ in range(count)]


@STORES
def test_a_comment_is_stored_trimmed_with_its_entry(store: SQLiteStore) -> None:
    [a] = images(store, 1)
    before = store.last_seq("alpha")
    comment, change = store.add_comment("alpha", a, "  Lovely light,\r\n<b>crop</b> a little?  ", **ANNA)
    assert (comment.text, comment.author, comment.author_key) == ("Lovely light,\n<b>crop</b> a little?", "Anna",
                                                                   "guest:s1:g1")  # fmt: skip
    assert (comment.image_id, comment.project, comment.reply_to, comment.resolved) == (a, "alpha", None, False)
    assert change.kind == COMMENT_CREATED and change.seq == before + 1 == store.last_seq("alpha")
    assert change.data == comment.data() and "author_key" not in change.data
    assert store.changes("alpha", after=before)[0].data == change.data
    assert store.list_comments("alpha", a) == [comment]
    assert store.get_comment("alpha", a, comment.id) == comment
    assert store.get_comment("alpha", "other", comment.id) is None  # another image's id: not this comment


@STORES
def test_replies_thread_one_level_deep(store: SQLiteStore) -> None:
    a, b = images(store, 2)
    first, _ = store.add_comment("alpha", a, "Crop?", **ANNA)
    reply, _ = store.add_comment("alpha", a, "Yes", reply_to=first.id, **OWNER)
    deeper, _ = store.add_comment("alpha", a, "Thanks", reply_to=reply.id, **ANNA)
    assert reply.reply_to == deeper.reply_to == first.id  # a reply to a reply answers the thread
    assert [c.id for c in store.list_comments("alpha", a)] == [first.id, reply.id, deeper.id]  # as written
    with pytest.raises(InvalidValue, match="reply_to"):
        store.add_comment("alpha", b, "Elsewhere", reply_to=first.id, **ANNA)  # another image's comment
    with pytest.raises(InvalidValue, match="reply_to"):
        store.add_comment("alpha", a, "Nowhere", reply_to="nope", **ANNA)
    assert store.list_comments("alpha", b) == []
    assert store.comment_counts("alpha") == {a: 3}


@STORES
def test_bad_text_unknown_images_and_projects_are_refused(store: SQLiteStore) -> None:
    [a] = images(store, 1)
    for text, message in ((" \n ", "empty"), ("x" * (MAX_COMMENT_CHARS + 1), "at most 2000"),
                          ("bell\x07", "control"), (None, "string")):  # fmt: skip
        with pytest.raises(InvalidValue, match=message):
            store.add_comment("alpha", a, text, **ANNA)  # type: ignore[arg-type]
    longest, _ = store.add_comment("alpha", a, "y" * MAX_COMMENT_CHARS + "  ", **ANNA)
    assert len(longest.text) == MAX_COMMENT_CHARS
    with pytest.raises(UnknownImage):
        store.add_comment("alpha", "nope", "Hi", **ANNA)
    with pytest.raises(UnknownProject):
        store.add_comment("beta", a, "Hi", **ANNA)
    with pytest.raises(UnknownImage):
        store.list_comments("alpha", "nope")
    with pytest.raises(UnknownProject):
        store.comment_counts("beta")


@STORES
def test_resolving_is_idempotent_and_each_change_is_one_entry(store: SQLiteStore) -> None:
    [a] = images(store, 1)
    comment, _ = store.add_comment("alpha", a, "Too dark", **ANNA)
    resolved, change = store.resolve_comment("alpha", a, comment.id, resolved=True)
    assert resolved.resolved and change is not None and change.kind == COMMENT_UPDATED
    assert change.data == {**comment.data(), "resolved": True}
    assert store.resolve_comment("alpha", a, comment.id, resolved=True) == (resolved, None)
    reopened, change = store.resolve_comment("alpha", a, comment.id, resolved=False)
    assert not reopened.resolved and change is not None and change.data["resolved"] is False
    assert store.list_comments("alpha", a) == [reopened]
    with pytest.raises(UnknownComment):
        store.resolve_comment("alpha", a, "nope", resolved=True)


@STORES
def test_deleting_a_comment_takes_its_replies(store: SQLiteStore) -> None:
    a, b = images(store, 2)
    first, _ = store.add_comment("alpha", a, "Crop?", **ANNA)
    reply, _ = store.add_comment("alpha", a, "Yes", reply_to=first.id, **OWNER)
    other, _ = store.add_comment("alpha", a, "Another thread", **ANNA)
    on_b, _ = store.add_comment("alpha", b, "Nice", **ANNA)
    gone, change = store.delete_comment("alpha", a, first.id)
    assert gone == first and change.kind == COMMENT_DELETED
    assert change.data == {"id": first.id, "image_id": a, "ids": [first.id, reply.id]}
    assert store.list_comments("alpha", a) == [other]
    _, change = store.delete_comment("alpha", a, other.id)
    assert change.data["ids"] == [other.id]
    with pytest.raises(UnknownComment):
        store.delete_comment("alpha", a, first.id)
    with pytest.raises(UnknownComment):
        store.delete_comment("alpha", a, on_b.id)  # not this image's
    assert store.comment_counts("alpha") == {b: 1}


@STORES
def test_deleting_an_image_forgets_its_comments(store: SQLiteStore) -> None:
    a, b = images(store, 2)
    first, _ = store.add_comment("alpha", a, "Crop?", **ANNA)
    store.add_comment("alpha", a, "Yes", reply_to=first.id, **OWNER)
    store.add_comment("alpha", b, "Nice", **ANNA)
    store.delete_image("alpha", a)
    assert store.comment_counts("alpha") == {b: 1}


def test_a_v5_sqlite_database_gets_the_comments_table(tmp_path: Path) -> None:
    path = tmp_path / "old" / "fotoflo.sqlite"
    path.parent.mkdir()
    conn = sqlite3.connect(path)
    try:
        for version in range(1, 6):
            for statement in _MIGRATIONS[version]:
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 5")
        conn.commit()
    finally:
        conn.close()
    store = SQLiteStore(path)
    try:
        store.ensure_project("alpha")
        [a] = images(store, 1)
        store.add_comment("alpha", a, "Hello", **ANNA)
        assert [c.text for c in store.list_comments("alpha", a)] == ["Hello"]
    finally:
        store.close()
