"""Fotoflo in Jupyter: open a project, read it as records or a DataFrame, look at it, curate it.

    import dashboard
    shoot = dashboard.open("./data", project="wedding")     # a data directory, served from the kernel
    shoot = dashboard.open("http://studio:5006", project="wedding")  # or a running server
    shoot.frame()             # one row per image: EXIF, ratings, collections
    shoot.gallery()           # the live gallery in a cell
    shoot.timeline()          # shots per minute

Everything goes through the project's HTTP API (the kernel's own server for a data directory), so a
notebook reads what every browser sees; ingest and hot-folder watching go through the one ingest
door of the in-kernel server. Image URLs are made absolute: a notebook page comes from the Jupyter
server, where `/files/...` would not resolve.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import panel as pn

from dashboard.client import ApiClient, ApiError, segment
from dashboard.events import ImageRecord

if TYPE_CHECKING:
    import pandas as pd
    from bokeh.plotting import figure as Figure

    from dashboard.collections import Collections
    from dashboard.gallery import Gallery
    from dashboard.live import LiveImages
    from dashboard.sync_panel import SyncPanel
    from dashboard.watcher import HotFolderWatcher

PAGE = 500
COLUMNS = (
    "id", "filename", "captured_at", "camera", "lens", "exposure_time", "f_number", "iso", "focal_length_mm",
    "width", "height", "size_bytes", "rating", "flag", "label", "collections", "thumbnail_url", "seq",
)  # fmt: skip


def open(source: str | Path, project: str = "default", *, token: str | None = None, timeout_s: float = 30.0) -> Project:
    """A project from a data directory (served from this kernel) or a running server's URL.

    `token`: an API token (`fotoflo token create`) for a server with access control on; the records,
    the DataFrame and curation then act with its role.
    """
    text = str(source)
    if text.startswith(("http://", "https://")):
        return Project(text.rstrip("/"), project, token=token, timeout_s=timeout_s)
    from dashboard.embedded import background_server

    server = background_server(Path(source), project)
    return Project(server.url, project, data=Path(source), token=server.token, timeout_s=timeout_s)


class Project:
    """One project of a Fotoflo server, for a notebook: records, a DataFrame, views and pictures."""

    def __init__(
        self, url: str, name: str, *, data: Path | None = None, token: str | None = None, timeout_s: float = 30.0
    ) -> None:
        self.url = url
        self.name = name
        self.data = data
        self._token = token
        self._client = ApiClient(url, name, token=token, timeout_s=timeout_s)
        self._watchers: list[HotFolderWatcher] = []

    def __repr__(self) -> str:
        return f"<fotoflo project {self.name!r} at {self.url}>"

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def api(self, path: str) -> str:
        """The server path of `path` in this project (its name URL-quoted)."""
        return self._client.path(path)

    def _get(self, path: str, **params: Any) -> Any:
        try:
            return self._client.get(path, **params)
        except ApiError as exc:
            raise LookupError(f"{self.url}{exc.path}: {exc.reason}") from None

    # -- records -------------------------------------------------------------------------------

    def images(
        self, *, min_rating: int | None = None, flag: str | None = None, label: str | None = None
    ) -> list[dict[str, Any]]:
        """Every image (newest first) as the API gives it, URLs absolute; filters as the gallery's."""
        out: list[dict[str, Any]] = []
        before = None
        while True:
            page = self._get("/images", limit=PAGE, before=before, min_rating=min_rating, flag=flag, label=label)
            out.extend(self._absolute(image) for image in page["images"])
            before = page["next"]
            if before is None:
                return out

    def records(self, **filters: Any) -> list[ImageRecord]:
        """`images()` as typed `ImageRecord`s."""
        return [ImageRecord.from_dict(image) for image in self.images(**filters)]

    def live(self, window: int = 500) -> LiveImages:
        """The project's images as a live param model: `count`, `latest`, the newest `window` `images`, filters.

        It follows the change feed by itself (no cell to re-run): watch it (`live.param.watch(fn,
        "count")`) or bind to it (`pn.bind(fn, live.param.count)`). One per project in this process:
        every call, cell and session gets the same object. See docs/live.md.
        """
        from dashboard.live import live_images, live_remote

        if self.data is not None:
            return live_images(self._app(), self.name, window=window)
        return live_remote(self.url, self.name, token=self._token, window=window)

    def collections(self) -> list[dict[str, Any]]:
        """The saved collections, each with its `image_ids`, most recently updated first."""
        cards = self._get("/collections")["collections"]
        return [self._get(f"/collections/{segment(card['id'])}") for card in cards]

    def frame(self, **filters: Any) -> pd.DataFrame:
        """One row per image: EXIF columns, ratings, flags, labels and the collections it is in."""
        import pandas as pd

        member_of: dict[str, list[str]] = {}
        for collection in self.collections():
            for image_id in collection["image_ids"]:
                member_of.setdefault(image_id, []).append(collection["name"])
        rows = []
        for image in self.images(**filters):
            exif = image.get("exif") or {}
            rows.append(
                {
                    "id": image["id"],
                    "filename": image["filename"],
                    "captured_at": _timestamp(image["captured_at"]),
                    "camera": " ".join(p for p in (image.get("camera_make"), image.get("camera_model")) if p) or None,
                    "lens": exif.get("lens"),
                    "exposure_time": exif.get("exposure_time"),
                    "f_number": exif.get("f_number"),
                    "iso": exif.get("iso"),
                    "focal_length_mm": exif.get("focal_length_mm"),
                    "width": image["width"],
                    "height": image["height"],
                    "size_bytes": image["size_bytes"],
                    "rating": image["rating"],
                    "flag": image["flag"],
                    "label": image["label"],
                    "collections": member_of.get(image["id"], []),
                    "thumbnail_url": image["thumbnail_url"],
                    "seq": image["seq"],
                }
            )
        return pd.DataFrame(rows, columns=list(COLUMNS))

    # -- views -----------------------------------------------------------------------------------

    def gallery(self, mode: str = "grid", **params: Any) -> Gallery:
        """The live gallery of this project for a cell; it grows as images arrive, without re-running."""
        from dashboard.gallery import Gallery

        return Gallery(project=self.name, mode=mode, **self._connection(), **params)

    def collection_view(self, **params: Any) -> Collections:
        """Collection mode: the live pool and the saved collections; `.selection` is what you picked."""
        from dashboard.collections import Collections

        return Collections(project=self.name, **self._connection(), **params)

    def _connection(self) -> dict[str, Any]:
        """How a view reaches this project: its data directory (served in this kernel), else the server's URL."""
        return {"data": self.data} if self.data is not None else {"api_url": self.url, "token": self._token}

    def sync_panel(self, folder: str | Path, **settings: Any) -> SyncPanel:
        """The sync panel, set to keep `folder` uploaded to this project (Start begins; nothing runs before)."""
        from dashboard.sync_panel import SyncPanel

        settings.setdefault("token", self._token or "")
        return SyncPanel(folder=str(folder), server=self.url, project=self.name, **settings)

    def contact_sheet(
        self, images: Iterable[dict[str, Any]] | pd.DataFrame | None = None, *, columns: int = 6, size_px: int = 160
    ) -> pn.viewable.Viewable:
        """Thumbnails with file names in a grid: of `images` (records or a `frame()`), else all."""
        rows = _rows(images) if images is not None else self.images()
        cells = [
            f'<figure style="margin:0;text-align:center;font:11px sans-serif;color:#555">'
            f'<img src="{r["thumbnail_url"]}" loading="lazy" style="width:{size_px}px;height:{size_px}px;'
            f'object-fit:contain;background:#222" alt="{html.escape(r["filename"])}">'
            f"<figcaption>{html.escape(r['filename'])}{_stars(r.get('rating', 0))}</figcaption></figure>"
            for r in rows
        ]
        grid = (
            f'<div style="display:grid;grid-template-columns:repeat({columns},{size_px}px);gap:8px">'
            + "".join(cells)
            + "</div>"
        )
        return pn.pane.HTML(grid, sizing_mode="stretch_width")

    # -- pictures --------------------------------------------------------------------------------

    def timeline(self, frame: pd.DataFrame | None = None, *, minutes: int = 1) -> Figure:
        """Shots per `minutes` over the session, by capture time (a Bokeh bar chart)."""
        from bokeh.models import Range1d
        from bokeh.plotting import figure

        frame = self.frame() if frame is None else frame
        times = frame["captured_at"].dropna()
        counts = times.dt.floor(f"{minutes}min").value_counts().sort_index()
        plot = figure(
            title=f"{self.name}: shots per {minutes} min",
            x_axis_type="datetime",
            y_range=Range1d(start=0, end=max(1, int(counts.max() if len(counts) else 1)) * 1.15),
            height=260,
            sizing_mode="stretch_width",
            tools="xpan,xwheel_zoom,reset,hover",
            tooltips=[("shots", "@top")],
        )
        plot.vbar(x=list(counts.index), top=list(counts.values), width=minutes * 60_000 * 0.9)
        plot.yaxis.axis_label = "shots"
        return plot

    def exif_distribution(self, column: str, frame: pd.DataFrame | None = None) -> Figure:
        """How often each value of an EXIF column occurs (`iso`, `focal_length_mm`, `f_number`, `lens`…)."""
        from bokeh.models import FactorRange, Range1d
        from bokeh.plotting import figure

        frame = self.frame() if frame is None else frame
        counts = Counter(_label(v) for v in frame[column].dropna())
        values = sorted(counts, key=_sort_key)
        plot = figure(
            title=f"{column} across {int(frame[column].notna().sum())} images",
            x_range=FactorRange(factors=values),
            y_range=Range1d(start=0, end=max([1, *counts.values()]) * 1.15),
            height=260,
            sizing_mode="stretch_width",
            tools="hover",
            tooltips=[(column, "@x"), ("images", "@top")],
        )
        plot.vbar(x=values, top=[counts[v] for v in values], width=0.8)
        return plot

    # -- curating it (through the API, like a browser) -------------------------------------------

    def rate(self, image_id: str, **marks: Any) -> dict[str, Any]:
        """Set any of `rating` (0-5), `flag` (none/pick/reject), `label`; every open window shows it."""
        return self._send("POST", f"/images/{segment(image_id)}/rating", marks)

    def save_collection(self, name: str, image_ids: Sequence[str]) -> dict[str, Any]:
        """Save `image_ids` (in this order) as a new collection; a taken name gets a distinct suffix."""
        return self._send("POST", "/collections", {"name": name, "image_ids": list(image_ids)})

    def export(self, collection_id: str, fmt: str = "txt") -> bytes:
        """A collection's export: `txt` (file names), `csv` (metadata and ratings) or `zip` (originals)."""
        try:
            return self._client.content(f"/collections/{segment(collection_id)}/export.{segment(fmt)}")
        except ApiError as exc:
            raise LookupError(f"{self.url}{exc.path}: {exc.reason}") from None

    def _send(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            result: dict[str, Any] = self._client.send(method, path, body)
        except ApiError as exc:
            raise ValueError(str(exc)) from None
        return result

    # -- changing it (a data directory opened in this kernel) -------------------------------------

    def ingest(self, path: str | Path) -> Any:
        """Ingest a file through the one ingest door; every displayed gallery shows it at once."""
        return self._app().ingest_path(Path(path), self.name)

    def watch(self, folder: str | Path) -> HotFolderWatcher:
        """Watch a hot folder from this kernel: every complete file saved there is ingested into the project."""
        from dashboard.watcher import HotFolderWatcher

        app = self._app()
        app.ingestor.decoders.warm()
        watcher = HotFolderWatcher(Path(folder), lambda p: app.ingestor.ingest(p, self.name, log_refusals=False))
        Path(folder).mkdir(parents=True, exist_ok=True)
        watcher.start()
        self._watchers.append(watcher)
        return watcher

    def close(self) -> None:
        """Stop the watchers this project started and its HTTP client."""
        for watcher in self._watchers:
            watcher.stop()
        self._watchers.clear()
        self._client.close()

    def _app(self) -> Any:
        if self.data is None:
            raise RuntimeError(
                f"{self!r} is a remote server: ingest there (upload, hot folder or `fotoflo sync`), "
                "or open a data directory with dashboard.open(path)"
            )
        from dashboard.embedded import background_server

        return background_server(self.data, self.name).app

    def _absolute(self, image: dict[str, Any]) -> dict[str, Any]:
        for key in ("url", "preview_url", "thumbnail_url"):
            if image.get(key, "").startswith("/"):
                image[key] = self.url + image[key]
        return image


def _timestamp(text: str | None) -> Any:
    import pandas as pd

    if not text:
        return pd.NaT
    # Camera times without an offset are local to the camera: kept as naive wall-clock times.
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return pd.Timestamp(moment.replace(tzinfo=None))


def _rows(images: Iterable[dict[str, Any]] | pd.DataFrame) -> Sequence[dict[str, Any]]:
    if hasattr(images, "to_dict"):
        return images.to_dict("records")
    return list(images)


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _sort_key(label: str) -> tuple[int, float, str]:
    try:
        number = float(label)
    except ValueError:
        return (1, math.inf, label)
    return (0, number, label)


def _stars(rating: int) -> str:
    return f"<br>{'★' * rating}" if rating else ""
