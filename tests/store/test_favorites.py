"""Favourites per person on SQLite, PostgreSQL and Supabase: idempotent marks with their `favorite.changed` entries,
lists per person, a submitted selection as a collection, and an image's deletion taking its marks along."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.events import COLLECTION_SAVED, FAVORITE_CHANGED, FAVORITES_SUBMITTED
from dashboard.store import Favorites, InvalidValue, UnknownImage, UnknownProject
from dashboard.store.sqlite import _MIGRATIONS, SQLiteStore
from tests.support.records import image_record
from tests.support.services import StoreBackend

ANNA = {"by": "Anna", "by_key": "guest:s1:g1"}
BEN = {"by": "Ben", "by_key": "token:t1"}


@pytest.fixture
def store(store_backend: StoreBackend) -> Iterator[SQLiteStore]:
    store = store_backend.open()
    assert isinstance(store, Favorites)
    store.ensure_project("alpha")
    yield store  # type: ignore[misc]


#: Every store: SQLite, PostgreSQL, and Supabase (through the fake of its HTTP API).
STORES = pytest.mark.parametrize("store_backend", ["sqlite", "postgres", "supabase"], indirect=True)
_numbers = itertools.count()


def images(store: SQLiteStore, count: int) -> list[str]:
    return [store.add_image(image_record(next(_numbers), "alpha"))[0].id for _ in range(count)]


@STORES
def test_a_mark_and_an_unmark_are_idempotent_and_each_change_is_one_feed_entry(store: SQLiteStore) -> None:
    [a] = images(store, 1)
    before = store.last_seq("alpha")
    favorite, change = store.set_favorite("alpha", a, favorite=True, **ANNA)
    assert favorite is not None and (favorite.image_id, favorite.by, favorite.by_key) == (a, "Anna", "guest:s1:g1")
    assert change is not None and change.kind == FAVORITE_CHANGED and change.seq == before + 1
    assert change.data == {"image_id": a, "by": "Anna", "favorite": True}
    again, none = store.set_favorite("alpha", a, favorite=True, **ANNA)
    assert none is None and again == favorite  # kept as it was, with its time
    assert store.last_seq("alpha") == before + 1

    gone, change = store.set_favorite("alpha", a, favorite=False, **ANNA)
    assert gone is None and change is not None and change.data == {"image_id": a, "by": "Anna", "favorite": False}
    assert store.set_favorite("alpha", a, favorite=False, **ANNA) == (None, None)
    assert [c.kind for c in store.changes("alpha", after=before)] == [FAVORITE_CHANGED, FAVORITE_CHANGED]


@STORES
def test_favorites_are_per_person(store: SQLiteStore) -> None:
    a, b = images(store, 2)
    store.set_favorite("alpha", b, favorite=True, **ANNA)
    store.set_favorite("alpha", a, favorite=True, **ANNA)
    store.set_favorite("alpha", b, favorite=True, **BEN)
    store.set_favorite("alpha", a, favorite=False, **BEN)  # never marked by Ben: nothing
    everyone = store.list_favorites("alpha")
    assert [(f.image_id, f.by) for f in everyone] == [(b, "Anna"), (a, "Anna"), (b, "Ben")]  # as marked
    assert [f.image_id for f in store.list_favorites("alpha", by_key="guest:s1:g1")] == [b, a]
    assert [(f.image_id, f.by_key) for f in store.list_favorites("alpha", by="Ben")] == [(b, "token:t1")]
    assert store.list_favorites("alpha", by="Nobody") == []


@STORES
def test_unknown_images_projects_and_names_are_refused(store: SQLiteStore) -> None:
    [a] = images(store, 1)
    with pytest.raises(UnknownImage):
        store.set_favorite("alpha", "nope", favorite=True, **ANNA)
    with pytest.raises(UnknownProject):
        store.set_favorite("beta", a, favorite=True, **ANNA)
    with pytest.raises(UnknownProject):
        store.list_favorites("beta")
    with pytest.raises(InvalidValue):
        store.set_favorite("alpha", a, favorite=True, by=" ", by_key="k")
    assert store.list_favorites("alpha") == []


@STORES
def test_a_submitted_selection_is_a_collection_and_an_entry(store: SQLiteStore) -> None:
    a, b, c = images(store, 3)
    collection, changes = store.submit_favorites("alpha", "Picks by Anna", [b, a, b], by="Anna")
    assert (collection.name, collection.image_ids) == ("Picks by Anna", (b, a))
    assert [ch.kind for ch in changes] == [COLLECTION_SAVED, FAVORITES_SUBMITTED]
    assert changes[0].data["op"] == "save" and changes[0].data["by"] == "Anna"
    assert changes[1].data == {"by": "Anna", "collection_id": collection.id, "count": 2}
    assert changes[1].seq == changes[0].seq + 1 == store.last_seq("alpha")
    again, _ = store.submit_favorites("alpha", "Picks by Anna", [c], by="Anna")
    assert again.name == "Picks by Anna (2)"  # a second submission is a second collection
    with pytest.raises(UnknownImage):
        store.submit_favorites("alpha", "Picks by Anna", ["nope"], by="Anna")


@STORES
def test_deleting_an_image_forgets_its_favorites(store: SQLiteStore) -> None:
    a, b = images(store, 2)
    store.set_favorite("alpha", a, favorite=True, **ANNA)
    store.set_favorite("alpha", b, favorite=True, **BEN)
    store.delete_image("alpha", a)
    assert [f.image_id for f in store.list_favorites("alpha")] == [b]


def test_a_v4_sqlite_database_gets_the_favorites_table(tmp_path: Path) -> None:
    path = tmp_path / "old" / "fotoflo.sqlite"
    path.parent.mkdir()
    conn = sqlite3.connect(path)
    try:
        for version in range(1, 5):
            for statement in _MIGRATIONS[version]:
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 4")
        conn.commit()
    finally:
        conn.close()
    store = SQLiteStore(path)
    try:
        store.ensure_project("alpha")
        [a] = images(store, 1)
        store.set_favorite("alpha", a, favorite=True, **ANNA)
        assert [f.by for f in store.list_favorites("alpha")] == ["Anna"]
    finally:
        store.close()
