"""`dashboard.wire`: what the API sends reads back into the same records, and its file URLs are signed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from dashboard.auth.access import Scope
from dashboard.events import (
    CHANGE_KINDS,
    FEED_FORMAT_VERSION,
    Change,
    CollectionRecord,
    Device,
    ImageRecord,
    ImageVersion,
)
from dashboard.signing import UrlSigner
from dashboard.store import CollectionEdit
from dashboard.store.sqlite import SQLiteStore
from dashboard.wire import Wire
from tests.support.records import CANON_R5, image_record

KEY = b"k" * 32
EXIF = {"Make": "Canon", "ExposureTime": "1/250", "GPSInfo": {"lat": [52, 31, 12.5]}, "ISO": 400}


def sent(obj: dict[str, Any]) -> str:
    """What goes over the wire: the API writes its dicts as JSON."""
    return json.dumps(obj, separators=(",", ":"))


@pytest.fixture
def wire() -> Wire:
    return Wire(UrlSigner(KEY, prefix="/photos"))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path)
    store.ensure_project("alpha")
    yield store
    store.close()


@pytest.fixture
def feed(store: SQLiteStore) -> list[Change]:
    """A feed with every kind of change, made by a real store: images, a new version, ratings, collections,
    favourites, comments."""
    a, _ = store.add_image(image_record(1, exif=EXIF, **CANON_R5), device=Device("dev-1", "Laptop"))
    b, _ = store.add_image(image_record(2))
    c, _ = store.add_image(image_record(3))
    store.add_version("alpha", a.id, image_record(4, content="edited"), base_sha256=a.sha256)
    store.set_rating("alpha", b.id, rating=4, flag="pick", label="green")
    saved, _ = store.save_collection("alpha", "Picks", [a.id, b.id])
    for edit in (
        CollectionEdit("add", (c.id,), index=0),
        CollectionEdit("move", (a.id,)),
        CollectionEdit("cover", image_id=b.id),
        CollectionEdit("rename", name="Best"),
        CollectionEdit("delete"),
        CollectionEdit("undelete"),
    ):
        store.edit_collection("alpha", saved.id, edit)
    store.set_favorite("alpha", a.id, by="Anna", by_key="guest:s:g", favorite=True)
    store.submit_favorites("alpha", "Anna's picks", [a.id], by="Anna")
    comment, _ = store.add_comment("alpha", a.id, "Crop it?", author="Anna", author_key="guest:s:g")
    store.resolve_comment("alpha", a.id, comment.id, resolved=True)
    store.delete_comment("alpha", a.id, comment.id)
    store.delete_image("alpha", c.id)
    return store.changes("alpha")


def test_images_read_back_from_their_wire_json(store: SQLiteStore, wire: Wire) -> None:
    first, _ = store.add_image(image_record(1, exif=EXIF, **CANON_R5))
    store.add_version("alpha", first.id, image_record(2, content="edited"), base_sha256=first.sha256)
    edited = store.get_image(first.id)
    assert edited is not None and edited.version == 2 and first.version == 1

    for image in (first, edited):
        sent_json = sent(wire.image(image))
        assert ImageRecord.from_json(sent_json) == image
        # What a handler adds (`deleted`, `current`, a conflict copy) is not part of the record.
        assert ImageRecord.from_dict(wire.image(image, deleted=True, current=False)) == image

    versions = store.image_versions("alpha", first.id)
    assert [v.version for v in versions] == [1, 2]
    assert [ImageVersion.from_dict(json.loads(sent(wire.version(v)))) for v in versions] == versions


def test_collections_read_back_from_their_wire_json(store: SQLiteStore, wire: Wire) -> None:
    images = [store.add_image(image_record(n))[0] for n in range(3)]
    collection, _ = store.save_collection("alpha", "Picks", [i.id for i in images])
    collection, _ = store.edit_collection("alpha", collection.id, CollectionEdit("cover", image_id=images[2].id))
    assert collection.seq > 0

    # The wire does not carry a collection's seq (its `version` counts the edits): all else comes back.
    assert CollectionRecord.from_json(sent(wire.collection(collection))) == replace(collection, seq=0)
    full = json.loads(sent(wire.collection(collection, images=images)))
    assert CollectionRecord.from_dict(full) == replace(collection, seq=0)
    assert [ImageRecord.from_dict(i) for i in full["images"]] == images

    # A share link's scope: the record it reads back holds only the link's images and cover.
    scope = Scope(images=frozenset({images[0].id}), collections=frozenset({collection.id}))
    narrowed = CollectionRecord.from_json(sent(wire.collection(collection, images=images, scope=scope)))
    assert (narrowed.image_ids, narrowed.cover_image_id, narrowed.count) == ((images[0].id,), None, 1)

    with pytest.raises(ValueError, match="card"):
        CollectionRecord.from_json(sent(wire.collection(collection, card=True)))


def test_every_change_kind_reads_back_from_changes_and_sse(feed: list[Change], wire: Wire) -> None:
    assert {c.kind for c in feed} == set(CHANGE_KINDS)
    for change in feed:
        entry = wire.change(change)
        assert entry["v"] == FEED_FORMAT_VERSION
        assert Change.from_json(sent(entry)) == change, change.kind

        # The SSE event: `id:` the seq, `event:` the kind, `data:` the image or the change's data.
        payload = json.loads(sent(wire.change_payload(change)))
        if change.image is not None:
            assert ImageRecord.from_dict(payload) == change.image
        else:
            payload.pop("cover_thumbnail_url", None)
            assert payload == change.data


def test_a_newer_feed_format_is_refused_not_misread(feed: list[Change], wire: Wire) -> None:
    entry = {**wire.change(feed[0]), "v": FEED_FORMAT_VERSION + 1}
    with pytest.raises(ValueError, match="feed format version"):
        Change.from_dict(entry)


def urls(value: Any) -> Iterator[str]:
    """Every `…url` value in a JSON document."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key.endswith("url") and isinstance(item, str):
                yield item
            else:
                yield from urls(item)
    elif isinstance(value, list):
        for item in value:
            yield from urls(item)


def test_the_file_urls_it_writes_are_signed_and_verify(store: SQLiteStore, feed: list[Change], wire: Wire) -> None:
    collection = store.list_collections("alpha")[0]
    images = store.get_images("alpha", collection.image_ids)
    documents = [wire.change(c) for c in feed] + [wire.change_payload(c) for c in feed]
    documents += [wire.collection(collection, images=images), wire.collection(collection, card=True)]
    documents += [wire.version(v) for v in store.image_versions("alpha", feed[0].image.id)]  # type: ignore[union-attr]
    found = [url for document in documents for url in urls(json.loads(sent(document)))]
    # Originals, previews and thumbnails of every version, and collection covers.
    assert {urlsplit(u).path.rsplit("/", 1)[1] for u in found} == {"original", "preview", "thumb"}
    assert any("&v=2" in u for u in found) and any("&v=" not in u for u in found)

    added = {image_record(n).id for n in (1, 2, 3)}  # the feed's images (the third deleted since)
    stranger = UrlSigner(b"s" * 32, prefix="/photos")
    for url in found:
        parts = urlsplit(url)
        prefix, files, image_id, kind = parts.path.split("/")[1:]
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        assert (prefix, files) == ("photos", "files") and image_id in added, url
        assert wire.signer.verify(image_id, kind, query["exp"], query["sig"]), url
        assert not stranger.verify(image_id, kind, query["exp"], query["sig"]), url
        other_kind = "thumb" if kind == "original" else "original"  # a signature is for one file
        assert not wire.signer.verify(image_id, other_kind, query["exp"], query["sig"]), url


@pytest.mark.parametrize(("download", "watermark"), [("none", 0), ("preview", 0), ("preview", 3), ("original", 2)])
def test_a_share_link_s_wire_writes_no_url_its_rules_forbid(
    store: SQLiteStore, feed: list[Change], wire: Wire, download: str, watermark: int
) -> None:
    from dashboard.auth.roles import Principal, Role

    link = Principal("share", "L1", "Proofs", Role.CLIENT, "alpha", download=download, watermark=watermark)
    seen = wire.seen_by(link)
    collection = store.list_collections("alpha")[0]
    images = store.get_images("alpha", collection.image_ids)
    documents = [seen.change(c) for c in feed] + [seen.change_payload(c) for c in feed]
    documents += [seen.collection(collection, images=images), seen.collection(collection, card=True)]
    documents += [seen.version(v) for v in store.image_versions("alpha", feed[0].image.id)]  # type: ignore[union-attr]
    found = [url for document in documents for url in urls(json.loads(sent(document)))]
    kinds = {urlsplit(u).path.rsplit("/", 1)[1] for u in found}
    assert kinds == ({"original", "preview", "thumb"} if download == "original" else {"preview", "thumb"})
    for url in found:
        parts = urlsplit(url)
        image_id, kind = parts.path.split("/")[-2:]
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        marked = watermark and kind != "original"
        assert query.get("l") == (f"L1.{watermark}" if marked else None), url
        assert wire.signer.verify(image_id, kind, query["exp"], query["sig"], link=query.get("l")), url
        if marked:  # the link is signed too: without it, or with another version, the URL is refused
            assert not wire.signer.verify(image_id, kind, query["exp"], query["sig"])
            assert not wire.signer.verify(image_id, kind, query["exp"], query["sig"], link=f"L1.{watermark + 1}")
    image = feed[0].image
    assert image is not None
    shown = seen.image(image)
    assert (shown["url"] is None) == (download == "none")
    assert ("download_name" in shown) == (download == "preview")
    # Everyone else's wire is untouched.
    assert wire.seen_by(replace(link, kind="token")) is wire and "/original?" in wire.image(image)["url"]
