"""Bokeh charts of a project's tallies, changed by `ColumnDataSource.stream` and `.patch`, never redrawn.

`ShotsPerMinute` (a timeline) and `Distribution` (bars per camera, lens, focal length or ISO) draw
a `ProjectTally`: all of the project's images, not a window. A new image patches the bar of its
minute and of its camera, lens, focal length and ISO (or streams one new bar); nothing else is sent.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, cast

import panel as pn
import param
from bokeh.models import BasicTicker, ColumnDataSource, DataRange1d, FactorRange, HoverTool
from bokeh.plotting import figure
from panel.viewable import Viewer

from dashboard.live import LiveImages
from dashboard.studio.counts import TallyChange
from dashboard.studio.facts import FACETS, order_key
from dashboard.studio.tally import ProjectTally, tally_of

#: The colours of a chart for `dark=True` (set on the figure: a document's theme would override a pane's).
DARK = {"background": "#1b1b1b", "border": "#141414", "text": "#cccccc", "grid": "#333333"}
MINUTE_MS = 60_000
FACET_TITLES = {"camera": "Cameras", "lens": "Lenses", "focal": "Focal lengths", "iso": "ISO"}


class KeyedSource:
    """A `ColumnDataSource` with one row per key: a new key streams a row, a known one patches its cells.

    Rows never move or leave (a key whose count falls to 0 keeps its row), so a row's index stays
    valid and an update sends only what changed. `reset` replaces the data as a whole.
    """

    def __init__(self, key: str, columns: tuple[str, ...]) -> None:
        self.key, self.columns = key, columns
        self.source = ColumnDataSource({key: [], **{c: [] for c in columns}})
        self._rows: dict[Hashable, int] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._rows

    def keys(self) -> list[Hashable]:
        return list(self._rows)

    def reset(self, rows: dict[Any, tuple[Any, ...]]) -> None:
        self._rows = {key: i for i, key in enumerate(rows)}
        data: dict[str, list[Any]] = {self.key: list(rows), **{c: [] for c in self.columns}}
        for values in rows.values():
            for column, value in zip(self.columns, values, strict=True):
                data[column].append(value)
        self.source.data = data

    def update(self, rows: dict[Any, tuple[Any, ...]]) -> None:
        """Patch the rows of known keys (the cells that changed), stream one row for each other key."""
        patches: dict[str, list[tuple[int, Any]]] = {}
        new: dict[str, list[Any]] = {self.key: [], **{c: [] for c in self.columns}}
        data = self.source.data
        for key, values in rows.items():
            row = self._rows.get(key)
            if row is None:
                self._rows[key] = len(self._rows)
                new[self.key].append(key)
                for column, value in zip(self.columns, values, strict=True):
                    new[column].append(value)
                continue
            for column, value in zip(self.columns, values, strict=True):
                if data[column][row] != value:
                    patches.setdefault(column, []).append((row, value))
        if new[self.key]:
            self.source.stream(cast(Any, new))
        if patches:
            self.source.patch(patches)


class TallyChart(Viewer):
    """A chart of a `ProjectTally`; subclasses draw the figure and say which rows a change sets."""

    live = param.ClassSelector(class_=LiveImages, constant=True, doc="The live images whose project is counted.")
    dark = param.Boolean(default=False, constant=True, doc="Draw for a dark page.")
    height = param.Integer(default=220, bounds=(100, None), constant=True, doc="Height in pixels.")

    def __init__(self, live: LiveImages, *, tally: ProjectTally | None = None, **params: Any) -> None:
        super().__init__(live=live, **params)
        self.tally = tally or tally_of(live)
        self.rows = KeyedSource(*self._columns())
        self.figure = self._figure()
        if self.dark:
            _darken(self.figure)
        self._pane = pn.pane.Bokeh(self.figure, sizing_mode="stretch_width", height=self.height)
        with self.tally.holding():  # the state and the changes after it, none between
            self._draw(self.tally.state())
            self.tally.param.watch(self._on_change, "change")

    def _columns(self) -> tuple[str, tuple[str, ...]]:
        raise NotImplementedError

    def _figure(self) -> Any:
        raise NotImplementedError

    def _rows_of(self, change: TallyChange) -> dict[Any, tuple[Any, ...]]:
        raise NotImplementedError

    def _on_change(self, event: param.parameterized.Event) -> None:
        self._draw(event.new)
        pn.io.push_notebook(self._pane)  # a notebook's page hears of Bokeh models changed directly only so

    def _draw(self, change: TallyChange) -> None:
        rows = self._rows_of(change)
        if change.reset:
            self._keys_now(list(rows))
            self.rows.reset(rows)
        elif rows:
            new = [key for key in rows if key not in self.rows]
            if new:
                self._keys_now([*self.rows.keys(), *new])
            self.rows.update(rows)

    def _keys_now(self, keys: list[Any]) -> None:
        """Called before rows are added, with every key the chart will then have."""

    def __panel__(self) -> pn.pane.Bokeh:
        return self._pane


class ShotsPerMinute(TallyChart):
    """Images per minute of capture over the whole project, as bars on a time axis.

    Binned by the capture time as the camera's clock wrote it (EXIF DateTimeOriginal; a file without
    one: its modification time, else its arrival, in UTC), so a card copied in later still lands in
    the minutes it was shot. A new image patches its minute's bar, or streams one bar for a new minute.
    """

    def _columns(self) -> tuple[str, tuple[str, ...]]:
        return "minute", ("shots",)

    def _figure(self) -> Any:
        fig = figure(
            x_axis_type="datetime",
            y_range=DataRange1d(start=0),
            title="Shots per minute",
            tools="xpan,xwheel_zoom,reset",
            toolbar_location=None,
            sizing_mode="stretch_width",
            height=self.height,
        )
        fig.vbar(x="minute", top="shots", width=0.9 * MINUTE_MS, source=self.rows.source)
        fig.yaxis.ticker = BasicTicker(min_interval=1)  # whole images
        tooltips = [("minute", "@minute{%F %H:%M}"), ("shots", "@shots")]
        fig.add_tools(HoverTool(tooltips=tooltips, formatters={"@minute": "datetime"}))
        return fig

    def _rows_of(self, change: TallyChange) -> dict[Any, tuple[Any, ...]]:
        return {minute: (n,) for minute, n in change.minutes.items()}


class Distribution(TallyChart):
    """Images per camera, lens, focal length or ISO (`facet`) over the whole project, as horizontal bars.

    A new image patches one bar; a value not seen before streams one bar and adds its name to the
    axis (which lists the values in order: focal lengths and ISOs by number; `unknown` last).
    """

    facet: Any = param.Selector(default="camera", objects=list(FACETS), constant=True, doc="What is counted.")

    def _columns(self) -> tuple[str, tuple[str, ...]]:
        return "value", ("images",)

    def _figure(self) -> Any:
        fig = figure(
            y_range=FactorRange(factors=[]),
            x_range=DataRange1d(start=0),
            title=FACET_TITLES[self.facet],
            tools="",
            toolbar_location=None,
            sizing_mode="stretch_width",
            height=self.height,
        )
        fig.hbar(y="value", right="images", height=0.8, source=self.rows.source)
        fig.xaxis.ticker = BasicTicker(min_interval=1)  # whole images
        fig.add_tools(HoverTool(tooltips=[(self.facet, "@value"), ("images", "@images")]))
        return fig

    def _rows_of(self, change: TallyChange) -> dict[Any, tuple[Any, ...]]:
        return {value: (n,) for value, n in change.facets.get(self.facet, {}).items()}

    def _keys_now(self, keys: list[Any]) -> None:
        # The axis lists the values: a new one sends the list of names (as many as values, not images).
        self.figure.y_range.factors = sorted(map(str, keys), key=lambda k: order_key(self.facet, k))


def _darken(fig: Any) -> None:
    fig.background_fill_color = DARK["background"]
    fig.border_fill_color = DARK["border"]
    fig.outline_line_color = None
    fig.title.text_color = DARK["text"]
    for axis in [*fig.xaxis, *fig.yaxis]:
        axis.major_label_text_color = axis.axis_label_text_color = DARK["text"]
        axis.axis_line_color = axis.major_tick_line_color = axis.minor_tick_line_color = DARK["grid"]
    for grid in [*fig.xgrid, *fig.ygrid]:
        grid.grid_line_color = DARK["grid"]
