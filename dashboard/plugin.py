"""`panel serve apps/fotoflo_app.py --plugins dashboard.plugin`: Fotoflo's API beside any Panel app.

Panel imports this module before it starts serving and adds `ROUTES` to its tornado server. The
services are configured from the `FOTOFLO_*` environment variables (see `dashboard.config`) and held
in `app`, which the app script passes to the views it builds (`app_for_session(app)`,
`Gallery(app=app)`).
"""

from __future__ import annotations

import atexit

from dashboard import logs
from dashboard.app import App
from dashboard.config import Settings
from dashboard.http.routes import server_routes

logs.install()  # on the handlers Panel set up: no share link, signature or token in its log lines
app = App(Settings.from_env())
app.start()  # the feed hub binds to Panel's loop when the first stream opens
atexit.register(app.stop)

# With FOTOFLO_AUTH on, the API checks every request and /login and share links sign browsers in; the
# page itself is guarded only by `fotoflo serve` (Bokeh's auth hook is the server's, not a plugin's).
ROUTES = server_routes(app)
