"""The sync panel: pick a folder, server and project, start and stop, watch the queue drain.

`SyncState` holds what the panel shows, as `param` state, and its intents (`start`, `stop`,
`retry_failed`, `refresh`) drive a `SyncClient`, which does all the file and network work; the
view (`SyncPanel`) only reads that state and sends those intents. It reads the same queue the
CLI writes: opened on a folder that a `fotoflo sync` already syncs, it shows that client's queue.

    fotoflo sync ~/shoot --server http://studio.local:5006 --project wedding --ui
    SyncPanel(folder="~/shoot", server="http://studio.local:5006", project="wedding")   # a notebook
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from dashboard.guard import Boundary, guard
from dashboard.sync.client import SyncClient, SyncStatus, read_status, state_dir_for
from dashboard.sync.queue import DONE, FAILED, PENDING, SKIPPED, UPLOADING, QueueLocked

log = logging.getLogger("fotoflo.sync")

QUEUE_COLUMNS = ["state", "action", "path", "attempts", "error"]
UPLOADING_COLUMNS = ["path", "sent_bytes", "size_bytes", "progress"]

# Clients this process runs, by state directory: several panels (browser tabs) on one folder share one.
_running: dict[Path, SyncClient] = {}
_running_lock = threading.Lock()


class SyncState(param.Parameterized):
    """What the sync panel shows, and the intents that drive its `SyncClient`."""

    folder = param.String(default="", doc="The folder to keep uploaded (subfolders included).")
    server = param.String(default="", doc="Base URL of the Fotoflo server, e.g. http://studio.local:5006.")
    project = param.String(default="default", doc="Project on the server the folder is uploaded to.")
    token = param.String(default="", doc="Sent as 'Authorization: Bearer TOKEN' when not empty.")
    device_name = param.String(default="", doc="This device's name in conflict copies; '' keeps the stored one.")
    state_dir = param.String(default="", doc="State directory of the queue; '' means the default for the folder.")
    delete = param.Boolean(
        default=False,
        doc="Also delete from the server what is deleted from the folder (not what is moved, nor a folder"
        " that is gone as a whole). Off by default: deleting here never touches the client's gallery.",
    )
    running = param.Boolean(default=False, doc="True while this process's client for the folder runs.")
    counts = param.Dict(default={}, doc="Rows of the queue in each state: pending, uploading, done, failed, skipped.")
    progress = param.Integer(default=0, bounds=(0, 100), doc="Share of this run's files finished, in percent.")
    bytes_per_s = param.Number(default=0.0, doc="Upload throughput over the last seconds, in bytes per second.")
    uploading = param.List(default=[], doc="Files being sent: dicts of path, sent_bytes, size_bytes, progress.")
    queue = param.List(default=[], doc="Recent rows of the queue: dicts of state, action, path, attempts, error.")
    offline = param.String(default="", doc="Why the server cannot be reached, while it cannot ('' when online).")
    error = param.String(default="", doc="Why nothing can be uploaded until someone acts ('' when none).")
    deletions_held = param.String(
        default="", doc="With delete: why no deletion is sent now, e.g. the folder looks unmounted ('' when none)."
    )
    message = param.String(default="", doc="The last thing the panel has to say (started, stopped, a refusal).")
    gallery_url = param.String(default="", doc="The project's gallery on the server.")

    def __init__(self, client_factory: Callable[..., SyncClient] = SyncClient, **params: Any) -> None:
        super().__init__(**params)
        self._client_factory = client_factory
        self._client: SyncClient | None = None
        self._finished_before = 0

    # -- intents --------------------------------------------------------------------------

    def start(self) -> None:
        """Start syncing the folder (or attach to this process's client that already does)."""
        if self._client is not None:
            return
        if not self.folder or not self.server:
            self.message = "Give a folder and a server first."
            return
        try:
            state_dir = self._state_dir()
            with _running_lock:
                client = _running.get(state_dir)
                if client is None:
                    client = self._client_factory(
                        self.folder,
                        self.server,
                        self.project,
                        token=self.token or None,
                        state_dir=state_dir,
                        device_name=self.device_name or None,
                        delete=self.delete,
                    )
                    try:
                        client.start()
                    except BaseException:
                        client.close()
                        raise
                    _running[state_dir] = client
        except QueueLocked as exc:
            self.message = f"{exc}: showing its queue."
            return
        except (OSError, ValueError) as exc:
            self.message = f"Cannot start: {exc}"
            return
        self._client = client
        self.delete = client.delete  # another tab's client for this folder may have started without it
        counts = client.queue.counts()
        self._finished_before = counts[DONE] + counts[FAILED] + counts[SKIPPED]
        deleting = ", deleting on the server what is deleted here" if client.delete else ""
        self.message = f"Syncing {client.folder} as {client.device.name!r}{deleting}."
        self.refresh()

    def stop(self) -> None:
        """Stop syncing; what is left stays queued for the next start."""
        client, self._client = self._client, None
        if client is None:
            return
        with _running_lock:
            _running.pop(client.state_dir, None)
        client.close()
        self.message = "Stopped; the queue is kept."
        self.refresh()

    def retry_failed(self) -> None:
        """Send the failed files again."""
        if self._client is None:
            self.message = "Start syncing to retry the failed files."
            return
        count = self._client.retry_failed()
        self.message = f"Retrying {count} file(s)."
        self.refresh()

    def refresh(self) -> None:
        """Read the client's status (or, when none runs here, the folder's queue as another process left it)."""
        status = self._status()
        self.running = self._client is not None
        if status is None:
            self.param.update(
                counts={}, progress=0, uploading=[], queue=[], bytes_per_s=0.0, offline="", error="", deletions_held=""
            )
            return
        counts = status.counts
        finished = counts[DONE] + counts[FAILED] + counts[SKIPPED] - self._finished_before
        total = finished + counts[PENDING] + counts[UPLOADING]
        rows = [
            {"state": u.state, "action": u.action, "path": u.path, "attempts": u.attempts, "error": u.last_error or ""}
            for u in status.failed + status.pending
        ]
        self.param.update(
            counts=dict(counts),
            progress=100 if total == 0 else min(100, round(100 * finished / total)),
            bytes_per_s=status.bytes_per_s,
            uploading=[
                {
                    "path": f.path,
                    "sent_bytes": f.sent_bytes,
                    "size_bytes": f.size_bytes,
                    "progress": round(100 * f.sent_bytes / f.size_bytes) if f.size_bytes else 100,
                }
                for f in status.uploading
            ],
            queue=rows,
            offline=status.offline or "",
            error=status.error or "",
            deletions_held=status.deletions_held or "",
            gallery_url=f"{self.server.rstrip('/')}/?project={self.project}" if self.server else "",
        )

    def close(self) -> None:
        self.stop()

    # -- reading --------------------------------------------------------------------------

    def _state_dir(self) -> Path:
        if self.state_dir:
            return Path(self.state_dir).expanduser().resolve()
        return state_dir_for(Path(self.folder).expanduser(), self.server, self.project)

    def _status(self) -> SyncStatus | None:
        if self._client is not None:
            return self._client.status()
        if not self.folder or not self.server:
            return None
        state_dir = self._state_dir()
        if not (state_dir / "queue.sqlite").is_file():
            return None
        return read_status(state_dir)


class SyncPanel(Viewer):
    """The sync panel: settings, start/stop, overall and per-file progress, throughput, the queue."""

    state: Any = param.ClassSelector(class_=SyncState, doc="The state shown and the client it drives.")
    refresh_ms = param.Integer(default=500, bounds=(100, None), doc="Milliseconds between status refreshes.")

    def __init__(self, state: SyncState | None = None, **params: Any) -> None:
        names = set(SyncState.param) - {"name"}
        settings = {k: params.pop(k) for k in list(params) if k in names}
        super().__init__(state=state or SyncState(**settings), **params)
        self._callback: Any = None

    def _start_refreshing(self) -> None:
        if self._callback is None:
            self._callback = pn.state.add_periodic_callback(self.state.refresh, period=self.refresh_ms)

    def counts_text(self) -> str:
        """The queue in one line: the rows in each state, and the throughput."""
        counts, bytes_per_s = self.state.counts, self.state.bytes_per_s
        if not counts:
            return "Nothing queued yet."
        text = " · ".join(f"**{counts.get(s, 0)}** {s}" for s in (PENDING, UPLOADING, DONE, FAILED, SKIPPED))
        return f"{text} · {bytes_per_s / 1e6:.1f} MB/s" if bytes_per_s else text

    def notice_text(self) -> str:
        """What needs saying most: a stop that needs a person, an outage, held deletions, else the last message."""
        if self.state.error:
            return f"**Stopped:** {self.state.error}"
        if self.state.offline:
            return f"**Offline:** {self.state.offline}. The queue is kept; retrying."
        if self.state.deletions_held:
            return f"**Deletions held:** {self.state.deletions_held}."
        return str(self.state.message)

    def __panel__(self) -> pn.viewable.Viewable:
        s = self.state
        start = pn.widgets.Button(label="Start")
        stop = pn.widgets.Button(label="Stop")
        retry = pn.widgets.Button(label="Retry failed")
        start.on_click(lambda _: s.start())
        stop.on_click(lambda _: s.stop())
        retry.on_click(lambda _: s.retry_failed())
        delete = pn.widgets.Checkbox.from_param(s.param.delete, name="Delete on the server what I delete here")
        start.disabled, stop.disabled, delete.disabled = s.running, not s.running, s.running
        s.param.watch(lambda e: setattr(start, "disabled", e.new), "running")
        s.param.watch(lambda e: setattr(stop, "disabled", not e.new), "running")
        s.param.watch(lambda e: setattr(delete, "disabled", e.new), "running")  # it applies from the next start
        uploading = pn.widgets.Tabulator(
            pd.DataFrame(s.uploading, columns=UPLOADING_COLUMNS),
            formatters={"progress": {"type": "progress", "max": 100}},
            disabled=True,
            show_index=False,
            height=160,
            sizing_mode="stretch_width",
        )
        queue = pn.widgets.Tabulator(
            pd.DataFrame(s.queue, columns=QUEUE_COLUMNS),
            disabled=True,
            show_index=False,
            height=260,
            sizing_mode="stretch_width",
        )
        s.param.watch(
            lambda e: setattr(uploading, "value", pd.DataFrame(e.new, columns=UPLOADING_COLUMNS)), "uploading"
        )
        s.param.watch(lambda e: setattr(queue, "value", pd.DataFrame(e.new, columns=QUEUE_COLUMNS)), "queue")
        settings = pn.Column(
            pn.widgets.TextInput.from_param(s.param.folder, label="Folder"),
            pn.widgets.TextInput.from_param(s.param.server, label="Server"),
            pn.widgets.TextInput.from_param(s.param.project, label="Project"),
            pn.widgets.PasswordInput.from_param(s.param.token, label="Token"),
            pn.widgets.TextInput.from_param(s.param.device_name, label="Device name"),
            delete,
            pn.Row(start, stop, retry),
            width=320,
        )
        counts, notice, gallery = pn.pane.Markdown(), pn.pane.Markdown(), pn.pane.Markdown()

        def render(*_: object) -> None:
            counts.object = self.counts_text()
            notice.object = self.notice_text()
            gallery.object = f"[Open the gallery]({s.gallery_url})" if s.gallery_url else ""

        s.param.watch(render, ["counts", "bytes_per_s", "offline", "error", "deletions_held", "message", "gallery_url"])
        render()
        status = pn.Column(
            pn.indicators.Progress(value=s.param.progress, max=100, sizing_mode="stretch_width"),
            counts,
            notice,
            gallery,
            "### Uploading",
            uploading,
            "### Queue (pending and failed, with reasons)",
            queue,
            sizing_mode="stretch_width",
        )
        s.refresh()
        if pn.state.curdoc is not None:  # a served page or a notebook: keep the view current
            self._start_refreshing()
        return pn.Row(settings, status, sizing_mode="stretch_width")


def serve_panel(*, port: int, address: str = "127.0.0.1", **settings: Any) -> None:
    """`fotoflo sync --ui`: serve the panel on `port` until Ctrl-C; one client per folder, shared by every tab."""
    values: dict[str, Any] = {
        k: "" if v is None else v if isinstance(v, bool) else str(v)
        for k, v in settings.items()
        if k in SyncState.param
    }

    def page() -> Any:
        return pn.template.FastListTemplate(title="Fotoflo sync", main=[SyncPanel(SyncState(**values))])

    print(f"Fotoflo sync panel at http://{address}:{port}/")
    try:
        server = pn.serve({"/": page}, port=port, address=address, show=False, title="Fotoflo sync", start=False)
        guard(server, Boundary(address, port))  # its Host on every request, its names for the websocket
        server.start()
        server.io_loop.start()
    finally:
        with _running_lock:
            clients = list(_running.values())
            _running.clear()
        for client in clients:
            client.close()
