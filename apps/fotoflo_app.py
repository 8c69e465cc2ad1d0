"""The Fotoflo gallery as a Panel app script, for `panel serve`.

    FOTOFLO_DATA=./data FOTOFLO_WATCH=./hotfolder \
        panel serve apps/fotoflo_app.py --plugins dashboard.plugin

Kept outside `dashboard/`: `panel serve` puts the script's folder first on `sys.path`. The plugin
holds this process's `App`; the page gets it explicitly.
"""

from dashboard.page import app_for_session
from dashboard.plugin import app

app_for_session(app).servable(title="Fotoflo")
