"""`fotoflo sync`: run a `SyncClient` in the foreground with progress bars, or show the queues (`sync status`).

Exit codes: 0 when everything was uploaded (or on Ctrl-C / SIGTERM), 1 when some files were
refused (`--once`), 2 for bad usage (as argparse, or one line naming the setting that cannot work),
3 when nothing can be uploaded until a person acts (token refused, no such project, the state
directory in use by another client).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from dashboard.config import SYNC_ENV, ConfigError
from dashboard.datadir import private_dir
from dashboard.preflight import free_port
from dashboard.sync.client import SyncClient, SyncStatus, default_state_root, read_status, state_dir_for
from dashboard.sync.queue import DELETE, DONE, FAILED, PENDING, SKIPPED, UPLOAD, UPLOADING, QueueLocked, Upload

DEFAULT_UI_PORT = 5007
UI_ADDRESS = "127.0.0.1"
USAGE, NEEDS_A_PERSON = 2, 3  # exit codes
REFRESH_S = 0.25


def _setting(args: argparse.Namespace, name: str) -> str | None:
    """The option, else its `FOTOFLO_*` variable (empty ones ignored), else `None`."""
    value = getattr(args, name)
    return value if value not in (None, "") else (os.environ.get(SYNC_ENV[name][0]) or None)


def run(args: argparse.Namespace) -> int:
    if args.folder == "status":
        return status(args.state)
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # The progress display reports refusals, outages and errors itself, once each.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        logging.getLogger("fotoflo.sync").setLevel(logging.ERROR)
    server, project = _setting(args, "server"), _setting(args, "project") or "default"
    delete = bool(args.delete)
    if args.ui:
        from dashboard.sync_panel import serve_panel

        if args.folder:
            _check_folder(Path(args.folder))
        free_port(UI_ADDRESS, args.ui_port or DEFAULT_UI_PORT, "--ui-port")
        serve_panel(
            port=args.ui_port or DEFAULT_UI_PORT,
            address=UI_ADDRESS,
            folder=args.folder,
            server=server,
            project=project,
            token=_setting(args, "token"),
            device_name=_setting(args, "device_name"),
            state_dir=args.state,
            delete=delete,
        )
        return 0
    if not args.folder or not server:
        sys.stderr.write("fotoflo sync: give a FOLDER and --server URL (or FOTOFLO_SERVER)\n")
        return USAGE
    folder = _check_folder(Path(args.folder))
    _make_state_dir(args.state, folder, server, project)
    try:
        client = SyncClient(
            args.folder,
            server,
            project,
            token=_setting(args, "token"),
            state_dir=args.state,
            device_name=_setting(args, "device_name"),
            workers=args.workers or 2,
            rescan_s=args.rescan_s or 60.0,
            delete=delete,
        )
    except FileNotFoundError as exc:
        sys.stderr.write(f"fotoflo sync: {exc}\n")
        return USAGE
    stop = threading.Event()

    def on_signal(*_: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        client.start(watch=False)
    except QueueLocked as exc:
        client.close()
        sys.stderr.write(f"fotoflo sync: {exc}\n")
        return NEEDS_A_PERSON
    deleting = ", deleting what is deleted here" if delete else ""
    sys.stderr.write(
        f"syncing {client.folder} → {client.server} project {client.project!r} as {client.device.name!r}"
        f"{deleting} (state in {client.state_dir})\n"
    )
    with logging_redirect_tqdm():
        try:
            _initial_scan(client, stop, once=args.once)
            if not args.once and not stop.is_set():
                client.watch()
            return _follow(client, stop, once=args.once)
        finally:
            client.close()


def _check_folder(folder: Path) -> Path:
    """The folder to sync, resolved; `ConfigError` (one line, exit 2) if it is missing or a file."""
    folder = folder.expanduser().resolve()
    if not folder.exists():
        raise ConfigError(f"FOLDER {folder} does not exist: name the folder to sync")
    if not folder.is_dir():
        raise ConfigError(f"FOLDER {folder} is a file, not a folder: name the folder that holds the images")
    return folder


def _make_state_dir(state: Path | None, folder: Path, server: str, project: str) -> None:
    """Make the state directory (0700: it lists the folder's files) or say in one line why it cannot be."""
    path = Path(state).expanduser().resolve() if state else state_dir_for(folder, server, project)
    setting = "--state" if state else "the sync state directory (under XDG_STATE_HOME)"
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{setting} {path} is a file, not a folder: give a folder for the sync state with --state")
    try:
        private_dir(path)
    except OSError as exc:
        raise ConfigError(
            f"{setting} {path}: cannot make the state directory ({exc.strerror or exc}): "
            "give a folder you can write to with --state"
        ) from None


def _initial_scan(client: SyncClient, stop: threading.Event, *, once: bool) -> None:
    files = list(client.producer.files())
    with tqdm(total=len(files), desc="scanning", unit="file", leave=False, disable=None) as bar:
        for path in files:
            if stop.is_set():
                return
            client.producer.note(path)
            bar.update()
    # With --once this pass is the only one: a file missing at it is deleted (while watching, a
    # file must be missing at two passes in a row, so a move being noted is not taken for one).
    client.producer.find_deletions(at_once=once)
    client.uploader.wake()


def _follow(client: SyncClient, stop: threading.Event, *, once: bool) -> int:
    """Show the uploads until stopped (or, with `once`, until nothing is left); the exit code."""
    start = client.queue.counts()
    start_uploads, start_deletes = client.queue.counts(action=UPLOAD), client.queue.counts(action=DELETE)
    finished_before = start[DONE] + start[FAILED] + start[SKIPPED]
    reported_failures = {u.id for u in client.queue.uploads(states=(FAILED,), limit=10_000)}
    reported_kept = {u.id for u in _kept(client)}
    offline_shown: str | None = None
    held_shown: str | None = None
    refused = 0
    with tqdm(desc="uploading", unit="file", disable=None, dynamic_ncols=True) as bar:
        while not stop.wait(REFRESH_S):
            state = client.status()
            counts = state.counts
            finished = counts[DONE] + counts[FAILED] + counts[SKIPPED] - finished_before
            bar.total = finished + counts[PENDING] + counts[UPLOADING]
            bar.n = finished
            bar.set_postfix_str(_postfix(state), refresh=False)
            bar.refresh()
            for upload in state.failed:
                if upload.id not in reported_failures:
                    reported_failures.add(upload.id)
                    refused += 1
                    bar.write(f"refused {_named(upload)}: {upload.last_error}")
            for upload in _kept(client) if client.delete else []:
                if upload.id not in reported_kept:
                    reported_kept.add(upload.id)
                    bar.write(f"not deleted {upload.path}: {upload.last_error}")
            if state.deletions_held != held_shown:
                if state.deletions_held:
                    bar.write(state.deletions_held)
                held_shown = state.deletions_held
            if state.offline != offline_shown:
                if state.offline:
                    bar.write(f"{state.offline}; retrying (the queue is kept)")
                elif offline_shown:
                    bar.write(f"connected to {client.server} again")
                offline_shown = state.offline
            if state.error:
                bar.write(f"fotoflo sync: {state.error}")
                return NEEDS_A_PERSON
            if once and state.idle:
                break
    done, uploads = client.queue.counts(), client.queue.counts(action=UPLOAD)
    deleted = ""
    if client.delete:
        deletes = client.queue.counts(action=DELETE)
        deleted = f"{deletes[DONE] - start_deletes[DONE]} deleted, "
    print(
        f"{uploads[DONE] + uploads[SKIPPED] - start_uploads[DONE] - start_uploads[SKIPPED]} synced, {deleted}"
        f"{refused} refused, {done[PENDING] + done[UPLOADING]} left → project {client.project!r} on {client.server}"
    )
    return 1 if once and refused else 0


def _kept(client: SyncClient) -> list[Upload]:
    """Recent deletions that were settled without deleting (changed on the server since, or shared)."""
    rows = client.queue.uploads(states=(DONE,), limit=100)
    return [u for u in rows if u.action == DELETE and u.outcome in ("changed", "kept")]


def _named(upload: Upload) -> str:
    return f"deleting {upload.path}" if upload.action == DELETE else upload.path


def _postfix(state: SyncStatus) -> str:
    parts = []
    if state.bytes_per_s:
        parts.append(f"{state.bytes_per_s / 1e6:.1f} MB/s")
    if state.counts[FAILED]:
        parts.append(f"{state.counts[FAILED]} failed")
    if state.offline:
        parts.append("offline")
    return ", ".join(parts)


def status(state_dir: Path | None) -> int:
    """Print the queue of `state_dir`, else of every sync state under the default root."""
    root = default_state_root()
    dirs = [state_dir] if state_dir else sorted(p.parent for p in root.glob("*/queue.sqlite"))
    if not dirs:
        print(f"no sync state in {root}")
        return 0
    now = time.time()
    for n, directory in enumerate(dirs):
        if not (Path(directory) / "queue.sqlite").is_file():
            sys.stderr.write(f"fotoflo sync status: no queue in {directory}\n")
            return USAGE
        state = read_status(Path(directory))
        if n:
            print()
        print(f"{state.folder} → {state.server} project {state.project!r} (device {state.device_name!r})")
        print(f"  state: {state.state_dir}")
        print("  " + ", ".join(f"{count} {name}" for name, count in state.counts.items()))
        for upload in state.pending:
            due = max(0.0, upload.next_attempt_at - now)
            why = f"; {upload.last_error}" if upload.last_error else ""
            when = f", next try in {due:.0f} s" if due >= 1 else ""
            print(f"  {upload.state:9} {_named(upload)} ({upload.attempts} attempt(s){when}{why})")
        for upload in state.failed:
            print(f"  failed    {_named(upload)}: {upload.last_error}")
    return 0
