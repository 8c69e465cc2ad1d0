"""Profiles of the hot paths (pyinstrument in-process, py-spy on a server), with timings to compare.

    python benchmarks/hotpaths.py                    # profile, then rewrite the "profile" section of docs/benchmarks.md
    python benchmarks/hotpaths.py --no-write         # print the section instead
    python benchmarks/hotpaths.py --baseline DIR     # also time the code in DIR (a copy from before a fix), interleaved
    python benchmarks/hotpaths.py --sizes 10000 --rounds 1 --no-write   # a quick look

On SQLite projects of `--sizes` images (seeded once into `--data` and reused), each with camera
EXIF, and ratings, picks and labels on some images:

- **Store reads**, in a child process per code tree, timed and profiled with pyinstrument:
  `list_images` pages of 61 and 501 (the API asks one more than it shows) newest first and deep
  (`before=` half way), the feed read `changes(after, limit=500)` and `count_images` with and without
  each filter.
- **The images API** of a `fotoflo serve` per code tree: `GET /api/projects/{p}/images` with
  `limit` 60 and 500, first and deep page, timed from the client; the server is recorded with py-spy
  meanwhile (when py-spy can attach).
- **A page open**: `GET /` (the session is made then) timed over HTTP and recorded with py-spy,
  then pages opened in Chromium: their waterfall and a JavaScript profile by script, and in the same
  rounds a plain page of the same first 60 thumbnails (bare `<img>`s): the floor to compare with.

With `--baseline` every timing is taken for both trees in alternating rounds, so both see the
same machine; each tree gets its own copy of the database (a newer tree migrates its copy).
"""

from __future__ import annotations

import argparse
import html
import http.server
import json
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    FIRST_PICTURE_JS,
    ROOT,
    OtherLoad,
    cores,
    free_port,
    machine_description,
    wait_for_idle,
    write_section,
)
from _common import Server as _Server

from tests.support.browser import launch_chromium

CACHE = Path.home() / ".cache" / "fotoflo-profile"
TOP = 8  # frames listed per profile

#: What the profiles showed and what was changed for it (issue 10): shown when `--baseline` compares the two.
FINDINGS = """
What the profiles showed, and the fixes compared below (`--baseline` is the code before them):

- **Rows to records** (`list_images`, `get_images`, the feed's `changes`): each row was copied by column
  name into a dict, passed through the frozen dataclass's `__init__` (twenty `object.__setattr__`) and its
  EXIF decoded: the `<dictcomp>` and `__init__` frames. Now read by position and built by
  `ImageRecord.from_fields` without `__init__`; an empty JSON object is not decoded. What is left is
  SQLite's own fetch and the EXIF's `json.loads`.
- **Records to JSON** (every API answer with images): `ImageRecord.to_dict` was `dataclasses.asdict`,
  whose recursion and deep copies (`_asdict_inner`, `_is_dataclass_instance`, `deepcopy`) were the top
  frames of an images page. Now a dict of the fields with a copy of the EXIF; answers are encoded without
  `check_circular`; the images handler reads the feed position, the page and the count in one worker
  thread instead of three.
- **Counts** (`total` on every first page): `count_images` walked the `(project, seq)` index and, for a
  filter, read every image's row. Schema version 4 (SQLite and PostgreSQL) keeps each project's image
  count in its row, written with the images it counts, and puts rating, flag and label in the newest-first
  index: an unfiltered count reads one row, a filtered one only the index, and a filtered page skips rows
  in the index before reading them.
- **Left as it is**: an images page now spends most of its time signing three file URLs an image
  (`UrlSigner.url`: `hmac`, `urlencode`, `quote`) and encoding JSON. A page open is the browser's: Bokeh
  and Panel's bundles (2.9 MB) evaluated, then the document's views built; on the server the session is
  Bokeh's models and Panel's template, of which Fotoflo's page function (`app_for_session`,
  `Gallery.__init__`) is a few ms and reads nothing from the store. After sessions close, Panel runs a
  full `gc.collect()` on the event loop (`_garbage_collect`, at most every 5 s): about 130 ms over the
  server's heap, which `gc.freeze()` once started would shrink to the garbage made since.
"""

#: Realistic EXIF as ingest stores it (`dashboard.imaging.exif.exif_fields`); varied per image.
LENSES = ("XF 33mm F1.4 R LM WR", "XF 16-55mm F2.8 R LM WR", "XF 56mm F1.2 R WR", "XF 90mm F2 R LM WR")

# The store reads, run as `python -c CHILD TREE SPEC_JSON` so that TREE's `dashboard` is the one imported.
CHILD = r"""
import json, statistics, sys, time
from collections import Counter
sys.path.insert(0, sys.argv[1])
from dashboard.store.sqlite import SQLiteStore

spec = json.loads(sys.argv[2])
store = SQLiteStore(spec["db"])  # a newer tree migrates the copy here


def call(case):
    if case["call"] == "list":
        return store.list_images(case["p"], before=case.get("before"), limit=case["limit"])
    if case["call"] == "changes":
        return store.changes(case["p"], after=case["after"], limit=500)
    return store.count_images(case["p"], **case["filters"])


def top_frames(root, n):
    # The functions with the most own time, each as a share of the calls' whole time.
    own = Counter()
    todo = [root] if root is not None else []  # None: the calls were too quick to be sampled
    while todo:
        frame = todo.pop()
        todo += frame.children
        where = frame.file_path_short or ""
        # [self], [await]: pyinstrument's bookkeeping; <string>: this script; pyinstrument: itself.
        if not frame.function.startswith("[") and where != "<string>" and "pyinstrument" not in where:
            own[f"{frame.function} ({where})"] += frame.total_self_time
    total = sum(own.values()) or 1.0
    return [(name, t / total) for name, t in own.most_common(n)]


times, frames = {}, {}
for case in spec["cases"]:
    key = f"{case['size']}|{case['name']}"
    call(case)
    took = []
    for _ in range(spec["repeat"]):
        start = time.thread_time()  # CPU time: other processes on the machine inflate it far less than wall time
        call(case)
        took.append(time.thread_time() - start)
    times[key] = took
    if spec.get("profile"):
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002)
        profiler.start()
        for _ in range(spec["repeat"]):
            call(case)
        profiler.stop()
        frames[key] = top_frames(profiler.last_session.root_frame(), spec.get("top", 8))
store.close()
print(json.dumps({"times": times, "frames": frames}))
"""

SERVE = "import sys; sys.path.insert(0, sys.argv.pop(1)); from dashboard.cli import main; sys.exit(main())"


# -- the data -------------------------------------------------------------------------------------


def seed(data: Path, sizes: list[int], tree: Path) -> dict[int, float | None]:
    """Seed `bench-N` for each size unless there; seconds each took (None: reused)."""
    took: dict[int, float | None] = {}
    db = data / "fotoflo.sqlite"
    have: set[str] = set()
    if db.exists():
        with sqlite3.connect(db) as conn:
            have = {r[0] for r in conn.execute("SELECT project FROM images GROUP BY project")}
    for n in sizes:
        project = f"bench-{n}"
        if project in have:
            took[n] = None
            continue
        start = time.perf_counter()
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path;"
            " from dashboard.samples import seed_project;"
            " seed_project(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))"
        )
        subprocess.run([sys.executable, "-c", code, str(tree), str(data), project, str(n)], check=True, cwd=tree)
        dress(db, project)
        took[n] = time.perf_counter() - start
        print(f"seeded {project} in {took[n]:.0f} s", flush=True)
    return took


def dress(db: Path, project: str) -> None:
    """Give the seeded images what real ones have: EXIF, a camera, and some ratings, picks and labels."""
    rng = random.Random(project)
    with sqlite3.connect(db) as conn:
        rows = [r[0] for r in conn.execute("SELECT id FROM images WHERE project = ?", (project,))]
        values = []
        for image_id in rows:
            exif = {
                "lens": rng.choice(LENSES),
                "exposure_time": f"1/{rng.choice((60, 125, 250, 500, 1000))}",
                "f_number": rng.choice((1.4, 2.0, 2.8, 4.0, 5.6)),
                "focal_length_mm": float(rng.choice((16, 23, 33, 56, 90))),
                "iso": rng.choice((160, 400, 800, 1600, 3200)),
            }
            rating = rng.randint(1, 5) if rng.random() < 0.2 else 0  # a fifth rated
            flag = "pick" if rng.random() < 0.05 else "reject" if rng.random() < 0.02 else "none"
            label = "red" if rng.random() < 0.03 else "none"
            values.append((json.dumps(exif), "FUJIFILM", "X-T5", rating, flag, label, image_id))
        conn.executemany(
            "UPDATE images SET exif = ?, camera_make = ?, camera_model = ?, rating = ?, flag = ?, label = ?"
            " WHERE id = ?",
            values,
        )


def tree_data(work: Path, name: str, seeded: Path) -> Path:
    """A data directory of its own for a code tree: a copy of the database, the files shared."""
    data = work / name / "data"
    data.mkdir(parents=True)
    shutil.copy2(seeded / "fotoflo.sqlite", data / "fotoflo.sqlite")
    (data / "blobs").symlink_to(seeded / "blobs")
    return data


# -- store reads: timed and profiled in a child process per tree ------------------------------------


def store_cases(sizes: list[int]) -> list[dict[str, Any]]:
    cases = []
    for n in sizes:
        p, mid = f"bench-{n}", n // 2
        for limit in (61, 501):
            cases.append({"size": n, "name": f"list_images {limit}, first", "call": "list", "p": p, "limit": limit})
            cases.append({"size": n, "name": f"list_images {limit}, deep", "call": "list", "p": p, "limit": limit,
                          "before": mid})  # fmt: skip
        cases.append({"size": n, "name": "changes 500", "call": "changes", "p": p, "after": mid})
        for label, filters in (("", {}), (" rating ≥ 1", {"min_rating": 1}), (" flag=pick", {"flag": "pick"}),
                               (" label=red", {"label": "red"})):  # fmt: skip
            cases.append({"size": n, "name": f"count_images{label}", "call": "count", "p": p, "filters": filters})
    return cases


def run_child(tree: Path, spec: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(tree), json.dumps({"top": TOP, **spec})],
        check=True,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),  # not the checkout: the tree's `dashboard` must be the one imported
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# -- py-spy on a server ---------------------------------------------------------------------------


@contextmanager
def py_spy(pid: int, out: Path, rate_hz: int, *, gil: bool = False) -> Iterator[dict[str, Any]]:
    """Record `pid` with py-spy while the block runs; yields a dict that gets `stacks` (or `error`).

    `gil`: only the thread holding the GIL (Python running), not a thread in a system call or in C
    that let the GIL go (a socket write, SQLite's own work): py-spy cannot tell those from waiting.
    """
    result: dict[str, Any] = {}
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        result["error"] = "py-spy is not installed"
        yield result
        return
    proc = subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", str(rate_hz), "--nonblocking", "-o", str(out)]
        + (["--gil"] if gil else []),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)  # attached
    try:
        yield result
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if out.exists():
            result["stacks"] = read_raw(out)
        else:
            result["error"] = f"py-spy wrote nothing: {err.strip().splitlines()[-1:] or proc.returncode}"


#: Leaf frames of a thread waiting for work: the loop's `select`, an idle worker, a lock.
IDLE = (".select (selectors.py)", "_worker (futures/thread.py)", "wait (threading.py)", ".poll (selectors.py)")


def read_raw(path: Path) -> list[tuple[list[str], int]]:
    """py-spy's raw (collapsed) stacks, root first, without line numbers; threads waiting for work dropped."""
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_frame(f) for f in stack.split(";") if f]
        if not frames or any(idle in frames[-1] for idle in IDLE):
            continue
        stacks.append((frames, int(count)))
    return stacks


def _frame(text: str) -> str:
    """`fn (path/to/file.py:123)` → `fn (to/file.py)`: functions are counted across their lines."""
    name, _, where = text.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    short = "/".join(where.split("/")[-2:]) if "site-packages" in where or where.startswith("/") else where
    return f"{name} ({short})"


def top_self(stacks: list[tuple[list[str], int]], n: int = TOP) -> list[tuple[str, float]]:
    """The functions with the most own samples, each as a share of all samples."""
    counts: Counter[str] = Counter()
    for frames, count in stacks:
        counts[frames[-1]] += count
    total = busy(stacks) or 1
    return [(frame, count / total) for frame, count in counts.most_common(n)]


def inclusive(stacks: list[tuple[list[str], int]], match: Callable[[str], bool]) -> int:
    """Samples whose stack holds a frame `match` accepts."""
    return sum(count for frames, count in stacks if any(match(f) for f in frames))


def busy(stacks: list[tuple[list[str], int]]) -> int:
    return sum(count for _, count in stacks)


# -- the images API and the page ------------------------------------------------------------------


class Server(_Server):
    """`fotoflo serve` from a given code tree over a given data directory."""

    def __init__(self, work: Path, tree: Path, data: Path, project: str) -> None:
        super().__init__(work, free_port(), command=[sys.executable, "-c", SERVE, str(tree), "--log-level", "WARNING",
                                                     "serve", "--no-watch", "--project", project])  # fmt: skip
        self.data = data


def api_cases(sizes: list[int]) -> list[dict[str, Any]]:
    cases = []
    for n in sizes:
        for limit in (60, 500):
            for deep in (False, True):
                params = {"limit": limit, **({"before": n // 2} if deep else {})}
                name = f"{limit} a page, {'deep' if deep else 'first'}"
                cases.append({"size": n, "name": name, "path": f"/api/projects/bench-{n}/images", "params": params})
    return cases


def time_requests(client: httpx.Client, path: str, params: dict[str, Any], count: int) -> list[float]:
    client.get(path, params=params).raise_for_status()  # warm
    out = []
    for _ in range(count):
        start = time.perf_counter()
        client.get(path, params=params).raise_for_status()
        out.append(time.perf_counter() - start)
    return out


# The page's clock for each step of an open, taken by an init script.
WATERFALL_JS = """
(() => {
  const t = (window.__t = {});
  const Native = window.WebSocket;
  window.WebSocket = function (...args) {
    const ws = new Native(...args);
    t.ws_new = performance.now();
    ws.addEventListener('open', () => { t.ws_open = performance.now(); });
    ws.addEventListener('message', (e) => {
      const size = typeof e.data === 'string' ? e.data.length : (e.data.byteLength || e.data.size || 0);
      if (size > 20000 && !t.doc) t.doc = performance.now();  // the document: the one large message
    });
    return ws;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, Native);
  document.addEventListener('DOMContentLoaded', () => { t.dcl = performance.now(); });
  const find = (root) => {
    if (root.querySelector('[data-image-id]')) return true;
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot && find(el.shadowRoot)) return true;
    return false;
  };
  const check = () => {
    if (document.body && find(document)) t.tile = performance.now();
    else requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
})();
"""

RESOURCES_JS = """
() => performance.getEntriesByType('resource').map((r) => [r.name, r.startTime, r.responseEnd, r.transferSize])
"""

STEPS = (
    ("html", "HTML received (the session is made before it is sent)"),
    ("scripts", "Bokeh and Panel bundles downloaded (2.9 MB, not cached)"),
    ("dcl", "DOMContentLoaded (after the bundles ran; with the painted first page, before they run)"),
    ("ws_open", "websocket open"),
    ("doc", "document received over the websocket"),
    ("api_start", "gallery asks for its first page (`/api/…/images`)"),
    ("api_end", "first page received"),
    ("tile", "first tile in the DOM"),
    ("painted", "**first tile on screen with its picture** (painted from the HTML, or the gallery's)"),
)


def open_page(browser: Any, url: str, profile_js: bool, plain: bool = False) -> dict[str, Any]:
    """One page open in a fresh context: its waterfall (ms by the page's clock) and, if asked, JS time by script.

    `plain`: a page of `<img>`s (`plain_page`), which has no gallery: only its first picture is waited for.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.add_init_script(WATERFALL_JS)
        page.add_init_script(FIRST_PICTURE_JS)  # what a user sees: the `painted` step
        cdp = None
        if profile_js:
            cdp = context.new_cdp_session(page)
            cdp.send("Profiler.enable")
            cdp.send("Profiler.setSamplingInterval", {"interval": 250})
            cdp.send("Profiler.start")
        page.goto(url)
        if not plain:  # the gallery's own first tile too (a plain page has no gallery)
            page.wait_for_function("window.__t && window.__t.tile", timeout=120_000)
        page.wait_for_function("window.__firstPicture", timeout=120_000)
        marks = {**page.evaluate("window.__t"), "painted": page.evaluate("window.__firstPicture")}
        nav = page.evaluate("performance.getEntriesByType('navigation')[0].responseEnd")
        resources = page.evaluate(RESOURCES_JS)
        out: dict[str, Any] = {"html": nav, **marks}
        scripts = [end for name, _, end, _ in resources if name.split("?")[0].endswith(".js")]
        api = [(start, end) for name, start, end, _ in resources if "/api/projects/" in name]
        out["scripts"] = max(scripts) if scripts else None
        if api:
            out["api_start"], out["api_end"] = api[0]
        if cdp is not None:
            out["js"] = js_by_script(cdp.send("Profiler.stop")["profile"])
        return out
    finally:
        context.close()


def js_by_script(profile: dict[str, Any]) -> dict[str, float]:
    """Milliseconds of a CPU profile by script (`(program)`: parsing, compiling, layout; idle left out)."""
    nodes = {n["id"]: n["callFrame"] for n in profile["nodes"]}
    out: Counter[str] = Counter()
    for node, delta_us in zip(profile["samples"], profile["timeDeltas"], strict=True):
        frame = nodes[node]
        url = frame["url"].split("?")[0]
        if url.startswith("blob:"):
            name = "Fotoflo's gallery module (assets/main.js and its imports)"
        elif url:
            name = url.rsplit("/", 1)[-1]
        else:
            name = frame["functionName"] or "(anonymous)"
            if name not in ("(program)", "(garbage collector)", "(idle)", "(root)"):
                name = "DOM and browser built-ins"
        out[name] += delta_us / 1000
    out.pop("(idle)", None)
    out.pop("(root)", None)
    return dict(out)


# -- the run --------------------------------------------------------------------------------------


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000 if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="images per project")
    parser.add_argument("--data", type=Path, default=CACHE, help=f"seeded projects, kept for next time ({CACHE})")
    parser.add_argument("--baseline", type=Path, default=None, help="a copy of the code from before (holds dashboard/)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the timings (default 3)")
    parser.add_argument("--repeat", type=int, default=15, help="calls or requests per case and round (default 15)")
    parser.add_argument("--page-opens", type=int, default=3, help="Chromium page opens per tree and size (0: none)")
    parser.add_argument("--rate", type=int, default=500, help="py-spy samples a second (default 500)")
    parser.add_argument("--wait-idle", type=float, default=60, help="seconds to wait for other processes to go quiet")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch docs/benchmarks.md")
    args = parser.parse_args()

    trees = {"this": ROOT}
    if args.baseline is not None:
        if not (args.baseline / "dashboard" / "__init__.py").exists():
            parser.error(f"{args.baseline} holds no dashboard/ package")
        trees = {"before": args.baseline.resolve(), "this": ROOT}
    sizes = sorted(args.sizes)
    args.data.mkdir(parents=True, exist_ok=True)
    # Seeded by the oldest tree: a newer one migrates its copy, an older one could not open a newer file.
    seed_s = seed(args.data, sizes, next(iter(trees.values())))
    results: dict[str, Any] = {"store": {}, "api": {}, "page": {}, "seed_s": seed_s}

    with tempfile.TemporaryDirectory(prefix="fotoflo-profile-") as tmp:
        work = Path(tmp)
        data = {name: tree_data(work, name, args.data) for name in trees}
        for name, tree in trees.items():  # migrate each copy before anything is timed
            run_child(tree, {"db": str(data[name]), "cases": [], "repeat": 0})
        idle = wait_for_idle(args.wait_idle)
        with OtherLoad() as load:
            results["store"] = store_part(trees, data, sizes, args)
            results["api"], results["page"] = server_part(trees, data, sizes, args, work)
    machine = machine_description([f"Panel {version('panel')}", f"SQLite {sqlite3.sqlite_version}"])
    section = render(results, trees, sizes, args, machine, idle, load.others_cores)
    print(section)
    if not args.no_write:
        write_section("profile", section)


def store_part(trees: dict[str, Path], data: dict[str, Path], sizes: list[int], args: Any) -> dict[str, Any]:
    cases = store_cases(sizes)
    times: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    frames: dict[str, dict[str, Any]] = {}
    for round_ in range(args.rounds):
        for name, tree in trees.items():
            profile = round_ == 0
            out = run_child(tree, {"db": str(data[name]), "cases": cases, "repeat": args.repeat, "profile": profile})
            for key, values in out["times"].items():
                times[name].setdefault(key, []).extend(values)
            if profile:
                frames[name] = out["frames"]
            print(f"store reads, round {round_ + 1}, {name}: done", flush=True)
    return {"cases": cases, "times": times, "frames": frames}


def server_part(
    trees: dict[str, Path], data: dict[str, Path], sizes: list[int], args: Any, work: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    cases = api_cases(sizes)
    api: dict[str, Any] = {"cases": cases, "times": {n: {} for n in trees}, "cpu": {}, "profiles": {}}
    page: dict[str, Any] = {"get": {n: [] for n in trees}, "opens": {n: {} for n in trees}, "profile": {}}
    servers = {n: Server(work / n, tree, data[n], f"bench-{sizes[-1]}") for n, tree in trees.items()}
    try:
        for server in servers.values():
            server.start(timeout_s=120)
        clients = {n: httpx.Client(base_url=s.url, timeout=60) for n, s in servers.items()}
        for round_ in range(args.rounds):
            for name, server in servers.items():
                for case in cases:
                    key = f"{case['size']}|{case['name']}"
                    cpu_s = server.cpu_s()
                    got = time_requests(clients[name], case["path"], case["params"], args.repeat)
                    api["times"][name].setdefault(key, []).extend(got)
                    # The server's CPU seconds (/proc, 10 ms ticks) over the batch and its warm-up request.
                    cpu = api["cpu"].setdefault(name, {}).setdefault(key, [0.0, 0])
                    cpu[0] += server.cpu_s() - cpu_s
                    cpu[1] += len(got) + 1
                page["get"][name] += time_requests(clients[name], "/", {}, max(3, args.repeat // 3))
            print(f"API and GET /, round {round_ + 1}: done", flush=True)
        # The server side, recorded: 500-image pages at the largest size, then GET / alone.
        n = sizes[-1]
        for name, server in servers.items():
            count = args.repeat * 4
            with py_spy(server.pid, work / f"api-{name}.raw", args.rate, gil=True) as spy:
                cpu_s = server.cpu_s()
                for deep in (False, True):
                    params = {"limit": 500, **({"before": n // 2} if deep else {})}
                    time_requests(clients[name], f"/api/projects/bench-{n}/images", params, count // 2)
                cpu_s = server.cpu_s() - cpu_s
            api["profiles"][name] = {**spy, "requests": count + 2, "cpu_s": cpu_s}
        opens = max(10, args.repeat)
        with py_spy(servers["this"].pid, work / "get.raw", args.rate, gil=True) as spy:
            cpu_s = servers["this"].cpu_s()
            time_requests(clients["this"], "/", {}, opens)
            cpu_s = servers["this"].cpu_s() - cpu_s
        page["profile"]["get"] = {**spy, "requests": opens + 1, "cpu_s": cpu_s}
        if args.page_opens:
            page["opens"], page["profile"]["browser"], page["js"] = browser_part(servers, sizes, args, work)
        for client in clients.values():
            client.close()
    finally:
        for server in servers.values():
            server.stop()
    return api, page


def browser_part(
    servers: dict[str, Server], sizes: list[int], args: Any, work: Path
) -> tuple[dict[str, Any], dict[str, Any], dict[str, float]]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {}, {"error": "Playwright is not installed"}, {}
    opens: dict[str, dict[int, list[dict[str, Any]]]] = {n: {s: [] for s in sizes} for n in servers}
    js: dict[str, float] = {}
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            with plain_pages(servers["this"].url, sizes) as plain:
                for _ in range(args.page_opens):
                    for name, server in servers.items():
                        for size in sizes:
                            url = f"{server.url}/?project=bench-{size}"
                            opens[name][size].append(open_page(browser, url, False))
                    for size in sizes:
                        opens.setdefault(PLAIN, {s: [] for s in sizes})[size].append(
                            open_page(browser, plain[size], False, plain=True)
                        )
            # The largest project once more: its JS profile, and the server recorded through the open.
            with py_spy(servers["this"].pid, work / "open.raw", args.rate, gil=True) as spy:
                cpu_s = servers["this"].cpu_s()
                for i in range(args.page_opens):
                    got = open_page(browser, f"{servers['this'].url}/?project=bench-{sizes[-1]}", i == 0)
                    js = js or got.get("js", {})
                cpu_s = servers["this"].cpu_s() - cpu_s
        finally:
            browser.close()
    return opens, {**spy, "requests": args.page_opens, "cpu_s": cpu_s}, js


#: The plain page's column: the same first page of thumbnails as bare `<img>`s, the floor to compare with.
PLAIN = "plain page"


@contextmanager
def plain_pages(api_url: str, sizes: list[int]) -> Iterator[dict[int, str]]:
    """URLs of a plain HTML page per project size: its first 60 thumbnails (from `api_url`) as `<img>`s.

    Served by a small server of this process, as a page without Bokeh or Panel would be: the floor
    a page open can reach on this machine, measured in the same run.
    """
    pages = {}
    for size in sizes:
        images = httpx.get(f"{api_url}/api/projects/bench-{size}/images", params={"limit": 60}).json()["images"]
        tiles = "".join(f'<img src="{html.escape(api_url + i["thumbnail_url"])}" alt="">' for i in images)
        pages[size] = (
            '<!doctype html><meta charset="utf-8"><title>plain</title><style>body { margin: 0; background: #141414 }'
            " main { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 10px;"
            " padding: 12px } img { width: 100%; aspect-ratio: 1; object-fit: contain }</style>"
            f"<main>{tiles}</main>"
        ).encode()

    class Plain(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(int(self.path.strip("/"))) if self.path.strip("/").isdigit() else None
            if body is None:  # the browser's /favicon.ico
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Plain)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {size: f"http://127.0.0.1:{server.server_address[1]}/{size}" for size in sizes}
    finally:
        server.shutdown()
        server.server_close()


# -- the section ----------------------------------------------------------------------------------


def render(
    results: dict[str, Any],
    trees: dict[str, Path],
    sizes: list[int],
    args: Any,
    machine: str,
    idle: float,
    others: float,
) -> str:
    both = len(trees) > 1
    lines = [
        "## Profiles of the hot paths",
        "",
        f"Machine: {machine}.",
        f"Generated by `python benchmarks/hotpaths.py{' --baseline DIR' if both else ''}` (see benchmarks/README.md) "
        f"on SQLite projects of {' and '.join(f'{n:,}' for n in sizes)} images with camera EXIF, a fifth of them "
        f"rated, 5 % picks, 2 % rejects, 3 % red labels; medians of {args.rounds} × {args.repeat} calls"
        + (", the code before the fixes (`before`) and after them (`this`) in alternating rounds" if both else "")
        + f". Other processes kept {others:.2f} of {cores()} cores busy meanwhile ({idle:.2f} just before): "
        "times are CPU times where the table says so, since those suffer least from a busy machine, and a "
        "profile's frames are its share of the samples times that CPU time. Compare within a table, not "
        "across runs.",
        "",
    ]
    if both:
        lines += [FINDINGS.strip(), ""]
    lines += render_store(results["store"], trees, sizes)
    lines += render_api(results["api"], trees)
    lines += render_page(results["page"], trees, sizes)
    return "\n".join(lines)


def _ratio(old: float, new: float) -> str:
    return f"{old / new:.1f}×" if new > 0 else "–"


def _frames(frames: list[tuple[str, float]], whole_ms: float, least: float = 0.03) -> str:
    """`function (file)` and its ms (its share of `whole_ms`), for the frames of at least `least` of it."""
    shown = [(name.replace("`", "'"), share) for name, share in frames if share >= least]
    return "; ".join(f"`{name}` {share * whole_ms:.2f}" for name, share in shown[:6]) or "–"


def render_store(store: dict[str, Any], trees: dict[str, Path], sizes: list[int]) -> list[str]:
    both = len(trees) > 1
    head = "| before | this | ratio |" if both else "| this |"
    lines = [
        "### Store reads (`SQLiteStore`, in-process; CPU ms a call)",
        "",
        f"| images | call {head} where `this` spends it (pyinstrument, own time, ms) |",
        f"| ---: | --- {'| ---: ' * (3 if both else 1)}| --- |",
    ]
    for case in store["cases"]:
        key = f"{case['size']}|{case['name']}"
        new = median_ms(store["times"]["this"][key])
        cells = f"| {new:.2f} |"
        if both:
            old = median_ms(store["times"]["before"][key])
            cells = f"| {old:.2f} | {new:.2f} | {_ratio(old, new)} |"
        top = _frames(store["frames"]["this"].get(key, []), new)
        lines.append(f"| {case['size']:,} | `{case['name']}` {cells} {top} |")
    if both:
        lines += ["", "Where `before` spent it:", ""]
        for case in store["cases"]:
            if case["size"] == sizes[-1] and case["name"] in ("list_images 501, first", "changes 500",
                                                               "count_images flag=pick"):  # fmt: skip
                key = f"{case['size']}|{case['name']}"
                old = median_ms(store["times"]["before"][key])
                lines.append(f"- {case['size']:,}, `{case['name']}`: {_frames(store['frames']['before'][key], old)}")
    return [*lines, ""]


def render_api(api: dict[str, Any], trees: dict[str, Path]) -> list[str]:
    both = len(trees) > 1

    def cpu_ms(name: str, key: str) -> float:
        spent, requests = api["cpu"][name][key]
        return 1000 * spent / requests

    head = "| before: client ms | server CPU ms | this: client ms | server CPU ms | CPU ratio |"
    lines = [
        "### The images API (`GET /api/projects/{p}/images` of a `fotoflo serve`)",
        "",
        "Client: median time to the whole answer; server CPU: the process's CPU time over the requests (/proc).",
        "",
        f"| images | page {head if both else '| client ms | server CPU ms |'}",
        f"| ---: | --- {'| ---: ' * (5 if both else 2)}|",
    ]
    for case in api["cases"]:
        key = f"{case['size']}|{case['name']}"
        new = f"| {median_ms(api['times']['this'][key]):.1f} | {cpu_ms('this', key):.1f} |"
        if both:
            old_cpu = cpu_ms("before", key)
            new = (
                f"| {median_ms(api['times']['before'][key]):.1f} | {old_cpu:.1f} "
                f"{new} {_ratio(old_cpu, cpu_ms('this', key))} |"
            )
        lines.append(f"| {case['size']:,} | {case['name']} {new}")
    lines += ["", "Where the server spends it on 500-image pages of the largest project (py-spy `--gil`, ms):", ""]
    for name in trees:
        prof = api["profiles"].get(name, {})
        if "stacks" not in prof:
            lines.append(f"- `{name}`: not recorded ({prof.get('error', 'no profile')})")
            continue
        whole = 1000 * prof["cpu_s"] / prof["requests"]
        lines.append(f"- `{name}`, {whole:.1f} ms CPU a request: {_frames(top_self(prof['stacks']), whole, 0.02)}")
    return [*lines, ""]


#: What a page open does on the server, by the frames py-spy sees (inclusive).
PAGE_PARTS = (
    ("`GET /` (DocHandler.get: the session, then the HTML)", "DocHandler.get "),
    ("… the session's document (initialize_document)", "Application.initialize_document "),
    ("… … of which Fotoflo's page (`app_for_session`)", "app_for_session "),
    ("… … … of which `Gallery.__init__`", "Gallery.__init__ "),
    ("… … Bokeh models of the page (`Viewable.server_doc`)", "Viewable.server_doc "),
    ("… the HTML template (`server_html_page_for_session`)", "server_html_page_for_session "),
    ("websocket messages (the document pulled, events)", "WSHandler.on_message "),
    ("static files (the JS bundles, CSS)", "StaticFileHandler.get "),
    ("the first images page (`ImagesHandler`)", "ImagesHandler."),
    ("thumbnails (`FileHandler`)", "FileHandler."),
)


def render_page(page: dict[str, Any], trees: dict[str, Path], sizes: list[int]) -> list[str]:
    lines = ["### Opening a page", ""]
    gets = ", ".join(f"`{n}` {median_ms(page['get'][n]):.1f} ms" for n in trees)
    lines += [f"`GET /` over HTTP, to the end of the HTML (Panel makes the session for it): {gets}.", ""]
    titles = (("get", "`GET /` alone"), ("browser", f"page opens of `bench-{sizes[-1]}` in Chromium"))
    profiles = [(title, page["profile"].get(key, {})) for key, title in titles]
    for title, prof in profiles:
        if "stacks" not in prof:
            lines += [f"The server during {title}: not recorded ({prof.get('error', 'not run')}).", ""]
    recorded = [(title, prof) for title, prof in profiles if "stacks" in prof]
    if recorded:
        wholes = [1000 * prof["cpu_s"] / prof["requests"] for _, prof in recorded]
        lines += [
            "The server's CPU time an open (/proc), split by py-spy `--gil` (inclusive, ms):",
            "",
            f"| part | {' | '.join(title for title, _ in recorded)} |",
            f"| --- {'| ---: ' * len(recorded)}|",
            f"| the server's CPU time | {' | '.join(f'{w:.1f}' for w in wholes)} |",
        ]
        for label, prefix in PAGE_PARTS:
            shares = [
                inclusive(prof["stacks"], lambda f, prefix=prefix: f.startswith(prefix)) / (busy(prof["stacks"]) or 1)
                for _, prof in recorded
            ]
            if any(share * whole >= 0.1 for share, whole in zip(shares, wholes, strict=True)):
                cells = " | ".join(f"{share * whole:.1f}" for share, whole in zip(shares, wholes, strict=True))
                lines.append(f"| {label} | {cells} |")
        lines.append("")
        for (title, prof), whole in zip(recorded, wholes, strict=True):
            lines.append(f"- Own time, {title}: {_frames(top_self(prof['stacks']), whole, 0.02)}")
        lines.append("")
    opens = page.get("opens") or {}
    if any(opens.values()):
        names = [*trees, *([PLAIN] if PLAIN in opens else [])]
        lines += [
            "Chromium, a fresh context each time (nothing cached), median ms from navigation by the page's clock:",
            "",
            f"| step | {' | '.join(f'{n}, {s:,}' for n in names for s in sizes)} |",
            f"| --- {'| ---: ' * (len(names) * len(sizes))}|",
        ]
        for step, label in STEPS:
            cells = []
            for n in names:
                for s in sizes:
                    values = [o[step] for o in opens.get(n, {}).get(s, []) if o.get(step) is not None]
                    cells.append(f"{statistics.median(values):.0f}" if values else "–")
            lines.append(f"| {label} | {' | '.join(cells)} |")
        lines.append("")
    js = page.get("js") or {}
    if js:
        parts = sorted(js.items(), key=lambda kv: -kv[1])
        lines += [
            f"The page's main thread over one open of `bench-{sizes[-1]}` (Chromium's CPU profile, ms, idle left "
            "out): " + "; ".join(f"{name} {ms:.0f}" for name, ms in parts if ms >= 1) + ".",
            "",
        ]
    return lines


if __name__ == "__main__":
    main()
