"""Server for benchmarks/live.py: App's gallery at `/`, the naive Panel gallery at `/naive` and
the refetching gallery at `/refetch`.

All pages are served by one process on one Fotoflo system, so they see the same images and the
same events. The naive gallery is the way most Panel apps are written: a FlexBox of HTML panes,
one inserted at the top for each new image, pushed over the Bokeh websocket. The refetching
gallery is the seed's "before": a plain page that, on every event of the project's SSE stream,
reloads the whole image list from `/api/projects/{p}/images` page by page (the API's largest
page, 500) and re-renders it; events that arrive during a reload cause one more reload after it.

    python benchmarks/live_server.py --data DIR --watch DIR --port 5006
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import html
import json
import logging
from typing import Any

import panel as pn
from tornado import web

from dashboard.app import App
from dashboard.config import Settings
from dashboard.events import Change, ImageRecord
from dashboard.http.routes import routes
from dashboard.page import app_for_session


def naive_tile(fotoflo: App, image: ImageRecord) -> pn.pane.HTML:
    thumb = fotoflo.wire.file_url(image.id, "thumb", image.version)
    return pn.pane.HTML(
        f'<div data-image-id="{image.id}" title="{html.escape(image.filename)}">'
        f'<img src="{thumb}" width="180" height="180" style="object-fit:contain;background:#222"></div>',
        width=190,
        height=190,
        margin=2,
    )


def naive_app(fotoflo: App) -> Any:
    query = pn.state.location.query_params if pn.state.location else {}
    project = str(query.get("project") or fotoflo.settings.project)
    store = fotoflo.store
    last = store.last_seq(project)
    images = store.list_images(project, limit=1_000_000)
    flex = pn.FlexBox(*[naive_tile(fotoflo, i) for i in images], sizing_mode="stretch_width")
    doc = pn.state.curdoc

    def deliver(changes: list[Change]) -> None:
        for change in changes:
            if change.image is not None and doc is not None:
                doc.add_next_tick_callback(functools.partial(insert, change.image))

    async def insert(image: ImageRecord) -> None:
        flex.insert(0, naive_tile(fotoflo, image))

    sub = fotoflo.hub.subscribe(project, last, deliver)
    if doc is not None:
        doc.on_session_destroyed(lambda _ctx: sub.close())
    return flex


REFETCH_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>refetch gallery</title>
<style>
body { margin: 0; background: #111; }
#grid { display: flex; flex-wrap: wrap; gap: 4px; padding: 4px; }
#grid img { width: 180px; height: 180px; object-fit: contain; background: #222; display: block; }
</style></head>
<body><div id="grid"></div>
<script>
const project = new URLSearchParams(location.search).get("project") || PROJECT;
const api = `/api/projects/${encodeURIComponent(project)}`;
const grid = document.getElementById("grid");
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})[c]);
let loading = false, again = false;

async function reload() {
  if (loading) { again = true; return; }
  loading = true;
  try {
    do {
      again = false;
      const images = [];
      let next = null;
      do {  // the whole list, page by page, newest first
        const r = await fetch(`${api}/images?limit=500` + (next ? `&before=${next}` : ""));
        const page = await r.json();
        images.push(...page.images);
        next = page.next;
      } while (next);
      grid.innerHTML = images.map((i) =>
        `<div data-image-id="${esc(i.id)}" title="${esc(i.filename)}">` +
        `<img loading="lazy" src="${esc(i.thumbnail_url)}"></div>`
      ).join("");
    } while (again);
  } finally {
    loading = false;
  }
}

const source = new EventSource(`${api}/events`);
for (const kind of ["image.created", "image.updated", "image.deleted"]) source.addEventListener(kind, reload);
source.onmessage = reload;
reload();
</script></body></html>
"""


class RefetchPage(web.RequestHandler):
    """The refetching gallery: one static page; everything else it does through the public API."""

    def initialize(self, project: str) -> None:
        self.project = project

    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.write(REFETCH_PAGE.replace("PROJECT", json.dumps(self.project)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--watch", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = Settings.from_env(data=args.data, watch=args.watch, port=args.port)
    fotoflo = App(settings)
    server = pn.serve(
        {"/": lambda: app_for_session(fotoflo), "/naive": lambda: naive_app(fotoflo)},
        port=args.port,
        address="127.0.0.1",
        websocket_origin=f"127.0.0.1:{args.port}",
        extra_patterns=[(r"/refetch/?", RefetchPage, {"project": settings.project}), *routes(fotoflo)],
        show=False,
        start=False,
    )
    fotoflo.start(server.io_loop.asyncio_loop)
    server.start()
    print("ready", flush=True)
    try:
        server.io_loop.start()
    finally:
        fotoflo.stop()


if __name__ == "__main__":
    asyncio.set_event_loop(asyncio.new_event_loop())
    main()
