"""The Fotoflo gallery as a Panel app script, for `panel serve`.

    FOTOFLO_DATA=./data FOTOFLO_WATCH=./hotfolder \
        panel serve apps/fotoflo_app.py --plugins dashboard.plugin

Kept outside `dashboard/`: `panel serve` puts the script's folder first on `sys.path`.
"""

from dashboard.server import panel_app

panel_app().servable(title="Fotoflo")
