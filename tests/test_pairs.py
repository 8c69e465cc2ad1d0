"""RAW + JPEG pairs (dashboard/pairs.py) through the one ingest door: either order, one image, two files."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dashboard import pairs
from dashboard.events import IMAGE_UPDATED, PAIRED_JPEG, PAIRED_RAW, ImageRecord
from dashboard.imaging.analysis import sha256_of
from dashboard.samples import photo_jpeg, raw_dng
from tests.support.embedded import Embedded

PROJECT = "default"
TAKEN = "2026:11:20 14:03:09"


@pytest.fixture(scope="module")
def raw() -> bytes:
    return raw_dng(1200, 800, seed=7, captured=TAKEN)


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    return photo_jpeg(7, (1200, 800), captured=TAKEN)


def images(embedded: Embedded) -> list[ImageRecord]:
    return embedded.store.list_images(PROJECT, limit=50)


def test_jpeg_first_then_its_raw_joins_the_same_image(embedded: Embedded, raw: bytes, jpeg: bytes) -> None:
    first = embedded.ingestor.ingest(jpeg, PROJECT, filename="IMG_0001.JPG")
    second = embedded.ingestor.ingest(raw, PROJECT, filename="img_0001.dng")

    assert first.created and not second.created and second.updated
    (image,) = images(embedded)
    assert image.id == first.image.id == second.image.id
    assert (image.format, image.sha256, image.version) == ("JPEG", sha256_of(jpeg), 1)
    assert (image.raw_sha256, image.raw_filename, image.raw_format) == (sha256_of(raw), "img_0001.dng", "DNG")
    assert image.raw_size_bytes == len(raw)
    assert embedded.blobs.path("original", sha256_of(raw)).read_bytes() == raw
    last = embedded.store.changes(PROJECT)[-1]
    assert (last.kind, last.data, last.image) == (IMAGE_UPDATED, PAIRED_RAW, image)


def test_raw_first_is_shown_at_once_then_the_jpeg_becomes_the_shown_file(
    embedded: Embedded, raw: bytes, jpeg: bytes
) -> None:
    first = embedded.ingestor.ingest(raw, PROJECT, filename="IMG_0001.DNG").image
    assert (first.format, first.raw_sha256) == ("DNG", None)  # published from its embedded preview
    embedded.store.set_rating(PROJECT, first.id, rating=4, flag="pick")

    second = embedded.ingestor.ingest(jpeg, PROJECT, filename="IMG_0001.JPG")

    assert second.updated and not second.created
    (image,) = images(embedded)
    assert (image.id, image.seq, image.rating, image.flag) == (first.id, first.seq, 4, "pick")
    assert (image.format, image.filename, image.sha256, image.version) == ("JPEG", "IMG_0001.JPG", sha256_of(jpeg), 2)
    assert (image.raw_sha256, image.raw_filename, image.raw_format) == (sha256_of(raw), "IMG_0001.DNG", "DNG")
    assert embedded.blobs.exists("thumb", sha256_of(jpeg))
    last = embedded.store.changes(PROJECT)[-1]
    assert (last.kind, last.data, last.image) == (IMAGE_UPDATED, PAIRED_JPEG, image)


@pytest.mark.parametrize("raw_first", [True, False])
def test_sending_a_pair_again_changes_nothing(embedded: Embedded, raw: bytes, jpeg: bytes, raw_first: bool) -> None:
    order = [(raw, "IMG_0001.DNG"), (jpeg, "IMG_0001.JPG")]
    if not raw_first:
        order.reverse()
    for data, name in order:
        embedded.ingestor.ingest(data, PROJECT, filename=name)
    seq = embedded.store.last_seq(PROJECT)

    again = [embedded.ingestor.ingest(data, PROJECT, filename=name) for data, name in order * 2]

    assert not any(r.created or r.updated for r in again)
    (image,) = images(embedded)
    assert {r.image.id for r in again} == {image.id}
    assert embedded.store.last_seq(PROJECT) == seq
    assert embedded.store.find_by_sha(PROJECT, sha256_of(raw)) == image


def test_a_raw_without_its_jpeg_stays_an_image_of_its_own(embedded: Embedded, raw: bytes) -> None:
    embedded.ingestor.ingest(raw, PROJECT, filename="IMG_0001.DNG")
    embedded.ingestor.ingest(photo_jpeg(8, (400, 300)), PROJECT, filename="IMG_0002.JPG")  # another stem
    embedded.ingestor.ingest(photo_jpeg(9, (400, 300), captured=TAKEN), PROJECT, filename="IMG_0001.PNG.JPG")

    by_name = {i.filename: i for i in images(embedded)}
    assert set(by_name) == {"IMG_0001.DNG", "IMG_0002.JPG", "IMG_0001.PNG.JPG"}
    assert by_name["IMG_0001.DNG"].raw_sha256 is None


def test_files_in_other_folders_do_not_pair(embedded: Embedded, raw: bytes, jpeg: bytes) -> None:
    embedded.ingestor.ingest(raw, PROJECT, filename="IMG_0001.DNG", folder="card-a")
    embedded.ingestor.ingest(jpeg, PROJECT, filename="IMG_0001.JPG", folder="card-b")

    assert len(images(embedded)) == 2


def test_two_raws_of_one_stem_never_share_a_jpeg(embedded: Embedded, raw: bytes, jpeg: bytes) -> None:
    embedded.ingestor.ingest(jpeg, PROJECT, filename="IMG_0001.JPG")
    embedded.ingestor.ingest(raw, PROJECT, filename="IMG_0001.DNG")
    other = raw_dng(1200, 800, seed=8, captured=TAKEN)

    result = embedded.ingestor.ingest(other, PROJECT, filename="IMG_0001.DNG")

    assert result.created
    assert len(images(embedded)) == 2


# -- the rule -------------------------------------------------------------------------------------


def record(filename: str, fmt: str, captured_at: str, created_at: str, **more: object) -> ImageRecord:
    base = ImageRecord(
        id="i", project=PROJECT, filename=filename, sha256="s", size_bytes=1, width=1, height=1, format=fmt,
        mime="image/jpeg", captured_at=captured_at, camera_make=None, camera_model=None, created_at=created_at,
    )  # fmt: skip
    return replace(base, **more)  # type: ignore[arg-type]


def test_pair_key_is_folder_and_stem_case_folded() -> None:
    assert pairs.pair_key("a/b", "IMG_0001.CR3", "CR3") == pairs.pair_key("a/b/", "img_0001.jpg", "JPEG")
    assert pairs.pair_key(".", "IMG_0001.HEIC", "HEIF") == pairs.pair_key("", "IMG_0001.NEF", "NEF") == "/img_0001"
    assert pairs.pair_key("", "IMG_0001.png", "PNG") is None
    assert pairs.pair_key("a", "IMG_0001.CR3", "CR3") != pairs.pair_key("b", "IMG_0001.JPG", "JPEG")
    key = pairs.pair_key("clients/Smith wedding", "IMG_0001.CR3", "CR3")
    assert key is not None and key.endswith("/img_0001") and "Smith" not in key  # the folder only as a digest


@pytest.mark.parametrize(
    ("captured", "arrived", "pair"),
    [
        ("2026-11-20T14:03:09", "2026-11-20T15:00:00.000Z", True),  # one capture: any time later
        ("2026-11-20T14:03:10", "2026-11-20T14:05:00.000Z", True),  # capture times differ, seconds apart
        ("2026-11-20T14:03:10", "2026-11-20T14:05:01.000Z", False),  # …but not past the window
        ("2025-02-01T09:00:00", "2026-11-20T15:00:00.000Z", False),  # the counter came round again
    ],
)
def test_pairs_with_one_capture(captured: str, arrived: str, pair: bool) -> None:
    stored = record("IMG_0001.JPG", "JPEG", "2026-11-20T14:03:09", "2026-11-20T14:03:00.000Z")
    new = record("IMG_0001.CR3", "CR3", captured, arrived)

    assert pairs.pairs_with(stored, new, now=arrived) is pair


def test_pairs_need_one_raw_and_one_jpeg_and_no_partner_yet() -> None:
    stored = record("IMG_0001.JPG", "JPEG", "2026-11-20T14:03:09", "2026-11-20T14:03:00.000Z")
    now = "2026-11-20T14:03:01.000Z"
    assert not pairs.pairs_with(stored, replace(stored, format="JPEG"), now=now)
    assert not pairs.pairs_with(stored, replace(stored, format="PNG"), now=now)
    assert not pairs.pairs_with(replace(stored, raw_sha256="r"), replace(stored, format="CR3"), now=now)
    assert pairs.pairs_with(replace(stored, format="NEF"), replace(stored, format="HEIF"), now=now)
