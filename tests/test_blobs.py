"""`FileBlobs`: content-addressed files, untrusted keys refused, atomic writes, crash leftovers cleaned."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from dashboard.blobs import KINDS, FileBlobs


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def blobs(tmp_path: Path) -> FileBlobs:
    return FileBlobs(tmp_path / "blobs")


# -- content addressing ---------------------------------------------------------------------


def test_put_stores_the_bytes_under_kind_and_sha(blobs: FileBlobs) -> None:
    data = b"\xff\xd8 not really a jpeg \xff\xd9"
    key = sha(data)

    blobs.put("original", key, data)

    path = blobs.path("original", key)
    assert path == blobs.root / "original" / key[:2] / key
    assert path.read_bytes() == data
    assert blobs.exists("original", key)
    assert not blobs.exists("thumb", key)
    assert not blobs.exists("original", sha(b"something else"))


def test_kinds_of_one_image_are_separate_files(blobs: FileBlobs) -> None:
    key = sha(b"original bytes")
    for kind in KINDS:
        blobs.put(kind, key, f"{kind} bytes".encode())

    assert {p.read_bytes() for p in files_under(blobs.root)} == {f"{k} bytes".encode() for k in KINDS}


def test_putting_the_same_key_twice_keeps_one_file(blobs: FileBlobs) -> None:
    data = b"same content"
    blobs.put("original", sha(data), data)
    first_mtime_ns = blobs.path("original", sha(data)).stat().st_mtime_ns

    blobs.put("original", sha(data), data)

    assert files_under(blobs.root) == [blobs.path("original", sha(data))]
    assert blobs.path("original", sha(data)).stat().st_mtime_ns == first_mtime_ns


def test_a_damaged_blob_of_another_size_is_replaced(blobs: FileBlobs) -> None:
    data = b"the real content of the blob"
    target = blobs.path("preview", sha(data))
    target.parent.mkdir(parents=True)
    target.write_bytes(data[:5])  # e.g. written by hand or by a tool that is not atomic

    blobs.put("preview", sha(data), data)

    assert target.read_bytes() == data


# -- untrusted keys ---------------------------------------------------------------------------

GOOD = "ab" * 32

BAD_KEYS = [
    ("../x", GOOD),
    ("original/..", GOOD),
    ("originals", GOOD),
    ("", GOOD),
    ("original", "../x"),
    ("original", "../../" + GOOD[6:]),
    ("original", GOOD[:-1] + "/"),
    ("original", GOOD[:-1]),  # 63 characters
    ("original", GOOD + "a"),  # 65 characters
    ("original", "g" * 64),  # not hex
    ("original", GOOD.upper()),  # sha256 keys are lowercase hex digests
    ("original", GOOD + "\n"),  # `$` alone would let a trailing newline through
    ("original", ""),
]


@pytest.mark.parametrize(("kind", "key"), BAD_KEYS)
def test_bad_keys_are_refused_before_touching_the_disk(blobs: FileBlobs, kind: str, key: str) -> None:
    outside = blobs.root.parent / "x"

    with pytest.raises(ValueError, match="bad blob key"):
        blobs.path(kind, key)
    with pytest.raises(ValueError, match="bad blob key"):
        blobs.exists(kind, key)
    with pytest.raises(ValueError, match="bad blob key"):
        blobs.put(kind, key, b"payload")

    assert files_under(blobs.root) == []
    assert not outside.exists()


# -- atomic writes and crash leftovers --------------------------------------------------------


def test_put_leaves_no_temp_file(blobs: FileBlobs) -> None:
    payloads = [f"blob {i}".encode() * (i + 1) for i in range(5)]
    for data in payloads:
        blobs.put("original", sha(data), data)

    assert [p.name for p in files_under(blobs.root)] == sorted(sha(d) for d in payloads)
    assert not list(blobs.root.rglob("*.tmp-*"))


def test_a_failed_put_removes_its_temp_file(blobs: FileBlobs) -> None:
    data = b"cannot be renamed into place"
    target = blobs.path("thumb", sha(data))
    target.mkdir(parents=True)  # a directory squats on the target name, so the rename fails

    with pytest.raises(OSError):
        blobs.put("thumb", sha(data), data)

    assert files_under(blobs.root) == []


def plant_temp_files(root: Path) -> tuple[list[Path], Path]:
    """Temp files as an interrupted `put` leaves them, beside one complete blob."""
    keep = root / "original" / GOOD[:2] / GOOD
    keep.parent.mkdir(parents=True, exist_ok=True)
    keep.write_bytes(b"complete")
    temps = []
    for kind in KINDS:
        temp = root / kind / GOOD[:2] / f"{GOOD}.tmp-1a2b3c4d"
        temp.parent.mkdir(parents=True, exist_ok=True)
        temp.write_bytes(b"half a fi")
        temps.append(temp)
    return temps, keep


def test_clean_temp_removes_only_leftover_temp_files(blobs: FileBlobs) -> None:
    temps, keep = plant_temp_files(blobs.root)

    assert blobs.clean_temp() == len(temps)

    assert files_under(blobs.root) == [keep]
    assert keep.read_bytes() == b"complete"
    assert blobs.clean_temp() == 0


def test_server_start_cleans_temp_files(tmp_path: Path) -> None:
    from dashboard.app import App
    from dashboard.config import Settings

    data = tmp_path / "data"
    temps, keep = plant_temp_files(data / "blobs")

    fotoflo = App(Settings(data=data, watch=None))
    try:
        assert not any(t.exists() for t in temps)
        assert not list((data / "blobs").rglob("*.tmp-*"))
        assert keep.read_bytes() == b"complete"
    finally:
        fotoflo.ingest_pool.shutdown()
        fotoflo.store.close()


# -- modes ------------------------------------------------------------------------------------


def test_blobs_are_private_to_this_user_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual one, under which open() makes files every user can read
    try:
        blobs = FileBlobs(tmp_path / "data" / "blobs")
        data = b"a client's photo"
        blobs.put("original", sha(data), data)
    finally:
        os.umask(old)

    path = blobs.path("original", sha(data))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for folder in (path.parent, blobs.root / "original", blobs.root / "thumb", blobs.root, tmp_path / "data"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
