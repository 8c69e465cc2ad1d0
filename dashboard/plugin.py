"""`panel serve apps/fotoflo_app.py --plugins dashboard.plugin`: Fotoflo's API beside any Panel app.

Panel imports this module before it starts serving and adds `ROUTES` to its tornado server. The
system is configured from the `FOTOFLO_*` environment variables (see `dashboard.config`).
"""

from __future__ import annotations

import atexit

from dashboard import api, logs
from dashboard.auth import pages as auth_pages
from dashboard.config import Settings
from dashboard.server import Fotoflo

logs.install()  # on the handlers Panel set up: no share link, signature or token in its log lines
fotoflo = Fotoflo(Settings.from_env())
fotoflo.start()  # the feed hub binds to Panel's loop when the first stream opens
atexit.register(fotoflo.stop)

# With FOTOFLO_AUTH on, the API checks every request and /login and share links sign browsers in; the
# page itself is guarded only by `fotoflo serve` (Bokeh's auth hook is the server's, not a plugin's).
ROUTES = (auth_pages.routes(fotoflo) if fotoflo.access.enabled else []) + api.routes(fotoflo)
