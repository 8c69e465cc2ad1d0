"""The `Store` contract, on SQLite and PostgreSQL: images plus a per-project, gap-free change feed that
survives restarts."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dashboard.events import (
    IMAGE_CREATED,
    IMAGE_UPDATED,
    PAIRED_JPEG,
    PAIRED_RAW,
    PREVIEW_MADE,
    ImageRecord,
    change_from_json,
    to_json,
)
from dashboard.store import CONFLICT, UPDATED, ImageFilters, InvalidValue, Store, UnknownProject
from dashboard.store.sqlite import SQLiteStore
from tests.support.records import CANON_R5, image_record
from tests.support.services import StoreBackend

RecordFactory = Callable[..., ImageRecord]


@pytest.fixture
def store(store_backend: StoreBackend) -> Iterator[Store]:
    """A store on a fresh database of each backend (`tests/support/services.py`)."""
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
            **CANON_R5,
            "width": 6000,
            "height": 4000,
            "created_at": f"2024-05-17T14:03:{n % 60:02d}.000Z",
            "exif": {"iso": 400, "f_number": 2.8, "lens": "RF 50mm F1.2"},
            **overrides,
        }
        return image_record(n, project, content=content, **fields)

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


def test_a_preview_made_later_is_one_image_updated_entry_with_the_image_unchanged(
    store: Store, make_record: RecordFactory
) -> None:
    image = add(store, make_record())
    change = store.announce_preview("alpha", image.id, image.sha256)
    assert change is not None
    assert (change.kind, change.seq, change.image, change.data) == (IMAGE_UPDATED, image.seq + 1, image, PREVIEW_MADE)
    assert store.changes("alpha", after=image.seq) == [change]
    assert store.get_image(image.id) == image
    # Bytes that are no longer (or never were) the image's, an unknown image: nothing is written.
    assert store.announce_preview("alpha", image.id, "0" * 64) is None
    assert store.announce_preview("alpha", "no-such-image", image.sha256) is None
    assert store.last_seq("alpha") == change.seq
    with pytest.raises(UnknownProject):
        store.announce_preview("nowhere", image.id, image.sha256)


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


# -- RAW + JPEG pairs (dashboard/pairs.py) -----------------------------------------------------

KEY = "shoot/img_0001"


def raw_record(make_record: RecordFactory, content: str = "the raw", **more: object) -> ImageRecord:
    return make_record(
        content=content, filename="IMG_0001.CR3", format="CR3", mime="image/x-canon-cr3", size_bytes=30_000_000, **more
    )


def test_a_raw_joins_its_jpeg_as_its_second_file(store: Store, make_record: RecordFactory) -> None:
    jpeg, change = store.add_image(make_record(content="the jpeg", filename="IMG_0001.JPG"), pair_key=KEY)
    assert change is not None and change.kind == IMAGE_CREATED

    raw = raw_record(make_record)
    paired, change = store.add_image(raw, pair_key=KEY)

    assert change is not None
    assert (change.kind, change.data, change.seq, change.image) == (IMAGE_UPDATED, PAIRED_RAW, 2, paired)
    assert (paired.id, paired.seq, paired.sha256, paired.version) == (jpeg.id, jpeg.seq, jpeg.sha256, 1)
    assert (paired.raw_sha256, paired.raw_filename, paired.raw_size_bytes, paired.raw_format) == (
        raw.sha256, "IMG_0001.CR3", 30_000_000, "CR3"
    )  # fmt: skip
    assert store.list_images("alpha") == [paired]
    assert store.count_images("alpha") == 1
    assert store.find_by_sha("alpha", raw.sha256) == paired
    assert store.add_image(raw_record(make_record), pair_key=KEY) == (paired, None)  # sent again: nothing
    assert store.add_image(make_record(content="the jpeg"), pair_key=KEY) == (paired, None)


def test_a_jpeg_joins_its_raw_as_the_shown_file_of_the_same_image(store: Store, make_record: RecordFactory) -> None:
    raw, _ = store.add_image(raw_record(make_record), pair_key=KEY)
    store.set_rating("alpha", raw.id, rating=3, label="green")

    jpeg = make_record(content="the jpeg", filename="img_0001.jpg")
    paired, change = store.add_image(jpeg, pair_key=KEY)

    assert change is not None and (change.kind, change.data, change.image) == (IMAGE_UPDATED, PAIRED_JPEG, paired)
    assert (paired.id, paired.seq, paired.rating, paired.label) == (raw.id, raw.seq, 3, "green")
    assert (paired.sha256, paired.filename, paired.format, paired.version) == (jpeg.sha256, "img_0001.jpg", "JPEG", 2)
    assert (paired.raw_sha256, paired.raw_filename, paired.raw_format) == (raw.sha256, "IMG_0001.CR3", "CR3")
    assert store.get_image(raw.id) == paired
    assert [v.sha256 for v in store.image_versions("alpha", raw.id)] == [raw.sha256, jpeg.sha256]
    assert store.add_image(raw_record(make_record), pair_key=KEY) == (paired, None)
    # A new version of the JPEG (an edit synced back) keeps the RAW beside it.
    edit = make_record(content="the jpeg, edited", filename="img_0001.jpg")
    result = store.add_version("alpha", raw.id, edit, base_sha256=jpeg.sha256)
    assert (result.image.version, result.image.raw_sha256) == (3, raw.sha256)
    assert store.get_image(raw.id) == result.image


def test_files_that_are_no_pair_stay_images_of_their_own(store: Store, make_record: RecordFactory) -> None:
    store.add_image(raw_record(make_record), pair_key=KEY)
    other_capture = make_record(
        content="an old jpeg", captured_at="2019-01-01T10:00:00", created_at="2026-01-01T10:00:00.000Z"
    )  # the camera's counter came round again, and it arrived long after
    for record, key in [
        (make_record(content="a jpeg"), "other/img_0001"),  # another folder
        (raw_record(make_record, "another raw"), KEY),  # two RAWs are no pair
        (other_capture, KEY),
    ]:
        _, change = store.add_image(record, pair_key=key)
        assert change is not None and change.kind == IMAGE_CREATED

    assert store.count_images("alpha") == 4
    assert all(i.raw_sha256 is None for i in store.list_images("alpha"))


def test_racing_files_of_a_pair_make_one_image(store: Store, make_record: RecordFactory) -> None:
    files = [raw_record(make_record), make_record(content="the jpeg", filename="IMG_0001.JPG")]
    start = threading.Barrier(len(files))

    def racer(record: ImageRecord) -> str:
        start.wait()
        return store.add_image(record, pair_key=KEY)[1].kind  # type: ignore[union-attr]

    with ThreadPoolExecutor(max_workers=len(files)) as pool:
        kinds = sorted(pool.map(racer, files))

    assert kinds == [IMAGE_CREATED, IMAGE_UPDATED]
    (image,) = store.list_images("alpha")
    assert (image.format, image.raw_format) == ("JPEG", "CR3")


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


# -- reading records back, filters -------------------------------------------------------------


def test_every_reader_gives_the_image_as_stored(store: Store, make_record: RecordFactory) -> None:
    exif = {"lens": "XF 33mm F1.4", "iso": 3200, "exposure_time": "1/250", "tags": ["a", {"b": [1, 2]}], "é": "ü"}
    plain = add(store, make_record(exif={}, camera_make=None, camera_model=None))
    rich = add(store, make_record(exif=exif, rating=4, flag="pick", label="blue"))
    rated, _ = store.set_rating("alpha", plain.id, rating=2, flag="reject", label="red")
    for image in (rated, rich):
        assert store.get_image(image.id) == image
        assert store.find_by_sha("alpha", image.sha256) == image
    assert store.get_images("alpha", [rich.id, plain.id]) == [rich, rated]
    assert store.list_images("alpha") == [rich, rated]
    assert [c.image for c in store.changes("alpha") if c.image] == [rated, rich]  # each as it is now
    got = store.get_image(rich.id)
    assert got is not None and got.exif == exif and ImageRecord.from_dict(got.to_dict()) == rich
    got.to_dict()["exif"]["tags"].append("x")  # a caller's copy: the record stays as read
    assert got.exif == exif


def test_the_count_follows_every_add_and_delete(store: Store, make_record: RecordFactory) -> None:
    a, b = add(store, make_record()), add(store, make_record())
    add(store, make_record("beta"))
    assert (store.count_images("alpha"), store.count_images("beta")) == (2, 1)
    assert store.add_image(make_record(sha256=a.sha256))[1] is None  # the same bytes: nothing added
    assert store.add_version("alpha", a.id, make_record(content="edit 1"), base_sha256=a.sha256).outcome == UPDATED
    assert store.count_images("alpha") == 2
    # Both sides edited the first bytes: the version replaced stays as a new image, a conflict copy.
    conflict = store.add_version("alpha", a.id, make_record(content="edit 2"), base_sha256=a.sha256)
    assert conflict.outcome == CONFLICT and store.count_images("alpha") == 3
    store.delete_image("alpha", b.id)
    assert store.count_images("alpha") == 2 == len(store.list_images("alpha"))
    assert (store.count_images("beta"), store.count_images("alpha", min_rating=0)) == (1, 2)


def test_image_filters() -> None:
    assert ImageFilters().conditions() == []
    both = ImageFilters(min_rating=3, label="green")
    assert both.conditions() == [("rating", ">=", 3), ("label", "=", "green")]
    assert ImageFilters(0, "pick", "red").conditions() == [
        ("rating", ">=", 0),
        ("flag", "=", "pick"),
        ("label", "=", "red"),
    ]
    image = ImageRecord("i", "p", "a.jpg", "0" * 64, 1, 1, 1, "JPEG", "image/jpeg", "", None, None, "", rating=3)
    assert both.passes(replace(image, label="green")) and not both.passes(image)
    assert not both.passes(replace(image, label="green", rating=2)) and ImageFilters().passes(image)
    for bad in ({"min_rating": 6}, {"min_rating": True}, {"flag": "maybe"}, {"label": "pink"}):
        with pytest.raises(InvalidValue):
            ImageFilters(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"min_rating": 6}, "rating must be an integer from 0 to 5, not 6"),
        ({"flag": "maybe"}, "flag must be one of none, pick, reject, not 'maybe'"),
        ({"label": "pink"}, "label must be one of none, red, yellow, green, blue, purple, not 'pink'"),
    ],
)
def test_every_store_refuses_a_bad_filter_alike(store: Store, filters: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidValue) as listing:
        store.list_images("alpha", **filters)
    with pytest.raises(InvalidValue) as counting:
        store.count_images("alpha", **filters)
    assert str(listing.value) == str(counting.value) == message


def test_filters_combine_in_lists_and_counts(store: Store, make_record: RecordFactory) -> None:
    images = [add(store, make_record()) for _ in range(6)]
    for image, (rating, flag, label) in zip(
        images,
        [(5, "pick", "red"), (3, "pick", "none"), (4, "reject", "red"), (0, "pick", "red"), (5, "none", "red")],
        strict=False,
    ):
        store.set_rating("alpha", image.id, rating=rating, flag=flag, label=label)
    for filters in ({}, {"min_rating": 4}, {"flag": "pick"}, {"label": "red"}, {"min_rating": 4, "label": "red"},
                    {"min_rating": 1, "flag": "pick", "label": "red"}):  # fmt: skip
        keep = ImageFilters(**filters)
        expected = [i.id for i in store.list_images("alpha") if keep.passes(i)]
        assert [i.id for i in store.list_images("alpha", **filters)] == expected, filters
        assert store.count_images("alpha", **filters) == len(expected), filters
        if len(expected) > 1:  # pages by `before` under the filter, newest first
            [first] = store.list_images("alpha", limit=1, **filters)
            assert [i.id for i in store.list_images("alpha", before=first.seq, **filters)] == expected[1:]


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
