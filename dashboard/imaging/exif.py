"""The EXIF fields Fotoflo stores (capture time, camera, lens, exposure), read from Pillow's EXIF."""

from __future__ import annotations

from typing import Any

from PIL import ExifTags, Image


def exif_fields(exif: Image.Exif) -> dict[str, Any]:
    """The stored fields of `exif`: `captured_at` (ISO 8601), `camera_make`, `camera_model`, lens, exposure.

    Fields the file does not hold, or holds unreadably, are left out (make and model are None).
    """
    ifd = exif.get_ifd(ExifTags.IFD.Exif)
    out: dict[str, Any] = {}

    def text(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        value = str(value).strip("\x00 ").strip()
        return value or None

    taken = text(ifd.get(ExifTags.Base.DateTimeOriginal) or exif.get(ExifTags.Base.DateTime))
    if taken:
        iso = _exif_time(taken, text(ifd.get(ExifTags.Base.OffsetTimeOriginal)))
        if iso:
            out["captured_at"] = iso
    out["camera_make"] = text(exif.get(ExifTags.Base.Make))
    out["camera_model"] = text(exif.get(ExifTags.Base.Model))
    lens = text(ifd.get(ExifTags.Base.LensModel))
    if lens:
        out["lens"] = lens
    exposure = ifd.get(ExifTags.Base.ExposureTime)
    if exposure:
        seconds = float(exposure)
        out["exposure_time"] = f"1/{round(1 / seconds)}" if 0 < seconds < 1 else f"{seconds:g}"
    for key, tag in (("f_number", ExifTags.Base.FNumber), ("focal_length_mm", ExifTags.Base.FocalLength)):
        value = ifd.get(tag)
        if value:
            out[key] = round(float(value), 1)
    iso_speed = ifd.get(ExifTags.Base.ISOSpeedRatings)
    if isinstance(iso_speed, tuple):
        iso_speed = iso_speed[0] if iso_speed else None
    if iso_speed:
        out["iso"] = int(iso_speed)
    return out


def _exif_time(value: str, offset: str | None) -> str | None:
    """EXIF 'YYYY:MM:DD HH:MM:SS' (camera-local) → ISO 8601, with the offset when the camera gave one."""
    try:
        date, time = value.split(" ", 1)
        y, mo, d = (int(p) for p in date.split(":"))
        h, mi, s = (int(float(p)) for p in time.split(":")[:3])
        iso = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}"
    except ValueError:
        return None
    if offset and len(offset) == 6 and offset[0] in "+-":
        iso += offset
    return iso
