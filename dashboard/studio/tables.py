"""Panel `Tabulator`s of live images and tallies, changed by `stream` and `patch`, never sent whole.

`ImageTable`: the newest images of a `LiveImages` (its window), a new image streamed at the end, the
oldest rolling over, a rating, flag or label patched in its cell. `CameraCounts` and
`CollectionRatings`: picks and ratings per camera and per collection over the whole project
(a `ProjectTally`), one row patched per change.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Iterable
from typing import Any

import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import NumberFormatter
from panel.viewable import Viewer

from dashboard.events import ImageRecord
from dashboard.live import LiveImages
from dashboard.studio.counts import TallyChange
from dashboard.studio.facts import Labels, Marks
from dashboard.studio.tally import ProjectTally, tally_of

#: Tabulator's theme for `dark=True`.
DARK_THEME = "midnight"
STARS = {"type": "star", "stars": 5}


class KeyedTable:
    """A `Tabulator` with one row per key: new keys streamed at the end, changed cells patched in place.

    Each row's index label is a number of its own (Tabulator patches by label), kept per key, so a
    patch finds its row in O(1) however many rows have rolled over. `reset` sends the rows whole.
    """

    def __init__(self, columns: dict[str, str], **tabulator: Any) -> None:
        self.columns = columns  # name → pandas dtype
        self.widget = pn.widgets.Tabulator(self._frame({}, []), show_index=False, disabled=True, **tabulator)
        self._labels: dict[Hashable, int] = {}
        self._order: deque[Hashable] = deque()  # keys in row order
        self._next = 0

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._labels

    def keys(self) -> list[Hashable]:
        return list(self._order)

    def oldest(self, n: int) -> list[Hashable]:
        return [self._order[i] for i in range(min(n, len(self._order)))]

    def reset(self, rows: dict[Hashable, tuple[Any, ...]]) -> None:
        labels = list(range(self._next, self._next + len(rows)))
        self._next += len(rows)
        self._labels = dict(zip(rows, labels, strict=True))
        self._order = deque(rows)
        self.widget.value = self._frame(rows, labels)

    def append(self, rows: dict[Hashable, tuple[Any, ...]], rollover: int | None = None) -> None:
        """Stream `rows` (keys not in the table) at the end; with `rollover`, the oldest beyond it leave."""
        labels = list(range(self._next, self._next + len(rows)))
        self._next += len(rows)
        for key, label in zip(rows, labels, strict=True):
            self._labels[key] = label
            self._order.append(key)
        if rollover is not None:
            while len(self._order) > rollover:
                del self._labels[self._order.popleft()]
        self.widget.stream(self._frame(rows, labels), rollover=rollover, reset_index=False)

    def patch(self, rows: dict[Hashable, tuple[Any, ...]]) -> None:
        """Set the cells of known keys that changed (one patch for all of them); unknown keys are skipped."""
        value = self.widget.value
        patches: dict[str, list[tuple[int, Any]]] = {}
        for key, values in rows.items():
            label = self._labels.get(key)
            if label is None:
                continue
            for column, new in zip(self.columns, values, strict=True):
                if not _same(value.at[label, column], new):
                    patches.setdefault(column, []).append((label, new))
        if patches:
            self.widget.patch(patches, as_index=True)

    def _frame(self, rows: dict[Hashable, tuple[Any, ...]], labels: list[int]) -> pd.DataFrame:
        index = pd.Index(labels, dtype="int64")
        values = list(zip(*rows.values(), strict=True)) if rows else [() for _ in self.columns]
        columns = zip(self.columns.items(), values, strict=True)
        return pd.DataFrame({c: pd.Series(v, dtype=t, index=index) for (c, t), v in columns}, index=index)


class ImageTable(Viewer):
    """The newest images of `live` (its `images`, the window), one row each, the newest at the bottom.

    A new image is streamed as one row (the oldest rolls over past the window); a new rating, flag,
    label or version patches the cells that changed. A deletion inside the window, or a larger window
    (older images join at the top), sends the window's rows again: at most `window`, never the project.
    """

    live = param.ClassSelector(class_=LiveImages, constant=True, doc="The live images shown.")
    dark = param.Boolean(default=False, constant=True, doc="Draw for a dark page.")
    height = param.Integer(default=360, bounds=(100, None), constant=True, doc="Height in pixels.")

    COLUMNS = {"captured": "object", "file": "object", "camera": "object", "lens": "object", "focal": "object",
               "iso": "object", "rating": "int64", "flag": "object", "label": "object"}  # fmt: skip

    def __init__(self, live: LiveImages, **params: Any) -> None:
        super().__init__(live=live, **params)
        self._live = live
        self._facts = Labels()
        self.table = KeyedTable(
            self.COLUMNS,
            formatters={"rating": STARS},
            titles={"captured": "Captured", "file": "File", "rating": "Stars"},
            sizing_mode="stretch_width",
            height=self.height,
            layout="fit_data_stretch",
            theme=DARK_THEME if self.dark else "simple",
            css_classes=["ff-studio-table"],
        )
        with live.holding():  # the window and the updates after it, none between
            self.table.reset(self._rows(reversed(live.images)))
            live.param.watch(self._on_window, ["delta", "images"])

    def _row(self, image: ImageRecord) -> tuple[Any, ...]:
        facts = self._facts.facts(image)
        captured = (image.captured_at or "")[:19].replace("T", " ")
        return (captured, image.filename, facts.camera, facts.lens, facts.focal, facts.iso,
                image.rating, image.flag, image.label)  # fmt: skip

    def _rows(self, images: Iterable[ImageRecord]) -> dict[Hashable, tuple[Any, ...]]:
        return {image.id: self._row(image) for image in images}

    def _on_window(self, *events: param.parameterized.Event) -> None:
        named = {event.name: event.new for event in events}
        delta = named.get("delta")
        images = named.get("images", self._live.images)
        if delta is None:
            return
        table = self.table
        added = {r.id: self._row(r) for r in reversed(delta.added) if r.id not in table}  # oldest first
        gone = {i for i in delta.removed if i in table}
        past = len(table) + len(added) - len(images)  # how many of the oldest rows the window leaves out
        rolled_over = past >= 0 and gone == set(table.oldest(past)) and (added or not gone)
        if delta.reset or delta.appended or not images or not rolled_over:
            table.reset(self._rows(reversed(images)))  # at most a window, never the project
            return
        if added:
            table.append(added, rollover=len(images))
        if delta.updated:
            table.patch(self._rows(delta.updated))

    def __panel__(self) -> pn.widgets.Tabulator:
        return self.table.widget


class TallyTable(Viewer):
    """A table of `Marks` per key of a `ProjectTally` (cameras, collections): rows streamed and patched."""

    live = param.ClassSelector(class_=LiveImages, constant=True, doc="The live images whose project is counted.")
    dark = param.Boolean(default=False, constant=True, doc="Draw for a dark page.")
    height = param.Integer(default=220, bounds=(100, None), constant=True, doc="Height in pixels.")

    NAME = "name"

    def __init__(self, live: LiveImages, *, tally: ProjectTally | None = None, **params: Any) -> None:
        super().__init__(live=live, **params)
        self.tally = tally or tally_of(live)
        columns = {self.NAME: "object", "images": "int64", "picks": "int64", "rejects": "int64",
                   "rated": "int64", "mean_rating": "float64"}  # fmt: skip
        self.table = KeyedTable(
            columns,
            titles={"mean_rating": "Mean stars"},
            formatters={"mean_rating": NumberFormatter(format="0.00", nan_format="")},
            sizing_mode="stretch_width",
            height=self.height,
            layout="fit_columns",
            theme=DARK_THEME if self.dark else "simple",
        )
        with self.tally.holding():  # the state and the changes after it, none between
            self._draw(self.tally.state())
            self.tally.param.watch(lambda event: self._draw(event.new), "change")

    def _marks_of(self, change: TallyChange) -> dict[Hashable, tuple[str, Marks] | None]:
        raise NotImplementedError

    def _draw(self, change: TallyChange) -> None:
        marks = self._marks_of(change)
        rows = {key: _marks_row(*value) for key, value in marks.items() if value is not None}
        if change.reset:
            self.table.reset(rows)
        elif any(value is None for value in marks.values()):
            # A row leaves (a deleted collection): the rows are sent again, as many as there are keys.
            kept = {key: row for key, row in self._current().items() if marks.get(key, ...) is not None}
            self.table.reset({**kept, **rows})
        else:
            self.table.patch({key: row for key, row in rows.items() if key in self.table})
            new = {key: row for key, row in rows.items() if key not in self.table}
            if new:
                self.table.append(new)

    def _current(self) -> dict[Hashable, tuple[Any, ...]]:
        value = self.table.widget.value
        return {key: tuple(value.loc[label]) for key, label in self.table._labels.items()}

    def __panel__(self) -> pn.widgets.Tabulator:
        return self.table.widget


class CameraCounts(TallyTable):
    """Per camera (make and model) over the whole project: images, picks, rejects, rated, mean stars.

    For an event shot by several photographers: who shot how much and how much of it was kept.
    """

    NAME = "camera"

    def _marks_of(self, change: TallyChange) -> dict[Hashable, tuple[str, Marks] | None]:
        return {name: (name, marks) for name, marks in change.cameras.items()}


class CollectionRatings(TallyTable):
    """Per saved collection: its images, and how many of them are picked, rejected and rated (mean stars)."""

    NAME = "collection"

    def _marks_of(self, change: TallyChange) -> dict[Hashable, tuple[str, Marks] | None]:
        return {cid: (c.name, c.marks) if c is not None else None for cid, c in change.collections.items()}


def _marks_row(name: str, marks: Marks) -> tuple[Any, ...]:
    mean = marks.mean_rating
    return (name, marks.images, marks.picks, marks.rejects, marks.rated, math.nan if mean is None else round(mean, 2))


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, float) and isinstance(new, float) and math.isnan(old) and math.isnan(new):
        return True
    return bool(old == new)
