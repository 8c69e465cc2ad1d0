"""Ingest benchmark: bulk throughput of the one ingest door, and hot-folder latency to the bus.

A large JPEG is published ("visible") with its thumbnail, and its preview made after it in the background:
bulk runs report both rates, visible and every preview done.

    python benchmarks/ingest.py            # measure, then rewrite the "ingest" section of docs/benchmarks.md
    python benchmarks/ingest.py --help     # sizes, counts, cache and work directories, --profile
    python benchmarks/ingest.py --baseline DIR   # this code beside a copy from before a change, interleaved
    python benchmarks/ingest.py --baseline DIR --write   # both, the comparison in the doc's section too

Camera-like 12-MP JPEGs (and 2-MP ones for latency) are generated once into a cache directory.
Every measurement ingests into a fresh data directory on the same disk as the cache, with the real
`SQLiteStore`, `FileBlobs` (fsync on) and `LocalBus`. Not a test: it asserts only that every image
went in, and reports against the targets without failing on them.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import PIL
import pillow_heif
from _common import (
    DOC,
    ROOT,
    OtherLoad,
    cores,
    filesystem_of,
    machine_description,
    percentile,
    wait_for_idle,
    write_section,
)
from PIL import ExifTags, Image, ImageChops, ImageDraw, ImageFilter, TiffImagePlugin, features

from dashboard.blobs import FileBlobs
from dashboard.bus import LocalBus
from dashboard.imaging.analysis import Analysis
from dashboard.imaging.decode import analyze
from dashboard.imaging.errors import Limits
from dashboard.ingest import Ingestor, IngestResult
from dashboard.samples import raw_dng, with_camera_preview
from dashboard.store.sqlite import SQLiteStore
from dashboard.watcher import HotFolderWatcher

PROJECT = "bench"
CORPUS_VERSION = 1  # bump when the generator changes, so old caches are not reused
SIZE_12MP = (4000, 3000)
SIZE_2MP = (1632, 1224)
TARGET_IMAGES_PER_S = 30.0  # 12-MP JPEGs through ingest_many on 2 cores: visible (published)
TARGET_PREVIEWS_PER_S = 14.0  # the same, every preview done
TARGET_MPF_IMAGES_PER_S = 36.0  # 12-MP JPEGs with a camera (MPF) preview: stored as it is, before publishing
TARGET_HEIC_IMAGES_PER_S = 5.0  # 12-MP HEIC, visible and every preview done (issue 19)
TARGET_P50_LATENCY_MS = 100.0  # writer's close() → bus publish
TARGET_P50_LATENCY_12MP_MS = 70.0  # the same for a 12-MP JPEG: published with its thumbnail
CAMERAS = (
    ("Canon", "Canon EOS R6", "RF24-70mm F2.8 L IS USM"),
    ("NIKON CORPORATION", "NIKON Z 6_2", "NIKKOR Z 24-70mm f/4 S"),
    ("SONY", "ILCE-7M3", "FE 85mm F1.8"),
    ("FUJIFILM", "X-T4", "XF56mmF1.2 R"),
)


# -- corpus ---------------------------------------------------------------------------------


def camera_jpeg(seed: int, size: tuple[int, int] = SIZE_12MP, quality: int = 92) -> bytes:
    """A JPEG that compresses like a photo: smooth colour fields, hard edges, texture and sensor grain."""
    rng = random.Random(seed)
    width, height = size
    small = (320, 240)
    channels = []
    for _ in range(3):
        ramp = Image.radial_gradient("L") if rng.random() < 0.5 else Image.linear_gradient("L")
        ramp = ramp.rotate(rng.uniform(0, 360), resample=Image.Resampling.BICUBIC, fillcolor=rng.randrange(256))
        channels.append(ramp.resize(small, Image.Resampling.BICUBIC))
    base = Image.merge("RGB", channels)
    draw = ImageDraw.Draw(base)
    for _ in range(rng.randint(6, 14)):
        x, y, r = rng.randrange(small[0]), rng.randrange(small[1]), rng.randint(8, 60)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    base = base.filter(ImageFilter.GaussianBlur(3))
    img = base.resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(3, 8)):  # in-focus edges: window frames, props, a backdrop stand
        x, y = rng.randrange(width), rng.randrange(height)
        draw.rectangle(
            (x, y, x + rng.randint(40, width // 3), y + rng.randint(40, height // 3)),
            outline=(rng.randrange(256), rng.randrange(256), rng.randrange(256)),
            width=rng.randint(4, 30),
        )
    # Mid-frequency texture (fabric, foliage, skin) plus per-pixel grain, as luminance noise.
    texture = Image.effect_noise((width // 4, height // 4), 40).resize(size, Image.Resampling.BILINEAR)
    grain = Image.effect_noise(size, rng.uniform(6, 16))
    luma = ImageChops.add(texture, grain, scale=2.0)
    img = ImageChops.add(img, Image.merge("RGB", (luma, luma, luma)), offset=-128)

    make, model, lens = CAMERAS[seed % len(CAMERAS)]
    taken = time.gmtime(1_750_000_000 + seed * 7)
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = make
    exif[ExifTags.Base.Model] = model
    exif[ExifTags.Base.Orientation] = 1
    exif[ExifTags.Base.DateTime] = time.strftime("%Y:%m:%d %H:%M:%S", taken)
    ifd = exif.get_ifd(ExifTags.IFD.Exif)
    ifd[ExifTags.Base.DateTimeOriginal] = time.strftime("%Y:%m:%d %H:%M:%S", taken)
    ifd[ExifTags.Base.OffsetTimeOriginal] = "+02:00"
    ifd[ExifTags.Base.ExposureTime] = TiffImagePlugin.IFDRational(1, rng.choice((60, 125, 250, 500)))
    ifd[ExifTags.Base.FNumber] = TiffImagePlugin.IFDRational(rng.choice((14, 28, 40, 56, 80)), 10)
    ifd[ExifTags.Base.ISOSpeedRatings] = rng.choice((100, 200, 400, 800))
    ifd[ExifTags.Base.LensModel] = lens
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality, exif=exif.tobytes())
    return out.getvalue()


#: The kinds of 12-MP file a studio meets: (name in the report, file suffix, how one is made from a JPEG).
KINDS = {
    "jpeg": "JPEG, no embedded preview (as Canon writes)",
    "jpeg-mpf": "JPEG with the camera's 1920-px MPF preview (as Sony, Panasonic, Fujifilm write)",
    "heic": "HEIC as iPhones write it (512-px grid tiles, a 320×240 thumbnail item), quality 80",
    "heic-thumb": "HEIC with a 512×384 thumbnail item (large enough for the tile), 512-px tiles, quality 80",
    "dng": "DNG (RAW) with a full-size JPEG preview, as cameras write",
}
SUFFIX = {"jpeg": ".JPG", "jpeg-mpf": ".JPG", "heic": ".HEIC", "heic-thumb": ".HEIC", "dng": ".DNG"}
#: A kind's own generator version, in its folder's name (bump it rather than `CORPUS_VERSION` when only that
#: kind's files change, so the others are not made again). HEIC 2: tiles and a thumbnail item, as phones write.
KIND_VERSION = {"heic": 2, "heic-thumb": 2}
#: The thumbnail item's long edge: iPhones write 320 px (Apple's ImageIO caps it there: a 320×240 item
#: beside the 48 tiles of a 12-MP photo); 512 px is one large enough for a 480-px thumbnail.
HEIC_THUMBNAIL_PX = {"heic": 320, "heic-thumb": 512}


def make_file(kind: str, seed: int, size: tuple[int, int]) -> bytes:
    jpeg = camera_jpeg(seed, size)
    if kind == "jpeg":
        return jpeg
    if kind == "jpeg-mpf":
        return with_camera_preview(jpeg, edge_px=1920, quality=92)
    if kind == "dng":
        return raw_dng(*size, seed=seed, preview_jpeg=jpeg)
    with Image.open(io.BytesIO(jpeg)) as im:
        out = io.BytesIO()
        # iPhones store a 12-MP photo as a grid of 512×512 HEVC tiles (their encoder's size), with a thumbnail item.
        im.save(out, "HEIF", quality=80, exif=im.info["exif"], tile_size=512, thumbnails=[HEIC_THUMBNAIL_PX[kind]])
        return out.getvalue()


def _write_one(path: Path, kind: str, seed: int, size: tuple[int, int]) -> None:
    temp = path.with_name(path.name + ".tmp")
    temp.write_bytes(make_file(kind, seed, size))
    temp.replace(path)  # an interrupted run leaves no truncated image in the cache


def corpus(cache: Path, size: tuple[int, int], count: int, kind: str = "jpeg") -> list[Path]:
    """`count` files of `kind` and `size` in the cache, generating only those not there yet."""
    revision = f"-v{KIND_VERSION[kind]}" if kind in KIND_VERSION else ""
    folder = cache / (f"v{CORPUS_VERSION}-{size[0]}x{size[1]}" + ("" if kind == "jpeg" else f"-{kind}{revision}"))
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"IMG_{i:04d}{SUFFIX[kind]}" for i in range(count)]
    missing = [(i, p) for i, p in enumerate(paths) if not p.is_file()]
    if missing:
        log(f"generating {len(missing)} {size[0]}x{size[1]} {kind} files into {folder} (once)")
        with ProcessPoolExecutor(max_workers=cores()) as pool:
            for future in [pool.submit(_write_one, p, kind, 1000 * size[0] + i, size) for i, p in missing]:
                future.result()
    return paths


# -- measurements ---------------------------------------------------------------------------


@dataclass
class Embedded:
    data: Path
    store: SQLiteStore
    blobs: FileBlobs
    bus: LocalBus
    ingestor: Ingestor


@contextmanager
def fresh_system(work: Path, keep: bool = False) -> Iterator[Embedded]:
    """A real store, blobs and bus in a new data directory under `work`, removed afterwards."""
    work.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="data-", dir=work))
    store = SQLiteStore(data / "fotoflo.sqlite")
    store.ensure_project(PROJECT)
    blobs = FileBlobs(data / "blobs")
    bus = LocalBus()
    ingestor = Ingestor(store, blobs, bus)
    try:
        yield Embedded(data, store, blobs, bus, ingestor)
    finally:
        previews = getattr(ingestor, "previews", None)  # (a tree from before previews were made later: none)
        if previews is not None:
            previews.close()
        store.close()
        if not keep:
            shutil.rmtree(data, ignore_errors=True)


@dataclass
class Throughput:
    label: str
    kind: str
    images: int
    mean_mb: float
    runs_s: list[float]  # until every image was published (visible)
    done_s: list[float]  # until every preview was made too
    cpu_s: list[float]  # CPU seconds of the runs, this process and its pool workers
    others_cores: float  # mean cores other processes used meanwhile

    @property
    def images_per_s(self) -> float:
        return self.images / statistics.median(self.runs_s)

    @property
    def previews_per_s(self) -> float:
        return self.images / statistics.median(self.done_s)

    @property
    def cpu_ms_per_image(self) -> float:
        return 1000 * statistics.median(self.cpu_s) / self.images


def bench_bulk(files: list[Path], work: Path, repeat: int, workers: int | None, kind: str = "jpeg") -> Throughput:
    """`ingest_many` (workers=None: the pool sized to the cores) or, with workers=0, `ingest` in a loop."""
    runs, done, cpu, noise = [], [], [], []
    for _ in range(repeat):
        with fresh_system(work) as system, OtherLoad() as others:
            start = time.perf_counter()
            if workers == 0:
                created = sum(system.ingestor.ingest(path, PROJECT).created for path in files)
            else:
                stats = system.ingestor.ingest_many(files, PROJECT, workers=workers)
                if stats.refused:
                    raise RuntimeError(f"refused: {stats.refused}")
                created = stats.created
            runs.append(time.perf_counter() - start)
            previews = getattr(system.ingestor, "previews", None)
            if previews is not None and not previews.wait_idle(timeout_s=600):
                raise RuntimeError("the previews were not all made within 600 s")
            done.append(time.perf_counter() - start)
        noise.append(others.others_cores)
        cpu.append(others.own_cpu_s)
        if created != len(files):
            raise RuntimeError(f"{created} of {len(files)} images created")
    label = "`Ingestor.ingest`, one thread" if workers == 0 else f"`Ingestor.ingest_many`, {workers} processes"
    mean_mb = statistics.mean(f.stat().st_size for f in files) / 1e6
    return Throughput(label, kind, len(files), mean_mb, runs, done, cpu, statistics.mean(noise))


@dataclass
class Latency:
    label: str
    total_ms: list[float]  # writer's close() → bus publish
    detect_ms: list[float]  # close() → the watcher calls ingest
    size_mb: float
    others_cores: float

    def p(self, pct: float, which: str = "total") -> float:
        return percentile(self.total_ms if which == "total" else self.detect_ms, pct)


def bench_latency(files: list[Path], work: Path, label: str, warmup: int = 2, gap_s: float = 0.05) -> Latency:
    """Write files into a watched hot folder one at a time; time each close() to its bus publish."""
    payloads = [(f.name, f.read_bytes()) for f in files]
    with fresh_system(work) as system:
        hot = system.data / "hotfolder"
        published: dict[int, float] = {}
        started: dict[str, float] = {}
        seqs: dict[str, int] = {}  # the feed entry that published each file (preview announcements come between)
        cond = threading.Condition()

        def on_publish(project: str, seq: int) -> None:
            now = time.perf_counter()
            with cond:
                published[seq] = now
                cond.notify_all()

        def ingest(path: Path) -> IngestResult:
            started[path.name] = time.perf_counter()
            result = system.ingestor.ingest(path, PROJECT)
            with cond:
                seqs[path.name] = result.image.seq
                cond.notify_all()
            return result

        system.bus.subscribe(on_publish)
        watcher = HotFolderWatcher(hot, ingest, rescan_s=3600)
        watcher.start()
        total, detect = [], []
        try:
            with OtherLoad() as others:
                for n, (name, data) in enumerate(payloads, start=1):
                    with open(hot / name, "wb") as fh:  # as a tethering app does: write the file, close it
                        for offset in range(0, len(data), 1 << 20):
                            fh.write(data[offset : offset + (1 << 20)])
                    closed = time.perf_counter()
                    with cond:
                        if not cond.wait_for(lambda name=name: seqs.get(name, -1) in published, timeout=60):
                            raise RuntimeError(f"{name} was not published within 60 s")
                        done = published[seqs[name]]
                    if n > warmup:
                        total.append((done - closed) * 1000)
                        detect.append((started[name] - closed) * 1000)
                    time.sleep(gap_s)
        finally:
            watcher.stop()
    mean_mb = statistics.mean(len(d) for _, d in payloads) / 1e6
    return Latency(label, total, detect, mean_mb, others.others_cores)


# Where one thread spends an ingest: disjoint buckets of a cProfile run, matched by function.
# (label, column, file the function is in, or "~" for C functions, function name)
_BUCKETS = (
    ("JPEG decode (Pillow)", "tottime", "~", "<method 'decode' of 'ImagingDecoder' objects>"),
    ("resize to preview and thumbnail", "tottime", "~", "<method 'resize' of 'ImagingCore' objects>"),
    ("resize: integer reduce", "tottime", "~", "<method 'reduce' of 'ImagingCore' objects>"),
    ("JPEG encode of preview and thumbnail", "tottime", "~", "<method 'encode' of 'ImagingEncoder' objects>"),
    (
        "SHA-256 (once, for the duplicate check and the key)",
        "tottime",
        "~",
        "<built-in method _hashlib.openssl_sha256>",
    ),
    ("read the file", "cumtime", "pathlib.py", "read_bytes"),
    ("blob writes: fsync (3 per image)", "tottime", "~", "<built-in method posix.fsync>"),
    ("SQLite: the preview's feed entry", "cumtime", "sql_images.py", "announce_preview"),
    ("blob writes: the rest", "cumtime", "blobs.py", "put"),
    ("SQLite: duplicate check", "cumtime", "sqlite.py", "find_by_sha"),
    ("SQLite: insert row + feed entry", "cumtime", "sqlite.py", "add_image"),
)


class _InThisProcess:
    """For the profile only: `DecoderPool.analyze` and `.preview` without the worker process."""

    size = 1

    def __init__(self, thumb_first: bool = True) -> None:
        self.thumb_first = thumb_first  # False: both renditions from one decode, whatever the caller asks

    def analyze(
        self, data: bytes, filename: str, limits: Limits, sha256: str | None = None, *, thumb_only: bool = False
    ) -> Analysis:
        return analyze(data, filename, limits, sha256, thumb_only=thumb_only and self.thumb_first)

    def preview(self, source: bytes | Path, filename: str, limits: Limits) -> bytes:
        from dashboard.imaging.decode import make_preview

        return make_preview(source.read_bytes() if isinstance(source, Path) else source, filename, limits)


def profile_ingest(
    files: list[Path], work: Path
) -> tuple[list[tuple[str, float]], float, pstats.Stats, tuple[float, float, float]]:
    """cProfile one-thread `Ingestor.ingest` over `files`, each file's preview made after it in the same thread.

    Per-image ms by bucket, the total, the stats, and the per-image ms of (publishing, the preview after).
    The decode normally runs in a decoder process, out of cProfile's sight; here the same `analyze` (and
    `make_preview`) run in this thread instead, so that their steps show.
    """
    # Imported here: `--baseline` runs this script's measurements (not the profile) on a tree without them.
    from dashboard.previews import PreviewJob, Previews

    class InThisThread(Previews):
        """Previews made when `ensure` asks (in the profiled thread), never in the background."""

        def schedule(self, job: PreviewJob) -> None:
            pass

    with fresh_system(work) as system:
        ingestor = system.ingestor
        in_process = cast(Any, _InThisProcess())
        ingestor.decoders = in_process
        ingestor.previews.close()
        previews = InThisThread(
            system.store, system.blobs, system.bus, ingestor.limits, decoders=in_process, background=in_process
        )
        ingestor.previews = previews
        first = ingestor.ingest(files[0], PROJECT).image  # warm imports and caches outside the profile
        previews.ensure(PreviewJob(PROJECT, first.id, first.sha256, first.filename))
        profiler = cProfile.Profile()
        publish_s = preview_s = 0.0
        start = time.perf_counter()
        profiler.enable()
        for path in files[1:]:
            begun = time.perf_counter()
            image = ingestor.ingest(path, PROJECT).image
            published = time.perf_counter()
            previews.ensure(PreviewJob(PROJECT, image.id, image.sha256, image.filename))
            publish_s += published - begun
            preview_s += time.perf_counter() - published
        profiler.disable()
        wall_s = time.perf_counter() - start
    stats = pstats.Stats(profiler)
    raw = stats.stats  # type: ignore[attr-defined]
    seconds: dict[str, float] = {}
    for label, column, file_end, func in _BUCKETS:
        seconds[label] = sum(
            (v[2] if column == "tottime" else v[3])
            for k, v in raw.items()
            if k[2] == func and (file_end == "~" or k[0].endswith(file_end))
        )
    seconds["blob writes: the rest"] -= seconds["blob writes: fsync (3 per image)"]  # put's time includes fsync
    rows = [(label, s) for label, s in seconds.items() if s > 0]
    rows.append(("everything else (EXIF, convert, copy, Python)", max(0.0, wall_s - sum(s for _, s in rows))))
    n = len(files) - 1
    split = (publish_s * 1000 / n, preview_s * 1000 / n, _both_at_once_ms(files, work))
    return [(label, s * 1000 / n) for label, s in rows], wall_s * 1000 / n, stats, split


def _both_at_once_ms(files: list[Path], work: Path) -> float:
    """Per image, one-thread `Ingestor.ingest` with both renditions from one decode (no thumbnail first)."""
    with fresh_system(work) as system:
        ingestor = system.ingestor
        ingestor.decoders = cast(Any, _InThisProcess(thumb_first=False))
        ingestor.ingest(files[0], PROJECT)  # warm, as the profile does
        start = time.perf_counter()
        for path in files[1:]:
            ingestor.ingest(path, PROJECT)
        return (time.perf_counter() - start) * 1000 / (len(files) - 1)


# -- report ---------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench ingest] {message}", file=sys.stderr, flush=True)


def _yes(met: bool) -> str:
    return "**yes**" if met else "**no**"


def render(
    files: list[Path],
    bulk: list[Throughput],
    latencies: list[Latency],
    profile: tuple[list[tuple[str, float]], float, tuple[float, float, float]],
    work: Path,
) -> str:
    sizes_mb = [f.stat().st_size / 1e6 for f in files]
    jpeg_lib = f"libjpeg-turbo {features.version('libjpeg_turbo')}" if features.check("libjpeg_turbo") else "libjpeg"
    machine = machine_description((f"Pillow {PIL.__version__} ({jpeg_lib})", f"pillow-heif {pillow_heif.__version__}"))
    pool, single, *others = bulk
    n_cores = cores()
    lines = [
        "## Ingest",
        "",
        f"Measured by `python benchmarks/ingest.py` on {machine}.",
        "",
        f"Corpus: {len(files)} generated camera-like JPEGs, {SIZE_12MP[0]}x{SIZE_12MP[1]} (12 MP), "
        f"{min(sizes_mb):.1f} to {max(sizes_mb):.1f} MB (mean {statistics.mean(sizes_mb):.1f} MB), quality 92, "
        "with EXIF make, model, lens, exposure and DateTimeOriginal; the same pictures again with the "
        "1920×1440 preview many cameras embed in an MPF segment, as HEIC (512-px tiles, with the 320×240 "
        "thumbnail item iPhones write, or one of 512×384 that serves as the tile), and as DNG (16-bit Bayer data "
        "and that JPEG as the full-size preview); read from the page cache. "
        f"Each run ingests into a fresh data directory ({filesystem_of(work)}, blobs fsynced) with the real "
        "`SQLiteStore`, `FileBlobs` and `LocalBus`. Throughput is the median of "
        f"{len(pool.runs_s)} runs and includes starting the process pool. Every file gets its SHA-256, "
        "EXIF, an upright preview (long edge 1600 to 2400 px) and a 480-px thumbnail. A JPEG larger than a "
        "preview without a camera preview is published (*visible*) as soon as its thumbnail exists (decoded at "
        "1/8 scale), and so is a HEIC with a thumbnail item that large (decoded instead of its HEVC image); "
        "its preview is made after it by the niced background decoders, once a thumbnail decoder is idle "
        "(*previews done*: until the last one is made).",
        "",
        "| Measurement | Result | Target | Met |",
        "| --- | --- | --- | --- |",
    ]
    target_note = "" if n_cores == 2 else f" (this machine has {n_cores} cores)"
    _, _, (publish_ms, preview_ms, both_ms) = profile
    # What the cores could do at best, from one thread's time per image: shown beside a target not met.
    floors = {
        "visible": 1000 * n_cores / publish_ms,
        "previews": 1000 * n_cores / (publish_ms + preview_ms),
    }

    def floor(which: str, met: bool) -> str:
        if met:
            return ""
        text = f" (at most {floors[which]:.1f} images/s on {n_cores} cores, by the profile below"
        if which == "previews":  # the other way: no thumbnail first, one decode for both renditions
            text += (
                f"; one decode for both renditions would allow {1000 * n_cores / both_ms:.1f} images/s, "
                "but visible only at that rate too"
            )
        return text + ")"

    def latency_floor(lat: Latency, target_ms: float) -> str:
        """Beside a 12-MP latency target not met: the least it could be, by the watcher's wait and the profile."""
        if lat.label != "12 MP" or lat.p(50) <= target_ms:
            return ""
        least = lat.p(50, "detect") + publish_ms
        return (
            f" (at least {least:.0f} ms here: the watcher's {lat.p(50, 'detect'):.0f} ms, then {publish_ms:.0f} ms "
            "to publish in one thread with no decoder process, by the profile below)"
        )

    visible_met = pool.images_per_s >= TARGET_IMAGES_PER_S
    previews_met = pool.previews_per_s >= TARGET_PREVIEWS_PER_S
    lines.append(
        f"| 12-MP bulk ingest, {KINDS['jpeg']}, {pool.label}: **visible** | **{pool.images_per_s:.1f} images/s** "
        f"({statistics.median(pool.runs_s):.2f} s for {pool.images}; runs "
        f"{', '.join(f'{s:.2f}' for s in pool.runs_s)} s) | ≥ {TARGET_IMAGES_PER_S:.0f} images/s on 2 cores"
        f"{target_note}{floor('visible', visible_met)} | {_yes(visible_met)} |"
    )
    lines.append(
        f"| the same: **every preview done** | **{pool.previews_per_s:.1f} images/s** "
        f"({statistics.median(pool.done_s):.2f} s for {pool.images}; runs "
        f"{', '.join(f'{s:.2f}' for s in pool.done_s)} s) | ≥ {TARGET_PREVIEWS_PER_S:.0f} images/s on 2 cores"
        f"{target_note}{floor('previews', previews_met)} | {_yes(previews_met)} |"
    )
    lines.append(
        f"| 12-MP bulk ingest, {single.label} | visible {single.images_per_s:.1f} images/s "
        f"({statistics.median(single.runs_s):.2f} s for {single.images}), every preview done "
        f"{single.previews_per_s:.1f} images/s | for comparison | |"
    )
    lines += other_rows(others, n_cores)
    for lat in latencies:
        target_ms = TARGET_P50_LATENCY_12MP_MS if lat.label == "12 MP" else TARGET_P50_LATENCY_MS
        lines.append(
            f"| Hot folder → bus, {lat.label} ({lat.size_mb:.1f} MB files): writer's `close()` to "
            f"`Bus.publish` | **p50 {lat.p(50):.0f} ms**, p95 {lat.p(95):.0f} ms, max {max(lat.total_ms):.0f} ms "
            f"over {len(lat.total_ms)} files (of which close → ingest call: p50 {lat.p(50, 'detect'):.0f} ms) | "
            f"p50 ≤ {target_ms:.0f} ms{latency_floor(lat, target_ms)} | {_yes(lat.p(50) <= target_ms)} |"
        )
    noise = [("pool runs", pool.others_cores), ("one-thread runs", single.others_cores)]
    noise += [(f"{other.kind} runs", other.others_cores) for other in others]
    noise += [(f"{lat.label} latency", lat.others_cores) for lat in latencies]
    lines += [
        "",
        f"CPU per 12-MP image, all processes of the run: {pool.cpu_ms_per_image:.0f} ms with the pool, "
        f"{single.cpu_ms_per_image:.0f} ms in one thread; so {n_cores} fully used cores could ingest at most "
        f"{1000 * n_cores / pool.cpu_ms_per_image:.1f} images/s this way.",
        "",
        "Other processes on the machine meanwhile used on average "
        + ", ".join(f"{cores_:.2f} cores during the {what}" for what, cores_ in noise)
        + ".",
    ]
    if max(c for _, c in noise) > 0.25:
        lines += [
            "",
            "> **The machine was not idle** while this ran: the wall-clock figures above are pessimistic. "
            "Rerun `scripts/bench` on an otherwise idle machine for clean numbers.",
        ]
    buckets, total_ms, _ = profile
    lines += [
        "",
        f"### Where one ingest of a 12-MP JPEG spends its time ({total_ms:.0f} ms, one thread)",
        "",
        "cProfile of `Ingestor.ingest` over the corpus, each image's preview made right after it in the same "
        f"thread (`Previews.ensure`): {publish_ms:.0f} ms to publish, {preview_ms:.0f} ms for the preview, per "
        f"image ({both_ms:.0f} ms for both from one decode, without thumbnail first, timed apart without the "
        "profiler); "
        "grouped below by the function that does the work. "
        "The decode, resize and encode normally run in a decoder process (`dashboard.decoders`); for this "
        "profile they run in the calling thread, beside reading, the SHA-256, the blob writes and SQLite.",
        "",
        "| Step | ms per image | Share |",
        "| --- | ---: | ---: |",
    ]
    for label, ms in sorted(buckets, key=lambda b: -b[1]):
        lines.append(f"| {label} | {ms:.1f} | {100 * ms / total_ms:.0f} % |")
    lines += ["", "Regenerate with `scripts/bench` (all benchmarks) or `python benchmarks/ingest.py`."]
    return "\n".join(lines)


def other_rows(others: list[Throughput], n_cores: int) -> list[str]:
    """The table rows of the other kinds of file; a HEIC's visible and every-preview-done rates against their target."""
    lines = []
    for other in others:
        what = f"12-MP bulk ingest, {KINDS[other.kind]}, {other.mean_mb:.1f} MB files, {other.label}"
        runs = f"{statistics.median(other.runs_s):.2f} s for {other.images}"
        if other.kind.startswith("heic"):
            # CPU of the whole run (publishing and the previews after), so the best the cores could do for both.
            floor = f" (at most {1000 * n_cores / other.cpu_ms_per_image:.1f} images/s on {n_cores} cores by its CPU)"
            target = f"≥ {TARGET_HEIC_IMAGES_PER_S:.0f} images/s on 2 cores"
            visible_met = other.images_per_s >= TARGET_HEIC_IMAGES_PER_S
            done_met = other.previews_per_s >= TARGET_HEIC_IMAGES_PER_S
            lines.append(
                f"| {what}: **visible** | **{other.images_per_s:.1f} images/s** ({runs}) | {target} "
                f"| {_yes(visible_met)} |"
            )
            lines.append(
                f"| the same: **every preview done** | **{other.previews_per_s:.1f} images/s** "
                f"({statistics.median(other.done_s):.2f} s; CPU {other.cpu_ms_per_image:.0f} ms per image, both) | "
                f"{target}{'' if done_met else floor} | {_yes(done_met)} |"
            )
            continue
        lines.append(
            f"| {what} | **{other.images_per_s:.1f} images/s** "
            f"({runs}; CPU {other.cpu_ms_per_image:.0f} ms per image) | "
            + (
                f"≥ {TARGET_MPF_IMAGES_PER_S:.0f} images/s | {_yes(other.images_per_s >= TARGET_MPF_IMAGES_PER_S)} |"
                if other.kind == "jpeg-mpf"
                else "measured (no target) | |"
            )
        )
    return lines


# -- before/after: the same measurements on two trees, interleaved --------------------------------


def child_round(args: argparse.Namespace) -> dict[str, list[float]]:
    """One round in this process (whose `dashboard` is the tree on PYTHONPATH): seconds per run, latencies in ms."""
    work = args.work or args.cache / "runs"
    big = corpus(args.cache, SIZE_12MP, max(args.count, args.latency_count + 2))
    files = big[: args.count]
    with fresh_system(work) as system:  # start what a server has running already (decoder processes)
        system.ingestor.ingest(files[0], PROJECT)
    pool = bench_bulk(files, work, 1, args.workers or cores())
    mpf = bench_bulk(corpus(args.cache, SIZE_12MP, args.count, "jpeg-mpf"), work, 1, args.workers or cores())
    single = bench_bulk(files, work, 1, 0)
    latency = bench_latency(big[: args.latency_count + 2], work, "12 MP")
    return {
        "pool_s": pool.runs_s,
        "pool_done_s": pool.done_s,
        "mpf_s": mpf.runs_s,
        "single_s": single.runs_s,
        "latency_ms": latency.total_ms,
    }


def compare(args: argparse.Namespace) -> str:
    """`--repeat` rounds, each running the code before (`--baseline`) and this code in turn, in child processes."""
    trees = {"before": Path(args.baseline).resolve(), "this": ROOT}
    results: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    forwarded = ["--count", str(args.count), "--latency-count", str(args.latency_count), "--cache", str(args.cache)]
    if args.workers:
        forwarded += ["--workers", str(args.workers)]
    if args.work:
        forwarded += ["--work", str(args.work)]
    with OtherLoad() as others:
        for round_ in range(args.repeat):
            for name, tree in trees.items():
                env = {**os.environ, "PYTHONPATH": str(tree), "FOTOFLO_BENCH_TREE": str(tree)}
                cmd = [sys.executable, __file__, "--child-round", *forwarded]
                out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
                for key, values in json.loads(out.splitlines()[-1]).items():
                    results[name].setdefault(key, []).extend(values)
                log(f"round {round_ + 1}, {name}: done")
    commit = subprocess.run(
        ["git", "-C", str(args.baseline), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    lines = [
        f"`python benchmarks/ingest.py --baseline {args.baseline}`"
        + (f" (a checkout of {commit})" if commit else "")
        + f": {args.count} 12-MP JPEGs, {args.repeat} rounds "
        f"alternating the trees; other processes used {others.others_cores:.2f} cores meanwhile.",
        "",
        "| Measure | before | this | this / before |",
        "| --- | ---: | ---: | ---: |",
    ]
    measures = (
        ("pool_s", "`ingest_many`, visible, images/s"),
        ("pool_done_s", "`ingest_many`, every preview done, images/s"),
        ("mpf_s", "`ingest_many`, JPEGs with an MPF preview, images/s"),
        ("single_s", "`ingest` in one thread, visible, images/s"),
    )
    for key, label in measures:
        before, this = (args.count / statistics.median(results[n][key]) for n in trees)
        lines.append(f"| {label} | {before:.1f} | {this:.1f} | {this / before:.2f} |")
    for pct in (50, 95):
        before, this = (percentile(results[n]["latency_ms"], pct) for n in trees)
        lines.append(f"| hot folder → bus p{pct}, ms | {before:.0f} | {this:.0f} | {this / before:.2f} |")
    return "\n".join(lines)


def bench_kinds(args: argparse.Namespace, work: Path, workers: int) -> list[Throughput]:
    """`ingest_many` over each of `args.kinds`' corpus (HEIC and DNG: at most `--slow-count` files)."""
    others = []
    for kind in args.kinds:
        count = args.count if kind not in ("heic", "heic-thumb", "dng") else min(args.count, args.slow_count)
        kind_files = corpus(args.cache, SIZE_12MP, count, kind)
        log(f"ingest_many with {workers} processes, {count} {kind} files x {args.repeat}")
        others.append(bench_bulk(kind_files, work, args.repeat, workers, kind))
        log(f"  visible {others[-1].images_per_s:.1f} images/s, previews done {others[-1].previews_per_s:.1f} images/s")
    return others


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    parser.add_argument("--count", type=int, default=60, help="12-MP images for the throughput runs (default 60)")
    parser.add_argument("--latency-count", type=int, default=40, help="files per latency run (default 40)")
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs to take the median of (default 3)")
    parser.add_argument("--workers", type=int, default=None, help="pool size for ingest_many (default: the cores)")
    parser.add_argument(
        "--cache", type=Path, default=cache_home / "fotoflo-bench", help="generated images (default %(default)s)"
    )
    parser.add_argument("--work", type=Path, help="where fresh data directories go (default CACHE/runs)")
    parser.add_argument("--doc", type=Path, default=DOC, help="markdown file to update (default docs/benchmarks.md)")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing the doc")
    parser.add_argument(
        "--write",
        action="store_true",
        help="write the doc's section (the default); with --baseline, measure fully too and add the comparison",
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=120,
        metavar="S",
        help="first wait up to S seconds for other processes to go quiet (default 120; 0: do not wait)",
    )
    parser.add_argument("--profile", action="store_true", help="also print the top functions of the cProfile run")
    parser.add_argument(
        "--kinds",
        nargs="*",
        default=["jpeg-mpf", "heic", "heic-thumb", "dng"],
        choices=[k for k in KINDS if k != "jpeg"],
        help="other 12-MP files to measure with the pool (default: jpeg-mpf heic heic-thumb dng)",
    )
    parser.add_argument(
        "--kinds-only",
        action="store_true",
        help="measure only the --kinds (no JPEG, latency or profile runs) and print their rows; writes nothing",
    )
    parser.add_argument(
        "--slow-count", type=int, default=20, help="HEIC and DNG files at most (slow to make; default 20)"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="also run a copy of the code from before a change (DIR holds dashboard/), interleaved, and print both",
    )
    parser.add_argument("--child-round", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_round:
        print(json.dumps(child_round(args)))
        return 0
    comparison = None
    if args.baseline is not None:
        if not (args.baseline / "dashboard" / "__init__.py").exists():
            parser.error(f"{args.baseline} holds no dashboard/ package")
        if args.wait_idle > 0:
            log(f"  others use {wait_for_idle(args.wait_idle):.2f} cores")
        comparison = compare(args)
        print(comparison)
        if not args.write:
            return 0
        args.wait_idle = 0  # with --write: the full measurement follows, and the comparison goes in the doc too
    work = args.work or args.cache / "runs"
    workers = args.workers or cores()

    if args.kinds_only:
        if args.wait_idle > 0:
            log(f"  others use {wait_for_idle(args.wait_idle):.2f} cores")
        print("\n".join(other_rows(bench_kinds(args, work, workers), cores())))
        return 0
    big = corpus(args.cache, SIZE_12MP, max(args.count, args.latency_count + 2))
    small = corpus(args.cache, SIZE_2MP, args.latency_count + 2)
    files = big[: args.count]
    if args.wait_idle > 0:
        log(f"waiting up to {args.wait_idle:.0f} s for other processes to go quiet")
        log(f"  others use {wait_for_idle(args.wait_idle):.2f} cores")

    log(f"ingest_many with {workers} processes, {len(files)} images x {args.repeat}")
    pool = bench_bulk(files, work, args.repeat, workers)
    log(f"  {pool.images_per_s:.1f} images/s")
    log(f"ingest in one thread, {len(files)} images x {args.repeat}")
    single = bench_bulk(files, work, args.repeat, 0)
    log(f"  {single.images_per_s:.1f} images/s")
    others = bench_kinds(args, work, workers)
    latencies = []
    for label, paths in (("12 MP", big[: args.latency_count + 2]), ("2 MP", small)):
        log(f"hot-folder latency, {label}, {len(paths) - 2} files")
        lat = bench_latency(paths, work, label)
        log(f"  p50 {lat.p(50):.0f} ms, p95 {lat.p(95):.0f} ms")
        latencies.append(lat)
    log("profiling one-thread ingest")
    buckets, total_ms, stats, split = profile_ingest(files[: min(len(files), 16)], work)
    if args.profile:
        stats.sort_stats("tottime").print_stats(25)

    section = render(files, [pool, single, *others], latencies, (buckets, total_ms, split), work)
    if comparison is not None:
        section = section.replace(
            "\nRegenerate with", f"\n### Before and after, in one run\n\n{comparison}\n\nRegenerate with", 1
        )
    if args.no_write:
        print(section)
    else:
        write_section("ingest", section, args.doc)
        log(f"wrote the ingest section of {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
