"""The studio dashboard: every live piece of a project together, and the page with the gallery beside it."""

from __future__ import annotations

from typing import Any

import panel as pn
import param
from panel.viewable import Viewer

from dashboard.live import LiveImages
from dashboard.studio.charts import Distribution, ShotsPerMinute
from dashboard.studio.facts import FACETS
from dashboard.studio.tables import CameraCounts, CollectionRatings, ImageTable
from dashboard.studio.tally import ProjectTally, tally_of

#: The dashboard's width beside the gallery, in pixels.
SIDE_WIDTH_PX = 720
#: Narrower than this, the dashboard goes below the gallery, as wide as the window (a phone, a tablet).
STACK_BELOW_PX = 1100

# Bokeh sets the side's width on its element; below `STACK_BELOW_PX` these win over it (a shadow root's
# `!important` does), so no page is wider than its window.
_ROW_CSS = (
    f"@media (max-width: {STACK_BELOW_PX}px) {{ :host {{ flex-direction: column; overflow-y: auto;"
    " min-width: 0 !important; }} }}"
)
_GALLERY_CSS = (
    f"@media (max-width: {STACK_BELOW_PX}px) {{ :host {{ flex: none !important; height: 100vh !important;"
    " width: 100% !important; min-width: 0 !important; }} }}"
)
_SIDE_CSS = (
    f"@media (max-width: {STACK_BELOW_PX}px) {{ :host {{ width: 100% !important; height: auto !important;"
    " min-width: 0 !important; flex: none !important; overflow: visible !important; }} }}"
)


def image_count(live: LiveImages, **params: Any) -> pn.indicators.Number:
    """A `Number` bound to `live.count` (all of the project's images): one value sent per change."""
    options: dict[str, Any] = {"label": "Images", "format": "{value:,}", "font_size": "36pt", "title_size": "12pt",
               "css_classes": ["ff-studio-count"]}  # fmt: skip
    with live.holding():  # the value now and its changes after, none between
        return pn.indicators.Number(value=live.param.count, **{**options, **params})


class StudioDashboard(Viewer):
    """A project's live dashboard: the count, shots per minute, the distributions, cameras, collections, the table.

    Each piece is also usable on its own (`image_count`, `ShotsPerMinute`, `Distribution`,
    `CameraCounts`, `CollectionRatings`, `ImageTable`); here they share one `ProjectTally`.
    """

    live = param.ClassSelector(class_=LiveImages, constant=True, doc="The live images shown.")
    dark = param.Boolean(default=False, constant=True, doc="Draw for a dark page.")

    def __init__(self, live: LiveImages, *, tally: ProjectTally | None = None, **params: Any) -> None:
        super().__init__(live=live, **params)
        self.tally = tally or tally_of(live)
        tally, dark = self.tally, self.dark
        self.count = image_count(live, default_color="#eee" if dark else "currentcolor")
        self.shots = ShotsPerMinute(live, tally=tally, dark=dark)
        self.distributions = [Distribution(live, tally=tally, dark=dark, facet=f, height=200) for f in FACETS]
        self.cameras = CameraCounts(live, tally=tally, dark=dark, height=180)
        self.collections = CollectionRatings(live, tally=tally, dark=dark, height=180)
        self.table = ImageTable(live, dark=self.dark, height=320)

        def heading(text: str) -> pn.pane.Markdown:
            # The page's headings go in order (the project's name is its h1): h2, drawn as small as before.
            return pn.pane.Markdown(f"## {text}", styles={"color": "#dddddd"} if dark else {}, margin=(0, 10),
                                    stylesheets=["h2 { font-size: 1em; }"])  # fmt: skip

        self._layout = pn.Column(
            self.count,
            self.shots,
            pn.GridBox(*self.distributions, ncols=2, sizing_mode="stretch_width"),
            heading("Cameras"),
            self.cameras,
            heading("Collections"),
            self.collections,
            heading("Newest images"),
            self.table,
            sizing_mode="stretch_width",
        )

    def __panel__(self) -> pn.Column:
        return self._layout


def dashboard_page(
    app: Any, project: str | None = None, lang: str = "en", person: dict[str, str] | None = None
) -> pn.viewable.Viewable:
    """The studio page for one browser session of `app`'s server: the live gallery, the dashboard beside it.

    Call it in a session (`fotoflo serve`, a `panel serve` app with the plugin): the live model of
    `project` (default: the app's) is the process's shared one. Which project a session may see is
    the caller's to decide (a share link's session: `dashboard.auth.pages.page_project`). `lang` is
    the gallery's language (dashboard/i18n.py); the dashboard beside it is in English. `person`: who
    the session is, for the gallery's favourites (`Gallery`'s).
    """
    from dashboard.gallery import Gallery
    from dashboard.live import live_images

    name = project or app.settings.project
    live = live_images(app, name)
    gallery = pn.Column(
        Gallery(app=app, project=name, lang=lang, person=person),
        sizing_mode="stretch_both",
        margin=0,
        stylesheets=[_GALLERY_CSS],
    )
    dashboard = StudioDashboard(live, dark=True)
    side = pn.Column(
        dashboard,
        width=SIDE_WIDTH_PX,
        scroll=True,
        sizing_mode="stretch_height",
        styles={"background": "#141414", "color": "#dddddd"},
        stylesheets=[_SIDE_CSS],
    )
    return pn.Row(gallery, side, sizing_mode="stretch_both", margin=0, stylesheets=[_ROW_CSS])
