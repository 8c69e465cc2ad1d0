"""The uploader, and a seeded simulation of watcher → queue → uploader with crashes and network faults.

The simulation runs the real producer, queue (SQLite) and uploader against the real store and
ingest of an in-process server, one step at a time on a fake clock, like Dropbox tests its sync
engine: the only fake is the network between them (`FakeNetwork`), which the simulation breaks
(down, flaky, answers lost after the server committed) and where it kills the client (`SimCrash`:
nothing after that point runs; the client restarts from its queue file). After the storm, the
network heals and the client settles; then every file must be on the server exactly as it is in
the folder, nothing twice, no conflict (one device never conflicts with itself).
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dashboard.blobs import FileBlobs
from dashboard.bus import LocalBus
from dashboard.events import Device
from dashboard.ingest import ChecksumMismatch, IngestError, Ingestor
from dashboard.store import UnknownImage
from dashboard.store.sqlite import SQLiteStore
from dashboard.sync.queue import DONE, FAILED, PENDING, SKIPPED, UPLOADING, SyncQueue
from dashboard.sync.scanner import Producer
from dashboard.sync.transport import (
    ChangedWhileSending,
    Refused,
    Remote,
    ReplacedImageGone,
    Retryable,
    Unreachable,
)
from dashboard.sync.uploader import Backoff, RetryPolicy, Uploader
from tests.conftest import jpeg_bytes

PROJECT = "sim"
DEVICE = Device("sim-device", "Sim")
POOL = [jpeg_bytes((16, 12), seed=n, quality=70) for n in range(24)]
BAD = [f"not an image {n}\n".encode() for n in range(3)]
SIM_SEEDS = int(os.environ.get("FOTOFLO_SIM_SEEDS", "40"))
SIM_STEPS = 150


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class SimCrash(BaseException):
    """The client process dies here: nothing after this point runs (not even its error handling)."""


class FakeClock:
    def __init__(self, now: float = 1_750_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Server:
    """The real store, blobs and ingest of a server, in this process."""

    store: SQLiteStore
    ingestor: Ingestor

    @classmethod
    def open(cls, data: Path) -> Server:
        store = SQLiteStore(data / "fotoflo.sqlite")
        store.ensure_project(PROJECT)
        return cls(store, Ingestor(store, FileBlobs(data / "blobs"), LocalBus()))


@dataclass
class FakeNetwork:
    """A `Transport` straight into `server`'s ingest (the one door), over a network the test breaks.

    `mode` is `up`, `down` (nothing gets through) or `flaky` (resets, 503s, answers lost after
    the server committed); `crash_p` is the chance the client dies at each point a request passes.
    """

    server: Server
    rng: random.Random
    mode: str = "up"
    crash_p: float = 0.0
    requests: int = 0

    def _hop(self, *, after_commit: bool) -> None:
        self.requests += 1
        if self.rng.random() < self.crash_p:
            raise SimCrash
        if self.mode == "down" and not after_commit:
            raise Unreachable("cannot reach the server: connection refused")
        if self.mode == "flaky":
            roll = self.rng.random()
            if roll < 0.15:
                raise Unreachable("connection reset" + (" after the server committed" if after_commit else ""))
            if roll < 0.25 and not after_commit:
                raise Retryable("HTTP 503 from the server")

    def lookup(self, sha256: str) -> Remote | None:
        self._hop(after_commit=False)
        image = self.server.store.find_by_sha(PROJECT, sha256)
        self._hop(after_commit=True)
        return None if image is None else Remote(image.id, image.sha256, current=image.sha256 == sha256)

    def upload(
        self,
        path: Path,
        name: str,
        sha256: str,
        *,
        replaces: str | None,
        base_sha256: str | None,
        device: Device,
        progress: Callable[[int], None],
    ) -> Remote:
        self._hop(after_commit=False)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise ChangedWhileSending("gone while it was sent") from exc
        try:
            result = self.server.ingestor.ingest(
                data,
                PROJECT,
                filename=name,
                expected_sha256=sha256,
                replaces=replaces,
                base_sha256=base_sha256,
                device=device,
                log_refusals=False,
            )
        except ChecksumMismatch as exc:
            raise ChangedWhileSending(exc.reason) from exc
        except IngestError as exc:
            raise Refused(exc.code, exc.reason) from exc
        except UnknownImage as exc:
            raise ReplacedImageGone(str(exc)) from exc
        progress(len(data))
        self._hop(after_commit=True)
        if result.conflict_copy is not None:
            outcome = "conflict"
        else:
            outcome = "created" if result.created else "updated" if result.updated else "present"
        copy_id = result.conflict_copy.id if result.conflict_copy else None
        return Remote(result.image.id, result.image.sha256, result.image.sha256 == sha256, outcome, copy_id)

    def close(self) -> None:
        pass


POLICY = RetryPolicy(file=Backoff(1.0, 60.0), offline=Backoff(0.5, 15.0), max_attempts=50)


@dataclass
class Client:
    """One life of the sync client: what a process holds between its start and its death."""

    queue: SyncQueue
    producer: Producer
    uploader: Uploader

    @classmethod
    def boot(cls, folder: Path, state: Path, network: FakeNetwork, clock: FakeClock, rng: random.Random) -> Client:
        queue = SyncQueue(state / "queue.sqlite", clock=clock)
        queue.recover()
        producer = Producer(folder, queue)
        uploader = Uploader(
            queue, network, folder, DEVICE, policy=POLICY, clock=clock, rng=rng,
            recheck=lambda rel: producer.note(folder / rel),
        )  # fmt: skip
        return cls(queue, producer, uploader)


@dataclass
class Simulation:
    seed: int
    root: Path
    rng: random.Random = field(init=False)
    clock: FakeClock = field(default_factory=FakeClock)
    written: set[str] = field(default_factory=set)
    crashes: int = 0
    names: int = 0
    mtime_ns: int = 1_700_000_000 * 10**9

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.folder = self.root / "folder"
        self.folder.mkdir(parents=True)
        self.server = Server.open(self.root / "server")
        self.network = FakeNetwork(self.server, random.Random(self.seed * 7919 + 1))
        self.client = Client.boot(self.folder, self.root / "state", self.network, self.clock, self.rng)

    def close(self) -> None:
        self.client.queue.close()
        self.server.store.close()

    # -- the world ------------------------------------------------------------------------

    def files(self) -> list[Path]:
        return sorted(p for p in self.folder.rglob("*") if p.is_file())

    def write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        # A distinct mtime per write: a same-size rewrite within the file system's clock tick is
        # another test's subject, not this one's.
        self.mtime_ns += self.rng.randrange(1, 10**9)
        os.utime(path, ns=(self.mtime_ns, self.mtime_ns))
        self.written.add(sha(data))

    def content(self) -> bytes:
        return self.rng.choice(POOL) if self.rng.random() > 0.05 else self.rng.choice(BAD)

    def restart(self) -> None:
        self.crashes += 1
        self.client.queue.close()
        self.client = Client.boot(self.folder, self.root / "state", self.network, self.clock, self.rng)

    def alive(self, action: Callable[[], object]) -> None:
        try:
            action()
        except SimCrash:
            self.restart()

    # -- steps ----------------------------------------------------------------------------

    def step(self) -> None:
        rng, files = self.rng, self.files()
        op = rng.choices(
            ["create", "modify", "rename", "delete", "event", "scan", "upload", "tick", "network", "crash"],
            weights=[3, 2, 1, 0.4, 2, 0.7, 6, 2, 1, 0.7],
        )[0]
        if op == "create" or (not files and op in ("modify", "rename", "delete", "event")):
            self.names += 1
            self.write(self.folder / f"d{rng.randrange(3)}" / f"IMG_{self.names:04d}.jpg", self.content())
        elif op == "modify":
            self.write(rng.choice(files), self.content())
        elif op == "rename":
            self.names += 1
            target = self.folder / f"d{rng.randrange(3)}" / f"IMG_{self.names:04d}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(rng.choice(files), target)
        elif op == "delete":
            rng.choice(files).unlink()
        elif op == "event":  # the watcher's callback for one complete file
            path = rng.choice(files)
            self.alive(lambda: self.client.producer.note(path))
        elif op == "scan":
            self.alive(self.client.producer.scan)
        elif op == "upload":
            for _ in range(rng.randint(1, 4)):
                self.alive(self.client.uploader.run_one)
        elif op == "tick":
            self.clock.now += rng.expovariate(1 / 8)
        elif op == "network":
            self.network.mode = rng.choices(["up", "down", "flaky"], weights=[3, 1, 2])[0]
            self.network.crash_p = rng.choice([0.0, 0.0, 0.05, 0.15])
        elif op == "crash":
            self.restart()

    def settle(self) -> None:
        """The network heals and stops killing the client; run until nothing is left to do."""
        self.network.mode, self.network.crash_p = "up", 0.0
        for _ in range(200):
            self.client.producer.scan()
            while self.client.uploader.run_one():
                pass
            counts = self.client.queue.counts()
            if counts[PENDING] == counts[UPLOADING] == 0 and self.client.producer.scan().queued == 0:
                return
            due = self.client.queue.next_due() or self.clock.now
            self.clock.now = max(self.clock.now, due, self.client.uploader.offline_until) + 0.001
        raise AssertionError(f"seed {self.seed}: the queue did not drain: {self.client.queue.counts()}")

    # -- what must hold -------------------------------------------------------------------

    def check(self) -> None:
        store, queue = self.server.store, self.client.queue
        images = store.list_images(PROJECT, limit=10_000)
        synced = queue.synced()
        assert not [i for i in images if i.conflict_of], f"seed {self.seed}: one device made a conflict copy"
        files = {p.relative_to(self.folder).as_posix(): sha(p.read_bytes()) for p in self.files()}
        bad = {sha(b) for b in BAD}
        for rel, content in files.items():
            latest = queue.latest(rel)
            assert latest is not None, f"seed {self.seed}: {rel} never queued"
            if content in bad:
                assert (latest.state, latest.error_code) == (FAILED, "not_an_image"), (self.seed, rel, latest)
                continue
            assert rel in synced and synced[rel].sha256 == content, f"seed {self.seed}: {rel} is not on the server"
            # Every file is in the gallery: its bytes are an image's current version.
            shown = store.find_by_sha(PROJECT, content)
            assert shown is not None and shown.sha256 == content, f"seed {self.seed}: {rel} is not shown"
            image_id = synced[rel].image_id
            assert content in {v.sha256 for v in store.image_versions(PROJECT, image_id)}, (self.seed, rel)
            # Unless another path (present or deleted) also maps to it, its image is the file as it is.
            if not [r for r, s in synced.items() if r != rel and s.image_id == image_id]:
                assert synced[rel].head and shown.id == image_id, f"seed {self.seed}: {rel} is stale"
        # Nothing reached the server that was never in the folder, and every image is one the
        # client knows it made or found (no image uploaded and forgotten).
        done_ids = {u.image_id for u in queue.uploads(states=(DONE,), limit=100_000)}
        for image in images:
            assert {v.sha256 for v in store.image_versions(PROJECT, image.id)} <= self.written
            assert image.id in done_ids, f"seed {self.seed}: image {image.id} is on the server, not in the queue"
        counts = queue.counts()
        assert counts[UPLOADING] == counts[PENDING] == 0
        assert counts[FAILED] == sum(1 for u in queue.uploads(states=(FAILED,)) if u.error_code == "not_an_image")
        assert counts[DONE] + counts[SKIPPED] + counts[FAILED] > 0


@pytest.fixture
def simulation(tmp_path: Path) -> Iterator[Callable[[int], Simulation]]:
    made: list[Simulation] = []

    def make(seed: int) -> Simulation:
        sim = Simulation(seed, tmp_path / f"seed-{seed}-{len(made)}")
        made.append(sim)
        return sim

    yield make
    for sim in made:
        sim.close()


@pytest.mark.parametrize("seed", range(SIM_SEEDS))
def test_simulated_storm_loses_nothing_and_duplicates_nothing(seed: int, simulation) -> None:
    sim = simulation(seed)
    for _ in range(SIM_STEPS):
        sim.step()
    sim.settle()
    sim.check()


def test_the_simulation_is_deterministic(simulation) -> None:
    def trace(sim: Simulation) -> tuple[int, int, int, dict[str, int]]:
        for _ in range(SIM_STEPS):
            sim.step()
        sim.settle()
        return sim.crashes, sim.network.requests, len(sim.files()), sim.client.queue.counts()

    assert trace(simulation(7)) == trace(simulation(7))
