"""The sync panel's state and intents against a real server, and its view, without a browser."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import panel as pn
import pytest

from dashboard.sync import SyncClient
from dashboard.sync_panel import SyncPanel, SyncState
from tests.support import ROOT
from tests.support.images import jpeg_bytes
from tests.support.servers import Server
from tests.support.waiting import wait_until


@pytest.fixture
def server(shared_project: Server) -> Server:
    """The module's real server, seen through a project of this test's own."""
    return shared_project


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "shoot"
    folder.mkdir()
    for n in range(3):
        (folder / f"IMG_{n}.JPG").write_bytes(jpeg_bytes((120, 90), seed=9000 + n))
    (folder / "notes.jpg").write_bytes(b"not a photo")
    return folder


@pytest.fixture
def state(folder: Path, server: Server, tmp_path: Path) -> Iterator[SyncState]:
    s = SyncState(folder=str(folder), server=server.url, project=server.project, state_dir=str(tmp_path / "state"))
    yield s
    s.close()


def refreshed(state: SyncState) -> SyncState:
    state.refresh()
    return state


def test_start_shows_the_queue_drain_with_progress_and_reasons(state: SyncState, server: Server) -> None:
    state.start()
    assert state.running and state.message.startswith("Syncing")

    wait_until(lambda: refreshed(state).counts.get("done") == 3 and state.counts.get("failed") == 1, timeout_s=30)
    assert state.progress == 100 and state.offline == "" and state.error == ""
    assert state.gallery_url == f"{server.url}/?project={server.project}"
    [failed] = state.queue
    assert failed["state"] == "failed" and failed["path"] == "notes.jpg"
    assert failed["error"].startswith("not an image")

    state.retry_failed()
    assert state.message == "Retrying 1 file(s)."
    wait_until(lambda: refreshed(state).counts.get("failed") == 1, timeout_s=30)
    state.stop()
    assert not state.running and state.message == "Stopped; the queue is kept."
    assert state.counts["done"] == 3  # still read from the queue


def test_the_panel_reads_the_queue_the_cli_wrote(folder: Path, server: Server, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dashboard.cli", "sync", str(folder), "--server", server.url, "--project",
         server.project, "--state", str(tmp_path / "cli-state"), "--once"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # one refusal

    state = SyncState(
        folder=str(folder), server=server.url, project=server.project, state_dir=str(tmp_path / "cli-state")
    )
    state.refresh()

    assert not state.running
    assert state.counts["done"] == 3 and state.counts["failed"] == 1
    assert [row["path"] for row in state.queue] == ["notes.jpg"]


def test_the_view_shows_the_state_and_its_buttons_drive_it(state: SyncState) -> None:
    panel = SyncPanel(state)
    layout = panel.__panel__()
    layout.get_root()  # builds the Bokeh models, as a served page does
    buttons = {b.label: b for b in layout.select(pn.widgets.Button)}
    [queue_table, uploading_table] = sorted(layout.select(pn.widgets.Tabulator), key=lambda t: -t.height)
    assert buttons["Stop"].disabled and not buttons["Start"].disabled

    buttons["Start"].clicks += 1

    assert state.running and buttons["Start"].disabled and not buttons["Stop"].disabled
    wait_until(lambda: refreshed(state).counts.get("failed") == 1 and state.counts.get("done") == 3, timeout_s=30)
    assert list(queue_table.value["path"]) == ["notes.jpg"]
    assert list(uploading_table.value.columns) == ["path", "sent_bytes", "size_bytes", "progress"]
    assert "**3** done" in panel.counts_text() and "**1** failed" in panel.counts_text()
    buttons["Stop"].clicks += 1
    assert not state.running


def test_start_needs_a_folder_and_a_server() -> None:
    state = SyncState()
    state.start()
    assert not state.running and state.message == "Give a folder and a server first."
    state.refresh()
    assert state.counts == {} and state.queue == []


def test_deletions_are_off_until_the_checkbox_turns_them_on(folder: Path, server: Server, tmp_path: Path) -> None:
    made: list[SyncClient] = []

    def factory(*args: Any, **kwargs: Any) -> SyncClient:
        made.append(SyncClient(*args, **kwargs))
        return made[-1]

    state = SyncState(factory, folder=str(folder), server=server.url, project=server.project,
                      state_dir=str(tmp_path / "state"))  # fmt: skip
    panel = SyncPanel(state)
    layout = panel.__panel__()
    layout.get_root()
    [checkbox] = layout.select(pn.widgets.Checkbox)
    assert state.delete is False and checkbox.value is False and not checkbox.disabled
    assert SyncState.param["delete"].doc

    checkbox.value = True
    try:
        state.start()
        assert state.delete and made[0].delete and checkbox.disabled  # it applies from a start
        assert "deleting on the server what is deleted here" in state.message
        state.deletions_held = "not deleting anything on the server: the folder is missing (an unmounted drive?)"
        assert panel.notice_text().startswith("**Deletions held:** not deleting anything")
    finally:
        state.close()
    assert not checkbox.disabled
