"""Collection mode: the live selection pool and the saved collections of one project.

The browser half is three of the gallery's modules: assets/pool.js (the pool and the selection),
curation.js (the collection cards) and collection.js (the open collection). The pool *is* the live
gallery's grid (the same keyed tiles, fed by the same stream), so a new image reaches the pool as one
small event while the user is selecting. Cards, the open collection and ratings follow the change feed
(`collection.*`, `rating.changed`), so every open window converges on the feed's order.

`Collections` is what people compose: the gallery in Collection mode, whose `selection` and
`collection` follow what the user does in the browser, and which saves through the one curation door.
Collections are only ever made by someone saving one; new images never join a collection by themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import param

from dashboard.client import ApiClient, segment
from dashboard.events import CollectionRecord
from dashboard.gallery import MODES, Gallery, _embedded_at


class Collections(Gallery):
    """Collection mode of one project: pick images from the live pool, save and curate collections.

    `selection` is what the user has selected in the browser's pool (pool order); `save()` keeps it.
    Like `Gallery`, give it `app` (the `App` of the server that serves the page), `data` (a data
    directory served from this process) or `api_url` (a server: saving and listing then go through its
    HTTP API, as the browser does; `ApiError` for what it refuses).
    """

    mode: Any = param.Selector(default="collection", objects=list(MODES), doc="Starts in Collection mode.")

    def save(self, name: str, image_ids: Sequence[str] | None = None) -> CollectionRecord:
        """Save the pool's selection (or `image_ids`) as a new collection named `name`.

        Every open window shows its card at once. A name already taken gets a distinct suffix.
        """
        ids = list(self.selection if image_ids is None else image_ids)
        api = self._remote()
        if api is None:
            return self.local_app().curator.save_collection(self.project, name, ids)
        with api:
            return CollectionRecord.from_dict(api.send("POST", "/collections", {"name": name, "image_ids": ids}))

    def saved(self) -> list[CollectionRecord]:
        """The project's collections, most recently updated first (from a server, each with `seq` 0)."""
        api = self._remote()
        if api is None:
            return self.local_app().store.list_collections(self.project)
        with api:
            cards = api.get("/collections")["collections"]
            return [CollectionRecord.from_dict(api.get(f"/collections/{segment(c['id'])}")) for c in cards]

    def _remote(self) -> ApiClient | None:
        """The server of `api_url` (none for a `data` directory this view serves, or a served page's own)."""
        if self.app is not None or self._background is not None or not self.api_url:
            return None
        embedded = _embedded_at(self.api_url)  # a notebook server of this process answers its galleries' token
        return ApiClient(self.api_url, self.project, token=embedded.token if embedded is not None else self._token)
