"""Arrival benchmark: each way a file reaches the hot folder → its `image.created` on the SSE stream.

    python benchmarks/arrival.py                     # measure, then rewrite the "arrival" section of the doc
    python benchmarks/arrival.py --no-write          # print the section instead
    python benchmarks/arrival.py --baseline b08495e  # beside it, a git revision's code (or a DIR with dashboard/)

A real `fotoflo serve --watch` (a fresh data directory each round) and one SSE reader of its project's feed.
Files are 2-MP camera-like JPEGs from the ingest benchmark's cache, each made unique by a trailer after its
end-of-image marker, and arrive one at a time the way photographers' tools put them there: `cp`, `rsync`
(a temp name in the folder, then a rename), `mv` from a hidden folder inside the hot folder, from a folder
outside it on the same disk and from another filesystem, a hard link (`ln`), and a slow writer that keeps
the file open while it writes it in ten pieces. The clock starts when the file is complete (the tool has
exited; the slow writer has closed it) and stops when its event is read. Every event's image must have the
file's full size: a half-read file fails the run. With `--baseline` the rounds alternate between the old
code and this code, each in its own server, so both see the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from _arrival_ways import WAYS, places_for, put
from _common import (
    ROOT,
    OtherLoad,
    filesystem_of,
    free_port,
    machine_description,
    percentile,
    publish,
    wait_until_quiet,
)
from ingest import SIZE_2MP, corpus

from tests.support.servers import serve_command, stop_process, wait_healthy
from tests.support.sse import SseStream, sse

TARGET_P50_MS = 100.0
GAP_S = 0.05  # between one file's event and the next file


def log(message: str) -> None:
    print(f"[bench arrival] {message}", file=sys.stderr, flush=True)


# -- the code under test: this tree, or a git revision / directory -----------------------------------


@contextmanager
def code_tree(baseline: str) -> Iterator[Path]:
    """A directory holding the `dashboard/` package of `baseline` (a directory, or a git revision exported)."""
    if (Path(baseline) / "dashboard" / "__init__.py").exists():
        yield Path(baseline).resolve()
        return
    with tempfile.TemporaryDirectory(prefix="fotoflo-baseline-") as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", baseline, "dashboard"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        yield Path(tmp)


@dataclass
class Served:
    url: str
    hot: Path
    proc: subprocess.Popen[bytes]


@contextmanager
def serve(tree: Path, work: Path) -> Iterator[Served]:
    """`fotoflo serve --watch` running `tree`'s code (its own folder first on the path), in a fresh data directory."""
    work.mkdir(parents=True, exist_ok=True)
    hot = work / "hot"
    hot.mkdir()
    port = free_port()
    argv = serve_command(work / "data", port, watch=hot, log_level="WARNING")
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONUNBUFFERED": "1"}
    with open(work / "server.log", "wb") as out:
        # cwd: `python -m` puts the working directory first on the path, so it must be the tree itself.
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tree)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, timeout_s=60, log_path=work / "server.log")
        yield Served(f"http://127.0.0.1:{port}", hot, proc)
    finally:
        stop_process(proc, timeout_s=10)


def wait_for(stream: SseStream, name: str, timeout_s: float = 60) -> dict[str, object]:
    """The next `image.created` whose image is `name` (others are not expected: the run fails on one)."""
    while True:
        event = stream.next(timeout_s)
        if event.event != "image.created":
            continue
        image = event.json()  # an image event's data is the image itself
        if image["filename"] != name:
            raise RuntimeError(f"expected {name}, got {image['filename']}")
        return dict(image)


@dataclass
class Round:
    ms: dict[str, list[float]] = field(default_factory=dict)  # complete → SSE event
    burst_in_order: list[bool] = field(default_factory=list)
    watcher_ms: dict[str, list[float]] = field(default_factory=dict)  # complete → the watcher's ingest call


def watcher_wait(tree: Path, work: Path, sample: Path, ways: list[str], count: int) -> dict[str, list[float]]:
    """`tree`'s watcher alone, in a child process (`_arrival_ways.py`): complete → its ingest call, per way."""
    (work / "hot").mkdir(parents=True)
    script = Path(__file__).with_name("_arrival_ways.py")
    argv = [sys.executable, str(script), "--hot", str(work / "hot"), "--work", str(work), "--sample", str(sample)]
    argv += ["--count", str(count), "--ways", *ways]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(argv, env=env, cwd=tree, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.splitlines()[-1]))


def one_round(tree: Path, work: Path, files: list[bytes], ways: list[str], count: int, burst: int) -> Round:
    """One server on `tree`'s code: `count` files each way, one at a time, then a burst of `burst` renames."""
    result = Round()
    serial = iter(range(1_000_000))

    def unique(data: bytes) -> bytes:
        return data + f"fotoflo-arrival-{time.time_ns()}-{next(serial)}".encode()  # after EOI: ignored

    with (
        serve(tree, work) as server,
        places_for(server.hot, work) as places,
        sse(f"{server.url}/api/projects/default/events") as stream,
    ):
        for n in range(2):  # warm: decoder processes, caches
            put("cp", unique(files[n]), f"warm-{n}.jpg", places)
            wait_for(stream, f"warm-{n}.jpg")
        for way in ways:
            if way == "mv-other-fs" and places.other_fs is None:
                continue
            times = result.ms.setdefault(way, [])
            for n in range(count):
                data = unique(files[n % len(files)])
                name = f"{way}-{n:03d}.jpg"
                complete = put(way, data, name, places)
                image = wait_for(stream, name)
                times.append((time.perf_counter() - complete) * 1000)
                if image["size_bytes"] != len(data):
                    raise RuntimeError(f"{name}: {image['size_bytes']} of {len(data)} bytes were read")
                time.sleep(GAP_S)
        if burst:
            names = [f"burst-{(n * 7) % burst:03d}-{n}.jpg" for n in range(burst)]
            for n, name in enumerate(names):
                (places.outside / name).write_bytes(unique(files[n % len(files)]))
            for name in names:
                os.rename(places.outside / name, places.hot / name)
            got = []
            while len(got) < burst:
                event = stream.next(60)
                if event.event == "image.created":
                    got.append(event.json()["filename"])
            result.burst_in_order.append(got == names)
    return result


# -- report ------------------------------------------------------------------------------------------


def cell(values: list[float]) -> str:
    return f"{percentile(values, 50):.0f} ms / {percentile(values, 95):.0f} ms" if values else "not run"


def render(
    results: dict[str, Round], ways: list[str], count: int, rounds: int, burst: int, baseline: str | None,
    work: Path, mean_mb: float, others_cores: float,
) -> str:  # fmt: skip
    names = list(results)
    machine = machine_description()
    by_key = {w.key: w for w in WAYS}
    heads = " | ".join(f"{'before' if n == 'before' else 'after'} p50 / p95" for n in names)
    lines = [
        "## Hot folder: file complete → event on the SSE stream",
        "",
        f"Measured by `python benchmarks/arrival.py{f' --baseline {baseline}' if baseline else ''}` on {machine}.",
        "",
        f"A real `fotoflo serve --watch` ({filesystem_of(work)}) and one SSE reader of its feed; {count} 2-MP "
        f"camera-like JPEGs ({SIZE_2MP[0]}×{SIZE_2MP[1]}, {mean_mb:.1f} MB) each way and round, one at a time, "
        f"{rounds} round(s)"
        + (f", alternating `{baseline}` (before) and this code (after), each in its own server" if baseline else "")
        + ". The clock starts when the file is complete (the tool has exited, the slow writer has closed it) "
        "and stops when its `image.created` is read; every event's image had the file's full size.",
        "",
        f"| how the file reaches the hot folder | watchdog reports | {heads} | target p50 ≤ {TARGET_P50_MS:.0f} ms |",
        "| --- | --- | " + " | ".join("---:" for _ in names) + " | --- |",
    ]
    for key in ways:
        way = by_key[key]
        cells = [cell(results[n].ms.get(key, [])) for n in names]
        this = results[names[-1]].ms.get(key, [])
        met = "" if not this else ("met" if percentile(this, 50) <= TARGET_P50_MS else "**not met**")
        if key == "slow":
            met = "waits for the close (met)" if this and min(this) >= 0 else met
        lines.append(f"| {way.label} | {way.event} | " + " | ".join(cells) + f" | {met} |")
    if burst:
        lines.append(
            f"| a burst of {burst} renames from outside: feed in arrival order | | "
            + " | ".join(
                f"{sum(results[n].burst_in_order)} of {len(results[n].burst_in_order)} bursts in order" for n in names
            )
            + " | every burst |"
        )
    lines += [
        "",
        "### The watcher's own wait: file complete → its call to ingest",
        "",
        "The same ways in, the same rounds, but the watcher alone in a process of its own (`_arrival_ways.py` "
        "with the tree's `HotFolderWatcher`), its ingest a function that notes the time: no decoding, no store, "
        "no SSE, so what is left is the wait the watcher adds, which a loaded machine hardly moves. A "
        "negative figure: the file was handed on before the tool had exited (`rsync` renames its temp file, "
        "then takes a while to end).",
        "",
        f"| how the file reaches the hot folder | {heads} |",
        "| --- | " + " | ".join("---:" for _ in names) + " |",
    ]
    for key in ways:
        cells = [cell(results[n].watcher_ms.get(key, [])) for n in names]
        lines.append(f"| {by_key[key].label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "The slow writer's figure counts from its `close()`: the file was never read before it was complete. "
        "What changed (issue 19): a file with no close-write (renamed in from outside the watched tree, "
        "hard-linked) used to wait the watcher's settle time (1 s); now the watcher looks again after 10 ms "
        "and asks the kernel whether anyone holds it open for writing (a read lease), and takes it at once when "
        "no one does. Parallel ingests commit in the order the files became complete.",
        "",
        f"Other processes on the machine used {others_cores:.2f} cores on average meanwhile.",
        "",
    ]
    if others_cores > 0.25:
        lines += [
            "> **The machine was not idle** while this ran: the end-to-end figures above (which include decoding "
            "and storing each image) are pessimistic; the watcher's own wait is not. Rerun on an otherwise idle "
            "machine for clean numbers.",
            "",
        ]
    lines += [
        "Regenerate with `scripts/bench` (all benchmarks) or `python benchmarks/arrival.py --baseline b08495e`.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    parser.add_argument("--count", type=int, default=10, help="files each way and round (default 10)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds (default 2)")
    parser.add_argument("--burst", type=int, default=20, help="files renamed in at once, each round (0: none)")
    parser.add_argument("--ways", nargs="*", default=[w.key for w in WAYS], choices=[w.key for w in WAYS])
    parser.add_argument(
        "--baseline", metavar="REV|DIR", help="also run this git revision (or a DIR holding dashboard/) as 'before'"
    )
    parser.add_argument(
        "--cache", type=Path, default=cache_home / "fotoflo-bench", help="generated images (default %(default)s)"
    )
    parser.add_argument("--work", type=Path, help="where the servers' folders go (default CACHE/runs)")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing the doc")
    parser.add_argument("--wait-idle", type=float, default=60, metavar="S", help="wait up to S s for quiet first")
    args = parser.parse_args(argv)
    ways: list[str] = args.ways
    if "rsync" in ways and shutil.which("rsync") is None:
        log("no rsync here: that row is skipped (Debian: apt-get install rsync)")
        ways = [w for w in ways if w != "rsync"]
    paths = corpus(args.cache, SIZE_2MP, max(args.count, args.burst, 2))
    files, sample = [p.read_bytes() for p in paths], paths[0]
    mean_mb = statistics.mean(len(f) for f in files) / 1e6
    work_root = args.work or args.cache / "runs"
    work_root.mkdir(parents=True, exist_ok=True)
    wait_until_quiet(args.wait_idle)
    results: dict[str, Round] = {}
    with code_tree(args.baseline) if args.baseline else _nothing() as before, OtherLoad() as others:
        trees: dict[str, Path] = ({"before": before} if before is not None else {}) | {"this": ROOT}
        for round_ in range(args.repeat):
            for name, tree in trees.items():
                work = Path(tempfile.mkdtemp(prefix="arrival-", dir=work_root))
                try:
                    got = one_round(tree, work, files, ways, args.count, args.burst)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                total = results.setdefault(name, Round())
                for key, values in got.ms.items():
                    total.ms.setdefault(key, []).extend(values)
                total.burst_in_order += got.burst_in_order
                work = Path(tempfile.mkdtemp(prefix="arrival-watcher-", dir=work_root))
                try:
                    for key, values in watcher_wait(tree, work, sample, ways, args.count).items():
                        total.watcher_ms.setdefault(key, []).extend(values)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                log(f"round {round_ + 1}, {name}: " + ", ".join(f"{k} p50 {statistics.median(v):.0f} ms"
                                                                 for k, v in got.ms.items()))  # fmt: skip
    section = render(
        results, ways, args.count, args.repeat, args.burst, args.baseline, work_root, mean_mb, others.others_cores
    )
    publish("arrival", section, write=not args.no_write)
    return 0


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    sys.exit(main())
