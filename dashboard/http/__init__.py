"""Fotoflo over HTTP: tornado handlers beside the Panel app, one module per resource.

- `routes`: the URL table (`routes(app)`, `page_routes(app)`, `server_routes(app)`) and `http_server_kwargs()`.
- `rules`: `Allow`, how each handler declares per method who may call it (`ACTIONS`).
- `base`: `ApiHandler`, the plumbing (boundary, authorization, body caps, JSON answers and errors);
  `project`: `ProjectHandler`, the checks a share link's scope needs, for the routes of one project.
- `images`, `upload`, `collections`, `exports`, `shares`, `stream` (the change feed and SSE),
  `files` (signed URLs), `health`: one resource each.
- `pages`: the sign-in pages, share link landing and the Bokeh hook that guards the Panel page.

Handlers take the process's `App` (`dashboard.app`) as `app`.
"""
