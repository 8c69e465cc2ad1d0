"""`dashboard.export`: safe, distinct names; CSV and text; a streamed ZIP whose length is known up front."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import httpx
import pytest

from dashboard.events import ImageRecord
from dashboard.export import (
    CSV_COLUMNS,
    StoredZip,
    ZipMember,
    attachment,
    camera_name,
    filenames_txt,
    member_names,
    metadata_csv,
    safe_filename,
    zip_date_time,
)
from tests.support.images import jpeg_bytes
from tests.support.servers import ServerFactory
from tests.test_cli import fotoflo


def image(**overrides: object) -> ImageRecord:
    fields: dict[str, object] = {
        "id": "abc123", "project": "p", "filename": "IMG_0001.JPG", "sha256": "0" * 64, "size_bytes": 10,
        "width": 6000, "height": 4000, "format": "JPEG", "mime": "image/jpeg", "captured_at": "2024-05-17T14:03:09",
        "camera_make": "Canon", "camera_model": "Canon EOS R5", "created_at": "2024-05-17T14:03:10.000Z",
    }  # fmt: skip
    fields.update(overrides)
    return ImageRecord(**fields)  # type: ignore[arg-type]


def test_member_names_are_safe_and_distinct_ignoring_case() -> None:
    names = ["IMG_1.JPG", "img_1.jpg", "IMG_1 (2).JPG", "IMG_1.JPG", "../../etc/passwd", "a\\b:c.jpg", "..", "",
             "noext", "noext", ".hidden.jpg", "été.jpg", "x" * 300 + ".jpg"]  # fmt: skip
    got = member_names(names)
    assert got[:4] == ["IMG_1.JPG", "img_1 (2).jpg", "IMG_1 (2) (2).JPG", "IMG_1 (3).JPG"]
    assert got[4:10] == [".._.._etc_passwd", "a_b_c.jpg", "image", "image (2)", "noext", "noext (2)"]
    assert got[10:12] == [".hidden.jpg", "été.jpg"]
    assert len(got[12]) == 200
    assert len({n.casefold() for n in got}) == len(got)
    assert all("/" not in n and "\\" not in n and n not in (".", "..") for n in got)


def test_safe_filename_and_attachment() -> None:
    assert safe_filename('Client "picks": day 1/2') == "Client _picks__ day 1_2"
    assert safe_filename("  trailing dots... ") == "trailing dots"
    assert safe_filename("\x00\x1f", "collection") == "collection"
    assert attachment("Selects", "zip") == "attachment; filename=\"Selects.zip\"; filename*=UTF-8''Selects.zip"
    header = attachment("Mariée / 2024", "csv")
    assert header.startswith('attachment; filename="Mari_e _ 2024.csv"; ')
    assert header.endswith("filename*=UTF-8''Mari%C3%A9e%20_%202024.csv")
    assert header.isascii() and "\n" not in attachment("a\r\nSet-Cookie: x", "txt")


def test_camera_names_say_the_make_once() -> None:
    assert camera_name(image()) == "Canon EOS R5"
    assert camera_name(image(camera_model="EOS R5")) == "Canon EOS R5"
    assert camera_name(image(camera_make="NIKON", camera_model="Z 8")) == "NIKON Z 8"
    assert camera_name(image(camera_make="FUJIFILM", camera_model="fujifilm X-T5")) == "fujifilm X-T5"
    assert camera_name(image(camera_make=None, camera_model=None)) == ""
    assert camera_name(image(camera_make="Apple", camera_model=None)) == "Apple"


def test_text_and_csv() -> None:
    images = [
        image(),
        image(id="def456", filename='odd, "quoted"\nname.jpg', camera_make=None, camera_model=None,
              exif={"lens": "RF 50mm", "exposure_time": "1/125", "f_number": 1.2, "iso": 800, "focal_length_mm": 50.0},
              rating=5, flag="pick", label="red"),
    ]  # fmt: skip
    assert filenames_txt(images[:1]) == "IMG_0001.JPG\n"
    assert filenames_txt([]) == ""
    text = metadata_csv(images)
    assert "\r\n" in text
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == list(CSV_COLUMNS)
    assert rows[1] == ["IMG_0001.JPG", "abc123", "0" * 64, "2024-05-17T14:03:09", "Canon EOS R5", "", "", "", "", "",
                       "6000", "4000", "0", "none", "none"]  # fmt: skip
    assert rows[2] == ['odd, "quoted"\nname.jpg', "def456", "0" * 64, "2024-05-17T14:03:09", "", "RF 50mm", "1/125",
                       "1.2", "800", "50.0", "6000", "4000", "5", "pick", "red"]  # fmt: skip


def test_csv_cells_never_run_as_formulas() -> None:
    # A file name (from a hot folder anyone can drop into) and EXIF text (from the file) are untrusted.
    attack = '=HYPERLINK("http://x","y").jpg'
    images = [
        image(filename=attack, exif={"lens": "+cmd|' /C calc'!A0", "exposure_time": "-2+3"}, camera_make="@SUM(1)",
              camera_model=None, label="\t=1+1"),
        image(id="def456", filename="\r=1+1.jpg", exif={"f_number": -1.5, "iso": 100}),
    ]  # fmt: skip

    rows = list(csv.reader(io.StringIO(metadata_csv(images), newline="")))

    assert len(rows) == 3
    first, second = (dict(zip(CSV_COLUMNS, row, strict=True)) for row in rows[1:])
    assert first["filename"] == "'" + attack
    assert (first["lens"], first["exposure"], first["camera"]) == ("'+cmd|' /C calc'!A0", "'-2+3", "'@SUM(1)")
    assert first["label"] == "'\t=1+1"
    assert second["filename"] == "'\r=1+1.jpg"
    assert second["f_number"] == "-1.5"  # a number is a number, not text that could be a formula
    risky = [cell for row in rows[1:] for cell in row if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert risky == ["-1.5"]


NASTY = ["two\nlines.jpg", "cr\rreturn.jpg", "crlf\r\n.jpg", "nul\x00.jpg", "vt\x0bff\x0c.jpg", "fs\x1c\x1d\x1e.jpg",
         "nel\x85.jpg", "ls\u2028ps\u2029.jpg", "bad-utf8-\udcff.jpg", "tab\tname.jpg"]  # fmt: skip


def test_a_name_is_always_one_line_of_export_txt() -> None:
    images = [image(filename="first.jpg")] + [image(id=f"i{n}", filename=name) for n, name in enumerate(NASTY)]

    text = filenames_txt(images)

    lines = text.encode("utf-8").decode("utf-8").splitlines()  # encodable, and split as strictly as Python does
    assert len(lines) == 1 + len(NASTY)
    assert lines[0] == "first.jpg"
    assert lines[1] == "two\ufffdlines.jpg" and lines[-1] == "tab\ufffdname.jpg"
    assert text.count("\n") == len(images)


def test_a_name_is_always_one_csv_row_and_encodable() -> None:
    images = [image(id=f"i{n}", filename=name) for n, name in enumerate(NASTY)]

    text = metadata_csv(images)

    assert len(list(csv.reader(io.StringIO(text.encode("utf-8").decode("utf-8"), newline="")))) == 1 + len(NASTY)
    # CR and LF stay inside their quoted cell (three names hold one); nothing else breaks a line, even for
    # a reader that splits on every line boundary Python knows.
    assert all(ch not in text for ch in "\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\udcff")
    assert len(text.splitlines()) == 1 + len(NASTY) + 3
    assert list(csv.reader(io.StringIO(text, newline="")))[1][0] == "two\nlines.jpg"


def test_zip_and_download_names_refuse_bidi_overrides_and_lone_surrogates() -> None:
    assert safe_filename("photo\u202egpj.exe") == "photo_gpj.exe"
    assert safe_filename("bad\udcff\x85\u2028.jpg") == "bad___.jpg"
    header = attachment("Picks \udcff\u202e", "zip")
    assert header.isascii() and "%ED" not in header
    assert StoredZip([]).size_bytes > 0 and member_names(["x\udcff.jpg"]) == ["x_.jpg"]


def test_zip_times() -> None:
    assert zip_date_time("2024-05-17T14:03:09+02:00") == (2024, 5, 17, 14, 3, 9)
    assert zip_date_time("2024-05-17 14:03:09") == (2024, 5, 17, 14, 3, 9)
    assert zip_date_time("1970-01-01T00:00:00Z") == (1980, 1, 1, 0, 0, 0)
    assert zip_date_time("garbage") == (1980, 1, 1, 0, 0, 0)


def write_members(tmp_path: Path) -> list[tuple[ZipMember, bytes]]:
    contents = [("a.jpg", os.urandom(70_000)), ("été.jpg", b""), ("b.png", os.urandom(3)), ("c.tif", os.urandom(9_999))]
    members = []
    for n, (name, data) in enumerate(contents):
        path = tmp_path / f"blob{n}"
        path.write_bytes(data)
        members.append((ZipMember(name, path, len(data), (2024, 5, 17, 14, 3, 10)), data))
    return members


@pytest.mark.parametrize("zip64_limit", [0xFFFFFFFF, 5000, 0], ids=["zip32", "zip64-some", "zip64-all"])
def test_the_zip_is_exactly_as_long_as_announced_and_unzips_byte_for_byte(tmp_path: Path, zip64_limit: int) -> None:
    members = write_members(tmp_path)
    archive = StoredZip([m for m, _ in members], zip64_limit=zip64_limit)
    chunks = list(archive.chunks(chunk_bytes=4096))
    blob = b"".join(chunks)

    assert len(blob) == archive.size_bytes
    assert max(len(c) for c in chunks) <= max(4096, len(chunks[-1]))  # streamed in pieces, not built whole
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        assert zf.testzip() is None
        infos = zf.infolist()
        assert [i.filename for i in infos] == ["a.jpg", "été.jpg", "b.png", "c.tif"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        assert infos[0].date_time == (2024, 5, 17, 14, 3, 10)
        for member, data in members:
            assert zf.read(member.name) == data
    if shutil.which("unzip"):  # a second, independent reader
        path = tmp_path / "out.zip"
        path.write_bytes(blob)
        result = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_an_empty_zip(tmp_path: Path) -> None:
    archive = StoredZip([])
    blob = b"".join(archive.chunks())
    assert len(blob) == archive.size_bytes == 22
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        assert zf.namelist() == []


def test_a_file_shorter_than_planned_fails_the_stream(tmp_path: Path) -> None:
    [(member, _), *_] = write_members(tmp_path)
    member.path.write_bytes(b"short")
    with pytest.raises(OSError, match="planned"):
        b"".join(StoredZip([member]).chunks())


def test_exports_through_a_real_server_of_files_named_by_an_attacker(
    tmp_path: Path, server_factory: ServerFactory, client: httpx.Client
) -> None:
    # Names from the hot folder and `fotoflo ingest` are whatever a file system allows: a formula, a newline
    # (no "/" though: an uploaded name may have one, which the upload cleans away).
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    formula = '=HYPERLINK("x.example","y").jpg'
    for seed, name in enumerate((formula, "two\nlines.jpg", "IMG_0003.jpg")):
        (shoot / name).write_bytes(jpeg_bytes((64, 48), seed=seed))
    data = tmp_path / "data"
    imported = fotoflo("ingest", str(shoot), "--data", str(data))
    assert imported.returncode == 0, imported.stderr
    server = server_factory(data=data)
    uploaded = client.post(
        server.api("/upload"), files={"file": ('=HYPERLINK("http://x","y").jpg', jpeg_bytes((64, 48), seed=9))}
    )
    assert uploaded.status_code == 201, uploaded.text
    images = client.get(server.api("/images")).json()["images"]
    assert len(images) == 4
    saved = client.post(server.api("/collections"), json={"name": "Picks", "image_ids": [i["id"] for i in images]})
    assert saved.status_code == 201, saved.text
    base = server.api(f"/collections/{saved.json()['id']}")

    text = client.get(base + "/export.txt").content.decode("utf-8")
    table = client.get(base + "/export.csv").content.decode("utf-8")

    assert len(text.splitlines()) == 4 and text.endswith("\n")
    assert "IMG_0003.jpg" in text.splitlines()
    rows = list(csv.DictReader(io.StringIO(table, newline="")))
    assert len(rows) == 4
    assert "'" + formula in [row["filename"] for row in rows]
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())
