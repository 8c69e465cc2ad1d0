"""Rows to records (`dashboard/store/records.py`), the records' serializer, and the SQLite index the
filtered lists and counts use."""

from __future__ import annotations

import json
import pickle
import sqlite3
from dataclasses import fields, replace
from pathlib import Path

import pytest

from dashboard.events import IMAGE_FIELDS, VERSION_FIELDS, Change, ImageRecord, ImageVersion
from dashboard.store.records import IMAGE_COLUMNS, IMAGE_NAMES, image_from_row, row_values
from dashboard.store.sqlite import _MIGRATIONS, SCHEMA_VERSION, SQLiteStore
from tests.support.records import image_record

EXIF = {"lens": "XF 33mm F1.4 R LM WR", "iso": 400, "f_number": 2.8, "tags": ["a", {"b": [1, 2]}], "note": "café"}


def record(**overrides: object) -> ImageRecord:
    values: dict[str, object] = {
        "id": "img1", "project": "alpha", "filename": "DSCF0001.JPG", "sha256": "ab" * 32, "size_bytes": 1234,
        "width": 6000, "height": 4000, "format": "JPEG", "mime": "image/jpeg", "captured_at": "2024-05-17T14:03:09",
        "camera_make": "FUJIFILM", "camera_model": None, "created_at": "2024-05-17T14:03:10.000Z", "seq": 7,
        "exif": EXIF, "rating": 4, "flag": "pick", "label": "red", "version": 2, "conflict_of": "img0",
    }  # fmt: skip
    values.update(overrides)
    return ImageRecord(**values)  # type: ignore[arg-type]


# -- the serializer -----------------------------------------------------------------------------


def test_the_field_lists_are_the_records_fields() -> None:
    assert tuple(f.name for f in fields(ImageRecord)) == IMAGE_FIELDS
    assert tuple(f.name for f in fields(ImageVersion)) == VERSION_FIELDS
    assert sorted(IMAGE_NAMES) == sorted(IMAGE_FIELDS), "a row must give every field of an image"


def test_to_dict_is_every_field_and_shares_nothing_mutable() -> None:
    image = record()
    out = image.to_dict()
    assert list(out) == list(IMAGE_FIELDS)
    assert out == {name: getattr(image, name) for name in IMAGE_FIELDS}
    out["exif"]["tags"][1]["b"].append(3)
    out["exif"]["iso"] = 0
    assert image.exif == EXIF and image.exif["tags"][1]["b"] == [1, 2]
    assert ImageRecord.from_dict(json.loads(json.dumps(out))) != image  # the copy was changed, not the record
    assert ImageRecord.from_dict(image.to_dict()) == image


def test_from_dict_ignores_unknown_keys_and_defaults_the_missing() -> None:
    data = {**record().to_dict(), "url": "/files/img1/original", "preview_url": "x"}
    assert ImageRecord.from_dict(data) == record()
    del data["rating"], data["conflict_of"]
    assert ImageRecord.from_dict(data) == record(rating=0, conflict_of=None)


def test_a_record_from_fields_is_the_same_as_one_made_by_init() -> None:
    made = record()
    fast = ImageRecord.from_fields({name: getattr(made, name) for name in reversed(IMAGE_FIELDS)})
    assert fast == made and repr(fast) == repr(made)
    assert fast.to_dict() == made.to_dict() and list(fast.to_dict()) == list(IMAGE_FIELDS)
    assert replace(fast, rating=1) == replace(made, rating=1)
    assert pickle.loads(pickle.dumps(fast)) == made
    with pytest.raises(AttributeError):
        fast.rating = 5  # type: ignore[misc]


def test_version_and_change_dicts() -> None:
    version = ImageVersion("img1", 2, "ab" * 32, "a.jpg", 10, 4, 3, "JPEG", "image/jpeg", "2024-01-01T00:00:00Z", 9)
    assert version.to_dict() == {name: getattr(version, name) for name in VERSION_FIELDS}
    change = Change("alpha", 3, "image.created", "2024-01-01T00:00:00Z", record())
    assert Change.from_dict(json.loads(json.dumps(change.to_dict()))) == change


# -- rows to records ------------------------------------------------------------------------------


def _table(conn: sqlite3.Connection) -> None:
    conn.execute(f"CREATE TABLE images ({IMAGE_COLUMNS})")
    image = record()
    values = {**image.to_dict(), "exif": json.dumps(image.exif)}
    conn.execute(f"INSERT INTO images VALUES ({', '.join('?' * len(IMAGE_NAMES))})", [values[c] for c in IMAGE_NAMES])


def test_an_image_is_read_by_position_from_either_engines_rows() -> None:
    conn = sqlite3.connect(":memory:")
    _table(conn)
    conn.row_factory = sqlite3.Row
    row = conn.execute(f"SELECT {IMAGE_COLUMNS} FROM images").fetchone()
    assert image_from_row(row) == record()
    as_dict = {name: row[name] for name in IMAGE_NAMES}  # psycopg's dict_row
    assert row_values(as_dict) == row_values(row) == tuple(row)
    assert image_from_row(as_dict) == record()
    # A join selects other columns first: the image starts further on.
    joined = conn.execute(f"SELECT 1 AS a, 'x' AS b, {IMAGE_COLUMNS} FROM images").fetchone()
    assert image_from_row(joined, start=2) == record()
    # Empty EXIF text reads as no EXIF.
    conn.execute("UPDATE images SET exif = ''")
    assert image_from_row(conn.execute(f"SELECT {IMAGE_COLUMNS} FROM images").fetchone()).exif == {}


def test_a_row_of_the_wrong_width_is_refused() -> None:
    conn = sqlite3.connect(":memory:")
    _table(conn)
    short = conn.execute(f"SELECT {', '.join(IMAGE_NAMES[:-1])} FROM images").fetchone()
    with pytest.raises(ValueError):
        image_from_row(short)


# -- the SQLite index of filtered lists and counts ------------------------------------------------


def _plan(store: SQLiteStore, sql: str, params: tuple[object, ...]) -> str:
    with store._read() as conn:
        return " ".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))


def test_filtered_counts_read_only_the_index_and_lists_walk_it_newest_first(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path)
    try:
        for where, params in (
            ("", ()),
            (" AND rating >= ?", (1,)),
            (" AND flag = ?", ("pick",)),
            (" AND label = ?", ("red",)),
            (" AND rating >= ? AND flag = ? AND label = ?", (1, "pick", "red")),
        ):
            count = _plan(store, f"SELECT count(*) AS n FROM images WHERE project = ?{where}", ("p", *params))
            if where:
                assert "COVERING INDEX images_by_project_seq_filters" in count, count
            else:
                # Unfiltered, any covering index will do, and SQLite picks by its width guesses: with the pair
                # columns of v7 (any added TEXT column) the (project, sha256) one. `count_images` never runs this:
                # it reads `projects.image_count`.
                assert "COVERING INDEX" in count, count
            listed = _plan(
                store,
                f"SELECT {IMAGE_COLUMNS} FROM images WHERE project = ? AND seq < ?{where} ORDER BY seq DESC LIMIT ?",
                ("p", 10, *params, 5),
            )
            assert "USING INDEX images_by_project_seq_filters (project=? AND seq<?)" in listed, listed
            assert "TEMP B-TREE" not in listed, listed  # no sort: the index is in the page's order
    finally:
        store.close()


def test_a_v3_database_gets_the_filter_index_and_its_counts(tmp_path: Path) -> None:
    path = tmp_path / "fotoflo.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for version in (1, 2, 3):
            for statement in _MIGRATIONS[version]:
                conn.execute(statement)
        conn.execute("INSERT INTO projects (name, created_at, last_seq) VALUES ('p', '2024-01-01T00:00:00Z', 1)")
        conn.execute(
            "INSERT INTO images (id, project, filename, sha256, size_bytes, width, height, format, mime,"
            " captured_at, exif, created_at, seq, rating, flag) VALUES ('i1', 'p', 'a.jpg', ?, 1, 1, 1, 'JPEG',"
            " 'image/jpeg', '2024-01-01T00:00:00', '{\"iso\": 100}', '2024-01-01T00:00:00Z', 1, 3, 'pick')",
            ("ab" * 32,),
        )
        conn.execute("PRAGMA user_version = 3")
    finally:
        conn.close()
    store = SQLiteStore(path)
    try:
        with store._read() as read:
            indexes = {r[0] for r in read.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
            assert read.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 7
        assert "images_by_project_seq_filters" in indexes and "images_by_project_seq" not in indexes
        assert store.count_images("p", min_rating=3, flag="pick") == store.count_images("p") == 1  # counted
        [image] = store.list_images("p", min_rating=3)
        assert (image.id, image.exif) == ("i1", {"iso": 100})
    finally:
        store.close()


def test_what_an_ingest_looks_up_costs_the_same_however_large_the_project(tmp_path: Path) -> None:
    """Per new image, work stays constant as the project grows: finding it by its bytes and its partner
    (a RAW + JPEG pair) go by index. Counted in SQLite's virtual-machine steps, not in time."""
    store = SQLiteStore(tmp_path)
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    def steps_of_one_ingest(n: int) -> int:
        nonlocal steps
        steps = 0
        assert store.find_by_sha("alpha", f"{n:064x}") is None  # a new image's bytes: found nowhere
        store.add_image(image_record(n, filename=f"IMG_{n:05d}.JPG"), pair_key=f"/IMG_{n:05d}")
        return steps

    try:
        store.ensure_project("alpha")
        with store._read() as reader:
            for conn in (reader, store._writer):
                conn.set_progress_handler(count, 10)
            small = steps_of_one_ingest(0)
            for n in range(1, 3_000):
                store.add_image(image_record(n, filename=f"IMG_{n:05d}.JPG"), pair_key=f"/IMG_{n:05d}")
            large = steps_of_one_ingest(3_000)
    finally:
        store.close()
    assert large <= 2 * small + 50, f"{small} steps at 1 image, {large} at 3,001: a lookup reads the whole project"
