"""The uploader, and a seeded simulation of watcher → queue → uploader with crashes and network faults.

The simulation runs the real producer, queue (SQLite) and uploader against the real store and
ingest of an in-process server, one step at a time on a fake clock, like Dropbox tests its sync
engine: the only fake is the network between them (`FakeNetwork`), which the simulation breaks
(down, flaky, answers lost after the server committed) and where it kills the client (`SimCrash`:
nothing after that point runs; the client restarts from its queue file). After the storm, the
network heals and the client settles; then every file must be on the server exactly as it is in
the folder, nothing twice, no conflict (one device never conflicts with itself). With deletions on
(`--delete`), files are also deleted and restored, and after the storm nothing is on the server
that no file in the folder is.
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
from dashboard.curation import Curator
from dashboard.events import Device
from dashboard.imaging.errors import ChecksumMismatch, IngestError
from dashboard.ingest import Ingestor
from dashboard.store import UnknownImage, VersionChanged
from dashboard.store.sqlite import SQLiteStore
from dashboard.sync.queue import DELETE, DONE, FAILED, PENDING, SKIPPED, UPLOAD, UPLOADING, SyncQueue
from dashboard.sync.scanner import Producer
from dashboard.sync.transport import (
    CHANGED,
    DELETED,
    GONE,
    ChangedWhileSending,
    Refused,
    Remote,
    ReplacedImageGone,
    Retryable,
    Unreachable,
)
from dashboard.sync.uploader import Backoff, RetryPolicy, Uploader
from tests.support.images import jpeg_bytes

PROJECT = "sim"
DEVICE = Device("sim-device", "Sim")
POOL = [jpeg_bytes((16, 12), seed=n, quality=70) for n in range(24)]
BAD = [f"not an image {n}\n".encode() for n in range(3)]
SIM_SEEDS = int(os.environ.get("FOTOFLO_SIM_SEEDS", "40"))
SIM_DELETE_SEEDS = max(1, SIM_SEEDS // 2)
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
    curator: Curator

    @classmethod
    def open(cls, data: Path) -> Server:
        store = SQLiteStore(data / "fotoflo.sqlite")
        store.ensure_project(PROJECT)
        bus = LocalBus()
        return cls(store, Ingestor(store, FileBlobs(data / "blobs"), bus), Curator(store, bus))


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
        folder: str = "",
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
                folder=folder,
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

    def delete(self, image_id: str, *, if_sha256: str) -> str:
        self._hop(after_commit=False)
        try:
            self.server.curator.delete_image(PROJECT, image_id, if_sha256=if_sha256)
            outcome = DELETED
        except UnknownImage:
            outcome = GONE
        except VersionChanged:
            outcome = CHANGED
        self._hop(after_commit=True)
        return outcome

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
    def boot(
        cls, folder: Path, state: Path, network: FakeNetwork, clock: FakeClock, rng: random.Random, delete: bool = False
    ) -> Client:
        queue = SyncQueue(state / "queue.sqlite", clock=clock)
        queue.recover()
        producer = Producer(folder, queue, delete=delete)
        uploader = Uploader(
            queue, network, folder, DEVICE, policy=POLICY, clock=clock, rng=rng,
            recheck=lambda rel: producer.note(folder / rel),
        )  # fmt: skip
        return cls(queue, producer, uploader)


@dataclass
class Simulation:
    seed: int
    root: Path
    delete: bool = False  # the client propagates deletions (`--delete`)
    rng: random.Random = field(init=False)
    clock: FakeClock = field(default_factory=FakeClock)
    written: set[str] = field(default_factory=set)
    deleted: list[tuple[Path, bytes]] = field(default_factory=list)  # what the photographer may restore
    crashes: int = 0
    names: int = 0
    mtime_ns: int = 1_700_000_000 * 10**9

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.folder = self.root / "folder"
        self.folder.mkdir(parents=True)
        self.server = Server.open(self.root / "server")
        self.network = FakeNetwork(self.server, random.Random(self.seed * 7919 + 1))
        self.client = self.boot()

    def boot(self) -> Client:
        return Client.boot(self.folder, self.root / "state", self.network, self.clock, self.rng, self.delete)

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
        self.client = self.boot()

    def alive(self, action: Callable[[], object]) -> None:
        try:
            action()
        except SimCrash:
            self.restart()

    # -- steps ----------------------------------------------------------------------------

    def step(self) -> None:
        rng, files = self.rng, self.files()
        op = rng.choices(
            ["create", "modify", "rename", "delete", "restore", "event", "scan", "upload", "tick", "network", "crash"],
            weights=[3, 2, 1, 1.2 if self.delete else 0.4, 0.4 if self.delete else 0, 2, 0.7, 6, 2, 1, 0.7],
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
            gone = rng.choice(files)
            self.deleted.append((gone, gone.read_bytes()))
            gone.unlink()
        elif op == "restore":  # from the trash, as it was (or a new file, when none was deleted)
            if self.deleted:
                path, data = self.deleted.pop(rng.randrange(len(self.deleted)))
                if not path.exists():
                    self.write(path, data)
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
            if counts[PENDING] == counts[UPLOADING] == 0:
                # Two quiet passes: a file missed at one (mapped by an upload that finished after the
                # file went) is deleted at the next.
                passes = [self.client.producer.scan() for _ in range(2)]
                if all(p.queued == p.deleting == 0 for p in passes):
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
            latest = queue.latest(rel, action=UPLOAD)
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
        if not self.delete:
            assert queue.counts(action=DELETE) == dict.fromkeys(counts, 0)
        elif self.client.producer.held is None:
            # Every deleted file was dealt with, and the image of each one deleted is gone (one
            # changed since, or shared with another file here, is kept: nothing else is lost).
            assert all(rel in files for rel in synced), f"seed {self.seed}: a deleted file is still synced"
            for row in queue.uploads(states=(DONE,), limit=100_000):
                if row.action == DELETE and row.outcome in (DELETED, GONE) and row.image_id is not None:
                    assert store.get_image(row.image_id) is None, f"seed {self.seed}: {row.path}'s image is left"


@pytest.fixture
def simulation(tmp_path: Path) -> Iterator[Callable[..., Simulation]]:
    made: list[Simulation] = []

    def make(seed: int, *, delete: bool = False) -> Simulation:
        sim = Simulation(seed, tmp_path / f"seed-{seed}-{len(made)}", delete)
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


@pytest.mark.parametrize("seed", range(SIM_DELETE_SEEDS))
def test_simulated_storm_with_deletions_deletes_exactly_what_was_deleted(seed: int, simulation) -> None:
    sim = simulation(1000 + seed, delete=True)
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


# -- deletions, one at a time ---------------------------------------------------------------


def drain(sim: Simulation) -> None:
    """Run the uploader until nothing is left, moving the clock on to each row's time."""
    for _ in range(100):
        while sim.client.uploader.run_one():
            pass
        due = sim.client.queue.next_due()
        if due is None:
            return
        sim.clock.now = max(sim.clock.now, due, sim.client.uploader.offline_until) + 0.001
    raise AssertionError(f"not drained: {sim.client.queue.counts()}")


def synced(sim: Simulation, *names: str, pool: int = 0) -> dict[str, str]:
    """The files `names` written (distinct bytes), scanned and uploaded; their image ids by name."""
    for n, name in enumerate(names):
        sim.write(sim.folder / name, POOL[pool + n])
    sim.client.producer.scan()
    drain(sim)
    mapped = sim.client.queue.synced()
    return {name: mapped[name].image_id for name in names}


def deleted_changes(sim: Simulation, image_id: str) -> int:
    changes = sim.server.store.changes(PROJECT, limit=10_000)
    return sum(1 for c in changes if c.kind == "image.deleted" and c.data["image_id"] == image_id)


def the_deletion(sim: Simulation, path: str) -> tuple[str, str | None, str | None, int]:
    [row] = [u for u in sim.client.queue.uploads() if u.action == DELETE and u.path == path]
    return row.state, row.outcome, row.last_error, row.attempts


def missed_twice(sim: Simulation) -> int:
    """Two passes over the folder: a synced file missing at both is queued for deletion."""
    sim.client.producer.scan()
    return sim.client.producer.scan().deleting


def die_in_the_deletion(sim: Simulation, *, after_commit: bool) -> None:
    """The client dies with its deletion request out: before it reached the server, or after."""
    sent = sim.network.delete

    def delete_then_die(image_id: str, *, if_sha256: str) -> str:
        if after_commit:
            sent(image_id, if_sha256=if_sha256)
        raise SimCrash

    sim.network.delete = delete_then_die  # type: ignore[method-assign]
    try:
        sim.alive(sim.client.uploader.run_one)
    finally:
        sim.network.delete = sent  # type: ignore[method-assign]
    assert sim.crashes == 1


@pytest.mark.parametrize("after_commit", [False, True], ids=["before the request", "after the answer"])
def test_a_deletion_cut_by_a_crash_is_done_once_after_the_restart(simulation, after_commit: bool) -> None:
    sim = simulation(1, delete=True)
    ids = synced(sim, "a.jpg", "b.jpg")
    (sim.folder / "a.jpg").unlink()
    assert sim.client.producer.scan().deleting == 0  # missing once: maybe a move not noted yet
    assert sim.client.producer.scan().deleting == 1

    die_in_the_deletion(sim, after_commit=after_commit)
    assert the_deletion(sim, "a.jpg")[::3] == (PENDING, 1)  # recovered by the new life
    drain(sim)

    assert the_deletion(sim, "a.jpg") == (DONE, GONE if after_commit else DELETED, None, 2)
    assert sim.server.store.get_image(ids["a.jpg"]) is None and deleted_changes(sim, ids["a.jpg"]) == 1
    assert sim.server.store.get_image(ids["b.jpg"]) is not None
    assert set(sim.client.queue.synced()) == {"b.jpg"}


def test_a_deletion_waits_out_an_outage(simulation) -> None:
    sim = simulation(2, delete=True)
    ids = synced(sim, "a.jpg", "b.jpg")
    (sim.folder / "a.jpg").unlink()
    missed_twice(sim)
    sim.network.mode = "down"

    assert sim.client.uploader.run_one()
    assert sim.client.uploader.offline_reason and the_deletion(sim, "a.jpg")[0] == PENDING
    sim.network.mode = "up"
    drain(sim)

    assert the_deletion(sim, "a.jpg")[:2] == (DONE, DELETED)
    assert sim.server.store.get_image(ids["a.jpg"]) is None


def test_an_image_changed_on_another_device_since_is_not_deleted(simulation) -> None:
    sim = simulation(3, delete=True)
    ids = synced(sim, "a.jpg", "b.jpg")
    edit = POOL[10]
    other = Device("other-device", "Laptop")
    sim.server.ingestor.ingest(edit, PROJECT, replaces=ids["a.jpg"], base_sha256=sha(POOL[0]), device=other)
    (sim.folder / "a.jpg").unlink()
    missed_twice(sim)
    drain(sim)

    assert the_deletion(sim, "a.jpg")[:3] == (DONE, CHANGED, "changed on the server since; not deleted")
    image = sim.server.store.get_image(ids["a.jpg"])
    assert image is not None and (image.sha256, image.version) == (sha(edit), 2)
    assert "a.jpg" not in sim.client.queue.synced()


def test_a_copy_left_in_the_folder_keeps_the_image(simulation) -> None:
    sim = simulation(4, delete=True)
    sim.write(sim.folder / "a.jpg", POOL[0])
    sim.write(sim.folder / "copy of a.jpg", POOL[0])  # one image for both
    ids = synced(sim, "b.jpg", pool=1)
    image_id = sim.client.queue.synced()["a.jpg"].image_id
    (sim.folder / "a.jpg").unlink()
    missed_twice(sim)
    drain(sim)

    assert the_deletion(sim, "a.jpg")[:2] == (DONE, "kept")
    assert sim.server.store.get_image(image_id) is not None
    (sim.folder / "copy of a.jpg").unlink()
    missed_twice(sim)
    drain(sim)
    assert the_deletion(sim, "copy of a.jpg")[:2] == (DONE, DELETED)
    assert sim.server.store.get_image(image_id) is None and sim.server.store.get_image(ids["b.jpg"]) is not None


@pytest.mark.parametrize("after_commit", [False, True], ids=["never arrived", "arrived"])
def test_a_file_back_after_its_deletion_was_maybe_sent_is_on_the_server(simulation, after_commit: bool) -> None:
    sim = simulation(5, delete=True)
    ids = synced(sim, "a.jpg", "b.jpg")
    (sim.folder / "a.jpg").unlink()
    missed_twice(sim)
    die_in_the_deletion(sim, after_commit=after_commit)
    sim.write(sim.folder / "a.jpg", POOL[0])  # restored from the trash meanwhile
    assert sim.client.producer.scan().queued == 0  # known as it was: the deletion settles what it is
    drain(sim)

    state, outcome, reason, _ = the_deletion(sim, "a.jpg")
    image = sim.server.store.find_by_sha(PROJECT, sha(POOL[0]))
    assert image is not None  # either way, the file is on the server, and mapped to its image
    assert sim.client.queue.synced()["a.jpg"].image_id == image.id
    if after_commit:
        assert (state, outcome, reason) == (DONE, GONE, "back, but its image is gone from the server")
        assert image.id != ids["a.jpg"]  # sent again, as a new image
    else:
        assert (state, reason, image.id) == (SKIPPED, "back before it was deleted", ids["a.jpg"])
