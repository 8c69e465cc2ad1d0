"""`Counts`: a whole project's tallies, changed entry by entry of the change feed; no threads, no params.

Per camera, lens, focal length and ISO the images; per minute of capture the images; per camera and
per collection the picks and ratings (`Marks`). Each step (a new image, a rating, a deletion, a
collection edit) touches a few keys; `apply` says which, with their new values (`TallyChange`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dashboard.events import (
    COLLECTION_DELETED,
    COLLECTION_SAVED,
    COLLECTION_UPDATED,
    IMAGE_CREATED,
    IMAGE_DELETED,
    IMAGE_UPDATED,
    RATING_CHANGED,
    Change,
    CollectionRecord,
    ImageRecord,
)
from dashboard.studio.facts import FACETS, Facts, Labels, Marks, Sums


@dataclass(frozen=True)
class CollectionMarks:
    """One collection's name and the picks and ratings of its images."""

    name: str
    marks: Marks


@dataclass(frozen=True, eq=False)  # every update an event of its own
class TallyChange:
    """What an update of the tallies changed, as new values (never increments): applying one twice is harmless.

    `facets[facet][value]`: images per camera, lens, focal length, ISO; `minutes[minute_ms]`: images
    captured in that minute; `cameras` and `collections`: their `Marks` (a collection `None`: deleted).
    With `reset`, it holds all the tallies: start again from it.
    """

    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    minutes: dict[int, int] = field(default_factory=dict)
    cameras: dict[str, Marks] = field(default_factory=dict)
    collections: dict[str, CollectionMarks | None] = field(default_factory=dict)
    reset: bool = False

    def __bool__(self) -> bool:
        return bool(self.reset or self.facets or self.minutes or self.cameras or self.collections)


class _Collection:
    __slots__ = ("members", "name", "sums")

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: set[str] = set()
        self.sums = Sums()  # the marks of its members known to the tally; `images` is len(members)

    def marks(self) -> CollectionMarks:
        s = self.sums
        return CollectionMarks(self.name, Marks(len(self.members), s.picks, s.rejects, s.rated, s.stars))


class Counts:
    """The tallies of one project. Not thread-safe: its owner (`ProjectTally`) serializes the calls.

    Applying an entry twice, or one whose effect a read of the project already shows, changes
    nothing: an image known is not added again, one unknown is not removed, a rating is a new value.
    So the feed can be applied from a position read before the project was.
    """

    def __init__(self, labels: Labels | None = None) -> None:
        self.labels = labels or Labels()
        self._facts: dict[str, Facts] = {}
        self._facets: dict[str, Counter[str]] = {facet: Counter() for facet in FACETS}
        self._minutes: Counter[int] = Counter()
        self._cameras: dict[str, Sums] = {}
        self._collections: dict[str, _Collection] = {}
        self._member_of: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._facts)

    def add_images(self, images: Iterable[ImageRecord]) -> None:
        """Count images read from the project (a page of them)."""
        for image in images:
            self._count(image.id, self.labels.facts(image), None)

    def add_collections(self, collections: Iterable[CollectionRecord]) -> None:
        """Count collections read from the project."""
        for collection in collections:
            if not collection.deleted:
                self._set_members(collection.id, collection.name, collection.image_ids, _Touched())

    def apply(self, changes: Iterable[Change]) -> TallyChange:
        """Apply feed entries in order; what they changed, as new values."""
        touched = _Touched()
        for change in changes:
            kind, data = change.kind, change.data
            if kind in (IMAGE_CREATED, IMAGE_UPDATED) and change.image is not None:
                image_id = change.image.id
                if kind == IMAGE_CREATED and image_id in self._facts:
                    continue  # read with the project already
                self._count(image_id, self.labels.facts(change.image), touched)
            elif kind == RATING_CHANGED:
                old = self._facts.get(data.get("image_id", ""))
                if old is not None:
                    marks = {k: data[k] for k in ("rating", "flag") if k in data}
                    self._count(data["image_id"], old._replace(**marks), touched)
            elif kind == IMAGE_DELETED:
                self._uncount(data.get("image_id", ""), touched)
            elif kind in (COLLECTION_SAVED, COLLECTION_UPDATED, COLLECTION_DELETED):
                self._collection(kind, data, touched)
        return touched.change(self)

    def state(self) -> TallyChange:
        """All the tallies, as a `TallyChange` with `reset` set."""
        return TallyChange(
            facets={facet: dict(counts) for facet, counts in self._facets.items()},
            minutes=dict(self._minutes),
            cameras={name: sums.marks() for name, sums in self._cameras.items()},
            collections={cid: c.marks() for cid, c in self._collections.items()},
            reset=True,
        )

    # -- steps ------------------------------------------------------------------------------------

    def _count(self, image_id: str, facts: Facts, touched: _Touched | None) -> None:
        """Count `facts` for `image_id`, in place of what was counted for it before (its collections stay)."""
        old = self._facts.get(image_id)
        if old is not None:
            self._tally(image_id, old, -1, touched)
        self._facts[image_id] = facts
        self._tally(image_id, facts, +1, touched)

    def _uncount(self, image_id: str, touched: _Touched) -> None:
        facts = self._facts.pop(image_id, None)
        if facts is None:
            return
        self._tally(image_id, facts, -1, touched)
        # The store takes a deleted image out of its collections first (with feed entries); not of a
        # deleted collection's, which nothing here counts.
        for cid in self._member_of.pop(image_id, set()):
            self._collections[cid].members.discard(image_id)

    def _tally(self, image_id: str, facts: Facts, sign: int, touched: _Touched | None) -> None:
        """Add (`sign` 1) or take away (-1) an image's facts; `touched` notes the keys (None: nobody asks)."""
        for facet, value in zip(FACETS, facts[:4], strict=True):  # the facets are the first fields
            self._facets[facet][value] += sign
        if facts.minute_ms is not None:
            self._minutes[facts.minute_ms] += sign
        sums = self._cameras.get(facts.camera)
        if sums is None:
            sums = self._cameras[facts.camera] = Sums()
        sums.add(facts, sign)
        holders = self._member_of.get(image_id, ())
        for cid in holders:
            self._collections[cid].sums.add(facts, sign)
        if touched is not None:
            touched.note(facts, holders)

    def _collection(self, kind: str, data: dict[str, Any], touched: _Touched) -> None:
        cid, op = data.get("collection_id"), data.get("op")
        if not cid:
            return
        touched.collections.add(cid)
        if kind == COLLECTION_DELETED or data.get("deleted"):
            self._set_members(cid, "", (), touched)
            del self._collections[cid]
            return
        known = self._collections.get(cid)
        name = str(data.get("name") or (known.name if known else cid))
        ids = data.get("image_ids") or ()
        if known is None or op in ("save", "duplicate", "undelete"):
            self._set_members(cid, name, ids, touched)
        elif op == "add":
            self._set_members(cid, name, known.members | set(ids), touched)
        elif op == "remove":
            self._set_members(cid, name, known.members - set(ids), touched)
        else:  # rename, cover, move: who is in it does not change
            known.name = name

    def _set_members(self, cid: str, name: str, image_ids: Iterable[str], touched: _Touched) -> None:
        collection = self._collections.setdefault(cid, _Collection(name))
        collection.name = name
        new = set(image_ids)
        for image_id in collection.members - new:
            holders = self._member_of[image_id]
            holders.discard(cid)
            if not holders:
                del self._member_of[image_id]
            if image_id in self._facts:
                collection.sums.add(self._facts[image_id], -1)
        for image_id in new - collection.members:
            self._member_of.setdefault(image_id, set()).add(cid)
            if image_id in self._facts:
                collection.sums.add(self._facts[image_id])
        collection.members = new
        touched.collections.add(cid)


class _Touched:
    """The keys an update changed, to send their new values."""

    def __init__(self) -> None:
        self.facets: dict[str, set[str]] = {facet: set() for facet in FACETS}
        self.minutes: set[int] = set()
        self.cameras: set[str] = set()
        self.collections: set[str] = set()

    def note(self, facts: Facts, collections: Iterable[str]) -> None:
        for facet, value in zip(FACETS, facts[:4], strict=True):
            self.facets[facet].add(value)
        if facts.minute_ms is not None:
            self.minutes.add(facts.minute_ms)
        self.cameras.add(facts.camera)
        self.collections.update(collections)

    def change(self, counts: Counts) -> TallyChange:
        collections = counts._collections
        return TallyChange(
            facets={f: {k: counts._facets[f][k] for k in keys} for f, keys in self.facets.items() if keys},
            minutes={m: counts._minutes[m] for m in self.minutes},
            cameras={name: counts._cameras[name].marks() for name in self.cameras},
            collections={cid: c.marks() if (c := collections.get(cid)) else None for cid in self.collections},
        )
