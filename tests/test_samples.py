"""The sample data the tests, notebooks and benchmarks make: a seeded project of any size."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard import samples
from dashboard.blobs import FileBlobs
from dashboard.store.sqlite import SQLiteStore


def test_seed_project_links_blobs_in_bounded_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # ext4 allows 65,000 links to one file: each source file takes at most LINKS_PER_FILE of them.
    monkeypatch.setattr(samples, "LINKS_PER_FILE", 3)
    samples.seed_project(tmp_path, "big", 7)

    store = SQLiteStore(tmp_path / "fotoflo.sqlite")
    try:
        images = store.list_images("big", limit=10)
    finally:
        store.close()
    assert [i.filename for i in images] == [f"IMG_{n:05d}.jpg" for n in reversed(range(7))]
    blobs = FileBlobs(tmp_path / "blobs")
    for image in images:
        for kind in ("original", "preview", "thumb"):
            path = blobs.path(kind, image.sha256)
            assert path.stat().st_nlink <= 3 + 1 and path.stat().st_size > 0
    assert blobs.path("original", images[0].sha256).read_bytes()[:2] == b"\xff\xd8"
