"""What a notebook does, as a script: show a Gallery of a data directory, ingest from the kernel.

The page is served by Panel (as Jupyter would serve it); the gallery talks to the Fotoflo API
server that `Gallery(data=...)` starts in this process, on another port: cross-origin, absolute
URLs, like in JupyterLab. Files appearing in INBOX are ingested with `gallery.ingest`, as a later
notebook cell would; INBOX/project.txt, when written, sets `gallery.project`.
"""

import sys
import threading
import time
from pathlib import Path

import panel as pn

from dashboard.gallery import Gallery

data, inbox, port = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
mode = sys.argv[4] if len(sys.argv) > 4 else "grid"
inbox.mkdir(parents=True, exist_ok=True)
gallery = Gallery(data=data, project="notebook", mode=mode)
print("API", gallery.api_url, "TOKEN", gallery.__panel__().api_token, flush=True)


def kernel_cells() -> None:
    seen: set[Path] = set()
    while True:
        switch = inbox / "project.txt"  # a cell that sets `gallery.project`
        if switch.exists() and switch.read_text() != gallery.project:
            gallery.project = switch.read_text()
        for path in sorted(inbox.glob("*.jpg")):
            if path not in seen:
                seen.add(path)
                gallery.ingest(path)
        time.sleep(0.1)


threading.Thread(target=kernel_cells, daemon=True).start()
pn.serve(
    {"/": lambda: pn.Column(gallery, sizing_mode="stretch_both")},
    port=port,
    address="127.0.0.1",
    show=False,
    websocket_origin=f"127.0.0.1:{port}",
)
