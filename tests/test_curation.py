"""`Curator`: each committed rating or collection change is announced on the bus once; a no-op is not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pytest

from dashboard.curation import Curator
from dashboard.store import CollectionEdit, FavoritesUnsupported, InvalidValue, Store
from tests.support.embedded import Embedded
from tests.support.images import jpeg_bytes


@pytest.fixture
def curated(embedded: Embedded) -> Iterator[tuple[Curator, list[tuple[str, int]], list[str]]]:
    ids = [embedded.ingestor.ingest(jpeg_bytes((32, 24), seed=n), "default").image.id for n in range(3)]
    published: list[tuple[str, int]] = []
    unsubscribe = embedded.bus.subscribe(lambda project, seq: published.append((project, seq)))
    yield Curator(embedded.store, embedded.bus), published, ids
    unsubscribe()


def test_every_change_is_published_after_it_is_committed(
    embedded: Embedded, curated: tuple[Curator, list[tuple[str, int]], list[str]]
) -> None:
    curator, published, ids = curated
    seen_in_store: list[int] = []
    embedded.bus.subscribe(lambda project, seq: seen_in_store.append(embedded.store.last_seq(project)))

    image = curator.set_rating("default", ids[0], rating=5, flag="pick")
    saved = curator.save_collection("default", "Selects", ids[:2])
    copy = curator.duplicate_collection("default", saved.id)
    edited = curator.edit_collection("default", saved.id, CollectionEdit("add", image_ids=(ids[2],)))

    assert (image.rating, image.flag) == (5, "pick")
    assert edited.image_ids == (*ids[:2], ids[2]) and copy.name == "Selects copy"
    assert published == [("default", 4), ("default", 5), ("default", 6), ("default", 7)]
    assert seen_in_store == [4, 5, 6, 7]  # the store had the change when the bus said so


def test_no_op_and_refused_changes_publish_nothing(curated: tuple[Curator, list[tuple[str, int]], list[str]]) -> None:
    curator, published, ids = curated
    curator.set_rating("default", ids[0], rating=2)
    saved = curator.save_collection("default", "Once", ids[:1])
    published.clear()

    curator.set_rating("default", ids[0], rating=2)
    curator.edit_collection("default", saved.id, CollectionEdit("add", image_ids=(ids[0],)))
    with pytest.raises(InvalidValue):
        curator.set_rating("default", ids[0], rating=9)

    assert published == []


def test_favorites_are_published_once_per_change_and_refused_without_a_store_for_them(
    embedded: Embedded, curated: tuple[Curator, list[tuple[str, int]], list[str]]
) -> None:
    curator, published, ids = curated
    person = {"by": "Anna", "by_key": "guest:s:g"}
    published.clear()
    assert curator.set_favorite("default", ids[0], favorite=True, **person) is not None
    assert curator.set_favorite("default", ids[0], favorite=True, **person) is not None  # already: no news
    sent = curator.submit_favorites(
        "default", "Anna", [f.image_id for f in curator.list_favorites("default")], by="Anna"
    )
    assert sent.image_ids == (ids[0],)
    last = embedded.store.last_seq("default")
    assert published == [("default", last - 2), ("default", last - 1), ("default", last)]

    # A store without favourites (no `Favorites`) is refused before anything is written.
    bare = Curator(cast(Store, object()), embedded.bus)
    with pytest.raises(FavoritesUnsupported):
        bare.set_favorite("default", ids[0], favorite=True, **person)
