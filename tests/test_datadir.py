"""The data directory is private: `fotoflo serve` and `ingest` make 0700 folders and 0600 files under umask 022,
and tighten what older versions left 0755/0644 (saying so once)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dashboard.datadir import tighten
from tests.support.servers import ServerFactory
from tests.support.waiting import wait_until
from tests.test_cli import fotoflo

TIGHTENED = "private to this user"


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    """The usual umask (inherited by the `fotoflo` processes): a plain open() would make 0644 files."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def open_to_others(data: Path) -> list[str]:
    """Everything in the data directory (but the hot folder) that group or others may read or enter."""
    found = [data, *(p for p in data.rglob("*") if "hotfolder" not in p.relative_to(data).parts)]
    return [f"{p} {mode(p):o}" for p in found if mode(p) & 0o077]


def expect_private(data: Path, *names: str) -> None:
    for name in names:
        path = data / name
        assert path.exists(), f"{name} was not made"
        assert mode(path) == (0o700 if path.is_dir() else 0o600), f"{name}: {mode(path):o}"
    assert open_to_others(data) == []


def loosen(data: Path) -> int:
    """Leave the data directory as Fotoflo 0.x did: folders 0755, files 0644."""
    count = 0
    for path in [data, *data.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
        count += 1
    return count


def test_ingest_makes_a_private_data_directory(tmp_path: Path, make_jpeg) -> None:
    photo = tmp_path / "IMG_0001.jpg"
    photo.write_bytes(make_jpeg(seed=1))
    data = tmp_path / "new" / "data"

    done = fotoflo("ingest", str(photo), "--data", str(data))

    assert done.returncode == 0, done.stderr
    expect_private(data, ".", "fotoflo.sqlite", "blobs", "blobs/original", "blobs/thumb", "blobs/preview")
    blob_files = [p for p in (data / "blobs").rglob("*") if p.is_file()]
    assert len(blob_files) == 3 and all(mode(p) == 0o600 for p in blob_files)
    assert all(mode(p.parent) == 0o700 for p in blob_files)
    assert TIGHTENED not in done.stderr  # nothing to tighten in a new one


def test_a_running_server_keeps_every_file_private(server_factory: ServerFactory, tmp_path: Path, make_jpeg) -> None:
    data = tmp_path / "data"
    server = server_factory(data=data, extra_args=("--auth",))
    token = next(line.strip() for line in server.log().splitlines() if line.strip().startswith("fft_"))
    headers = {"Authorization": f"Bearer {token}"}
    files = {"file": ("IMG_0002.jpg", make_jpeg(seed=2), "image/jpeg")}

    response = httpx.post(server.api("/upload"), files=files, headers=headers, timeout=30)

    assert response.status_code in (200, 201), response.text
    # While it runs: SQLite's -wal and -shm files exist beside both databases.
    expect_private(
        data, ".", "secret.key", "fotoflo.sqlite", "fotoflo.sqlite-wal", "fotoflo.sqlite-shm", "auth.sqlite",
        "auth.sqlite-wal", "blobs/original", "blobs/thumb", "blobs/preview",
    )  # fmt: skip
    assert len([p for p in (data / "blobs").rglob("*") if p.is_file()]) == 3
    assert TIGHTENED not in server.log()


def test_an_older_data_directory_is_tightened_at_start_and_said_once(
    server_factory: ServerFactory, tmp_path: Path, make_jpeg
) -> None:
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    for seed in (3, 4):
        (shoot / f"IMG_{seed}.jpg").write_bytes(make_jpeg(seed=seed))
    data = tmp_path / "data"
    assert fotoflo("ingest", str(shoot), "--data", str(data)).returncode == 0
    (data / "secret.key").write_text("k" * 43)  # as an older version wrote it: 0644 under umask 022
    loosened = loosen(data)
    assert len(open_to_others(data)) == loosened

    server = server_factory(data=data)

    expect_private(data, ".", "secret.key", "fotoflo.sqlite", "blobs", "blobs/original", "blobs/thumb")
    assert [p for p in (data / "blobs").rglob("*") if p.is_file() and mode(p) != 0o600] == []
    log = server.log()
    assert log.count(TIGHTENED) == 1 and str(data) in log
    server.stop()

    again = server_factory(data=data)
    wait_until(lambda: "Fotoflo serving" in again.log(), timeout_s=30)
    assert TIGHTENED not in again.log()  # once: nothing was left to tighten


def test_ingest_tightens_an_older_data_directory_too(tmp_path: Path, make_jpeg) -> None:
    photo = tmp_path / "IMG_0005.jpg"
    photo.write_bytes(make_jpeg(seed=5))
    data = tmp_path / "data"
    assert fotoflo("ingest", str(photo), "--data", str(data)).returncode == 0
    loosen(data)

    done = fotoflo("ingest", str(photo), "--data", str(data))

    assert done.returncode == 0, done.stderr
    assert done.stderr.count(TIGHTENED) == 1
    assert open_to_others(data) == []


def test_tighten_leaves_links_and_unknown_files_alone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "blobs" / "original" / "ab").mkdir(parents=True)
    outside = tmp_path / "outside.txt"
    outside.write_text("not fotoflo's")
    os.chmod(outside, 0o644)
    (data / "blobs" / "original" / "ab" / "link").symlink_to(outside)
    (data / "notes.txt").write_text("the user's own file")
    os.chmod(data / "notes.txt", 0o644)
    loosen(data / "blobs")
    os.chmod(data, 0o755)

    changed, failed = tighten(data)

    assert failed == []
    assert set(changed) == {data, data / "blobs", data / "blobs" / "original", data / "blobs" / "original" / "ab"}
    assert mode(outside) == 0o644  # a link's target is not the data directory's
    assert mode(data / "notes.txt") == 0o644  # nor is a file Fotoflo did not make
    assert tighten(data) == ([], [])
