"""`SQLiteStore` file versions: the next version of an image, conflicts kept as copies, the v3 migration."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from dashboard.events import IMAGE_CREATED, IMAGE_UPDATED, Device, ImageRecord
from dashboard.store import CONFLICT, UNCHANGED, UPDATED, UnknownImage, UnknownProject, conflict_name
from dashboard.store.sqlite import _MIGRATIONS, SCHEMA_VERSION, SQLiteStore
from tests.support.records import image_record
from tests.support.services import StoreBackend

Content = Callable[..., ImageRecord]
LAPTOP = Device("dev-laptop", "Laptop")
STUDIO = Device("dev-studio", "Studio Mac")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def store(store_backend: StoreBackend) -> Iterator[SQLiteStore]:
    """A store on a fresh database of each backend, SQLite and PostgreSQL (the migration test is SQLite's)."""
    store = store_backend.open()
    store.ensure_project("alpha")
    yield store


@pytest.fixture
def content() -> Content:
    """Records for the bytes `text` (their sha256), as ingest makes them."""
    counter = iter(range(10**9))

    def make(text: str, filename: str = "IMG_0001.JPG", created_at: str | None = None) -> ImageRecord:
        n = next(counter)
        return image_record(
            n, id_prefix="new", id_digits=5, content=text, filename=filename, size_bytes=len(text), width=60 + n,
            created_at=created_at or f"2025-06-14T13:20:{n % 60:02d}.000Z",
        )  # fmt: skip

    return make


def test_a_version_from_the_current_base_updates_the_image_in_place(store: SQLiteStore, content: Content) -> None:
    first, _ = store.add_image(content("v1"), device=LAPTOP)
    store.set_rating("alpha", first.id, rating=4)

    result = store.add_version("alpha", first.id, content("v2", "IMG_0001 edit.JPG"), base_sha256=sha("v1"))

    image = result.image
    assert result.outcome == UPDATED and result.conflict_copy is None
    assert (image.id, image.seq, image.version, image.sha256) == (first.id, first.seq, 2, sha("v2"))
    assert (image.filename, image.rating, image.created_at) == ("IMG_0001 edit.JPG", 4, first.created_at)
    assert store.get_image(first.id) == image
    [change] = result.changes
    assert (change.kind, change.seq, change.image) == (IMAGE_UPDATED, 3, image)
    assert [(c.kind, c.image.id if c.image else None) for c in store.changes("alpha")] == [
        (IMAGE_CREATED, first.id),
        ("rating.changed", None),
        (IMAGE_UPDATED, first.id),
    ]
    versions = store.image_versions("alpha", first.id)
    assert [(v.version, v.sha256, v.seq, v.device_name) for v in versions] == [
        (1, sha("v1"), 1, "Laptop"),
        (2, sha("v2"), 3, None),
    ]
    # Both versions' bytes lead to the image; the list stays one image.
    assert store.find_by_sha("alpha", sha("v1")) == image
    assert store.find_by_sha("alpha", sha("v2")) == image
    assert store.count_images("alpha") == 1


def test_bytes_already_current_somewhere_change_nothing(store: SQLiteStore, content: Content) -> None:
    a, _ = store.add_image(content("a"))
    b, _ = store.add_image(content("b"))

    same = store.add_version("alpha", a.id, content("a"), base_sha256=sha("a"))
    other = store.add_version("alpha", a.id, content("b"), base_sha256=sha("a"))

    assert (same.outcome, same.image, same.changes) == (UNCHANGED, a, ())
    assert (other.outcome, other.image, other.changes) == (UNCHANGED, b, ())
    assert store.last_seq("alpha") == 2


def test_a_retried_version_that_already_arrived_is_not_a_conflict(store: SQLiteStore, content: Content) -> None:
    image, _ = store.add_image(content("v1"))
    store.add_version("alpha", image.id, content("v2"), base_sha256=sha("v1"))  # device A, which then crashed
    store.add_version("alpha", image.id, content("v3"), base_sha256=sha("v2"))  # device B moved on

    retry = store.add_version("alpha", image.id, content("v2"), base_sha256=sha("v1"))  # A's retry

    assert retry.outcome == UNCHANGED and retry.image.version == 3 and retry.changes == ()
    assert store.count_images("alpha") == 1


def test_a_revert_to_an_older_version_is_a_new_version(store: SQLiteStore, content: Content) -> None:
    image, _ = store.add_image(content("v1"))
    store.add_version("alpha", image.id, content("v2"), base_sha256=sha("v1"))

    revert = store.add_version("alpha", image.id, content("v1"), base_sha256=sha("v2"))

    assert revert.outcome == UPDATED and revert.image.version == 3 and revert.image.sha256 == sha("v1")


def test_two_devices_changing_one_base_keep_both(store: SQLiteStore, content: Content) -> None:
    image, _ = store.add_image(content("base", "IMG_0007.JPG"), device=LAPTOP)
    studio_edit = content("studio edit", "IMG_0007.JPG", created_at="2025-06-14T15:04:05.123Z")
    store.add_version("alpha", image.id, studio_edit, base_sha256=sha("base"), device=STUDIO)

    laptop = store.add_version("alpha", image.id, content("laptop edit"), base_sha256=sha("base"), device=LAPTOP)

    assert laptop.outcome == CONFLICT
    current, copy = laptop.image, laptop.conflict_copy
    assert copy is not None
    # The later upload is the current version; the version it would have replaced is its own image.
    assert (current.id, current.sha256, current.version) == (image.id, sha("laptop edit"), 3)
    assert (copy.sha256, copy.version, copy.conflict_of) == (sha("studio edit"), 1, image.id)
    assert copy.filename == "IMG_0007 (conflict Studio Mac 2025-06-14 150405).JPG"
    assert [(c.kind, c.image) for c in laptop.changes] == [(IMAGE_UPDATED, current), (IMAGE_CREATED, copy)]
    assert [c.seq for c in laptop.changes] == [3, 4] and copy.seq == 4
    assert store.count_images("alpha") == 2
    # Nothing is lost: all three versions are there, by whom they were made.
    assert [(v.sha256, v.device_name) for v in store.image_versions("alpha", image.id)] == [
        (sha("base"), "Laptop"),
        (sha("studio edit"), "Studio Mac"),
        (sha("laptop edit"), "Laptop"),
    ]
    [kept] = store.image_versions("alpha", copy.id)
    assert (kept.sha256, kept.device_id, kept.created_at) == (sha("studio edit"), STUDIO.id, studio_edit.created_at)


def test_the_next_edit_of_the_other_device_goes_to_its_conflict_copy(store: SQLiteStore, content: Content) -> None:
    image, _ = store.add_image(content("base"))
    store.add_version("alpha", image.id, content("studio edit"), base_sha256=sha("base"), device=STUDIO)
    copy = store.add_version("alpha", image.id, content("laptop edit"), base_sha256=sha("base")).conflict_copy
    assert copy is not None

    # The studio still thinks it edits `image`, from its own last upload, which is now the copy's.
    again = store.add_version("alpha", image.id, content("studio 2"), base_sha256=sha("studio edit"), device=STUDIO)

    assert again.outcome == UPDATED and again.image.id == copy.id and again.image.version == 2
    assert store.get_image(image.id).sha256 == sha("laptop edit")  # type: ignore[union-attr]
    assert store.count_images("alpha") == 2


def test_concurrent_versions_from_one_base_end_in_one_current_and_copies(store: SQLiteStore, content: Content) -> None:
    image, _ = store.add_image(content("base"))
    edits = [content(f"edit {n}") for n in range(6)]

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda c: store.add_version("alpha", image.id, c, base_sha256=sha("base")), edits))

    assert sorted(r.outcome for r in results) == [CONFLICT] * 5 + [UPDATED]
    # Every edit is somewhere: the last one current, each other one current in a copy of its own.
    assert {i.sha256 for i in store.list_images("alpha")} == {e.sha256 for e in edits}
    assert store.count_images("alpha") == 6
    assert [c.seq for c in store.changes("alpha")] == list(range(1, store.last_seq("alpha") + 1))


def test_unknown_images_and_projects_are_refused(store: SQLiteStore, content: Content) -> None:
    store.ensure_project("beta")
    other, _ = store.add_image(replace(content("b"), project="beta"))
    with pytest.raises(UnknownImage):
        store.add_version("alpha", "nope", content("x"), base_sha256=sha("b"))
    with pytest.raises(UnknownImage):
        store.add_version("alpha", other.id, content("x"), base_sha256=sha("b"))  # another project's
    with pytest.raises(UnknownImage):
        store.image_versions("alpha", other.id)
    with pytest.raises(UnknownProject):
        store.add_version("gamma", other.id, content("x"), base_sha256=sha("b"))


def test_bytes_only_an_older_version_had_make_a_new_image(store: SQLiteStore, content: Content) -> None:
    # A file with the first version's bytes is a photo of its own now: the gallery must show it.
    image, _ = store.add_image(content("v1"))
    store.add_version("alpha", image.id, content("v2"), base_sha256=sha("v1"))
    assert store.find_by_sha("alpha", sha("v1")) == store.get_image(image.id)  # found, as an older version

    again, change = store.add_image(content("v1", "copy of the original.jpg"))

    assert change is not None and again.id != image.id and again.sha256 == sha("v1")
    assert store.find_by_sha("alpha", sha("v1")) == again  # the current version first


@pytest.mark.parametrize(
    ("filename", "device", "expected"),
    [
        ("IMG_1.JPG", "Studio", "IMG_1 (conflict Studio 2025-01-02 030405).JPG"),
        ("archive.tar.gz", "A", "archive.tar (conflict A 2025-01-02 030405).gz"),
        ("README", "A", "README (conflict A 2025-01-02 030405)"),
        (".hidden", None, ".hidden (conflict unknown device 2025-01-02 030405)"),
    ],
)
def test_conflict_names(filename: str, device: str | None, expected: str) -> None:
    assert conflict_name(filename, device, "2025-01-02T03:04:05.678Z") == expected


def test_a_v2_database_is_migrated_to_versions(tmp_path: Path) -> None:
    path = tmp_path / "fotoflo.sqlite"
    conn = sqlite3.connect(path)
    try:
        for step in (1, 2):
            for statement in _MIGRATIONS[step]:
                conn.execute(statement)
        conn.execute("INSERT INTO projects VALUES ('studio', '2024-01-01T00:00:00.000Z', 1)")
        conn.execute(
            "INSERT INTO images (id, project, filename, sha256, size_bytes, width, height, format, mime, captured_at,"
            " created_at, seq, rating) VALUES ('old1', 'studio', 'OLD.JPG', ?, 10, 4, 3, 'JPEG', 'image/jpeg',"
            " '2024-01-01T10:00:00', '2024-01-01T10:00:01.000Z', 1, 3)",
            (sha("old"),),
        )
        conn.execute("PRAGMA user_version = 2")
        conn.commit()
    finally:
        conn.close()

    store = SQLiteStore(path)
    try:
        old = store.get_image("old1")
        assert old is not None and (old.version, old.conflict_of, old.rating) == (1, None, 3)
        [v1] = store.image_versions("studio", "old1")
        assert (v1.version, v1.sha256, v1.seq, v1.created_at) == (1, sha("old"), 1, "2024-01-01T10:00:01.000Z")
        new = replace(old, id="x", sha256=sha("new"))
        result = store.add_version("studio", "old1", new, base_sha256=sha("old"))
        assert result.outcome == UPDATED and result.image.version == 2
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
