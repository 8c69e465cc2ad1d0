"""The sync producer: which files are offered, hashing once, files still being written, moves."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.sync import scanner
from dashboard.sync.queue import PENDING, SyncQueue
from dashboard.sync.scanner import Producer
from tests.conftest import jpeg_bytes


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
