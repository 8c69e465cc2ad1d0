"""The sync client against a real `fotoflo serve` on loopback: kill -9, outages, cut connections, versions.

The client runs as the real `fotoflo sync` process where its death is the point (SIGKILL), and
in this process (`SyncClient`, threads and all) where the test needs to look inside it.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboard.samples import photo_jpeg, raw_dng
from dashboard.sync import SyncClient, read_status
from dashboard.sync.queue import DELETE, DONE, FAILED, SKIPPED, UPLOADING, QueueLocked, SyncQueue, Upload
from dashboard.sync.uploader import Backoff, RetryPolicy
from tests.support import ROOT
from tests.support.api import checked_client
from tests.support.images import jpeg_bytes
from tests.support.proxy import TcpProxy
from tests.support.servers import Server, ServerFactory, free_port
from tests.support.waiting import wait_until

FAST = RetryPolicy(file=Backoff(0.2, 2.0), offline=Backoff(0.2, 1.0), max_attempts=20)
ClientFactory = Callable[..., SyncClient]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def photos(count: int, *, first_seed: int = 0, size: tuple[int, int] = (320, 240)) -> list[bytes]:
    """`count` distinct JPEGs."""
    return [jpeg_bytes(size, seed=n, model=f"sync-{n}") for n in range(first_seed, first_seed + count)]


def write(path: Path, data: bytes) -> None:
    """Write as a tethering app does: a temp name, then a rename (a complete file appears at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.part")
    temp.write_bytes(data)
    os.replace(temp, path)


def images(server: Server) -> list[dict[str, Any]]:
    with checked_client() as client:
        body = client.get(server.api("/images?limit=500")).json()
    listed: list[dict[str, Any]] = body["images"]
    return listed


def shas_on(server: Server) -> list[str]:
    return sorted(i["sha256"] for i in images(server))


@pytest.fixture
def server(shared_project: Server) -> Server:
    """The module's real server, seen through a project of this test's own."""
    return shared_project


@pytest.fixture
def sync_client(tmp_path: Path) -> Iterator[ClientFactory]:
    """Start `SyncClient`s on folders under tmp_path (each its own state); all are closed afterwards."""
    clients: list[SyncClient] = []

    def make(server_url: str, project: str, *, name: str = "device", start: bool = True, **kwargs: Any) -> SyncClient:
        folder = tmp_path / name / "folder"
        folder.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("policy", FAST)
        client = SyncClient(
            folder, server_url, project, state_dir=tmp_path / name / "state", device_name=name, **kwargs
        )
        clients.append(client)
        if start:
            client.start()
        return client

    yield make
    for client in clients:
        client.close()


def fotoflo_sync(*args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FOTOFLO_")}
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (the child holds it)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "dashboard.cli", "sync", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**clean, "PYTHONUNBUFFERED": "1"},
            cwd=ROOT,
        )
    finally:
        if log:
            out.close()  # type: ignore[union-attr]


# -- kill -9 --------------------------------------------------------------------------------


def test_sigkill_at_random_moments_loses_nothing_and_duplicates_nothing(server: Server, tmp_path: Path) -> None:
    rng = random.Random(20250614)
    source = {f"shoot/card{n % 3}/IMG_{n:04d}.JPG": data for n, data in enumerate(photos(200, first_seed=1000))}
    folder, state, log = tmp_path / "folder", tmp_path / "state", tmp_path / "client.log"
    folder.mkdir()
    args = (str(folder), "--server", server.url, "--project", server.project, "--state", str(state))

    def copy_all() -> None:
        for rel, data in source.items():
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)  # copied in as `cp` does: written, then closed
            time.sleep(rng.uniform(0, 0.05))

    def uploading(queue: SyncQueue) -> bool:
        return queue.counts()[UPLOADING] > 0

    copier = threading.Thread(target=copy_all, name="test-copier")
    copier.start()
    kills = 0
    queue: SyncQueue | None = None
    try:
        while copier.is_alive() or kills < 22:
            proc = fotoflo_sync(*args, log=log)
            if queue is None or not copier.is_alive() or rng.random() < 0.4:
                time.sleep(rng.uniform(0.1, 1.5))  # any moment of its life: start, scan, upload, idle
            else:
                # A moment when a row is `uploading`: between claiming it and recording the outcome.
                deadline = time.monotonic() + 3
                while not uploading(queue) and time.monotonic() < deadline:
                    time.sleep(0.002)
                time.sleep(rng.uniform(0, 0.01))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            kills += 1
            if queue is None and (state / "queue.sqlite").exists():
                queue = SyncQueue(state / "queue.sqlite", readonly=True)
    finally:
        copier.join()
        if queue is not None:
            queue.close()

    final = fotoflo_sync(*args, "--once", log=log)
    assert final.wait(timeout=120) == 0, log.read_text()

    listed = images(server)
    assert kills >= 20
    assert len(listed) == len(source), f"{len(listed)} images for {len(source)} files"
    assert sorted(i["sha256"] for i in listed) == sorted(sha(d) for d in source.values())
    assert all(i["version"] == 1 and i["conflict_of"] is None for i in listed)
    by_sha = {sha(d): d for d in source.values()}
    with checked_client() as client:
        for image in listed:
            assert client.get(server.url + image["url"]).content == by_sha[image["sha256"]]
    status = read_status(state)
    assert status.idle and status.counts[FAILED] == 0, status.counts
    # The kills did land mid-upload: rows were claimed again after a death (and settled by asking first).
    queue = SyncQueue(state / "queue.sqlite", readonly=True)
    try:
        retried = [u for u in queue.uploads(limit=1000) if u.attempts > 1]
    finally:
        queue.close()
    print(f"{kills} kills, {len(retried)} uploads interrupted")
    assert retried


# -- outages --------------------------------------------------------------------------------


def test_server_stopped_mid_upload_the_queue_holds_and_drains_after(
    server_factory: ServerFactory, sync_client: ClientFactory, tmp_path: Path
) -> None:
    port = free_port()
    served = server_factory(port=port, data=tmp_path / "data")
    client = sync_client(served.url, served.project)
    first, later = photos(30, first_seed=2000), photos(10, first_seed=3000)
    for n, data in enumerate(first):
        write(client.folder / f"IMG_{n:03d}.JPG", data)
    wait_until(lambda: len(images(served)) >= 5, timeout_s=30)

    served.stop()
    for n, data in enumerate(later):
        write(client.folder / "later" / f"IMG_{n:03d}.JPG", data)
    wait_until(lambda: client.status().offline, timeout_s=30)
    assert "cannot reach" in str(client.status().offline)
    wait_until(lambda: client.status().counts["pending"] > 0, timeout_s=15)  # the queue holds them

    restarted = server_factory(port=port, data=tmp_path / "data")
    expected = sorted(sha(d) for d in first + later)
    wait_until(lambda: client.status().idle and shas_on(restarted) == expected, timeout_s=60)
    assert client.status().offline is None
    assert client.status().counts[FAILED] == 0


def test_connections_cut_by_a_proxy_lose_and_duplicate_nothing(server: Server, sync_client: ClientFactory) -> None:
    proxy = TcpProxy(server.port)
    try:
        client = sync_client(f"http://127.0.0.1:{proxy.port}", server.project)
        data = photos(24, first_seed=4000, size=(1600, 1200))  # big enough for cuts to land mid-body
        for n, photo in enumerate(data):
            write(client.folder / f"IMG_{n:03d}.JPG", photo)
        cuts = 0
        while len(images(server)) < len(data) or not client.status().idle:
            time.sleep(0.25)
            proxy.cut()
            cuts += 1
            time.sleep(0.05)
            proxy.restore()
            assert cuts < 400, f"not drained after {cuts} cuts: {client.status().counts}"
        assert shas_on(server) == sorted(sha(d) for d in data)
        assert client.status().counts[FAILED] == 0 and cuts >= 2
    finally:
        proxy.stop()


# -- files as photographers make them ---------------------------------------------------------


def test_a_file_written_slowly_is_uploaded_once_whole(server: Server, sync_client: ClientFactory) -> None:
    client = sync_client(server.url, server.project)
    data = photos(1, first_seed=5000, size=(1200, 900))[0]
    chunks = [data[i : i + len(data) // 8 + 1] for i in range(0, len(data), len(data) // 8 + 1)]
    with open(client.folder / "IMG_SLOW.JPG", "wb") as fh:  # a tethering app writing as the card reads
        for chunk in chunks:
            fh.write(chunk)
            fh.flush()
            time.sleep(0.3)

    wait_until(lambda: client.status().idle and images(server), timeout_s=30)
    [image] = images(server)
    assert (image["sha256"], image["version"], image["size_bytes"]) == (sha(data), 1, len(data))
    with checked_client() as http:
        kinds = [c["kind"] for c in http.get(server.api("/changes")).json()["changes"]]
    assert kinds == ["image.created"]
    assert client.status().counts[FAILED] == 0


def test_a_file_modified_after_upload_becomes_a_version(server: Server, sync_client: ClientFactory) -> None:
    client = sync_client(server.url, server.project)
    before, after = photos(2, first_seed=6000)
    write(client.folder / "IMG_0001.JPG", before)
    [image] = wait_until(lambda: images(server), timeout_s=30)  # type: ignore[misc]

    write(client.folder / "IMG_0001.JPG", after)  # an editor saving over the original

    wait_until(lambda: images(server)[0]["version"] == 2, timeout_s=30)
    [updated] = images(server)
    assert (updated["id"], updated["sha256"]) == (image["id"], sha(after))
    with checked_client() as http:
        versions = http.get(server.api(f"/images/{image['id']}/versions")).json()["versions"]
        kinds = [c["kind"] for c in http.get(server.api("/changes")).json()["changes"]]
    assert [(v["sha256"], v["device_name"]) for v in versions] == [(sha(before), "device"), (sha(after), "device")]
    assert kinds == ["image.created", "image.updated"]


def test_a_renamed_file_is_not_sent_again(server: Server, sync_client: ClientFactory) -> None:
    client = sync_client(server.url, server.project)
    data, edit = photos(2, first_seed=6500)
    write(client.folder / "IMG_0001.JPG", data)
    [image] = wait_until(lambda: images(server), timeout_s=30)  # type: ignore[misc]

    (client.folder / "selects").mkdir()
    os.rename(client.folder / "IMG_0001.JPG", client.folder / "selects" / "wedding-001.jpg")
    wait_until(lambda: "selects/wedding-001.jpg" in client.queue.synced(), timeout_s=30)
    write(client.folder / "selects" / "wedding-001.jpg", edit)  # and its edit is still a version of it

    wait_until(lambda: images(server)[0]["version"] == 2, timeout_s=30)

    def outcomes() -> list[str] | None:
        done = sorted(u.outcome or "" for u in client.queue.uploads(states=(DONE,)))
        return done if len(done) == 3 else None

    # The server shows version 2 a moment before the client has recorded the answer to its upload.
    assert wait_until(outcomes, timeout_s=30) == ["created", "renamed", "updated"]
    assert [i["id"] for i in images(server)] == [image["id"]]


def test_a_raw_and_its_jpeg_synced_from_one_folder_are_one_image(server: Server, sync_client: ClientFactory) -> None:
    """The uploads name the file's folder: a pair in one folder is one image, same names elsewhere are not."""
    taken = "2026:11:20 14:03:09"
    raw, jpeg = raw_dng(1200, 800, seed=31, captured=taken), photo_jpeg(31, (1200, 800), captured=taken)
    client = sync_client(server.url, server.project)
    write(client.folder / "shoot" / "IMG_0001.DNG", raw)
    write(client.folder / "shoot" / "IMG_0001.JPG", jpeg)
    write(client.folder / "other" / "IMG_0001.JPG", photos(1, first_seed=6700)[0])  # another folder: its own

    wait_until(lambda: len(client.queue.uploads(states=(DONE,))) == 3, timeout_s=30)
    listed = images(server)
    assert sorted(i["filename"] for i in listed) == ["IMG_0001.JPG", "IMG_0001.JPG"]
    [pair] = [i for i in listed if i["raw_sha256"] is not None]
    assert (pair["sha256"], pair["raw_sha256"], pair["raw_filename"]) == (sha(jpeg), sha(raw), "IMG_0001.DNG")
    assert [f["role"] for f in pair["files"]] == ["jpeg", "raw"]


def test_two_devices_changing_one_photo_keep_both(server: Server, sync_client: ClientFactory) -> None:
    studio = sync_client(server.url, server.project, name="Studio")
    laptop = sync_client(server.url, server.project, name="Laptop")
    base, studio_edit, laptop_edit = photos(3, first_seed=7000)
    for device in (studio, laptop):
        write(device.folder / "IMG_0042.JPG", base)
    wait_until(lambda: studio.status().counts[DONE] == laptop.status().counts[DONE] == 1, timeout_s=30)
    [image] = images(server)

    write(studio.folder / "IMG_0042.JPG", studio_edit)
    wait_until(lambda: images(server)[0]["sha256"] == sha(studio_edit), timeout_s=30)
    write(laptop.folder / "IMG_0042.JPG", laptop_edit)  # edited from the same base, uploaded later

    wait_until(lambda: len(images(server)) == 2, timeout_s=30)
    current = next(i for i in images(server) if i["id"] == image["id"])
    copy = next(i for i in images(server) if i["id"] != image["id"])
    assert (current["sha256"], current["version"]) == (sha(laptop_edit), 3)
    assert copy["sha256"] == sha(studio_edit) and copy["conflict_of"] == image["id"]
    assert copy["filename"].startswith("IMG_0042 (conflict Studio ") and copy["filename"].endswith(").JPG")
    # The studio's next edit goes on in its own copy, not into another conflict.
    studio_next = photos(1, first_seed=7100)[0]
    write(studio.folder / "IMG_0042.JPG", studio_next)
    wait_until(lambda: sha(studio_next) in shas_on(server), timeout_s=30)
    assert len(images(server)) == 2
    assert next(i for i in images(server) if i["id"] == copy["id"])["sha256"] == sha(studio_next)


def test_a_refused_file_fails_with_its_reason_and_the_rest_continue(server: Server, tmp_path: Path) -> None:
    folder, state, log = tmp_path / "folder", tmp_path / "state", tmp_path / "client.log"
    good = photos(4, first_seed=8000)
    for n, data in enumerate(good):
        write(folder / f"IMG_{n}.JPG", data)
    write(folder / "notes.jpg", b"call the client at noon\n")
    write(folder / "sidecar.xmp", b"<x:xmpmeta/>")  # not an image name: not offered at all
    write(folder / ".hidden" / "IMG_9.JPG", photos(1, first_seed=8100)[0])

    proc = fotoflo_sync(str(folder), "--server", server.url, "--project", server.project, "--state", str(state),
                        "--once", log=log)  # fmt: skip
    assert proc.wait(timeout=120) == 1, log.read_text()

    output = log.read_text()
    assert "refused notes.jpg: not an image" in output
    assert "4 synced, 1 refused, 0 left" in output
    assert shas_on(server) == sorted(sha(d) for d in good)
    shown = subprocess.run(
        [sys.executable, "-m", "dashboard.cli", "sync", "status", "--state", str(state)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "0 pending, 0 uploading, 4 done, 1 failed, 0 skipped" in shown.stdout
    assert "failed    notes.jpg: not an image" in shown.stdout


# -- messages -------------------------------------------------------------------------------


class FakeAuthServer(BaseHTTPRequestHandler):
    """A fake: a server that wants another token (the real one has no authentication of its own)."""

    def do_GET(self) -> None:
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error": {"code": "unauthorized", "message": "bad token"}}')

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


def test_a_refused_token_stops_with_a_clear_message(tmp_path: Path) -> None:
    fake = ThreadingHTTPServer(("127.0.0.1", 0), FakeAuthServer)
    thread = threading.Thread(target=fake.serve_forever, name="test-fake-auth", daemon=True)
    thread.start()
    try:
        write(tmp_path / "folder" / "IMG_1.JPG", photos(1)[0])
        log = tmp_path / "client.log"
        proc = fotoflo_sync(str(tmp_path / "folder"), "--server", f"http://127.0.0.1:{fake.server_port}",
                            "--token", "wrong", "--state", str(tmp_path / "state"), "--once", log=log)  # fmt: skip
        assert proc.wait(timeout=60) == 3
        assert "refused the token (HTTP 401): check --token" in log.read_text()
    finally:
        fake.shutdown()
        fake.server_close()
        thread.join()
    assert read_status(tmp_path / "state").counts["pending"] == 1  # kept for when the token is right


def test_an_unreachable_server_is_named_and_one_queue_has_one_client(
    sync_client: ClientFactory, tmp_path: Path
) -> None:
    client = sync_client(f"http://127.0.0.1:{free_port()}", "default")
    write(client.folder / "IMG_1.JPG", photos(1)[0])
    wait_until(lambda: client.status().offline, timeout_s=30)
    assert "connection refused" in str(client.status().offline)
    assert client.status().counts["pending"] == 1

    again = SyncClient(client.folder, client.server, client.project, state_dir=client.state_dir)
    try:
        with pytest.raises(QueueLocked, match="another fotoflo sync"):
            again.start()
    finally:
        again.close()
    with httpx.Client() as http, pytest.raises(httpx.ConnectError):  # nothing was ever listening there
        http.get(client.server)


def test_usage_errors_and_an_empty_status(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FOTOFLO_")}, "XDG_STATE_HOME": str(tmp_path)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "dashboard.cli", "sync", *args], capture_output=True,
                              text=True, timeout=60, cwd=ROOT, env=env)  # fmt: skip

    no_server = run(str(tmp_path))
    assert no_server.returncode == 2 and "give a FOLDER and --server URL" in no_server.stderr
    no_folder = run(str(tmp_path / "missing"), "--server", "http://127.0.0.1:9")
    assert no_folder.returncode == 2 and "FOLDER" in no_folder.stderr and "does not exist" in no_folder.stderr
    empty = run("status")
    assert empty.returncode == 0 and empty.stdout.strip() == f"no sync state in {tmp_path}/fotoflo/sync"


# -- deletions (--delete) ---------------------------------------------------------------------

DELETING: dict[str, Any] = {"delete": True, "rescan_s": 0.3}


def image_status(server: Server, image_id: str) -> int:
    with checked_client() as http:
        return http.get(server.api(f"/images/{image_id}")).status_code


def deleted_in_feed(server: Server, image_id: str) -> int:
    with checked_client() as http:
        changes = http.get(server.api("/changes")).json()["changes"]
    return sum(1 for c in changes if c["kind"] == "image.deleted" and c["data"]["image_id"] == image_id)


def deletions(client: SyncClient) -> list[Upload]:
    return [u for u in client.queue.uploads(limit=1000) if u.action == DELETE]


def synced_photos(client: SyncClient, server: Server, first_seed: int, count: int = 2) -> dict[str, str]:
    """`count` photos written into the client's folder and uploaded; their image ids by file name."""
    for n, data in enumerate(photos(count, first_seed=first_seed)):
        write(client.folder / f"IMG_{n}.JPG", data)
    wait_until(lambda: len(client.queue.synced()) == count and client.status().idle, timeout_s=30)
    return {path: s.image_id for path, s in client.queue.synced().items()}


def test_with_delete_a_file_deleted_here_is_deleted_on_the_server_without_it_stays(
    server: Server, sync_client: ClientFactory
) -> None:
    keeping = sync_client(server.url, server.project, name="keeping")
    deleting = sync_client(server.url, server.project, name="deleting", **DELETING)
    kept_ids = synced_photos(keeping, server, 9000)
    deleted_ids = synced_photos(deleting, server, 9100)

    (keeping.folder / "IMG_0.JPG").unlink()
    (deleting.folder / "IMG_0.JPG").unlink()

    wait_until(lambda: image_status(server, deleted_ids["IMG_0.JPG"]) == 404, timeout_s=30)
    assert deleted_in_feed(server, deleted_ids["IMG_0.JPG"]) == 1
    assert image_status(server, deleted_ids["IMG_1.JPG"]) == 200
    wait_until(lambda: deletions(deleting) and deletions(deleting)[0].state == DONE, timeout_s=30)
    assert [(u.path, u.outcome) for u in deletions(deleting)] == [("IMG_0.JPG", "deleted")]
    assert set(deleting.queue.synced()) == {"IMG_1.JPG"}
    keeping.scan()  # what a rescan does; without --delete it looks for no deletions
    assert keeping.wait_idle(30)
    assert deletions(keeping) == [] and image_status(server, kept_ids["IMG_0.JPG"]) == 200


def test_with_delete_a_renamed_file_is_not_deleted(server: Server, sync_client: ClientFactory) -> None:
    client = sync_client(server.url, server.project, **DELETING)
    ids = synced_photos(client, server, 9200)

    (client.folder / "selects").mkdir()
    os.rename(client.folder / "IMG_0.JPG", client.folder / "selects" / "wedding-001.jpg")
    wait_until(lambda: "selects/wedding-001.jpg" in client.queue.synced(), timeout_s=30)
    client.scan()  # a full pass after the move, as the sweeps make
    assert client.wait_idle(30)

    assert image_status(server, ids["IMG_0.JPG"]) == 200 and len(images(server)) == 2
    assert client.queue.synced()["selects/wedding-001.jpg"].image_id == ids["IMG_0.JPG"]
    # A sweep may have seen the gap before the move was noted: its deletion was called off, never sent.
    assert all((u.state, u.last_error) == (SKIPPED, "moved to selects/wedding-001.jpg, not deleted")
               for u in deletions(client)), deletions(client)  # fmt: skip
    assert deleted_in_feed(server, ids["IMG_0.JPG"]) == 0


@pytest.mark.parametrize("how", ["folder deleted", "folder emptied"])
def test_with_delete_a_folder_gone_as_a_whole_deletes_nothing_and_says_so(
    server: Server, sync_client: ClientFactory, how: str
) -> None:
    client = sync_client(server.url, server.project, **DELETING)
    ids = synced_photos(client, server, 9300, count=3)

    if how == "folder deleted":
        shutil.rmtree(client.folder)
    else:
        for path in client.folder.iterdir():
            path.unlink()
    wait_until(lambda: client.status().deletions_held, timeout_s=30)
    client.scan()
    assert client.wait_idle(30)

    held = str(client.status().deletions_held)
    assert held.startswith("not deleting anything on the server:") and "unmounted drive" in held
    assert deletions(client) == []
    assert all(image_status(server, image_id) == 200 for image_id in ids.values())


DYING_CLIENT = """
import os, signal, sys
from dashboard.sync import SyncClient
from dashboard.sync.transport import HttpTransport

folder, server, project, state, moment = sys.argv[1:]


class Dying(HttpTransport):
    def delete(self, image_id: str, *, if_sha256: str) -> str:
        if moment == "before the request":  # the row is committed `uploading`; nothing sent
            os.kill(os.getpid(), signal.SIGKILL)
        super().delete(image_id, if_sha256=if_sha256)
        os.kill(os.getpid(), signal.SIGKILL)  # the server deleted it; the answer is lost


client = SyncClient(folder, server, project, state_dir=state, delete=True, transport=Dying(server, project))
client.start(watch=False)
client.scan()
client.scan()  # missing at two passes in a row: a deletion
client.wait_idle(60)
"""


@pytest.mark.parametrize("moment", ["before the request", "after the answer"])
def test_a_deletion_cut_by_sigkill_is_done_once_after_the_restart(
    server: Server, sync_client: ClientFactory, moment: str
) -> None:
    client = sync_client(server.url, server.project, **DELETING)
    ids = synced_photos(client, server, 9400 + (50 if moment == "after the answer" else 0))
    client.close()
    (client.folder / "IMG_0.JPG").unlink()

    died = subprocess.run(
        [sys.executable, "-c", DYING_CLIENT, str(client.folder), server.url, server.project, str(client.state_dir),
         moment], cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert died.returncode == -signal.SIGKILL, died.stderr
    queue = SyncQueue(client.state_dir / "queue.sqlite", readonly=True)
    try:
        [row] = [u for u in queue.uploads() if u.action == DELETE]
    finally:
        queue.close()
    assert (row.state, row.attempts) == (UPLOADING, 1)
    assert image_status(server, ids["IMG_0.JPG"]) == (200 if moment == "before the request" else 404)

    again = sync_client(server.url, server.project, **DELETING)
    assert again.wait_idle(30)

    [row] = deletions(again)
    expected = "deleted" if moment == "before the request" else "gone"
    assert (row.state, row.outcome, row.attempts) == (DONE, expected, 2)
    assert image_status(server, ids["IMG_0.JPG"]) == 404 and deleted_in_feed(server, ids["IMG_0.JPG"]) == 1
    assert image_status(server, ids["IMG_1.JPG"]) == 200


def test_with_delete_an_image_changed_on_another_device_is_kept(server: Server, sync_client: ClientFactory) -> None:
    client = sync_client(server.url, server.project, **DELETING)
    ids = synced_photos(client, server, 9500)
    original = (client.folder / "IMG_0.JPG").read_bytes()
    edit = photos(1, first_seed=9600)[0]
    with checked_client() as http:  # the laptop edits it meanwhile
        fields = {"sha256": sha(edit), "replaces": ids["IMG_0.JPG"], "base_sha256": sha(original),
                  "device_id": "laptop-1", "device_name": "Laptop"}  # fmt: skip
        response = http.post(server.api("/upload"), data=fields, files={"file": ("IMG_0.JPG", edit, "image/jpeg")})
        assert response.status_code in (200, 201), response.text

    (client.folder / "IMG_0.JPG").unlink()

    wait_until(lambda: deletions(client) and deletions(client)[0].state == DONE, timeout_s=30)
    [row] = deletions(client)
    assert (row.outcome, row.last_error) == ("changed", "changed on the server since; not deleted")
    with checked_client() as http:
        image = http.get(server.api(f"/images/{ids['IMG_0.JPG']}")).json()
    assert (image["sha256"], image["version"]) == (sha(edit), 2)
    assert deleted_in_feed(server, ids["IMG_0.JPG"]) == 0


def test_fotoflo_sync_once_with_delete(server: Server, tmp_path: Path) -> None:
    folder, state, log = tmp_path / "folder", tmp_path / "state", tmp_path / "client.log"
    for n, data in enumerate(photos(2, first_seed=9700)):
        write(folder / f"IMG_{n}.JPG", data)
    args = (str(folder), "--server", server.url, "--project", server.project, "--state", str(state), "--once")
    assert fotoflo_sync(*args, "--delete", log=log).wait(timeout=120) == 0, log.read_text()
    [gone] = [i["id"] for i in images(server) if i["filename"] == "IMG_0.JPG"]

    (folder / "IMG_0.JPG").unlink()
    assert fotoflo_sync(*args, log=log).wait(timeout=120) == 0, log.read_text()  # without --delete: kept
    assert image_status(server, gone) == 200
    assert fotoflo_sync(*args, "--delete", log=log).wait(timeout=120) == 0, log.read_text()

    assert image_status(server, gone) == 404 and len(images(server)) == 1
    assert "0 synced, 1 deleted, 0 refused, 0 left" in log.read_text()
