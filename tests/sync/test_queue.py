"""`SyncQueue`: the sync client's persistent queue, its transitions, and what survives a dead process."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.sync.queue import (
    DELETE,
    DONE,
    FAILED,
    PENDING,
    QUEUE_SCHEMA_VERSION,
    SKIPPED,
    UPLOAD,
    UPLOADING,
    Synced,
    SyncQueue,
)

ROOT = Path(__file__).resolve().parents[2]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(tmp_path: Path, clock: Clock) -> Iterator[SyncQueue]:
    q = SyncQueue(tmp_path / "state" / "queue.sqlite", clock=clock)
    yield q
    q.close()


def never_gone(path: str) -> bool:
    return False


def test_a_file_goes_pending_uploading_done_and_maps_to_its_image(queue: SyncQueue) -> None:
    assert queue.observe("a.jpg", 10, 1, sha("a"), gone=never_gone) == "queued"
    assert queue.counts() == {PENDING: 1, UPLOADING: 0, DONE: 0, FAILED: 0, SKIPPED: 0}

    job = queue.claim()
    assert job is not None and (job.replaces, job.base_sha256) == (None, None)
    assert (job.upload.path, job.upload.state, job.upload.attempts) == ("a.jpg", UPLOADING, 1)
    assert queue.claim() is None  # one at a time
    queue.finish(job.upload.id, "img1", "created")

    assert queue.counts()[DONE] == 1
    assert queue.synced()["a.jpg"] == Synced("img1", sha("a"), True)
    # Seeing the same file again is nothing new; a new version is a version of its image.
    assert queue.observe("a.jpg", 10, 1, sha("a"), gone=never_gone) == "known"
    assert queue.observe("a.jpg", 12, 2, sha("a2"), gone=never_gone) == "queued"
    version = queue.claim()
    assert version is not None and (version.replaces, version.base_sha256) == ("img1", sha("a"))


def test_a_version_waits_for_the_one_before_it(queue: SyncQueue) -> None:
    queue.observe("a.jpg", 10, 1, sha("a1"), gone=never_gone)
    first = queue.claim()
    assert first is not None
    queue.observe("a.jpg", 11, 2, sha("a2"), gone=never_gone)  # changed while the first is in flight

    assert queue.claim() is None
    queue.finish(first.upload.id, "img1", "created")
    second = queue.claim()
    assert second is not None and second.upload.sha256 == sha("a2") and second.base_sha256 == sha("a1")


def test_an_unsent_row_takes_the_new_bytes_a_maybe_sent_one_keeps_its_own(queue: SyncQueue, clock: Clock) -> None:
    queue.observe("a.jpg", 10, 1, sha("a1"), gone=never_gone)
    queue.observe("a.jpg", 11, 2, sha("a2"), gone=never_gone)  # never claimed: replaced in place
    assert [u.sha256 for u in queue.uploads()] == [sha("a2")]

    job = queue.claim()
    assert job is not None
    queue.retry(job.upload.id, "connection reset", delay_s=0, count_attempt=False)
    clock.now += 1
    queue.observe("a.jpg", 12, 3, sha("a3"), gone=never_gone)  # a2 may have arrived: it stays a row

    assert sorted(u.sha256 for u in queue.uploads()) == sorted([sha("a2"), sha("a3")])


def test_backoff_failure_skip_and_retry_failed(queue: SyncQueue, clock: Clock) -> None:
    for name in ("a", "b", "c"):
        queue.observe(f"{name}.jpg", 1, 1, sha(name), gone=never_gone)
    a, b, c = queue.claim(), queue.claim(), queue.claim()
    assert a and b and c
    queue.retry(a.upload.id, "HTTP 503", delay_s=30)
    queue.fail(b.upload.id, "not_an_image", "not an image")
    queue.skip(c.upload.id, "deleted or moved before it was sent")

    assert queue.claim() is None and queue.next_due() == clock.now + 30
    clock.now += 30
    again = queue.claim()
    assert again is not None and again.upload.id == a.upload.id and again.upload.attempts == 2
    assert again.upload.last_error == "HTTP 503"
    [failed] = queue.uploads(states=(FAILED,))
    assert (failed.path, failed.error_code, failed.last_error) == ("b.jpg", "not_an_image", "not an image")
    # A refused file is not tried again until it changes, or until a person asks.
    assert queue.observe("b.jpg", 1, 1, sha("b"), gone=never_gone) == "known"
    assert queue.retry_failed() == 1
    assert queue.counts()[PENDING] == 1 and queue.counts()[FAILED] == 0
    # A skipped file that comes back is queued again.
    assert queue.observe("c.jpg", 1, 1, sha("c"), gone=never_gone) == "queued"


def test_a_moved_file_keeps_its_image_without_a_new_upload(queue: SyncQueue) -> None:
    queue.observe("old/a.jpg", 10, 1, sha("a"), gone=never_gone)
    job = queue.claim()
    assert job is not None
    queue.finish(job.upload.id, "img1", "created")

    outcome = queue.observe("new/a renamed.jpg", 10, 1, sha("a"), gone=lambda path: path == "old/a.jpg")

    assert outcome == "renamed"
    assert queue.synced() == {"new/a renamed.jpg": Synced("img1", sha("a"), True)}
    assert queue.claim() is None
    queue.observe("new/a renamed.jpg", 11, 2, sha("a edited"), gone=never_gone)
    edit = queue.claim()
    assert edit is not None and edit.replaces == "img1"


def test_a_copy_is_its_own_lineage(queue: SyncQueue) -> None:
    queue.observe("a.jpg", 10, 1, sha("a"), gone=never_gone)
    queue.observe("copy of a.jpg", 10, 1, sha("a"), gone=never_gone)  # the original is still there
    for _ in range(2):
        job = queue.claim()
        assert job is not None
        queue.finish(job.upload.id, "img1", "created" if job.upload.path == "a.jpg" else "present")

    queue.observe("copy of a.jpg", 11, 2, sha("a edited"), gone=never_gone)
    edit = queue.claim()
    assert edit is not None and (edit.replaces, edit.base_sha256) == (None, None)  # a new image, no conflict


def test_an_upload_in_flight_when_the_process_dies_is_pending_at_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite"
    script = textwrap.dedent(f"""
        import os
        from dashboard.sync.queue import SyncQueue
        q = SyncQueue({str(path)!r})
        q.observe("a.jpg", 1, 1, "{sha("a")}", gone=lambda p: False)
        q.observe("b.jpg", 1, 1, "{sha("b")}", gone=lambda p: False)
        assert q.claim() is not None
        os._exit(9)  # no close, no cleanup: as after kill -9
    """)
    died = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert died.returncode == 9, died.stderr

    queue = SyncQueue(path)
    try:
        assert queue.counts()[UPLOADING] == 1
        assert queue.recover() == 1
        assert queue.counts() == {PENDING: 2, UPLOADING: 0, DONE: 0, FAILED: 0, SKIPPED: 0}
        again = queue.claim()
        assert again is not None and again.upload.path == "a.jpg" and again.upload.attempts == 2
    finally:
        queue.close()


def test_a_new_state_folder_is_private_whatever_the_umask(tmp_path: Path) -> None:
    state = tmp_path / "state" / "studio-abc123"
    old = os.umask(0o022)
    try:
        SyncQueue(state / "queue.sqlite").close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700


def test_status_reads_beside_the_writer_and_a_newer_queue_is_refused(tmp_path: Path, queue: SyncQueue) -> None:
    queue.observe("a.jpg", 1, 1, sha("a"), gone=never_gone)
    queue.set_meta(folder="/photos", project="p")
    reader = SyncQueue(queue.path, readonly=True)
    try:
        assert reader.counts()[PENDING] == 1 and reader.meta()["project"] == "p"
        with pytest.raises(RuntimeError, match="read-only"):
            reader.retry_failed()
    finally:
        reader.close()
    other = tmp_path / "newer.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(RuntimeError, match="newer"):
        SyncQueue(other)


# -- deletions (`--delete`) -------------------------------------------------------------------


def synced_file(queue: SyncQueue, path: str, content: str, image_id: str) -> None:
    queue.observe(path, 10, 1, sha(content), gone=never_gone)
    job = queue.claim()
    assert job is not None and job.upload.path == path
    queue.finish(job.upload.id, image_id, "created")


def test_a_deletion_is_a_row_that_unmaps_the_path_when_done(queue: SyncQueue) -> None:
    synced_file(queue, "a.jpg", "a", "img1")
    assert not queue.queue_delete("never-synced.jpg")

    assert queue.queue_delete("a.jpg")
    assert not queue.queue_delete("a.jpg")  # one deletion of a path at a time
    job = queue.claim()

    assert job is not None
    row = job.upload
    assert (row.action, row.path, row.state, row.image_id, row.sha256) == (DELETE, "a.jpg", UPLOADING, "img1", sha("a"))
    queue.finish_delete(row.id, "deleted")
    assert queue.synced() == {}
    assert queue.latest("a.jpg") == queue.uploads(states=(DONE,))[0]
    assert queue.counts(action=DELETE)[DONE] == 1 and queue.counts(action=UPLOAD)[DONE] == 1
    # A file that appears at the path later is a new file: queued, not "known".
    assert queue.observe("a.jpg", 10, 1, sha("a"), gone=never_gone) == "queued"


def test_a_deletion_takes_the_version_synced_last(queue: SyncQueue) -> None:
    synced_file(queue, "a.jpg", "a", "img1")
    queue.observe("a.jpg", 11, 2, sha("a2"), gone=never_gone)
    version = queue.claim()
    assert version is not None
    queue.queue_delete("a.jpg")  # deleted while its new version was in flight, which then arrived
    queue.finish(version.upload.id, "img1", "updated")

    job = queue.claim()

    assert job is not None and (job.upload.action, job.upload.sha256) == (DELETE, sha("a2"))
    assert queue.uploads(states=(UPLOADING,))[0].sha256 == sha("a2")  # committed with the claim


def test_a_deletion_never_sent_is_called_off_by_the_file_coming_back_or_a_move(queue: SyncQueue) -> None:
    synced_file(queue, "a.jpg", "a", "img1")
    synced_file(queue, "b.jpg", "b", "img2")
    queue.queue_delete("a.jpg")
    queue.queue_delete("b.jpg")

    assert queue.observe("a.jpg", 10, 1, sha("a"), gone=never_gone) == "known"  # restored from the trash
    assert queue.observe("picks/b.jpg", 10, 1, sha("b"), gone=lambda p: p == "b.jpg") == "renamed"

    skipped = {u.path: u.last_error for u in queue.uploads(states=(SKIPPED,))}
    assert skipped == {"a.jpg": "back before it was deleted", "b.jpg": "moved to picks/b.jpg, not deleted"}
    assert queue.synced() == {"a.jpg": Synced("img1", sha("a"), True), "picks/b.jpg": Synced("img2", sha("b"), True)}
    assert queue.counts()[PENDING] == 0


def test_a_deletion_that_may_have_been_sent_keeps_its_course(queue: SyncQueue) -> None:
    synced_file(queue, "a.jpg", "a", "img1")
    queue.queue_delete("a.jpg")
    assert queue.claim() is not None
    assert queue.recover() == 1  # the process died with the request maybe sent: its image may be gone

    # Moved meanwhile: not taken for a move of a (maybe deleted) image; it goes up as it is.
    assert queue.observe("picks/a.jpg", 10, 1, sha("a"), gone=lambda p: p == "a.jpg") == "queued"
    job = queue.claim()
    assert job is not None and (job.upload.action, job.upload.path) == (DELETE, "a.jpg")
    queue.finish_delete(job.upload.id, "gone")
    upload = queue.claim()
    assert upload is not None and (upload.upload.path, upload.replaces) == ("picks/a.jpg", None)


def test_shares_image(queue: SyncQueue) -> None:
    synced_file(queue, "a.jpg", "a", "img1")
    synced_file(queue, "copy of a.jpg", "a", "img1")
    synced_file(queue, "b.jpg", "b", "img2")
    assert queue.shares_image("a.jpg") and queue.shares_image("copy of a.jpg")
    assert not queue.shares_image("b.jpg") and not queue.shares_image("nowhere.jpg")


QUEUE_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files (path TEXT PRIMARY KEY, image_id TEXT NOT NULL, sha256 TEXT NOT NULL, head INTEGER NOT NULL,
                    synced_at REAL NOT NULL);
CREATE INDEX files_by_sha ON files (sha256);
CREATE TABLE uploads (
    id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL, size_bytes INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'uploading', 'done', 'failed', 'skipped')),
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL DEFAULT 0, last_error TEXT, error_code TEXT,
    image_id TEXT, outcome TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE INDEX uploads_by_state ON uploads (state, next_attempt_at);
CREATE INDEX uploads_by_path ON uploads (path, id);
PRAGMA user_version = 1;
"""


def test_a_queue_of_before_deletions_is_read_as_it_is_and_migrated_when_opened_to_write(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(QUEUE_V1)
        conn.execute(
            "INSERT INTO uploads VALUES (NULL, 'a.jpg', 10, 1, ?, 'done', 1, 0, NULL, NULL, 'img1', 'created', 1, 1)",
            (sha("a"),),
        )
        conn.execute(
            "INSERT INTO uploads VALUES (NULL, 'b.jpg', 10, 1, ?, 'pending', 0, 0, NULL, NULL, NULL, NULL, 1, 1)",
            (sha("b"),),
        )
        conn.execute("INSERT INTO files VALUES ('a.jpg', 'img1', ?, 1, 1)", (sha("a"),))
    conn.close()

    reader = SyncQueue(path, readonly=True)  # `fotoflo sync status` beside an older client
    try:
        assert [(u.path, u.action) for u in reader.uploads()] == [("b.jpg", UPLOAD), ("a.jpg", UPLOAD)]
        assert reader.counts(action=UPLOAD)[DONE] == 1 and reader.counts(action=DELETE)[DONE] == 0
    finally:
        reader.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1  # reading changed nothing
    conn.close()

    queue = SyncQueue(path)
    try:
        assert queue.latest("a.jpg") is not None and queue.latest("a.jpg").action == UPLOAD  # type: ignore[union-attr]
        job = queue.claim()
        assert job is not None and (job.upload.path, job.upload.action) == ("b.jpg", UPLOAD)
        assert queue.queue_delete("a.jpg")
        queue.finish(job.upload.id, "img2", "created")
        deletion = queue.claim()
        assert deletion is not None and (deletion.upload.action, deletion.upload.image_id) == (DELETE, "img1")
    finally:
        queue.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == QUEUE_SCHEMA_VERSION == 2
    conn.close()
