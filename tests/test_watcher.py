"""The hot folder on a real directory with real watchdog events: complete files only, each exactly once."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
from PIL import Image

from dashboard import pairs
from dashboard.events import IMAGE_UPDATED, PAIRED_JPEG, PAIRED_RAW, ImageRecord
from dashboard.imaging.analysis import sha256_of
from dashboard.ingest import IngestResult
from dashboard.samples import photo_jpeg, raw_dng
from dashboard.watcher import HotFolderWatcher, is_ignored, nobody_writing
from tests.support.embedded import Embedded
from tests.support.images import jpeg_bytes
from tests.support.waiting import wait_until

PROJECT = "default"
SENTINEL_PREFIX = "zz-sentinel-"


@cache
def photo_12mp() -> bytes:
    """A 4000x3000 JPEG of about 3 MB: big enough that a slow writer leaves it half-written for a while."""
    rng = random.Random(12)
    small = Image.frombytes("RGB", (400, 300), rng.randbytes(400 * 300 * 3))
    out = io.BytesIO()
    small.resize((4000, 3000), Image.Resampling.BILINEAR).save(out, "JPEG", quality=90)
    return out.getvalue()


def unique_jpeg(n: int, size: tuple[int, int] = (64, 48)) -> bytes:
    return jpeg_bytes(size, seed=n, model=f"watcher-test-{n}")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class HotFolder:
    """A watched folder, a folder beside it (same filesystem, unwatched), and what got ingested."""

    root: Path
    outside: Path
    embedded: Embedded
    calls: list[Path] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sentinels: int = 0

    def ingest(self, path: Path) -> IngestResult:
        with self._lock:
            self.calls.append(path)
        return self.embedded.ingestor.ingest(path, PROJECT, folder=pairs.folder_of(path, self.root))

    def calls_for(self, name: str) -> int:
        with self._lock:
            return sum(p.name == name for p in self.calls)

    def images(self) -> list[ImageRecord]:
        """Stored images, oldest first, without the sentinels of `barrier`."""
        images = self.embedded.store.list_images(PROJECT, limit=500)
        return [i for i in reversed(images) if not i.filename.startswith(SENTINEL_PREFIX)]

    def named(self, name: str) -> list[ImageRecord]:
        return [i for i in self.images() if i.filename == name]

    def write_outside(self, name: str, data: bytes) -> Path:
        path = self.outside / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def barrier(self, timeout_s: float = 15) -> None:
        """Wait until everything the watcher noticed so far has been ingested or dropped.

        Writes a sentinel and holds it open until it is stored: that is the slowest way in (a
        writer at work and no close-write, so the full settle time after the short check), and
        with one ingest worker the pool runs in submission order, so once the sentinel is stored
        every earlier file's ingest has finished. The sentinel is then deleted, so that later
        scans have nothing of it to find.
        """
        self._sentinels += 1
        name = f"{SENTINEL_PREFIX}{self._sentinels}.jpg"

        def stored() -> bool:
            return any(i.filename == name for i in self.embedded.store.list_images(PROJECT, limit=500))

        with open(self.root / name, "wb") as fh:
            fh.write(unique_jpeg(100_000 + self._sentinels))
            fh.flush()
            wait_until(stored, timeout_s=timeout_s)
        (self.root / name).unlink()


@pytest.fixture
def hot(tmp_path: Path, embedded: Embedded) -> HotFolder:
    root, outside = tmp_path / "hot", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    return HotFolder(root.resolve(), outside.resolve(), embedded)


WatcherFactory = Callable[..., HotFolderWatcher]


@pytest.fixture
def watch(hot: HotFolder) -> Iterator[WatcherFactory]:
    """Start watchers on the hot folder (one ingest worker unless told); all are stopped afterwards."""
    watchers: list[HotFolderWatcher] = []

    def start(*, begin: bool = True, workers: int = 1, **kwargs: float) -> HotFolderWatcher:
        watcher = HotFolderWatcher(hot.root, hot.ingest, workers=workers, **kwargs)
        watchers.append(watcher)
        if begin:
            watcher.start()
        return watcher

    yield start
    for watcher in watchers:
        watcher.stop()


def refusals(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "fotoflo.ingest" and r.levelno >= logging.WARNING and name in r.message
    ]


# -- writers that take their time -----------------------------------------------------------


def test_slow_single_open_write_is_ingested_once_and_complete(
    hot: HotFolder, watch: WatcherFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fotoflo")
    watch(settle_s=0.5)
    data = photo_12mp()
    assert len(data) > 1_000_000
    chunk = len(data) // 10 + 1
    with open(hot.root / "slow.jpg", "wb") as fh:
        for start in range(0, len(data), chunk):
            fh.write(data[start : start + chunk])
            fh.flush()
            time.sleep(0.1)
    wait_until(lambda: hot.named("slow.jpg"), timeout_s=15)
    hot.barrier()
    [image] = hot.named("slow.jpg")
    assert image.sha256 == sha(data) and image.size_bytes == len(data)
    assert (image.width, image.height) == (4000, 3000)
    assert hot.calls_for("slow.jpg") == 1
    assert refusals(caplog, "slow.jpg") == []


@pytest.mark.parametrize("gap_s", [0.15, 0.8], ids=["gaps-shorter-than-settle", "gaps-longer-than-settle"])
def test_write_in_open_append_close_rounds_ends_with_the_full_file(
    hot: HotFolder, watch: WatcherFactory, gap_s: float
) -> None:
    """Each close looks like a finished file; the truncated ones must never be stored."""
    watch(settle_s=0.4)
    data = photo_12mp()
    rounds = 5
    chunk = len(data) // rounds + 1
    for start in range(0, len(data), chunk):
        with open(hot.root / "rounds.jpg", "ab") as fh:
            fh.write(data[start : start + chunk])
        time.sleep(gap_s)
    wait_until(lambda: any(i.sha256 == sha(data) for i in hot.images()), timeout_s=15)
    hot.barrier()
    assert [(i.filename, i.sha256) for i in hot.images()] == [("rounds.jpg", sha(data))]


def test_renamed_in_after_writing_under_a_temp_name(
    hot: HotFolder, watch: WatcherFactory, caplog: pytest.LogCaptureFixture
) -> None:
    watch(settle_s=0.3)
    data = unique_jpeg(1, (800, 600))
    with open(hot.root / "x.jpg.part", "wb") as fh:
        for start in range(0, len(data), 1000):
            fh.write(data[start : start + 1000])
            fh.flush()
    os.rename(hot.root / "x.jpg.part", hot.root / "x.jpg")
    wait_until(lambda: hot.named("x.jpg"), timeout_s=10)
    hot.barrier()
    assert [(i.filename, i.sha256) for i in hot.images()] == [("x.jpg", sha(data))]
    assert hot.calls_for("x.jpg") == 1 and hot.calls_for("x.jpg.part") == 0
    assert refusals(caplog, "x.jpg") == []


def test_moved_in_from_outside(hot: HotFolder, watch: WatcherFactory) -> None:
    watch(settle_s=0.3)
    data = unique_jpeg(2)
    os.rename(hot.write_outside("y.jpg", data), hot.root / "y.jpg")
    # A whole folder moved in at once, too.
    folder = hot.outside / "shoot"
    hot.write_outside("shoot/a.jpg", unique_jpeg(3))
    hot.write_outside("shoot/deeper/b.jpg", unique_jpeg(4))
    os.rename(folder, hot.root / "shoot")
    wait_until(lambda: len(hot.images()) == 3, timeout_s=10)
    hot.barrier()
    assert sorted(i.filename for i in hot.images()) == ["a.jpg", "b.jpg", "y.jpg"]
    assert hot.named("y.jpg")[0].sha256 == sha(data)
    assert [hot.calls_for(n) for n in ("y.jpg", "a.jpg", "b.jpg")] == [1, 1, 1]


# -- complete on arrival: no settle wait ----------------------------------------------------------

SETTLE_LONG_S = 30.0  # longer than any wait below: only the fast path can ingest in time


def test_moved_in_from_outside_is_ingested_without_the_settle_wait(hot: HotFolder, watch: WatcherFactory) -> None:
    watch(settle_s=SETTLE_LONG_S)
    data = unique_jpeg(20, (800, 600))
    source = hot.write_outside("moved.jpg", data)
    os.rename(source, hot.root / "moved.jpg")  # watchdog reports it as created, with no close-write
    wait_until(lambda: hot.named("moved.jpg"), timeout_s=5)
    assert [(i.filename, i.sha256) for i in hot.images()] == [("moved.jpg", sha(data))]
    assert hot.calls_for("moved.jpg") == 1


def test_moved_in_from_a_hidden_folder_of_the_tree_is_ingested_at_once(hot: HotFolder, watch: WatcherFactory) -> None:
    data = unique_jpeg(21, (800, 600))
    (hot.root / ".incoming").mkdir()  # watched from the start, so that the rename is one moved event
    (hot.root / ".incoming" / "aside.jpg").write_bytes(data)
    watch(settle_s=SETTLE_LONG_S)
    os.rename(hot.root / ".incoming" / "aside.jpg", hot.root / "aside.jpg")
    wait_until(lambda: hot.named("aside.jpg"), timeout_s=5)
    assert [(i.filename, i.sha256) for i in hot.images()] == [("aside.jpg", sha(data))]
    assert hot.calls_for("aside.jpg") == 1


def test_hard_link_is_ingested_without_the_settle_wait(hot: HotFolder, watch: WatcherFactory) -> None:
    watch(settle_s=SETTLE_LONG_S)
    data = unique_jpeg(22, (800, 600))
    os.link(hot.write_outside("linked.jpg", data), hot.root / "linked.jpg")  # one created event, nothing else
    wait_until(lambda: hot.named("linked.jpg"), timeout_s=5)
    assert [(i.filename, i.sha256) for i in hot.images()] == [("linked.jpg", sha(data))]
    assert hot.calls_for("linked.jpg") == 1


def test_file_held_open_for_writing_is_not_read_until_closed(hot: HotFolder, watch: WatcherFactory) -> None:
    """All its bytes are there and unchanged, but its writer still holds it: not complete yet."""
    watch(settle_s=SETTLE_LONG_S)
    data = unique_jpeg(23, (800, 600))
    with open(hot.root / "held.jpg", "wb") as fh:
        fh.write(data)
        fh.flush()
        time.sleep(0.5)  # fifty short checks' worth: none of them may take it
        assert hot.calls_for("held.jpg") == 0
    wait_until(lambda: hot.named("held.jpg"), timeout_s=5)  # the close-write, not the settle time
    assert [(i.filename, i.sha256) for i in hot.images()] == [("held.jpg", sha(data))]
    assert hot.calls_for("held.jpg") == 1


def test_nobody_writing_asks_the_kernel(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(unique_jpeg(24))
    assert nobody_writing(path) is True
    with open(path, "ab"):
        assert nobody_writing(path) is False
    with open(path, "rb"):
        assert nobody_writing(path) is True  # readers do not count
    (tmp_path / "link.jpg").symlink_to(path)
    assert nobody_writing(tmp_path / "link.jpg") is None  # not followed: the watcher waits the settle time
    assert nobody_writing(tmp_path / "gone.jpg") is None


@pytest.mark.parametrize("workers", [2, 4])
@pytest.mark.parametrize("source", ["outside", "hidden-folder"])
def test_burst_of_renames_is_published_in_arrival_order(
    hot: HotFolder, watch: WatcherFactory, workers: int, source: str
) -> None:
    """Twenty frames renamed in at once, big and small mixed: parallel ingests, yet the feed keeps their order."""
    published: list[int] = []
    hot.embedded.bus.subscribe(lambda project, seq: published.append(seq))
    watch(settle_s=0.3, workers=workers)
    folder = hot.outside if source == "outside" else hot.root / ".incoming"
    folder.mkdir(exist_ok=True)
    # Names that do not sort in arrival order, and sizes whose decodes take from 1 to 50 ms.
    names = [f"{(n * 7) % 20:02d}-frame.jpg" for n in range(20)]
    for n, name in enumerate(names):
        (folder / name).write_bytes(unique_jpeg(200 + n, (2400, 1600) if n % 3 == 0 else (64, 48)))
    for name in names:
        os.rename(folder / name, hot.root / name)
    wait_until(lambda: len(hot.images()) == 20, timeout_s=30)
    feed = [c.image.filename for c in hot.embedded.store.changes(PROJECT) if c.image is not None]
    assert feed == names
    assert published == sorted(published) and len(published) == 20  # the bus is woken in that order too


def test_replaced_file_is_ingested_again(hot: HotFolder, watch: WatcherFactory) -> None:
    watch(settle_s=0.3)
    first, second = unique_jpeg(5), unique_jpeg(6)
    (hot.root / "same-name.jpg").write_bytes(first)
    wait_until(lambda: hot.named("same-name.jpg"), timeout_s=10)
    (hot.root / "same-name.jpg").write_bytes(second)
    wait_until(lambda: len(hot.named("same-name.jpg")) == 2, timeout_s=10)
    assert [i.sha256 for i in hot.named("same-name.jpg")] == [sha(first), sha(second)]


# -- scans ----------------------------------------------------------------------------------


def test_files_present_before_start_are_ingested_by_the_start_scan(hot: HotFolder, watch: WatcherFactory) -> None:
    expected = {"before-1.jpg": unique_jpeg(1), "before-2.jpg": unique_jpeg(2), "nested/deep/before-3.jpg": None}
    expected["nested/deep/before-3.jpg"] = unique_jpeg(3)
    for rel, data in expected.items():
        (hot.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (hot.root / rel).write_bytes(data)
    for ignored in (".hidden.jpg", ".cache/in-hidden-folder.jpg", "half.jpg.part"):
        (hot.root / ignored).parent.mkdir(parents=True, exist_ok=True)
        (hot.root / ignored).write_bytes(unique_jpeg(len(ignored)))
    watcher = watch(settle_s=0.3)
    wait_until(lambda: len(hot.images()) == 3, timeout_s=10)
    hot.barrier()
    assert {i.filename: i.sha256 for i in hot.images()} == {Path(r).name: sha(d) for r, d in expected.items()}
    assert len(hot.calls) == 4  # three files and the sentinel, once each
    assert watcher.scan() == 0  # nothing left that is not ingested as it is now


def test_periodic_rescan_catches_a_change_no_event_reported(hot: HotFolder, watch: WatcherFactory) -> None:
    """Writes through another path to the same file (as on NFS/SMB shares) raise no event here."""
    watch(settle_s=0.3, rescan_s=0.3)
    before, after = unique_jpeg(7), unique_jpeg(8, (96, 64))
    (hot.root / "frame.jpg").write_bytes(before)
    wait_until(lambda: hot.named("frame.jpg"), timeout_s=10)
    alias = hot.outside / "alias.jpg"
    os.link(hot.root / "frame.jpg", alias)
    with open(alias, "r+b") as fh:
        fh.truncate(0)
        fh.write(after)
    assert (hot.root / "frame.jpg").read_bytes() == after
    wait_until(lambda: len(hot.named("frame.jpg")) == 2, timeout_s=10)
    assert [i.sha256 for i in hot.named("frame.jpg")] == [sha(before), sha(after)]


def test_explicit_scan_queues_exactly_the_unseen_change(hot: HotFolder, watch: WatcherFactory) -> None:
    watcher = watch(settle_s=0.3, rescan_s=3600)
    (hot.root / "kept.jpg").write_bytes(unique_jpeg(9))
    (hot.root / "frame.jpg").write_bytes(unique_jpeg(10))
    wait_until(lambda: len(hot.images()) == 2, timeout_s=10)
    hot.barrier()
    assert watcher.scan() == 0
    alias = hot.outside / "alias.jpg"
    os.link(hot.root / "frame.jpg", alias)
    changed = unique_jpeg(11, (96, 64))
    alias.write_bytes(changed)  # truncates and rewrites the same inode
    assert watcher.scan() == 1
    wait_until(lambda: len(hot.named("frame.jpg")) == 2, timeout_s=10)
    assert hot.named("frame.jpg")[-1].sha256 == sha(changed)


# -- many files, odd files ------------------------------------------------------------------


def test_burst_of_fifty_copies_gives_fifty_images(hot: HotFolder, watch: WatcherFactory) -> None:
    watcher = watch(settle_s=0.5, workers=4)
    sources = [hot.write_outside(f"burst-{n:02d}.jpg", unique_jpeg(n, (320, 240))) for n in range(50)]
    for source in sources:
        shutil.copyfile(source, hot.root / source.name)
    wait_until(lambda: len(hot.images()) >= 50, timeout_s=30)
    names = [i.filename for i in hot.images()]
    assert sorted(names) == sorted(s.name for s in sources)  # each exactly once
    assert {i.sha256 for i in hot.images()} == {sha(s.read_bytes()) for s in sources}
    wait_until(lambda: watcher.scan() == 0, timeout_s=10)
    assert len(hot.images()) == 50


IGNORED_NAMES = [
    ".dotfile.jpg",
    ".hidden-dir/photo.jpg",
    "nested/.also-hidden/photo.jpg",
    "download.jpg.part",
    "download.jpg.partial",
    "edit.jpg.tmp",
    "chrome.jpg.crdownload",
    "firefox.jpg.download",
    "winscp.jpg.filepart",
    "backup.jpg~",
    "~$office.jpg",
    ".~lock.jpg",
]


@pytest.mark.parametrize("name", IGNORED_NAMES)
def test_is_ignored(name: str, tmp_path: Path) -> None:
    assert is_ignored(tmp_path / name, tmp_path)
    assert not is_ignored(tmp_path / "nested" / "photo.jpg", tmp_path)
    assert is_ignored(tmp_path.parent / "elsewhere.jpg", tmp_path)  # not under the root at all


def test_hidden_and_temp_files_are_never_ingested(hot: HotFolder, watch: WatcherFactory) -> None:
    watcher = watch(settle_s=0.3)
    for n, name in enumerate(IGNORED_NAMES):
        (hot.root / name).parent.mkdir(parents=True, exist_ok=True)
        (hot.root / name).write_bytes(unique_jpeg(n))
    # Renamed between ignored names, too: still ignored.
    (hot.root / "a.jpg.tmp").write_bytes(unique_jpeg(99))
    os.rename(hot.root / "a.jpg.tmp", hot.root / "a.jpg.part")
    hot.barrier()
    assert hot.images() == []
    assert [p for p in hot.calls if not p.name.startswith(SENTINEL_PREFIX)] == []
    assert watcher.scan() == 0


def test_non_image_is_refused_with_a_reason_and_the_watcher_goes_on(
    hot: HotFolder, watch: WatcherFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fotoflo")
    watcher = watch(settle_s=0.3)
    (hot.root / "notes.txt").write_text("shot list: 1. bride 2. cake\n")
    wait_until(lambda: refusals(caplog, "notes.txt"), timeout_s=10)
    [record] = refusals(caplog, "notes.txt")
    assert "not an image" in record.getMessage()
    (hot.root / "after.jpg").write_bytes(unique_jpeg(1))
    wait_until(lambda: hot.named("after.jpg"), timeout_s=10)
    hot.barrier()
    # Refused once and left alone while unchanged, by events and by scans alike.
    assert hot.calls_for("notes.txt") == 1
    assert watcher.scan() == 0
    assert [i.filename for i in hot.images()] == ["after.jpg"]
    # Changed, it is looked at again.
    with open(hot.root / "notes.txt", "a") as fh:
        fh.write("3. first dance\n")
    wait_until(lambda: hot.calls_for("notes.txt") == 2, timeout_s=10)


def test_subfolders_created_after_start(hot: HotFolder, watch: WatcherFactory) -> None:
    watch(settle_s=0.3)
    (hot.root / "session-1").mkdir()
    (hot.root / "session-1" / "a.jpg").write_bytes(unique_jpeg(1))
    # A tree made and filled at once, before the watch on its folders can exist.
    deep = hot.root / "session-2" / "card" / "DCIM"
    deep.mkdir(parents=True)
    for n in range(3):
        (deep / f"IMG_{n}.jpg").write_bytes(unique_jpeg(10 + n))
    wait_until(lambda: len(hot.images()) == 4, timeout_s=10)
    hot.barrier()
    assert sorted(i.filename for i in hot.images()) == ["IMG_0.jpg", "IMG_1.jpg", "IMG_2.jpg", "a.jpg"]
    assert all(hot.calls_for(n) == 1 for n in ("IMG_0.jpg", "IMG_1.jpg", "IMG_2.jpg", "a.jpg"))


# -- what the hot folder must not let in ------------------------------------------------------


def test_symlink_to_a_file_outside_is_not_ingested_and_logged_once(
    hot: HotFolder, watch: WatcherFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fotoflo")
    secret = hot.write_outside("private/ssh-key.jpg", unique_jpeg(1))
    inside = hot.root / "kept" / "real.jpg"
    inside.parent.mkdir()
    inside.write_bytes(unique_jpeg(2))
    watcher = watch(settle_s=0.3)
    (hot.root / "leak.jpg").symlink_to(secret)
    (hot.root / "alias.jpg").symlink_to(inside)  # a link that stays inside the folder is fine
    wait_until(lambda: hot.calls_for("alias.jpg") == 1, timeout_s=10)
    hot.barrier()
    warnings = [r.getMessage() for r in caplog.records if "outside the hot folder" in r.getMessage()]
    assert warnings == [f"not ingesting {hot.root / 'leak.jpg'}: it is a symlink to {secret}, outside the hot folder"]
    assert hot.calls_for("leak.jpg") == 0
    assert [i.filename for i in hot.images()] == ["real.jpg"]  # the alias has the same bytes: a duplicate
    # Rescans see it again and again: still not ingested, and not logged again.
    watcher.scan()
    hot.barrier()
    assert hot.calls_for("leak.jpg") == 0
    assert len([r for r in caplog.records if "outside the hot folder" in r.getMessage()]) == 1


def test_names_with_a_newline_or_direction_override_are_cleaned_and_logged_on_one_line(
    hot: HotFolder, watch: WatcherFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fotoflo")
    watch(settle_s=0.3)
    (hot.root / "IMG_1.jpg\nINFO fotoflo.auth: owner signed in").write_bytes(unique_jpeg(1))
    (hot.root / "IMG_2\u202egpj.exe").write_bytes(unique_jpeg(2))
    (hot.root / "notes\n.txt").write_text("not an image")
    wait_until(lambda: len(hot.images()) == 2, timeout_s=10)
    wait_until(lambda: any("notes" in r.getMessage() and "refused" in r.getMessage() for r in caplog.records))
    hot.barrier()
    assert sorted(i.filename for i in hot.images()) == ["IMG_1.jpg INFO fotoflo.auth: owner signed in", "IMG_2gpj.exe"]
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("fotoflo")]
    assert messages and not [m for m in messages if "\n" in m or "\u202e" in m], messages


# -- RAW + JPEG pairs (dashboard/pairs.py) ------------------------------------------------------------------

TAKEN = "2026:11:20 14:03:09"


@cache
def capture() -> tuple[bytes, bytes]:
    """One capture as a camera writes it: its RAW (a DNG) and its JPEG, with one EXIF capture time."""
    return raw_dng(1200, 800, seed=11, captured=TAKEN), photo_jpeg(11, (1200, 800), captured=TAKEN)


def test_jpeg_then_raw_in_the_hot_folder_make_one_image_with_two_files(hot: HotFolder, watch: WatcherFactory) -> None:
    raw, jpeg = capture()
    watch(settle_s=0.3)
    (hot.root / "shoot").mkdir()
    (hot.root / "shoot" / "IMG_0001.JPG").write_bytes(jpeg)
    wait_until(lambda: len(hot.images()) == 1)
    (first,) = hot.images()
    (hot.root / "shoot" / "IMG_0001.CR3").write_bytes(raw)  # the name says CR3; the bytes decide (a DNG)
    hot.barrier()

    (image,) = hot.images()
    assert (image.id, image.format, image.sha256) == (first.id, "JPEG", sha256_of(jpeg))
    assert (image.raw_filename, image.raw_sha256) == ("IMG_0001.CR3", sha256_of(raw))
    kinds = [(c.kind, c.data) for c in hot.embedded.store.changes(PROJECT) if c.image and c.image.id == image.id]
    assert kinds[-1] == (IMAGE_UPDATED, PAIRED_RAW)


def test_raw_then_jpeg_in_the_hot_folder_keep_the_image_and_show_the_jpeg(
    hot: HotFolder, watch: WatcherFactory
) -> None:
    raw, jpeg = capture()
    watch(settle_s=0.3)
    (hot.root / "IMG_0001.DNG").write_bytes(raw)
    wait_until(lambda: len(hot.images()) == 1)
    (first,) = hot.images()
    assert (first.format, first.raw_sha256) == ("DNG", None)  # shown at once, from its embedded preview
    hot.embedded.store.set_rating(PROJECT, first.id, rating=5)
    (hot.root / "img_0001.jpg").write_bytes(jpeg)
    hot.barrier()

    (image,) = hot.images()
    assert (image.id, image.rating, image.format, image.filename) == (first.id, 5, "JPEG", "img_0001.jpg")
    assert (image.raw_filename, image.raw_sha256) == ("IMG_0001.DNG", sha256_of(raw))
    assert hot.embedded.store.changes(PROJECT)[-2].data == PAIRED_JPEG  # the last is the barrier's sentinel


def test_raw_whose_jpeg_never_comes_stays_a_raw_image(hot: HotFolder, watch: WatcherFactory) -> None:
    raw, jpeg = capture()
    watch(settle_s=0.3)
    (hot.root / "a").mkdir()
    (hot.root / "b").mkdir()
    (hot.root / "a" / "IMG_0001.DNG").write_bytes(raw)
    (hot.root / "b" / "IMG_0001.JPG").write_bytes(jpeg)  # same stem, another folder: not its JPEG
    (hot.root / "a" / "IMG_0002.JPG").write_bytes(photo_jpeg(12, (400, 300), captured=TAKEN))  # another stem
    hot.barrier()

    by_name = {i.filename: i for i in hot.images()}
    assert sorted(by_name) == ["IMG_0001.DNG", "IMG_0001.JPG", "IMG_0002.JPG"]
    assert by_name["IMG_0001.DNG"].format == "DNG"
    assert all(i.raw_sha256 is None for i in by_name.values())
