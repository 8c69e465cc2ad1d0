"""The `Store` contract, on SQLite and PostgreSQL: images plus a per-project, gap-free change feed that
survives restarts."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dashboard.events import IMAGE_CREATED, ImageRecord, change_from_json, to_json
from dashboard.store import Store, UnknownProject
from dashboard.store.sqlite import SQLiteStore
from tests.services import StoreBackend

RecordFactory = Callable[..., ImageRecord]


@pytest.fixture
def store(store_backend: StoreBackend) -> Iterator[Store]:
    """A store on a fresh database of each backend (`tests/services.py`)."""
    store = store_backend.open()
    for project in ("alpha", "beta"):
        store.ensure_project(project)
    yield store


@pytest.fixture
def make_record() -> RecordFactory:
    """Image records with distinct ids; `content` decides the sha256 (same content → same sha)."""
    counter = iter(range(10**9))

    def make(project: str = "alpha", content: str | None = None, **overrides: object) -> ImageRecord:
        n = next(counter)
        fields: dict[str, object] = {
            "id": f"img{n:06d}",
            "project": project,
            "filename": f"IMG_{n:04d}.jpg",
            "sha256": hashlib.sha256((content if content is not None else f"bytes {n}").encode()).hexdigest(),
            "size_bytes": 1000 + n,
            "width": 6000,
            "height": 4000,
            "format": "JPEG",
            "mime": "image/jpeg",
            "captured_at": "2024-05-17T14:03:09",
            "camera_make": "Canon",
            "camera_model": "EOS R5",
            "created_at": f"2024-05-17T14:03:{n % 60:02d}.000Z",
            "exif": {"iso": 400, "f_number": 2.8, "lens": "RF 50mm F1.2"},
        }
        fields.update(overrides)
        return ImageRecord(**fields)  # type: ignore[arg-type]

    return make


def add(store: Store, record: ImageRecord) -> ImageRecord:
    stored, change = store.add_image(record)
    assert change is not None, "expected a new image"
    return stored


# -- sequence numbers -------------------------------------------------------------------------


def test_each_project_counts_its_own_gap_free_sequence(store: Store, make_record: RecordFactory) -> None:
    seqs: dict[str, list[int]] = {"alpha": [], "beta": []}
    for project in ["alpha", "beta", "alpha", "alpha", "beta", "alpha", "beta", "alpha"]:
        seqs[project].append(add(store, make_record(project)).seq)

    assert seqs == {"alpha": [1, 2, 3, 4, 5], "beta": [1, 2, 3]}
    assert [c.seq for c in store.changes("alpha")] == [1, 2, 3, 4, 5]
    assert [c.seq for c in store.changes("beta")] == [1, 2, 3]
    assert (store.last_seq("alpha"), store.last_seq("beta")) == (5, 3)
    assert (store.count_images("alpha"), store.count_images("beta")) == (5, 3)


def test_a_new_project_starts_empty(store: Store) -> None:
    store.ensure_project("gamma")
    store.ensure_project("gamma")  # idempotent

    assert store.projects() == ["alpha", "beta", "gamma"]
    assert store.last_seq("gamma") == 0
    assert store.changes("gamma") == []
    assert store.list_images("gamma") == []
    assert store.count_images("gamma") == 0


def test_the_feed_entry_carries_the_stored_image(store: Store, make_record: RecordFactory) -> None:
    record = make_record()

    stored, change = store.add_image(record)

    assert stored == record.with_seq(1)
    assert change is not None
    assert (change.project, change.seq, change.kind, change.image) == ("alpha", 1, IMAGE_CREATED, stored)
    [from_feed] = store.changes("alpha")
    assert from_feed == change
    assert change_from_json(to_json(from_feed)) == change
    assert store.get_image(record.id) == stored
    assert store.find_by_sha("alpha", record.sha256) == stored


def test_concurrent_writers_get_distinct_gap_free_seqs(store: Store, make_record: RecordFactory) -> None:
    records = [make_record("alpha") for _ in range(40)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        stored = list(pool.map(lambda r: add(store, r), records))

    assert sorted(s.seq for s in stored) == list(range(1, 41))
    assert [c.seq for c in store.changes("alpha")] == list(range(1, 41))
    assert {c.image.id for c in store.changes("alpha") if c.image} == {r.id for r in records}


def test_two_stores_on_one_database_share_one_sequence(
    store: Store, store_backend: StoreBackend, make_record: RecordFactory
) -> None:
    # e.g. `fotoflo ingest` in a terminal while `fotoflo serve` runs on the same data directory,
    # or two servers on one PostgreSQL
    other = store_backend.open()
    seqs = [add(s, make_record("alpha")).seq for s in (store, other, other, store, other)]
    assert seqs == [1, 2, 3, 4, 5]
    assert [c.seq for c in store.changes("alpha")] == [1, 2, 3, 4, 5]
    assert other.last_seq("alpha") == 5


def test_two_stores_racing_on_one_database_get_distinct_gap_free_seqs(
    store: Store, store_backend: StoreBackend, make_record: RecordFactory
) -> None:
    stores = [store, store_backend.open(), store_backend.open()]
    records = [make_record("alpha") for _ in range(30)]

    with ThreadPoolExecutor(max_workers=6) as pool:
        stored = list(pool.map(lambda n: add(stores[n % 3], records[n]), range(30)))

    assert sorted(s.seq for s in stored) == list(range(1, 31))
    assert [c.seq for c in stores[1].changes("alpha")] == list(range(1, 31))


# -- paging -----------------------------------------------------------------------------------


def test_changes_pages_with_after_and_limit(store: Store, make_record: RecordFactory) -> None:
    ids = [add(store, make_record()).id for _ in range(7)]

    assert [c.seq for c in store.changes("alpha", after=2, limit=3)] == [3, 4, 5]
    assert [c.seq for c in store.changes("alpha", after=6)] == [7]
    assert store.changes("alpha", after=7) == []

    seen: list[str] = []
    cursor = 0
    while page := store.changes("alpha", after=cursor, limit=3):
        assert len(page) <= 3
        seen += [c.image.id for c in page if c.image]
        cursor = page[-1].seq
    assert seen == ids


def test_list_images_pages_newest_first(store: Store, make_record: RecordFactory) -> None:
    ids = [add(store, make_record()).id for _ in range(7)]
    add(store, make_record("beta"))  # another project's images never show up

    first = store.list_images("alpha", limit=3)
    assert [i.seq for i in first] == [7, 6, 5]
    assert [i.seq for i in store.list_images("alpha", before=first[-1].seq, limit=3)] == [4, 3, 2]
    assert [i.seq for i in store.list_images("alpha", before=2, limit=3)] == [1]
    assert store.list_images("alpha", before=1) == []

    seen: list[str] = []
    before: int | None = None
    while page := store.list_images("alpha", before=before, limit=2):
        seen += [i.id for i in page]
        before = page[-1].seq
    assert seen == ids[::-1]


def test_paging_is_stable_while_images_arrive(store: Store, make_record: RecordFactory) -> None:
    for _ in range(4):
        add(store, make_record())
    first = store.list_images("alpha", limit=2)
    add(store, make_record())  # arrives between two page loads

    second = store.list_images("alpha", before=first[-1].seq, limit=2)

    assert [i.seq for i in first + second] == [4, 3, 2, 1]


# -- idempotence ------------------------------------------------------------------------------


def test_adding_the_same_bytes_again_returns_the_existing_image(store: Store, make_record: RecordFactory) -> None:
    original = add(store, make_record(content="one photo"))
    add(store, make_record(content="another photo"))

    again, change = store.add_image(make_record(content="one photo", filename="copy of it.jpg"))

    assert change is None
    assert again == original
    assert store.count_images("alpha") == 2
    assert store.last_seq("alpha") == 2
    assert [c.seq for c in store.changes("alpha")] == [1, 2]
    assert add(store, make_record(content="a third photo")).seq == 3  # no seq was burnt


def test_the_same_bytes_in_another_project_is_a_separate_image(store: Store, make_record: RecordFactory) -> None:
    in_alpha = add(store, make_record("alpha", content="shared photo"))
    add(store, make_record("alpha"))

    in_beta = add(store, make_record("beta", content="shared photo"))

    assert in_beta.id != in_alpha.id
    assert in_beta.sha256 == in_alpha.sha256
    assert (in_beta.project, in_beta.seq) == ("beta", 1)
    assert store.find_by_sha("alpha", in_alpha.sha256) == in_alpha
    assert store.find_by_sha("beta", in_alpha.sha256) == in_beta
    assert store.count_images("alpha") == 2


def test_racing_adds_of_the_same_bytes_store_one_image(store: Store, make_record: RecordFactory) -> None:
    copies = [make_record(content="uploaded from three tabs") for _ in range(6)]
    start = threading.Barrier(len(copies))

    def racer(record: ImageRecord) -> bool:
        start.wait()
        return store.add_image(record)[1] is not None

    with ThreadPoolExecutor(max_workers=len(copies)) as pool:
        created = list(pool.map(racer, copies))

    assert created.count(True) == 1
    assert store.count_images("alpha") == 1
    assert [c.seq for c in store.changes("alpha")] == [1]


# -- unknown projects -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "read",
    [
        lambda s: s.list_images("nope"),
        lambda s: s.count_images("nope"),
        lambda s: s.changes("nope"),
        lambda s: s.last_seq("nope"),
    ],
    ids=["list_images", "count_images", "changes", "last_seq"],
)
def test_reading_an_unknown_project_raises(store: Store, read: Callable[[Store], object]) -> None:
    with pytest.raises(UnknownProject, match="nope"):
        read(store)


def test_unknown_project_lookups(store: Store, make_record: RecordFactory) -> None:
    record = add(store, make_record())

    assert not store.has_project("nope")
    assert store.find_by_sha("nope", record.sha256) is None
    assert store.get_image("no-such-id") is None
    assert "nope" not in store.projects()


# -- durability -------------------------------------------------------------------------------


def test_the_sqlite_database_is_in_wal_mode(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "fotoflo.sqlite")
    try:
        with sqlite3.connect(store.path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        store.close()


def test_data_survives_reopening(store: Store, store_backend: StoreBackend, make_record: RecordFactory) -> None:
    stored = [add(store, make_record(p)) for p in ("alpha", "alpha", "beta", "alpha")]
    feed = store.changes("alpha")
    store.close()

    reopened = store_backend.open()  # SQLite: a data directory opens its fotoflo.sqlite
    try:
        assert reopened.projects() == ["alpha", "beta"]
        assert [reopened.get_image(s.id) for s in stored] == stored
        assert reopened.changes("alpha") == feed
        assert reopened.list_images("alpha") == [stored[3], stored[1], stored[0]]
        assert (reopened.last_seq("alpha"), reopened.last_seq("beta")) == (3, 1)
        assert reopened.add_image(make_record("alpha"))[0].seq == 4
        assert reopened.add_image(make_record("alpha", content=None, sha256=stored[0].sha256))[1] is None
    finally:
        reopened.close()
