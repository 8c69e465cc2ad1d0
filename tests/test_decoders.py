"""Decoder workers with real processes and real crashes: a dying decoder costs one file, never its caller."""

from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from PIL import Image

from dashboard import decoders
from dashboard.decoder_worker import TEST_ABORT_MARKER, TEST_CRASH_ENV, TEST_HANG_MARKER
from dashboard.decoders import DecoderPool, memory_budget_bytes, memory_ceiling_bytes
from dashboard.imaging.errors import DecoderFailed, Limits, NotAnImage
from dashboard.ingest import Ingestor
from dashboard.quarantine import Quarantine
from tests.support import ROOT
from tests.support.api import checked_client, upload
from tests.support.embedded import Embedded
from tests.support.images import jpeg_bytes
from tests.support.servers import Server, ServerFactory
from tests.support.sse import sse
from tests.support.waiting import wait_until

PROJECT = "default"
GiB = 1024**3


def good(n: int) -> bytes:
    return jpeg_bytes((64, 48), seed=n, model=f"decoders-test-{n}")


def crashing(n: int = 0, marker: bytes = TEST_ABORT_MARKER) -> bytes:
    """A valid JPEG that makes a test-hooked worker abort (or hang): JPEG decoders ignore bytes after the image."""
    return good(1000 + n) + marker


def rgba_png(edge: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (edge, edge), (10, 20, 30, 128)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def pool() -> Iterator[DecoderPool]:
    """Two workers with the test-only crash hook armed."""
    p = DecoderPool(2, env={TEST_CRASH_ENV: "1"})
    yield p
    p.close()


def test_a_preview_from_a_file_is_the_preview_from_its_bytes(pool: DecoderPool, tmp_path: Path) -> None:
    """An original on disk goes to the worker without passing through the caller; the preview is the same."""
    data = jpeg_bytes((4000, 3000), seed=3)
    original = tmp_path / "original"
    original.write_bytes(data)

    from_file = pool.preview(original, "IMG.JPG")
    assert from_file == pool.preview(data, "IMG.JPG")
    with Image.open(io.BytesIO(from_file)) as preview:
        assert preview.size == (2000, 1500)
    with pytest.raises(FileNotFoundError):
        pool.preview(tmp_path / "gone", "gone.jpg")
    assert pool.failed == 0


def test_an_aborting_decoder_costs_that_file_only(pool: DecoderPool) -> None:
    assert pool.analyze(good(1), "before.jpg").width == 64
    with pytest.raises(DecoderFailed) as failed:
        pool.analyze(crashing(), "boom.jpg")
    assert failed.value.filename == "boom.jpg"
    assert failed.value.code == "decoder_failed"
    assert "aborted (SIGABRT)" in failed.value.reason
    assert pool.analyze(good(2), "after.jpg").width == 64
    assert pool.started == 2  # the lost worker was replaced, once


def test_sigkill_of_the_worker_mid_decode(pool: DecoderPool, capfd: pytest.CaptureFixture[str]) -> None:
    errors: list[BaseException] = []

    def decode() -> None:
        try:
            pool.analyze(crashing(marker=TEST_HANG_MARKER), "stuck.jpg")
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=decode)
    thread.start()
    said: list[str] = []
    wait_until(lambda: said.append(capfd.readouterr().err) or "test hook: hang" in "".join(said), timeout_s=20)
    [pid] = pool.worker_pids()  # it has the file, and is decoding it
    os.kill(pid, signal.SIGKILL)
    thread.join(timeout=30)
    [error] = errors
    assert isinstance(error, DecoderFailed) and error.filename == "stuck.jpg"
    assert "SIGKILL" in error.reason
    assert pool.analyze(good(3), "next.jpg").width == 64
    assert pid not in pool.worker_pids()


def test_a_decode_past_its_timeout_is_stopped(pool: DecoderPool) -> None:
    pool.analyze(good(4), "warm.jpg")
    [pid] = pool.worker_pids()
    with pytest.raises(DecoderFailed, match=r"took longer than 1 s"):
        pool.analyze(crashing(marker=TEST_HANG_MARKER), "slow.jpg", Limits(decode_timeout_s=1))
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert pool.analyze(good(5), "next.jpg").width == 64


def test_warm_starts_every_worker_before_the_first_file(pool: DecoderPool) -> None:
    pool.warm()
    wait_until(lambda: len(pool.worker_pids()) == pool.size, timeout_s=30)
    both = [threading.Thread(target=pool.analyze, args=(good(n), f"IMG_{n}.jpg")) for n in range(2)]
    for thread in both:
        thread.start()
    for thread in both:
        thread.join(timeout=60)
    assert pool.started == pool.size  # the files found their workers running: none was started for them


def test_the_test_hook_is_inert_without_its_variable() -> None:
    pool = DecoderPool(1, env={TEST_CRASH_ENV: ""})
    try:
        assert pool.analyze(crashing(), "marked.jpg").width == 64
    finally:
        pool.close()


def test_a_closed_pool_refuses_instead_of_starting_workers() -> None:
    pool = DecoderPool(1)
    assert pool.analyze(good(8), "a.jpg").width == 64
    pool.close()
    with pytest.raises(DecoderFailed, match="stopping"):
        pool.analyze(good(9), "b.jpg")
    assert pool.worker_pids() == []


def test_refusals_cross_the_process_boundary_typed(pool: DecoderPool) -> None:
    with pytest.raises(NotAnImage) as refused:
        pool.analyze(b"shot list\n", "notes.txt")
    assert refused.value.filename == "notes.txt"
    assert pool.failed == 0


# -- memory: the worker's limit, sized from the pixel cap -------------------------------------


def test_the_worker_decodes_under_an_address_space_limit_sized_from_max_pixels(pool: DecoderPool) -> None:
    small = pool.worker_limits(Limits(max_pixels=10_000_000))
    large = pool.worker_limits(Limits(max_pixels=200_000_000))
    soft_small, hard = small["RLIMIT_AS"]
    soft_large, hard_again = large["RLIMIT_AS"]
    assert hard == hard_again and hard > 0
    assert soft_small < soft_large <= hard
    # The hard limit, which the worker cannot raise, is the pool's ceiling (plus room for the file itself).
    assert hard - small["vm_size_bytes"] <= memory_ceiling_bytes(2) + 512 * 1024 * 1024
    # What the worker holds, plus the budget for the cap (the floor, for a small cap).
    assert soft_small == pytest.approx(
        small["vm_size_bytes"] + memory_budget_bytes(Limits(max_pixels=10**7), 2), rel=0.05
    )
    assert soft_large - large["vm_size_bytes"] >= 200_000_000 * decoders.BYTES_PER_PIXEL
    assert small["RLIMIT_CPU"][0] > 0
    assert small["RLIMIT_CORE"] == [0, 0]  # a crash leaves no dump of the hostile file's decode behind


def test_memory_budget_has_a_floor_and_a_ceiling() -> None:
    assert memory_budget_bytes(Limits(max_pixels=1000, max_bytes=1000), 4, 64 * GiB) == decoders.MEMORY_FLOOR_BYTES
    assert memory_budget_bytes(Limits(max_pixels=10**12), 1, 1024 * GiB) == decoders.MEMORY_CEILING_BYTES
    # N workers at their limit together take at most half the machine's memory.
    assert memory_budget_bytes(Limits(max_pixels=10**10), 8, 16 * GiB) == 1 * GiB
    assert memory_budget_bytes(Limits(max_pixels=10**10), 8, 4 * GiB) == decoders.MEMORY_FLOOR_BYTES


def test_a_pixel_bomb_over_the_memory_limit_is_refused_and_the_worker_replaced(
    pool: DecoderPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = rgba_png(7000)  # 49 MP in a 200 KB file: about 400 MB to decode
    assert len(bomb) < 1024 * 1024
    monkeypatch.setattr(decoders, "memory_budget_bytes", lambda limits, workers: 64 * 1024 * 1024)
    with pytest.raises(DecoderFailed, match=r"more memory than a decoder may use \(64 MiB\)"):
        pool.analyze(bomb, "bomb.png")
    monkeypatch.undo()
    assert pool.analyze(bomb, "bomb.png").width == 7000  # with the default budget it fits
    assert pool.analyze(good(6), "next.jpg").width == 64


def test_at_most_size_decodes_at_once() -> None:
    pool = DecoderPool(2, env={TEST_CRASH_ENV: "1"})
    errors: list[BaseException] = []

    def decode(n: int) -> None:
        try:
            pool.analyze(crashing(n, TEST_HANG_MARKER), f"slow-{n}.jpg", Limits(decode_timeout_s=3))
        except DecoderFailed as exc:
            errors.append(exc)

    threads = [threading.Thread(target=decode, args=(n,)) for n in range(4)]
    try:
        for thread in threads:
            thread.start()
        wait_until(lambda: len(pool.worker_pids()) == 2, timeout_s=10)
        for thread in threads:
            thread.join(timeout=60)
        assert len(errors) == 4
        assert pool.started == 4  # two at a time, each replaced once: never more than two processes
    finally:
        pool.close()


# -- quarantine -------------------------------------------------------------------------------


def test_quarantine_persists_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "data" / "quarantine.json"
    Quarantine(path).add("ab" * 32, "boom.jpg", "the decoder aborted (SIGABRT)")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Quarantine(path).reason("ab" * 32) == "the decoder aborted (SIGABRT)"
    assert Quarantine(path).reason("cd" * 32) is None


def test_a_file_whose_decoder_died_is_not_decoded_again_until_it_changes(
    embedded: Embedded, pool: DecoderPool, tmp_path: Path
) -> None:
    quarantine = Quarantine(embedded.data / "quarantine.json")
    ingestor = Ingestor(embedded.store, embedded.blobs, embedded.bus, decoders=pool, quarantine=quarantine)
    path = tmp_path / "boom.jpg"
    path.write_bytes(crashing())
    with pytest.raises(DecoderFailed, match="SIGABRT"):
        ingestor.ingest(path, PROJECT)
    assert pool.failed == 1
    # Again, and from a new Ingestor reading the list from disk (a restart): refused without decoding.
    again = Ingestor(
        embedded.store, embedded.blobs, embedded.bus, decoders=pool, quarantine=Quarantine(quarantine.path)
    )
    with pytest.raises(DecoderFailed, match="quarantined, not decoded again until the file changes"):
        again.ingest(path, PROJECT)
    assert pool.failed == 1
    (tmp_path / "ok.jpg").write_bytes(good(7))
    assert again.ingest(tmp_path / "ok.jpg", PROJECT).created
    # Changed, it is tried again.
    path.write_bytes(crashing(1))
    with pytest.raises(DecoderFailed, match="SIGABRT"):
        again.ingest(path, PROJECT)
    assert pool.failed == 2
    # An upload of those bytes is decoded (and refused) each time; it does not fill the list.
    with pytest.raises(DecoderFailed, match="SIGABRT"):
        again.ingest(crashing(2), PROJECT, filename="upload.jpg")
    assert len(quarantine.path.read_text().split('"reason"')) == 3  # two entries


def test_ingest_many_imports_the_rest_around_a_crashing_file(
    embedded: Embedded, pool: DecoderPool, tmp_path: Path
) -> None:
    ingestor = Ingestor(
        embedded.store,
        embedded.blobs,
        embedded.bus,
        decoders=pool,
        quarantine=Quarantine(embedded.data / "quarantine.json"),
    )
    paths = []
    for n in range(6):
        paths.append(tmp_path / f"IMG_{n}.jpg")
        paths[-1].write_bytes(crashing(n) if n == 2 else good(20 + n))
    stats = ingestor.ingest_many(paths, PROJECT)
    assert stats.created == 5
    [refused] = stats.refused
    assert isinstance(refused, DecoderFailed) and refused.filename == "IMG_2.jpg"


def test_fotoflo_ingest_of_a_folder_with_a_crashing_file(tmp_path: Path) -> None:
    folder = tmp_path / "card"
    folder.mkdir()
    for n in range(4):
        (folder / f"IMG_{n}.jpg").write_bytes(crashing(n) if n == 1 else good(30 + n))
    env = {**os.environ, TEST_CRASH_ENV: "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "dashboard.cli", "ingest", str(folder), "--data", str(tmp_path / "data")]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert run.returncode == 1, run.stderr
    assert "3 imported, 0 already there, 1 refused" in run.stdout
    assert "refused IMG_1.jpg: the decoder aborted (SIGABRT)" in run.stderr
    assert "IMG_1.jpg" in (tmp_path / "data" / "quarantine.json").read_text()
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert "0 imported, 3 already there, 1 refused" in again.stdout
    assert "quarantined" in again.stderr and "test hook: abort" not in again.stderr


# -- a real `fotoflo serve` -------------------------------------------------------------------


def decoder_pids(server: Server) -> list[int]:
    """The server's decoder workers (its child processes running `dashboard.decoder_worker`)."""
    children = psutil.Process(server.proc.pid).children()
    return [c.pid for c in children if "dashboard.decoder_worker" in " ".join(c.cmdline())]


def peak_rss_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) * 1024


def test_crash_and_kill_during_uploads_cost_one_file_each_and_the_stream_goes_on(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(env={TEST_CRASH_ENV: "1"})
    with checked_client() as client, sse(server.api("/events")) as stream:
        response = upload(client, server, ("boom.jpg", crashing()))
        assert response.status_code == 422, response.text
        [error] = response.json()["errors"]
        assert error["filename"] == "boom.jpg" and error["code"] == "decoder_failed"
        assert "aborted (SIGABRT)" in error["reason"]
        # Its sender saw the refusal: an upload is never quarantined, the same bytes are decoded again.
        [again] = upload(client, server, ("boom.jpg", crashing())).json()["errors"]
        assert "aborted (SIGABRT)" in again["reason"] and not (server.data / "quarantine.json").exists()
        assert upload(client, server, ("after.jpg", good(1))).status_code == 201
        event = stream.next(timeout_s=15)
        assert event.event == "image.created" and event.json()["filename"] == "after.jpg"

        # SIGKILL of the worker while it decodes: that upload is refused, nothing else.
        responses: list[httpx.Response] = []
        sender = threading.Thread(
            target=lambda: responses.append(upload(client, server, ("stuck.jpg", crashing(1, TEST_HANG_MARKER))))
        )
        sender.start()
        wait_until(lambda: "test hook: hang" in server.log(), timeout_s=30)
        for pid in decoder_pids(server):
            os.kill(pid, signal.SIGKILL)
        sender.join(timeout=60)
        [killed] = responses
        assert killed.status_code == 422, killed.text
        [error] = killed.json()["errors"]
        assert error["filename"] == "stuck.jpg" and error["code"] == "decoder_failed" and "SIGKILL" in error["reason"]
        assert upload(client, server, ("next.jpg", good(2))).status_code == 201
        event = stream.next(timeout_s=15)
        assert event.event == "image.created" and event.json()["filename"] == "next.jpg"
    assert server.proc.poll() is None
    assert "Traceback" not in server.log()


def test_a_hot_folder_file_that_crashes_its_decoder_is_quarantined_across_restarts(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    data, hot = tmp_path / "data", tmp_path / "hot"
    hot.mkdir()
    (hot / "boom.jpg").write_bytes(crashing())
    env = {TEST_CRASH_ENV: "1"}
    first = server_factory(data=data, watch=hot, env=env)
    wait_until(lambda: "refused" in first.log() and "SIGABRT" in first.log(), timeout_s=30)
    quarantine = data / "quarantine.json"
    assert stat.S_IMODE(quarantine.stat().st_mode) == 0o600
    assert "boom.jpg" in quarantine.read_text()
    first.stop()

    # Restarted with the file still there: no crash loop, not even one more decode of it.
    second = server_factory(data=data, watch=hot, env=env)
    (hot / "good.jpg").write_bytes(good(3))

    def names() -> list[str]:
        return [i["filename"] for i in httpx.get(second.api("/images"), timeout=10).json()["images"]]

    wait_until(lambda: names() == ["good.jpg"], timeout_s=30)
    wait_until(lambda: "quarantined, not decoded again" in second.log(), timeout_s=30)
    assert "test hook: abort" not in second.log()
    # Changed, it is tried again (and refused again, the server still up).
    (hot / "boom.jpg").write_bytes(crashing(1))
    wait_until(lambda: "test hook: abort" in second.log(), timeout_s=30)
    wait_until(lambda: second.log().count("SIGABRT") >= 1, timeout_s=30)
    assert second.proc.poll() is None
    second.wait_healthy(timeout_s=10)


def test_pixel_bombs_are_decoded_outside_the_server_process(server_factory: ServerFactory) -> None:
    server = server_factory()
    with checked_client() as client:
        client.timeout = httpx.Timeout(120)  # a 196-MP decode takes seconds on a busy machine
        assert upload(client, server, ("warm.jpg", good(4))).status_code == 201
        before = peak_rss_bytes(server.proc.pid)
        bomb = rgba_png(7000)  # 190 KB asking for 49 MP: about 650 MB when decoded in the server
        response = upload(client, server, ("bomb.png", bomb))
        assert response.status_code == 201, response.text
        out = io.BytesIO()
        Image.new("L", (14000, 14000), 90).save(out, "PNG")  # 196 MP, just under the default cap
        response = upload(client, server, ("near-cap.png", out.getvalue()))
        assert response.status_code == 201 or response.json()["errors"][0]["code"] == "decoder_failed", response.text
        assert response.json()["images"][0]["width"] == 14000
    grown = peak_rss_bytes(server.proc.pid) - before
    assert grown < 100 * 1024 * 1024, f"the server's peak memory grew by {grown // 2**20} MiB"
    assert server.proc.poll() is None
