"""`FileBlobs`: content-addressed files, untrusted keys refused, atomic writes, crash leftovers cleaned; the
`Blobs` contract on files and on S3 (`S3Blobs`, against a stand-in S3 on loopback); choosing them (`--blobs`)."""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import re
import stat
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from dashboard.backends import blobs_for, open_blobs
from dashboard.blobs import KINDS, Blobs, FileBlobs
from dashboard.config import ConfigError, Settings
from dashboard.export import StoredZip, ZipMember
from dashboard.s3blobs import S3Blobs
from tests.support.images import jpeg_bytes
from tests.support.services import S3Server


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


# -- the contract: files and S3 -----------------------------------------------------------------
#
# S3 here is moto's standalone server on loopback (tests/support/services.py), a stand-in for AWS S3,
# R2, B2 or MinIO: the same API over HTTP, objects kept in memory.


@pytest.fixture(params=["file", "s3"])
def any_blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Blobs]:
    """`FileBlobs` in a temp folder, and `S3Blobs` in a fresh bucket of the S3 stand-in, through `open_blobs`."""
    if request.param == "file":
        yield open_blobs(f"file://{tmp_path / 'blobs'}", tmp_path / "data")
        return
    bucket = request.getfixturevalue("s3_bucket")
    blobs = open_blobs(f"s3://{bucket}/studio", tmp_path / "data")
    assert isinstance(blobs, S3Blobs)
    yield blobs
    blobs.close()


def read_all(blobs: Blobs, kind: str, key: str, start: int = 0, stop: int | None = None) -> bytes:
    reader = blobs.open(kind, key, start, stop)
    try:
        chunks = []
        while chunk := reader.read(7):  # small reads: a reader must give each window in pieces too
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        reader.close()


def test_contract_put_then_read_exists_size_and_delete(any_blobs: Blobs) -> None:
    data = bytes(range(256)) * 3
    key = sha(data)

    assert not any_blobs.exists("original", key) and any_blobs.size("original", key) is None
    any_blobs.put("original", key, data)
    any_blobs.put("original", key, data)  # again: content-addressed, nothing changes

    assert any_blobs.exists("original", key) and not any_blobs.exists("preview", key)
    assert any_blobs.size("original", key) == len(data)
    assert read_all(any_blobs, "original", key) == data
    delete = getattr(any_blobs, "delete")  # noqa: B009 (not in the protocol: nothing deletes blobs yet)
    delete("original", key)
    assert not any_blobs.exists("original", key) and any_blobs.size("original", key) is None
    with pytest.raises(FileNotFoundError):
        any_blobs.open("original", key)


@pytest.mark.parametrize(
    ("start", "stop"), [(0, None), (0, 1), (0, 10), (5, None), (700, None), (767, 768), (100, 300), (3, 3)]
)
def test_contract_byte_ranges(any_blobs: Blobs, start: int, stop: int | None) -> None:
    data = bytes(range(256)) * 3
    any_blobs.put("preview", sha(data), data)

    assert read_all(any_blobs, "preview", sha(data), start, stop) == data[start:stop]


def test_contract_missing_blob(any_blobs: Blobs) -> None:
    with pytest.raises(FileNotFoundError):
        any_blobs.open("thumb", GOOD)
    with pytest.raises(FileNotFoundError):
        any_blobs.open("thumb", GOOD, 0, 0)
    assert any_blobs.size("thumb", GOOD) is None
    assert any_blobs.clean_temp() == 0


@pytest.mark.parametrize(("kind", "key"), BAD_KEYS[:6])
def test_contract_bad_keys_are_refused(any_blobs: Blobs, kind: str, key: str) -> None:
    for call in (
        lambda: any_blobs.put(kind, key, b"x"),
        lambda: any_blobs.exists(kind, key),
        lambda: any_blobs.size(kind, key),
        lambda: any_blobs.open(kind, key),
    ):
        with pytest.raises(ValueError, match="bad blob key"):
            call()


def test_contract_two_writers_of_the_same_bytes_at_once(any_blobs: Blobs, tmp_path: Path) -> None:
    """Two servers (two `Blobs` on one folder or bucket) store the same image at the same moment."""
    other = open_blobs(any_blobs.url if isinstance(any_blobs, S3Blobs) else f"file://{tmp_path / 'blobs'}", tmp_path)
    data = os.urandom(300_000)
    try:
        with ThreadPoolExecutor(8) as pool:
            for future in [pool.submit(b.put, "original", sha(data), data) for b in [any_blobs, other] * 4]:
                future.result()
        for blobs in (any_blobs, other):
            assert read_all(blobs, "original", sha(data)) == data
    finally:
        close = getattr(other, "close", None)
        if close is not None:
            close()


# -- S3 ---------------------------------------------------------------------------------------


def test_s3_objects_are_named_like_the_files(s3_server: S3Server, s3_bucket: str) -> None:
    blobs = S3Blobs(s3_bucket, "/studio/a/")
    data = b"\x89PNG\r\n\x1a\n not really"
    try:
        blobs.put("original", sha(data), data)
        blobs.put("thumb", sha(data), b"jpeg")
    finally:
        blobs.close()

    client = s3_server.client()
    try:
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
        head = client.head_object(Bucket=s3_bucket, Key=f"studio/a/original/{sha(data)[:2]}/{sha(data)}")
    finally:
        client.close()
    assert sorted(keys) == [f"studio/a/{kind}/{sha(data)[:2]}/{sha(data)}" for kind in ("original", "thumb")]
    assert head["ContentType"] == "image/png"


def test_s3_a_large_file_goes_up_in_parts(s3_server: S3Server, s3_bucket: str) -> None:
    data = os.urandom(12 * 1024 * 1024 + 123)
    mib5 = 5 * 1024 * 1024  # S3's smallest part
    blobs = S3Blobs(s3_bucket, multipart_threshold_bytes=mib5, part_bytes=mib5)
    try:
        blobs.put("original", sha(data), data)
        assert blobs.size("original", sha(data)) == len(data)
        assert read_all(blobs, "original", sha(data), len(data) - 1000) == data[-1000:]
    finally:
        blobs.close()
    client = s3_server.client()
    try:
        obj = client.get_object(Bucket=s3_bucket, Key=blobs.key("original", sha(data)))
        etag, body = obj["ETag"], obj["Body"].read()
        obj["Body"].close()
    finally:
        client.close()
    assert body == data
    assert etag.strip('"').endswith("-3"), etag  # a multipart upload's ETag counts its parts


def test_s3_clean_temp_aborts_only_stale_multipart_uploads(
    s3_server: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dashboard.s3blobs

    client = s3_server.client()
    blobs = S3Blobs(s3_bucket, "studio")
    try:
        client.create_multipart_upload(Bucket=s3_bucket, Key=f"studio/original/ab/{GOOD}")
        client.create_multipart_upload(Bucket=s3_bucket, Key="elsewhere/x")  # not under the prefix: not ours
        # The stand-in dates every upload in 2010, so "just started" is seen with an age limit longer than that.
        monkeypatch.setattr(dashboard.s3blobs, "STALE_UPLOAD_AGE", timedelta(days=365 * 100))
        assert blobs.clean_temp() == 0  # younger than the limit: maybe another server's upload in flight

        monkeypatch.setattr(dashboard.s3blobs, "STALE_UPLOAD_AGE", timedelta(days=1))
        assert blobs.clean_temp() == 1
        left = [u["Key"] for u in client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])]
        assert left == ["elsewhere/x"]
    finally:
        blobs.close()
        client.close()


def test_s3_credentials_stay_out_of_the_logs(s3_bucket: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    blobs = open_blobs(f"s3://{s3_bucket}", Path("/nonexistent"))
    data = b"a photo"
    try:
        blobs.put("original", sha(data), data)
        assert read_all(blobs, "original", sha(data), 2) == data[2:]
    finally:
        getattr(blobs, "close")()  # noqa: B009
    text = caplog.text
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in text
    assert os.environ["AWS_ACCESS_KEY_ID"] not in text  # in every request's Authorization header at DEBUG
    assert "Signature=" not in text


# -- choosing the blobs: --blobs / FOTOFLO_BLOBS --------------------------------------------------


def test_blobs_setting_default_and_file_urls(tmp_path: Path) -> None:
    default = blobs_for(Settings(data=tmp_path / "data"))
    assert isinstance(default, FileBlobs) and default.root == tmp_path / "data" / "blobs"
    elsewhere = blobs_for(Settings(data=tmp_path / "data", blobs=f"file://{tmp_path}/shared%20blobs"))
    assert isinstance(elsewhere, FileBlobs) and elsewhere.root == tmp_path / "shared blobs"
    assert Settings.from_env({"FOTOFLO_BLOBS": "s3://b/p"}).blobs == "s3://b/p"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("file://relative/path", "file:///ABSOLUTE/PATH"),
        ("file:blobs", "file:///ABSOLUTE/PATH"),
        ("s3://", "s3://BUCKET"),
        ("s3://bucket/p?x=1", "s3://BUCKET"),
        ("gs://bucket", "unknown blobs"),
        ("/just/a/path", "unknown blobs"),
        ("s3://AKIAKEY:very-secret@bucket/p", "no credentials in the URL"),
    ],
)
def test_blobs_setting_refuses_what_cannot_work(tmp_path: Path, spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as refused:
        open_blobs(spec, tmp_path)
    assert "very-secret" not in str(refused.value) and "AKIAKEY" not in str(refused.value)


def test_an_unreachable_bucket_stops_the_server_at_start(s3_bucket: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such bucket"):
        open_blobs(f"s3://{s3_bucket}-missing/p", tmp_path)
    with pytest.raises(ConfigError, match="--blobs and --supabase-url"):
        blobs_for(Settings(data=tmp_path, blobs=f"s3://{s3_bucket}", supabase_url="https://x", supabase_key="k"))


def test_cli_blobs_option_refuses_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dashboard.cli import main

    (tmp_path / "in").mkdir()
    code = main(["ingest", str(tmp_path / "in"), "--data", str(tmp_path / "data"), "--blobs", "ftp://x"])
    assert code == 2
    assert capsys.readouterr().err.startswith("fotoflo ingest: unknown blobs 'ftp://x'")


# -- the ZIP export reads originals from any blobs ---------------------------------------------------


def test_a_zip_export_streams_originals_from_s3(s3_bucket: str) -> None:
    blobs = S3Blobs(s3_bucket)
    payloads = [os.urandom(1000 + i) for i in range(3)]
    try:
        members = []
        for i, data in enumerate(payloads):
            blobs.put("original", sha(data), data)
            opener = functools.partial(blobs.open, "original", sha(data))
            members.append(ZipMember(f"{i}.jpg", opener, len(data)))
        archive = StoredZip(members)
        body = b"".join(archive.chunks(chunk_bytes=333))
    finally:
        blobs.close()
    assert len(body) == archive.size_bytes
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        assert [zf.read(f"{i}.jpg") for i in range(3)] == payloads


# -- servers and `fotoflo ingest` on one bucket ---------------------------------------------------


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_two_servers_on_one_bucket_store_the_same_bytes_at_once(
    store: str, s3_server: S3Server, s3_bucket: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two `App`s (each its own SQLite file, or one PostgreSQL database) ingest one photo at the same moment."""
    from dashboard.app import App

    db = request.getfixturevalue("pg_url") if store == "postgres" else None
    apps = [
        App(Settings(data=tmp_path / name, watch=None, db=db, blobs=f"s3://{s3_bucket}/shared", secret="s" * 32))
        for name in ("a", "b")
    ]
    data = jpeg_bytes((900, 600), seed=11)
    try:
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda app: app.ingest_bytes(data, "same.jpg"), apps))
        assert all(isinstance(app.blobs, S3Blobs) for app in apps)
        for app in apps:
            assert all(app.blobs.exists(kind, sha(data)) for kind in KINDS)
            assert read_all(app.blobs, "original", sha(data)) == data
    finally:
        for app in apps:
            app.stop()
    if store == "postgres":  # one store: one image, the other ingest found it there
        assert sorted(r.created for r in results) == [False, True]
        assert results[0].image.id == results[1].image.id
    else:
        assert [r.created for r in results] == [True, True]
    objects = s3_server.objects(s3_bucket)
    assert sorted(objects) == sorted(f"shared/{kind}/{sha(data)[:2]}/{sha(data)}" for kind in KINDS)
    assert objects[f"shared/original/{sha(data)[:2]}/{sha(data)}"] == data
    assert not any(p.is_file() for name in ("a", "b") for p in (tmp_path / name).rglob("blobs/**/*"))


def test_fotoflo_ingest_into_a_bucket(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    from dashboard.cli import main
    from dashboard.store.sqlite import SQLiteStore

    folder = tmp_path / "shoot"
    folder.mkdir()
    photos = [jpeg_bytes((320, 240), seed=i) for i in range(3)]
    for i, data in enumerate(photos):
        (folder / f"IMG_{i}.jpg").write_bytes(data)
    data_dir = tmp_path / "data"
    argv = ["ingest", str(folder), "--data", str(data_dir), "--blobs", f"s3://{s3_bucket}", "--workers", "1"]

    assert main(argv) == 0
    assert main(argv) == 0  # again: already there, nothing uploaded twice

    objects = s3_server.objects(s3_bucket)
    assert sorted(objects) == sorted(f"{kind}/{sha(d)[:2]}/{sha(d)}" for d in photos for kind in KINDS)
    assert all(objects[f"original/{sha(d)[:2]}/{sha(d)}"] == d for d in photos)
    assert not any(p.is_file() for p in data_dir.rglob("blobs/**/*"))
    store = SQLiteStore(data_dir / "fotoflo.sqlite")
    try:
        assert sorted(i.sha256 for i in store.list_images("default", limit=10)) == sorted(sha(d) for d in photos)
    finally:
        store.close()
