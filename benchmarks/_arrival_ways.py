"""The ways a file reaches the hot folder, for `arrival.py`; run as a script, the watcher's own wait.

    PYTHONPATH=TREE python benchmarks/_arrival_ways.py --hot DIR --work DIR --count N --ways cp ln ...

As a script (a child of `arrival.py`) it runs `TREE`'s `HotFolderWatcher` with an ingest that only notes
the time it is called, and prints one JSON line: per way, ms from the file being complete to that call.
No decoding, no store: what is left is the watcher's wait alone, which a loaded machine hardly moves. It
imports nothing of this repository at module level (no `_common`, which puts this tree first on the path),
so that `dashboard` comes from `TREE`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SLOW_PIECES = 10
SLOW_GAP_S = 0.1  # the slow writer: ten pieces 0.1 s apart, the file open all along


@dataclass(frozen=True)
class Way:
    key: str
    label: str
    event: str  # what watchdog reports (inotify, Linux)


WAYS = (
    Way("cp", "`cp` (written in place, close-write)", "created, modified, closed"),
    Way("rsync", "`rsync` (temp name in the folder, then a rename)", "moved from a hidden name"),
    Way("mv-in-tree", "`mv` from a hidden folder inside the hot folder", "moved"),
    Way("mv-same-disk", "`mv` from a folder outside the hot folder, same disk (rename in)", "created only"),
    Way("mv-other-fs", "`mv` from another filesystem (tmpfs: copy, then delete)", "created, modified, closed"),
    Way("ln", "hard link (`ln`), as some importers do", "created only"),
    Way("slow", f"slow writer: {SLOW_PIECES} pieces {SLOW_GAP_S * 1000:.0f} ms apart, open all along", "created, "
        "modified…, closed"),
)  # fmt: skip


@dataclass
class Places:
    hot: Path
    inside: Path  # hidden, inside the hot folder: ignored until renamed out of it
    outside: Path  # same disk, not watched
    other_fs: Path | None  # another filesystem (/dev/shm), or None


@contextmanager
def places_for(hot: Path, work: Path) -> Iterator[Places]:
    """The folders files come from: a hidden one in `hot`, one in `work`, and /dev/shm if another filesystem."""
    places = Places(hot, hot / ".incoming", work / "outside", None)
    places.inside.mkdir(exist_ok=True)
    places.outside.mkdir(exist_ok=True)
    shm = Path("/dev/shm")
    if shm.is_dir() and os.stat(shm).st_dev != os.stat(work).st_dev:
        places.other_fs = Path(tempfile.mkdtemp(prefix="fotoflo-arrival-", dir=shm))
    try:
        yield places
    finally:
        if places.other_fs is not None:
            for leftover in places.other_fs.iterdir():
                leftover.unlink()
            places.other_fs.rmdir()


def put(way: str, data: bytes, name: str, places: Places) -> float:
    """Bring `data` into the hot folder as `name` the way `way` does; the perf_counter when it is complete."""
    dest = places.hot / name
    if way == "slow":
        piece = len(data) // SLOW_PIECES + 1
        with open(dest, "wb") as fh:
            for start in range(0, len(data), piece):
                fh.write(data[start : start + piece])
                fh.flush()
                time.sleep(SLOW_GAP_S)
        return time.perf_counter()
    source_dir = {"mv-in-tree": places.inside, "mv-other-fs": places.other_fs}.get(way, places.outside)
    assert source_dir is not None
    source = source_dir / name
    source.write_bytes(data)
    command = {
        "cp": ["cp", str(source), str(dest)],
        "rsync": ["rsync", str(source), str(dest)],
        "ln": ["ln", str(source), str(dest)],
    }.get(way, ["mv", str(source), str(dest)])
    subprocess.run(command, check=True)
    return time.perf_counter()


def watcher_wait(hot: Path, work: Path, sample: Path, ways: list[str], count: int) -> dict[str, list[float]]:
    """Per way, ms from complete to the watcher's ingest call, `count` files one at a time."""
    from dashboard.watcher import HotFolderWatcher

    called: dict[str, float] = {}
    cond = threading.Condition()

    def ingest(path: Path) -> None:
        with cond:
            called.setdefault(path.name, time.perf_counter())
            cond.notify_all()

    data = sample.read_bytes()
    result: dict[str, list[float]] = {}
    watcher = HotFolderWatcher(hot, ingest, rescan_s=3600)
    watcher.start()
    try:
        with places_for(hot, work) as places:
            for way in ways:
                if way == "mv-other-fs" and places.other_fs is None:
                    continue
                for n in range(count):
                    name = f"{way}-{n:03d}.jpg"
                    complete = put(way, data, name, places)
                    with cond:
                        if not cond.wait_for(lambda name=name: name in called, timeout=30):
                            raise RuntimeError(f"{name} was not handed to ingest within 30 s")
                    result.setdefault(way, []).append((called[name] - complete) * 1000)
                    time.sleep(0.05)
    finally:
        watcher.stop()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hot", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--sample", type=Path, required=True, help="the file to bring in each time")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--ways", nargs="*", default=[w.key for w in WAYS])
    args = parser.parse_args()
    print(json.dumps(watcher_wait(args.hot, args.work, args.sample, args.ways, args.count)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
