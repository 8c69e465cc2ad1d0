"""The embedded store's own behaviour beyond the shared contract: closing while other threads read."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from dashboard.store.sqlite import MEMORY_CAP_BYTES, SQLiteStore, memory_used
from tests.support.records import image_record


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


def test_sqlite_s_memory_stays_under_its_cap_however_large_the_project_and_however_many_readers(
    tmp_path: Path,
) -> None:
    """A long day's server grew by SQLite's page caches (one per reading thread) filling with the project."""
    if memory_used() is None:
        pytest.skip("this Python's SQLite is linked statically: its memory cannot be read")
    store = SQLiteStore(tmp_path / "fotoflo.sqlite")
    try:
        store.ensure_project("alpha")
        for n in range(6_000):  # ~4 MB of database, enough to fill caches of the default size several times over
            store.add_image(image_record(n, filename=f"IMG_{n:05d}_{'x' * 200}.jpg"))

        done, measured = threading.Barrier(9), threading.Event()

        def read_everything() -> None:
            before = None
            while page := store.list_images("alpha", before=before, limit=500):
                before = page[-1].seq
            done.wait()
            measured.wait(30)  # alive while measured: a thread's reader is closed when it ends

        readers = [threading.Thread(target=read_everything) for _ in range(8)]
        for reader in readers:
            reader.start()
        done.wait(60)
        used = memory_used()
        measured.set()
        for reader in readers:
            reader.join()
        assert used is not None and used <= MEMORY_CAP_BYTES, f"SQLite holds {used:,} bytes"
    finally:
        store.close()


def _open_fds_on(path: Path) -> int:
    """File descriptors of this process open on the database or its -wal and -shm files."""
    names = {str(path), f"{path}-wal", f"{path}-shm"}
    fds = Path("/proc/self/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            count += str(fd.readlink()) in names
        except OSError:
            continue  # closed meanwhile
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files in /proc")
def test_a_thread_s_reader_is_closed_when_the_thread_ends(tmp_path: Path) -> None:
    """Threads come and go in a server; their readers must not pile up (each holds files and a page cache)."""
    path = tmp_path / "fotoflo.sqlite"
    store = SQLiteStore(path)
    try:
        store.ensure_project("alpha")
        store.add_image(image_record(1))
        store.list_images("alpha")  # this thread's reader, kept while it lives
        before = _open_fds_on(path)

        def twenty_threads_read() -> int:
            for _ in range(20):
                reader = threading.Thread(target=lambda: store.list_images("alpha"))
                reader.start()
                reader.join()
            deadline = time.monotonic() + 10  # the last thread's state is cleared just after `join` returns
            while _open_fds_on(path) > before + 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            return _open_fds_on(path)

        # SQLite keeps one closed connection's file open for the next (closing it would drop the locks
        # other connections hold on the file): one more, however many threads come and go.
        assert twenty_threads_read() <= before + 1, "readers of ended threads are still open"
        assert twenty_threads_read() <= before + 1, "readers of ended threads are still open"
        assert [image.id for image in store.list_images("alpha")] == [image_record(1).id]
    finally:
        store.close()
    assert _open_fds_on(path) == 0
