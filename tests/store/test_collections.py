"""`SQLiteStore` ratings and collections: one transaction and one feed entry per change, replayable, migrated."""

from __future__ import annotations

import itertools
import random
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from dashboard.events import (
    COLLECTION_DELETED,
    COLLECTION_SAVED,
    COLLECTION_UPDATED,
    RATING_CHANGED,
    Change,
    CollectionRecord,
    ImageRecord,
    apply_collection_change,
    change_from_json,
    to_json,
)
from dashboard.store import (
    CollectionDeleted,
    CollectionEdit,
    InvalidValue,
    NotInCollection,
    UnknownCollection,
    UnknownImage,
    UnknownProject,
)
from dashboard.store.sqlite import SCHEMA_VERSION, SQLiteStore
from tests.support.records import CANON_R5, image_record
from tests.support.services import StoreBackend

_numbers = itertools.count()


def record(project: str = "alpha", **overrides: Any) -> ImageRecord:
    fields: dict[str, Any] = {
        **CANON_R5, "width": 6000, "height": 4000, "created_at": "2024-05-17T14:03:10.000Z", "exif": {"iso": 400},
        **overrides,
    }  # fmt: skip
    return image_record(next(_numbers), project, **fields)


def add_images(store: SQLiteStore, count: int, project: str = "alpha") -> list[str]:
    return [store.add_image(record(project))[0].id for _ in range(count)]


@pytest.fixture
def store(store_backend: StoreBackend) -> Iterator[SQLiteStore]:
    """A store on a fresh database of each backend, SQLite and PostgreSQL (the migration tests below are SQLite's)."""
    store = store_backend.open()
    for project in ("alpha", "beta"):
        store.ensure_project(project)
    yield store


def last_change(store: SQLiteStore, project: str = "alpha") -> Change:
    return store.changes(project, after=store.last_seq(project) - 1)[0]


def edit(store: SQLiteStore, collection_id: str, op: str, **fields: Any) -> tuple[CollectionRecord, Change | None]:
    if "image_ids" in fields:
        fields["image_ids"] = tuple(fields["image_ids"])
    return store.edit_collection("alpha", collection_id, CollectionEdit(op, **fields))


def replay(store: SQLiteStore, project: str = "alpha") -> dict[str, list[str]]:
    """Every collection's order as a client rebuilds it from the feed alone."""
    state: dict[str, list[str]] = {}
    cursor = 0
    while page := store.changes(project, after=cursor):
        for change in page:
            if change.kind.startswith("collection."):
                cid = change.data["collection_id"]
                state[cid] = apply_collection_change(state.get(cid, []), change.data)
        cursor = page[-1].seq
    return state


# -- ratings ----------------------------------------------------------------------------------


def test_a_rating_is_one_feed_entry_and_shows_in_every_read(store: SQLiteStore) -> None:
    [image_id] = add_images(store, 1)

    image, change = store.set_rating("alpha", image_id, rating=4, flag="pick")

    assert (image.rating, image.flag, image.label) == (4, "pick", "none")
    assert change is not None and change.kind == RATING_CHANGED and change.seq == 2 and change.image is None
    assert change.data == {"image_id": image_id, "rating": 4, "flag": "pick", "label": "none"}
    assert store.changes("alpha") == [store.changes("alpha")[0], change]
    assert change_from_json(to_json(change)) == change
    # Every read sees the current values: one image, the list, the image.created entry of the feed.
    assert store.get_image(image_id) == image
    assert store.list_images("alpha") == [image]
    assert store.changes("alpha")[0].image == image
    assert store.get_images("alpha", [image_id]) == [image]

    labelled, _ = store.set_rating("alpha", image_id, label="green")
    assert (labelled.rating, labelled.flag, labelled.label) == (4, "pick", "green")
    cleared, _ = store.set_rating("alpha", image_id, rating=0, flag="none", label="none")
    assert (cleared.rating, cleared.flag, cleared.label) == (0, "none", "none")
    assert [c.kind for c in store.changes("alpha")] == ["image.created"] + [RATING_CHANGED] * 3


def test_setting_the_same_rating_again_adds_no_entry(store: SQLiteStore) -> None:
    [image_id] = add_images(store, 1)
    store.set_rating("alpha", image_id, rating=3)

    image, change = store.set_rating("alpha", image_id, rating=3, flag="none")

    assert change is None and image.rating == 3
    assert store.last_seq("alpha") == 2


@pytest.mark.parametrize(
    "values",
    [{"rating": 6}, {"rating": -1}, {"rating": 2.5}, {"rating": True}, {"rating": "3"}, {"flag": "maybe"},
     {"flag": "Pick"}, {"label": "orange"}, {"label": 1}],
    ids=str,
)  # fmt: skip
def test_invalid_ratings_are_refused(store: SQLiteStore, values: dict[str, Any]) -> None:
    [image_id] = add_images(store, 1)
    with pytest.raises(InvalidValue):
        store.set_rating("alpha", image_id, **values)
    assert store.last_seq("alpha") == 1


def test_rating_an_image_of_another_project_or_none(store: SQLiteStore) -> None:
    [in_beta] = add_images(store, 1, "beta")
    with pytest.raises(UnknownImage):
        store.set_rating("alpha", in_beta, rating=1)
    with pytest.raises(UnknownImage):
        store.set_rating("alpha", "no-such-image", rating=1)
    with pytest.raises(UnknownProject):
        store.set_rating("nope", in_beta, rating=1)
    assert store.get_image(in_beta).rating == 0  # type: ignore[union-attr]


def test_filters_combine_and_page_newest_first(store: SQLiteStore) -> None:
    ids = add_images(store, 8)
    for image_id, (rating, flag, label) in zip(
        ids,
        [(5, "pick", "red"), (0, "reject", "none"), (3, "pick", "none"), (4, "none", "red"),
         (1, "pick", "red"), (5, "pick", "green"), (2, "none", "none"), (4, "pick", "red")],
        strict=True,
    ):  # fmt: skip
        store.set_rating("alpha", image_id, rating=rating, flag=flag, label=label)

    def listed(**filters: Any) -> list[str]:
        return [i.id for i in store.list_images("alpha", **filters)]

    assert listed(min_rating=4) == [ids[7], ids[5], ids[3], ids[0]]
    assert listed(flag="pick") == [ids[7], ids[5], ids[4], ids[2], ids[0]]
    assert listed(label="red", flag="pick", min_rating=2) == [ids[7], ids[0]]
    assert listed(flag="reject") == [ids[1]]
    assert listed(min_rating=0) == ids[::-1]
    assert store.count_images("alpha", flag="pick") == 5
    assert store.count_images("alpha", label="green", min_rating=5) == 1
    # Paging a filtered list: `before` is the last seq of the previous page, as unfiltered.
    first = store.list_images("alpha", flag="pick", limit=2)
    rest = store.list_images("alpha", flag="pick", limit=10, before=first[-1].seq)
    assert [i.id for i in first + rest] == listed(flag="pick")
    with pytest.raises(InvalidValue):
        store.list_images("alpha", flag="maybe")


# -- saving -----------------------------------------------------------------------------------


def test_save_keeps_the_order_and_writes_one_entry(store: SQLiteStore) -> None:
    ids = add_images(store, 4)

    saved, change = store.save_collection("alpha", "  Selects ", [ids[2], ids[0], ids[2], ids[3]])

    assert saved.name == "Selects" and saved.image_ids == (ids[2], ids[0], ids[3])
    assert (saved.count, saved.version, saved.deleted, saved.cover_image_id) == (3, 1, False, ids[2])
    assert saved.seq == change.seq == 5 and change.kind == COLLECTION_SAVED and change.image is None
    assert change.data == {
        "op": "save", "collection_id": saved.id, "name": "Selects", "count": 3, "cover_image_id": ids[2],
        "version": 1, "created_at": saved.created_at, "updated_at": saved.updated_at, "deleted": False,
        "image_ids": [ids[2], ids[0], ids[3]],
    }  # fmt: skip
    assert store.get_collection("alpha", saved.id) == saved
    assert store.list_collections("alpha") == [saved]
    assert store.list_collections("beta") == [] and store.get_collection("beta", saved.id) is None


def test_an_empty_collection_can_be_saved(store: SQLiteStore) -> None:
    saved, _ = store.save_collection("alpha", "Later", [])
    assert (saved.image_ids, saved.count, saved.cover_image_id) == ((), 0, None)


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "tab\there", None, 7])
def test_bad_names_are_refused(store: SQLiteStore, name: Any) -> None:
    with pytest.raises(InvalidValue):
        store.save_collection("alpha", name, [])
    assert store.last_seq("alpha") == 0


def test_saving_images_of_another_project_or_unknown_ids_is_refused(store: SQLiteStore) -> None:
    [mine] = add_images(store, 1)
    [theirs] = add_images(store, 1, "beta")
    for bad in ([mine, theirs], [mine, "ghost"]):
        with pytest.raises(UnknownImage) as raised:
            store.save_collection("alpha", "Mixed", bad)
        assert raised.value.image_ids == [bad[1]]
    with pytest.raises(UnknownProject):
        store.save_collection("nope", "Any", [])
    assert store.list_collections("alpha") == [] and store.last_seq("alpha") == 1


def test_same_names_are_kept_apart(store: SQLiteStore) -> None:
    names = [store.save_collection("alpha", name, [])[0].name for name in ("Picks", "Picks", "Picks (2)", "Picks")]
    assert names == ["Picks", "Picks (2)", "Picks (3)", "Picks (4)"]
    # Another project, or a deleted collection, does not take a name.
    assert store.save_collection("beta", "Picks", [])[0].name == "Picks"
    first = store.list_collections("alpha")[-1]
    edit(store, first.id, "delete")
    assert store.save_collection("alpha", "Picks", [])[0].name == "Picks"


def test_concurrent_saves_with_one_name_are_all_kept(store: SQLiteStore) -> None:
    ids = add_images(store, 2)
    start = threading.Barrier(6)

    def save(n: int) -> CollectionRecord:
        start.wait()
        return store.save_collection("alpha", "Client picks", ids[: n % 2 + 1])[0]

    with ThreadPoolExecutor(max_workers=6) as pool:
        saved = list(pool.map(save, range(6)))

    assert sorted(c.name for c in saved) == ["Client picks"] + [f"Client picks ({n})" for n in range(2, 7)]
    assert len({c.id for c in saved}) == 6 and len(store.list_collections("alpha")) == 6
    assert sorted(c.seq for c in store.list_collections("alpha")) == list(range(3, 9))


def test_new_images_never_join_a_saved_collection(store: SQLiteStore) -> None:
    ids = add_images(store, 3)
    saved, _ = store.save_collection("alpha", "Before lunch", ids)
    add_images(store, 4)
    assert store.get_collection("alpha", saved.id) == saved
    assert store.list_collections("alpha") == [saved]


# -- edits ------------------------------------------------------------------------------------


def test_each_edit_is_one_entry_with_the_card_and_the_resolved_op(store: SQLiteStore) -> None:
    a, b, c, d, e = add_images(store, 5)
    saved, _ = store.save_collection("alpha", "Edit me", [a, b, c])

    added, change = edit(store, saved.id, "add", image_ids=[d, a, e], before=b)
    assert added.image_ids == (a, d, e, b, c) and added.version == 2
    assert change is not None and change.kind == COLLECTION_UPDATED
    assert change.data == {**added.card(), "op": "add", "image_ids": [d, e], "index": 1}

    moved, change = edit(store, saved.id, "move", image_ids=[c, a], before=d)
    assert moved.image_ids == (c, a, d, e, b)
    assert change is not None and change.data == {**moved.card(), "op": "move", "image_ids": [c, a], "index": 0}

    to_end, change = edit(store, saved.id, "move", image_ids=[d])
    assert to_end.image_ids == (c, a, e, b, d) and change is not None and change.data["index"] == 4

    removed, change = edit(store, saved.id, "remove", image_ids=[e, c])
    assert removed.image_ids == (a, b, d)
    assert change is not None and change.data == {**removed.card(), "op": "remove", "image_ids": [c, e]}

    at_index, change = edit(store, saved.id, "add", image_ids=[e], index=1)
    assert at_index.image_ids == (a, e, b, d) and change is not None and change.data["index"] == 1
    clamped, _ = edit(store, saved.id, "add", image_ids=[c], index=99)
    assert clamped.image_ids == (a, e, b, d, c)

    renamed, change = edit(store, saved.id, "rename", name="Final")
    assert renamed.name == "Final" and change is not None and change.data == {**renamed.card(), "op": "rename"}

    covered, change = edit(store, saved.id, "cover", image_id=d)
    assert covered.cover_image_id == d
    assert change is not None and change.data == {**covered.card(), "op": "cover"}

    assert covered.version == 9
    assert [ch.data["version"] for ch in store.changes("alpha", after=5)] == list(range(1, 10))
    assert replay(store) == {saved.id: list(covered.image_ids)}


def test_edits_that_change_nothing_add_no_entry(store: SQLiteStore) -> None:
    a, b, c, outsider = add_images(store, 4)
    saved, _ = store.save_collection("alpha", "Stable", [a, b, c])
    seq = store.last_seq("alpha")

    for op, fields in [
        ("add", {"image_ids": [a, c]}),  # already in it
        ("remove", {"image_ids": [outsider]}),  # not in it
        ("move", {"image_ids": [outsider], "before": a}),  # not in it: it is not brought in
        ("move", {"image_ids": [b], "before": c}),  # already there
        ("move", {"image_ids": [c]}),  # already last
        ("rename", {"name": " Stable "}),
        ("cover", {"image_id": None}),  # no cover set
        ("undelete", {}),  # not deleted
    ]:
        after, change = edit(store, saved.id, op, **fields)
        assert change is None, (op, fields)
        assert after == saved, (op, fields)
    assert store.last_seq("alpha") == seq


def test_renaming_to_a_taken_name_numbers_it(store: SQLiteStore) -> None:
    store.save_collection("alpha", "Ceremony", [])
    other, _ = store.save_collection("alpha", "Reception", [])
    renamed, _ = edit(store, other.id, "rename", name="Ceremony")
    assert renamed.name == "Ceremony (2)"
    # Its own name is not "taken" by itself.
    again, change = edit(store, other.id, "rename", name="Ceremony (2)")
    assert change is None and again.name == "Ceremony (2)"


def test_the_cover_follows_the_collection(store: SQLiteStore) -> None:
    a, b, c, outsider = add_images(store, 4)
    saved, _ = store.save_collection("alpha", "Covers", [a, b, c])
    assert saved.cover_image_id == a

    assert edit(store, saved.id, "cover", image_id=c)[0].cover_image_id == c
    assert edit(store, saved.id, "move", image_ids=[c], before=a)[0].cover_image_id == c
    # Removing the cover falls back to the first image, and re-adding it does not make it the cover again.
    removed, change = edit(store, saved.id, "remove", image_ids=[c])
    assert removed.cover_image_id == a and change is not None and change.data["cover_image_id"] == a
    assert edit(store, saved.id, "add", image_ids=[c], index=0)[0].cover_image_id == c  # first image now
    assert edit(store, saved.id, "move", image_ids=[c])[0].cover_image_id == a
    with pytest.raises(NotInCollection):
        edit(store, saved.id, "cover", image_id=outsider)
    with pytest.raises(UnknownImage):
        edit(store, saved.id, "cover", image_id="ghost")
    edit(store, saved.id, "cover", image_id=b)
    assert edit(store, saved.id, "cover", image_id=None)[0].cover_image_id == a


def test_bad_edits_are_refused_and_write_nothing(store: SQLiteStore) -> None:
    a, b = add_images(store, 2)
    [theirs] = add_images(store, 1, "beta")
    saved, _ = store.save_collection("alpha", "Strict", [a])
    seq = store.last_seq("alpha")

    for op, fields, error in [
        ("explode", {}, InvalidValue),
        ("add", {"image_ids": [b], "before": a, "index": 0}, InvalidValue),
        ("move", {"image_ids": [a], "before": a}, InvalidValue),
        ("move", {"image_ids": [a], "index": 0}, InvalidValue),
        ("remove", {"image_ids": [a], "before": a}, InvalidValue),
        ("add", {"image_ids": [theirs]}, UnknownImage),
        ("add", {"image_ids": [b], "before": theirs}, UnknownImage),
        ("remove", {"image_ids": ["ghost"]}, UnknownImage),
        ("rename", {"name": ""}, InvalidValue),
    ]:
        with pytest.raises(error):
            edit(store, saved.id, op, **fields)
    with pytest.raises(UnknownCollection):
        edit(store, "no-such-collection", "rename", name="x")
    with pytest.raises(UnknownCollection):  # a collection of another project is not found through this one
        store.edit_collection("beta", saved.id, CollectionEdit("rename", name="x"))
    with pytest.raises(UnknownCollection):
        store.duplicate_collection("alpha", "no-such-collection")
    assert store.last_seq("alpha") == seq
    assert store.get_collection("alpha", saved.id) == saved


def test_delete_undelete_and_duplicate(store: SQLiteStore) -> None:
    a, b, c = add_images(store, 3)
    saved, _ = store.save_collection("alpha", "Album", [a, b, c])
    edit(store, saved.id, "cover", image_id=b)

    copy, change = store.duplicate_collection("alpha", saved.id)
    assert (copy.name, copy.image_ids, copy.cover_image_id, copy.version) == ("Album copy", (a, b, c), b, 1)
    assert copy.id != saved.id and change.kind == COLLECTION_SAVED
    assert change.data == {**copy.card(), "op": "duplicate", "source_id": saved.id, "image_ids": [a, b, c]}
    named, _ = store.duplicate_collection("alpha", saved.id, "Album")
    assert named.name == "Album (2)"

    deleted, change = edit(store, saved.id, "delete")
    assert deleted.deleted and deleted.image_ids == (a, b, c)
    assert change is not None and change.kind == COLLECTION_DELETED
    assert change.data == {**deleted.card(), "op": "delete"}
    assert saved.id not in [x.id for x in store.list_collections("alpha")]
    assert store.get_collection("alpha", saved.id) == deleted
    assert edit(store, saved.id, "delete")[1] is None  # deleting again changes nothing
    for op, fields in [("rename", {"name": "x"}), ("add", {"image_ids": [a]}), ("cover", {"image_id": a})]:
        with pytest.raises(CollectionDeleted):
            edit(store, saved.id, op, **fields)
    with pytest.raises(CollectionDeleted):
        store.duplicate_collection("alpha", saved.id)

    store.save_collection("alpha", "Album", [])  # takes the name meanwhile
    back, change = edit(store, saved.id, "undelete")
    assert not back.deleted and back.name == "Album (3)" and back.image_ids == (a, b, c)
    assert back.cover_image_id == b
    assert change is not None and change.kind == COLLECTION_UPDATED
    assert change.data == {**back.card(), "op": "undelete", "image_ids": [a, b, c]}
    assert {x.name for x in store.list_collections("alpha")} == {"Album", "Album (2)", "Album (3)", "Album copy"}
    assert replay(store)[saved.id] == [a, b, c]


def test_list_collections_newest_first(store: SQLiteStore) -> None:
    ids = add_images(store, 3)
    made = [store.save_collection("alpha", f"C{n}", ids[:n])[0] for n in range(3)]
    edit(store, made[0].id, "add", image_ids=[ids[2]])
    listed = store.list_collections("alpha")
    assert [c.name for c in listed] == ["C2", "C1", "C0"]
    assert [c.image_ids for c in listed] == [tuple(ids[:2]), tuple(ids[:1]), (ids[2],)]
    with pytest.raises(UnknownProject):
        store.list_collections("nope")


# -- convergence ------------------------------------------------------------------------------

WINDOW_A = [
    ("add", {"image_ids": ["n1", "n2"], "before": "x3"}),
    ("move", {"image_ids": ["x5"], "before": "x1"}),
    ("remove", {"image_ids": ["x2"]}),
    ("move", {"image_ids": ["n1"]}),
]
WINDOW_B = [
    ("remove", {"image_ids": ["x3", "x4"]}),
    ("add", {"image_ids": ["n3"], "index": 0}),
    ("move", {"image_ids": ["x2", "x1"], "before": "x5"}),  # x2 may be gone by then: it stays gone
    ("add", {"image_ids": ["n2", "n4"]}),  # n2 may be in by then: only n4 is added
]


def interleavings(a: int, b: int) -> Iterator[tuple[str, ...]]:
    """Every order of `a` ops of window A and `b` of window B that keeps each window's own order."""
    for slots in itertools.combinations(range(a + b), a):
        yield tuple("A" if i in slots else "B" for i in range(a + b))


def test_two_windows_converge_in_every_interleaving(store: SQLiteStore) -> None:
    names = ["x1", "x2", "x3", "x4", "x5", "n1", "n2", "n3", "n4"]
    real = dict(zip(names, add_images(store, len(names)), strict=True))
    orders = list(interleavings(len(WINDOW_A), len(WINDOW_B)))
    assert len(orders) == 70
    finals = set()
    for order in orders:
        saved, _ = store.save_collection("alpha", "Shared", [real[n] for n in ("x1", "x2", "x3", "x4", "x5")])
        queues = {"A": iter(WINDOW_A), "B": iter(WINDOW_B)}
        for window in order:
            op, fields = next(queues[window])
            fields = {k: [real[i] for i in v] if k == "image_ids" else real.get(v, v) for k, v in fields.items()}
            edit(store, saved.id, op, **fields)
        final = store.get_collection("alpha", saved.id)
        assert final is not None
        # No add or remove is lost, whatever the order...
        assert set(final.image_ids) == {real[n] for n in ("x1", "x5", "n1", "n2", "n3", "n4")}, order
        # ...and a window that applies the feed ends exactly where the server is.
        assert replay(store)[saved.id] == list(final.image_ids), order
        finals.add(final.image_ids)
    assert len(finals) > 1  # the order does depend on the interleaving: the feed's order decides


@pytest.mark.parametrize("seed", range(5))
def test_replaying_the_feed_rebuilds_random_edit_histories(store: SQLiteStore, seed: int) -> None:
    rng = random.Random(seed)
    ids = add_images(store, 12)
    collections = [store.save_collection("alpha", "Random", rng.sample(ids, 5))[0].id for _ in range(3)]
    for _ in range(120):
        cid = rng.choice(collections)
        op = rng.choice(["add", "add", "remove", "move", "move", "cover", "rename", "delete", "undelete"])
        current = store.get_collection("alpha", cid)
        assert current is not None
        fields: dict[str, Any] = {}
        if op in ("add", "remove", "move"):
            fields["image_ids"] = rng.sample(ids, rng.randint(1, 4))
        if op in ("add", "move") and rng.random() < 0.7:
            choices = [i for i in ids if i not in fields["image_ids"]]
            fields["before"] = rng.choice(choices)
        if op == "add" and "before" not in fields and rng.random() < 0.5:
            fields["index"] = rng.randint(-2, 20)
        if op == "cover":
            fields["image_id"] = rng.choice([*current.image_ids, None])
        if op == "rename":
            fields["name"] = rng.choice(["Random", "Other", "Third"])
        if current.deleted and op not in ("delete", "undelete"):
            with pytest.raises(CollectionDeleted):
                edit(store, cid, op, **fields)
            continue
        edit(store, cid, op, **fields)
    rebuilt = replay(store)
    for cid in collections:
        final = store.get_collection("alpha", cid)
        assert final is not None and rebuilt[cid] == list(final.image_ids)
    feed = store.changes("alpha")
    assert [c.seq for c in feed] == list(range(1, len(feed) + 1))


# -- migration --------------------------------------------------------------------------------

V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (
    name       TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    last_seq   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS images (
    id           TEXT PRIMARY KEY,
    project      TEXT NOT NULL REFERENCES projects(name),
    filename     TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    size_bytes   INTEGER NOT NULL,
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    format       TEXT NOT NULL,
    mime         TEXT NOT NULL,
    captured_at  TEXT NOT NULL,
    camera_make  TEXT,
    camera_model TEXT,
    exif         TEXT NOT NULL DEFAULT '{}',
    created_at   TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    UNIQUE (project, sha256)
);
CREATE INDEX IF NOT EXISTS images_by_project_seq ON images (project, seq DESC);
CREATE TABLE IF NOT EXISTS changes (
    project    TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    image_id   TEXT,
    data       TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (project, seq)
) WITHOUT ROWID;
PRAGMA user_version = 1;
"""


def make_v1_database(path: Path) -> None:
    """A database exactly as Fotoflo's first schema wrote it: one project, two images, their feed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(V1_SCHEMA)
        conn.execute("INSERT INTO projects VALUES ('studio', '2024-01-01T00:00:00.000Z', 2)")
        for n in (1, 2):
            conn.execute(
                "INSERT INTO images VALUES (?, 'studio', ?, ?, 10, 4, 3, 'JPEG', 'image/jpeg', '2024-01-01T10:00:00',"
                " 'Canon', 'EOS R5', '{\"iso\": 100}', '2024-01-01T10:00:01.000Z', ?)",
                (f"old{n}", f"OLD_{n}.JPG", f"{n:064x}", n),
            )
            conn.execute(
                "INSERT INTO changes (project, seq, kind, created_at, image_id) VALUES ('studio', ?, 'image.created',"
                " '2024-01-01T10:00:01.000Z', ?)",
                (n, f"old{n}"),
            )
        conn.commit()
    finally:
        conn.close()


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def test_a_v1_database_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "data" / "fotoflo.sqlite"
    make_v1_database(path)

    store = SQLiteStore(path)
    try:
        assert user_version(path) == SCHEMA_VERSION == 6
        old = store.get_image("old1")
        assert old is not None and (old.filename, old.rating, old.flag, old.label) == ("OLD_1.JPG", 0, "none", "none")
        assert old.exif == {"iso": 100} and old.seq == 1
        assert [c.image.id for c in store.changes("studio") if c.image] == ["old1", "old2"]
        rated, change = store.set_rating("studio", "old2", rating=5)
        assert change is not None and change.seq == 3
        saved, change = store.save_collection("studio", "From v1", ["old2", "old1"])
        assert change.seq == 4 and saved.image_ids == ("old2", "old1")
        assert [i.id for i in store.list_images("studio", min_rating=5)] == ["old2"]
    finally:
        store.close()

    # Opening again is a no-op: nothing is migrated twice, nothing is lost.
    again = SQLiteStore(path)
    try:
        assert user_version(path) == SCHEMA_VERSION
        assert again.get_image("old2") == rated
        assert again.list_collections("studio") == [saved]
        assert again.last_seq("studio") == 4
    finally:
        again.close()


def test_two_processes_opening_a_v1_database_at_once_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "data" / "fotoflo.sqlite"
    make_v1_database(path)
    start = threading.Barrier(4)

    def open_and_close(_: int) -> int:
        start.wait()
        store = SQLiteStore(path)
        try:
            return store.last_seq("studio")
        finally:
            store.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(open_and_close, range(4))) == [2, 2, 2, 2]
    assert user_version(path) == SCHEMA_VERSION


def test_a_database_from_a_newer_fotoflo_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fotoflo.sqlite"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="newer"):
        SQLiteStore(path)
    assert user_version(path) == SCHEMA_VERSION + 1
