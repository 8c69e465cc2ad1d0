"""Sample images and projects that look like a real shoot: for demos, notebooks, tests, benchmarks.

`photo_jpeg` draws a small landscape with camera EXIF; `seed_project` fills a project with many
images fast (one real ingest, its files linked under many hashes), for paging and scale checks.
"""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from dashboard.blobs import FileBlobs
from dashboard.events import ImageRecord, new_id
from dashboard.ingest import analyze
from dashboard.store.sqlite import SQLiteStore
from dashboard.timeutil import utc_now_iso


def photo_jpeg(
    seed: int,
    size: tuple[int, int] = (1200, 800),
    *,
    exif: bool = True,
    captured: str | None = None,
    iso: int = 400,
    focal_length_mm: float = 33.0,
) -> bytes:
    """A photo-like JPEG: a sky gradient, hills, a sun, grain; camera EXIF when asked.

    `captured` is the EXIF DateTimeOriginal ("YYYY:MM:DD HH:MM:SS"; by default one derived from `seed`).
    """
    rng = random.Random(seed)
    w, h = size
    top = (rng.randrange(40, 120), rng.randrange(80, 160), rng.randrange(150, 240))
    bottom = (rng.randrange(200, 255), rng.randrange(120, 200), rng.randrange(60, 140))
    sky = Image.linear_gradient("L").resize((w, h))
    im = Image.composite(Image.new("RGB", (w, h), bottom), Image.new("RGB", (w, h), top), sky)
    draw = ImageDraw.Draw(im)
    sun = (rng.randrange(w // 6, 5 * w // 6), rng.randrange(h // 8, h // 2))
    r = rng.randrange(h // 14, h // 7)
    draw.ellipse((sun[0] - r, sun[1] - r, sun[0] + r, sun[1] + r), fill=(255, 236, 190))
    for layer in range(3):
        base = h * (0.55 + 0.12 * layer)
        shade = (20 + 25 * layer + rng.randrange(30), 50 + 20 * layer + rng.randrange(40), 40 + rng.randrange(30))
        points = [(0, h)] + [(x, base - rng.randrange(0, h // 6)) for x in range(0, w + 80, 80)] + [(w, h)]
        draw.polygon(points, fill=shade)
    im = im.filter(ImageFilter.GaussianBlur(2))
    noise = Image.effect_noise((w, h), 18).convert("RGB")
    im = Image.blend(im, noise, 0.06)
    out = io.BytesIO()
    extra = {}
    if exif:
        data = Image.Exif()
        data[0x010F] = "Fujifilm"
        data[0x0110] = "X-T5"
        ifd = data.get_ifd(0x8769)
        ifd[0x9003] = captured or f"2026:11:2{seed % 8} 1{seed % 10}:{seed % 60:02d}:{(seed * 7) % 60:02d}"
        ifd[0xA434] = "XF 33mm F1.4 R LM WR"
        ifd[0x829A] = 1 / 250
        ifd[0x829D] = 2.8
        ifd[0x8827] = iso
        ifd[0x920A] = focal_length_mm
        extra["exif"] = data.tobytes()
    im.save(out, "JPEG", quality=85, **extra)
    return out.getvalue()


#: Hard links made to one source file; ext4 refuses more than 65,000 (`OSError: Too many links`).
LINKS_PER_FILE = 60_000


def seed_project(data: Path, project: str, count: int) -> None:
    """Fill a project with `count` images fast: one real ingest's files, linked under many hashes.

    Each blob is a hard link to a template file; a fresh copy of the template is made every
    `LINKS_PER_FILE` images, so a project of any size can be seeded (100,000 in about 40 s here).
    """
    store = SQLiteStore(data / "fotoflo.sqlite")
    blobs = FileBlobs(data / "blobs")
    try:
        store.ensure_project(project)
        template = photo_jpeg(7, (600, 400), exif=False)
        analysis = analyze(template, "template.jpg")
        payloads = {"original": template, "preview": analysis.preview_jpeg, "thumb": analysis.thumb_jpeg}
        now = utc_now_iso()
        sources: dict[str, Path] = {}
        for i in range(count):
            sha = f"{i:064x}"
            for kind, payload in payloads.items():
                if i % LINKS_PER_FILE == 0:
                    sources[kind] = data / "blobs" / f"seed-{kind}-{i // LINKS_PER_FILE}"
                    sources[kind].parent.mkdir(parents=True, exist_ok=True)
                    sources[kind].write_bytes(payload)
                target = blobs.path(kind, sha)
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists():
                    os.link(sources[kind], target)
            store.add_image(ImageRecord(
                id=new_id(), project=project, filename=f"IMG_{i:05d}.jpg", sha256=sha,
                size_bytes=len(template), width=600, height=400, format="JPEG", mime="image/jpeg",
                captured_at=now, camera_make=None, camera_model=None, created_at=now,
            ))  # fmt: skip
    finally:
        store.close()
