"""The sync producer: which files are offered, hashing once, files still being written, moves."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.sync import scanner
from dashboard.sync.queue import DELETE, PENDING, SyncQueue
from dashboard.sync.scanner import Producer
from tests.support.images import jpeg_bytes


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[SyncQueue]:
    q = SyncQueue(tmp_path / "state" / "queue.sqlite")
    yield q
    q.close()


@pytest.fixture
def producer(tmp_path: Path, queue: SyncQueue) -> Producer:
    (tmp_path / "folder").mkdir()
    return Producer(tmp_path / "folder", queue)


def test_only_complete_image_files_are_offered(producer: Producer) -> None:
    root = producer.folder
    offered = ["IMG_1.JPG", "b.jpeg", "c.heic", "d.PNG", "sub/e.tif", "sub/deeper/f.webp", "g.gif"]
    passed_over = [
        ".DS_Store", ".hidden.jpg", ".cache/IMG_2.jpg", "IMG_3.jpg.part", "IMG_4.JPG.tmp", "~$IMG_5.jpg",
        "IMG_6.jpg.crdownload", "IMG_7.jpg~", "notes.txt", "IMG_1.xmp", "clip.mov",
    ]  # fmt: skip
    for rel in offered + passed_over:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")

    assert sorted(p.relative_to(root).as_posix() for p in producer.files()) == sorted(offered)
    assert all(producer.note(root / rel) == "ignored" for rel in passed_over)


def test_a_file_is_hashed_once_and_queued_once(producer: Producer, queue: SyncQueue, monkeypatch) -> None:
    path = producer.folder / "IMG_1.JPG"
    path.write_bytes(jpeg_bytes(seed=1))
    hashed: list[Path] = []
    real = scanner.sha256_file
    monkeypatch.setattr(scanner, "sha256_file", lambda p: hashed.append(p) or real(p))

    assert producer.scan().queued == 1
    assert producer.scan().known == 1  # unchanged size and mtime: not even hashed again
    assert producer.note(path) == "known"
    assert hashed == [path]
    [row] = queue.uploads()
    assert (row.path, row.state, row.sha256) == ("IMG_1.JPG", PENDING, hashlib.sha256(path.read_bytes()).hexdigest())


def test_a_file_that_changes_while_hashed_waits_for_its_writer(
    producer: Producer, queue: SyncQueue, monkeypatch
) -> None:
    path = producer.folder / "IMG_1.JPG"
    path.write_bytes(jpeg_bytes(seed=1)[:500])
    real = scanner.sha256_file

    def hash_while_written(p: Path) -> str:
        digest = real(p)
        with open(p, "ab") as fh:  # the writer goes on meanwhile
            fh.write(b"more")
        return digest

    monkeypatch.setattr(scanner, "sha256_file", hash_while_written)
    assert producer.note(path) == "changing"
    assert queue.uploads() == []


def test_a_moved_synced_file_keeps_its_image(producer: Producer, queue: SyncQueue) -> None:
    old = producer.folder / "IMG_1.JPG"
    old.write_bytes(jpeg_bytes(seed=1))
    producer.scan()
    job = queue.claim()
    assert job is not None
    queue.finish(job.upload.id, "img1", "created")

    (producer.folder / "picks").mkdir()
    os.rename(old, producer.folder / "picks" / "IMG_1.JPG")

    assert producer.note(producer.folder / "picks" / "IMG_1.JPG") == "renamed"
    assert queue.synced()["picks/IMG_1.JPG"].image_id == "img1"
    assert queue.claim() is None  # nothing to send


# -- deletions (`--delete`) -------------------------------------------------------------------


def synced_folder(producer: Producer, queue: SyncQueue, count: int) -> list[Path]:
    """`count` files in the folder, each uploaded (as image `img-N`)."""
    paths = []
    for n in range(count):
        path = producer.folder / "shoot" / f"IMG_{n}.JPG"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(jpeg_bytes((32, 24), seed=100 + n))
        paths.append(path)
    producer.scan()
    while (job := queue.claim()) is not None:
        queue.finish(job.upload.id, f"img-{job.upload.path[-5]}", "created")
    return paths


def deletions(queue: SyncQueue) -> list[str]:
    return sorted(u.path for u in queue.uploads() if u.action == DELETE and u.state == PENDING)


def test_deletions_are_not_looked_for_by_default(producer: Producer, queue: SyncQueue) -> None:
    first, _ = synced_folder(producer, queue, 2)
    first.unlink()

    assert producer.scan().deleting == 0 and producer.find_deletions() == 0
    assert deletions(queue) == [] and "shoot/IMG_0.JPG" in queue.synced()


def test_a_file_missed_at_two_passes_is_queued_for_deletion_a_moved_one_is_not(
    producer: Producer, queue: SyncQueue
) -> None:
    producer.delete = True
    first, second, _ = synced_folder(producer, queue, 3)
    first.unlink()
    (producer.folder / "picks").mkdir()
    os.rename(second, producer.folder / "picks" / "IMG_1.JPG")  # the scan sees the move before the gap

    result = producer.scan()
    assert (result.deleting, result.renamed) == (0, 1)  # missed once: maybe a move not noted yet
    assert producer.scan().deleting == 1

    assert deletions(queue) == ["shoot/IMG_0.JPG"]
    assert producer.find_deletions() == 0  # already queued
    assert producer.held is None


def test_at_once_a_file_missed_at_one_pass_is_queued(producer: Producer, queue: SyncQueue) -> None:
    producer.delete = True  # `fotoflo sync --once`: its one pass is the last
    first, _ = synced_folder(producer, queue, 2)
    first.unlink()

    assert producer.find_deletions(at_once=True) == 1
    assert deletions(queue) == ["shoot/IMG_0.JPG"]


@pytest.mark.parametrize("how", ["folder removed", "folder emptied"])
def test_a_folder_gone_as_a_whole_deletes_nothing_and_says_so(producer: Producer, queue: SyncQueue, how: str) -> None:
    producer.delete = True
    synced_folder(producer, queue, 3)
    shutil.rmtree(producer.folder / "shoot")
    if how == "folder removed":
        producer.folder.rmdir()

    assert producer.scan().deleting == producer.scan().deleting == 0
    assert deletions(queue) == []
    assert producer.held is not None and "not deleting anything on the server" in producer.held
    assert "unmounted drive" in producer.held

    (producer.folder / "shoot").mkdir(parents=True, exist_ok=True)  # mounted again: one file was really deleted
    for n in (1, 2):
        (producer.folder / "shoot" / f"IMG_{n}.JPG").write_bytes(jpeg_bytes((32, 24), seed=100 + n))
    assert producer.scan().deleting == 0 and producer.held is None
    assert producer.scan().deleting == 1
    assert deletions(queue) == ["shoot/IMG_0.JPG"]


def test_a_sweep_notes_moves_and_leaves_files_being_written_to_the_watcher(
    producer: Producer, queue: SyncQueue
) -> None:
    producer.delete = True
    first, second, _ = synced_folder(producer, queue, 3)
    old = time.time_ns() - 60 * 10**9
    os.utime(first, ns=(old, old))
    os.rename(first, producer.folder / "OLD_MOVED.JPG")  # a move keeps its mtime: old enough to be looked at
    os.rename(second, producer.folder / "YOUNG_MOVED.JPG")  # young, but the bytes of a missing synced file
    (producer.folder / "IMG_NEW.JPG").write_bytes(jpeg_bytes((32, 24), seed=7))  # young and new: being written?

    assert producer.sweep() == producer.sweep() == 0

    assert {"OLD_MOVED.JPG", "YOUNG_MOVED.JPG"} <= set(queue.synced())
    assert queue.latest("IMG_NEW.JPG") is None and deletions(queue) == []
