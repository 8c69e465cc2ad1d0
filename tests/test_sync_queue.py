"""`SyncQueue`: the sync client's persistent queue, its transitions, and what survives a dead process."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.sync.queue import DONE, FAILED, PENDING, SKIPPED, UPLOADING, Synced, SyncQueue

ROOT = Path(__file__).resolve().parent.parent


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
