"""Server for benchmarks/live.py: Fotoflo's gallery at `/` and the naive Panel gallery at `/naive`.

Both pages are served by one process on one Fotoflo system, so they see the same images and the
same events. The naive gallery is the way most Panel apps are written: a FlexBox of HTML panes,
one inserted at the top for each new image, pushed over the Bokeh websocket.

    python benchmarks/live_server.py --data DIR --watch DIR --port 5006
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import html
import logging
from typing import Any

import panel as pn

from dashboard import api
from dashboard.config import Settings
from dashboard.events import Change, ImageRecord
from dashboard.server import Fotoflo, panel_app


def naive_tile(fotoflo: Fotoflo, image: ImageRecord) -> pn.pane.HTML:
    thumb = fotoflo.signer.url(image.id, "thumb")
    return pn.pane.HTML(
        f'<div data-image-id="{image.id}" title="{html.escape(image.filename)}">'
        f'<img src="{thumb}" width="180" height="180" style="object-fit:contain;background:#222"></div>',
        width=190,
        height=190,
        margin=2,
    )


def naive_app(fotoflo: Fotoflo) -> Any:
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--watch", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = Settings.from_env(data=args.data, watch=args.watch, port=args.port)
    fotoflo = Fotoflo(settings)
    server = pn.serve(
        {"/": panel_app, "/naive": lambda: naive_app(fotoflo)},
        port=args.port,
        address="127.0.0.1",
        websocket_origin=f"127.0.0.1:{args.port}",
        extra_patterns=api.routes(fotoflo),
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
