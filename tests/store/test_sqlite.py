"""The embedded store's own behaviour beyond the shared contract: closing while other threads read."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from dashboard.store.sqlite import SQLiteStore


def test_closing_waits_for_a_read_running_on_another_thread_then_refuses_new_ones(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path)
    store.ensure_project("p")
    reading, release = threading.Event(), threading.Event()
    seen: list[int] = []

    def slow_reader() -> None:
        with store._read() as conn:  # a read in flight, as the feed hub's or a live model's worker has
            reading.set()
            release.wait(10)
            seen.append(conn.execute("SELECT count(*) FROM images").fetchone()[0])

    reader = threading.Thread(target=slow_reader)
    reader.start()
    assert reading.wait(10)
    closer = threading.Thread(target=store.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive(), "close() must not pull the connection from under a running read"
    release.set()
    reader.join(10)
    closer.join(10)
    assert seen == [0] and not closer.is_alive()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        store.last_seq("p")
