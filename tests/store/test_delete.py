"""Deleting an image, on every store: its collections lose it through their own feed entries, then `image.deleted`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dashboard.events import (
    COLLECTION_UPDATED,
    IMAGE_CREATED,
    IMAGE_DELETED,
    Device,
    ImageRecord,
    apply_collection_change,
)
from dashboard.store import CollectionEdit, Store, UnknownImage, VersionChanged
from tests.support.records import image_record
from tests.support.services import StoreBackend


def record(n: int, project: str = "alpha") -> ImageRecord:
    return image_record(
        n, project, id_digits=4, filename=f"IMG_{n:04d}.JPG", size_bytes=100 + n,
        created_at=f"2025-06-14T13:20:{n:02d}.000Z",
    )  # fmt: skip


@pytest.fixture
def store(store_backend: StoreBackend) -> Iterator[Store]:
    store = store_backend.open()
    store.ensure_project("alpha")
    for n in range(4):
        store.add_image(record(n))
    yield store


def test_delete_removes_the_image_from_listings_and_collections(store: Store):
    story, _ = store.save_collection("alpha", "Story", ["img0001", "img0002", "img0003"])
    other, _ = store.save_collection("alpha", "Other", ["img0000"])
    store.edit_collection("alpha", story.id, CollectionEdit("cover", image_id="img0002"))
    before = store.last_seq("alpha")

    image, changes = store.delete_image("alpha", "img0002")

    assert image.id == "img0002" and image.filename == "IMG_0002.JPG"
    assert store.get_image("img0002") is None
    assert [i.id for i in store.list_images("alpha")] == ["img0003", "img0001", "img0000"]
    assert store.count_images("alpha") == 3
    after = store.get_collection("alpha", story.id)
    assert after is not None and after.image_ids == ("img0001", "img0003")
    assert after.cover_image_id == "img0001", "the cover falls back to the first image"
    assert store.get_collection("alpha", other.id).image_ids == ("img0000",)
    # The feed says it in order: the collection's edit, then the deletion; a client replaying it ends right.
    assert [c.kind for c in changes] == [COLLECTION_UPDATED, IMAGE_DELETED]
    assert [c.seq for c in changes] == [before + 1, before + 2]
    assert changes[1].data == {"image_id": "img0002", "filename": "IMG_0002.JPG"}
    feed = store.changes("alpha", after=before)
    assert [(c.kind, c.seq) for c in feed] == [(c.kind, c.seq) for c in changes]
    assert apply_collection_change(["img0001", "img0002", "img0003"], feed[0].data) == ["img0001", "img0003"]
    created = [c for c in store.changes("alpha") if c.kind == IMAGE_CREATED]
    assert [c.image.id if c.image else None for c in created] == ["img0000", "img0001", None, "img0003"]


def test_a_deleted_collection_forgets_the_image_too(store: Store):
    kept, _ = store.save_collection("alpha", "Kept", ["img0000", "img0001"])
    store.edit_collection("alpha", kept.id, CollectionEdit("delete"))

    _, changes = store.delete_image("alpha", "img0001")

    assert [c.kind for c in changes] == [IMAGE_DELETED], "a tombstone has no feed entry to make"
    back, _ = store.edit_collection("alpha", kept.id, CollectionEdit("undelete"))
    assert back.image_ids == ("img0000",)


def test_delete_only_the_version_the_caller_knows(store: Store):
    current = store.get_image("img0003")
    assert current is not None
    with pytest.raises(VersionChanged):
        store.delete_image("alpha", "img0003", if_sha256=record(99).sha256)
    assert store.get_image("img0003") is not None
    edited = record(50)
    store.add_version("alpha", "img0003", edited, base_sha256=current.sha256, device=Device("d1", "Laptop"))
    store.delete_image("alpha", "img0003", if_sha256=edited.sha256)
    assert store.get_image("img0003") is None
    assert store.find_by_sha("alpha", current.sha256) is None, "older versions go with it"


def test_deleting_twice_or_elsewhere_is_unknown(store: Store):
    store.delete_image("alpha", "img0000")
    with pytest.raises(UnknownImage):
        store.delete_image("alpha", "img0000")
    store.ensure_project("beta")
    with pytest.raises(UnknownImage):
        store.delete_image("beta", "img0001")
    assert store.get_image("img0001") is not None
