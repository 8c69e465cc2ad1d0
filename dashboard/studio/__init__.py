"""The live studio dashboard: Panel pieces on a `LiveImages`, updated by stream and patch (see docs/live.md).

    from dashboard.live import live_images
    from dashboard.studio import ImageTable, ShotsPerMinute, StudioDashboard, image_count

    live = live_images(app)                      # or dashboard.open(URL_OR_DIR, project).live()
    pn.Row(image_count(live), ShotsPerMinute(live), ImageTable(live))
    StudioDashboard(live).servable()

The count and the table follow the model's window (`images`, `delta`); the charts and the camera and
collection tables count the whole project (`ProjectTally`, one per model, read once then kept up to date).
"""

from __future__ import annotations

from dashboard.studio.charts import Distribution, KeyedSource, ShotsPerMinute
from dashboard.studio.counts import CollectionMarks, Counts, TallyChange
from dashboard.studio.facts import FACETS, UNKNOWN, Marks
from dashboard.studio.page import StudioDashboard, dashboard_page, image_count
from dashboard.studio.tables import CameraCounts, CollectionRatings, ImageTable, KeyedTable
from dashboard.studio.tally import ProjectTally, tally_of

__all__ = [
    "FACETS",
    "UNKNOWN",
    "CameraCounts",
    "CollectionMarks",
    "CollectionRatings",
    "Counts",
    "Distribution",
    "ImageTable",
    "KeyedSource",
    "KeyedTable",
    "Marks",
    "ProjectTally",
    "ShotsPerMinute",
    "StudioDashboard",
    "TallyChange",
    "dashboard_page",
    "image_count",
    "tally_of",
]
