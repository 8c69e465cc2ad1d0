"""What the dashboard counts of one image (camera, lens, focal length, ISO, minute, picks, stars), and sums of it.

Kept small per image: a tally of a 100,000-image project holds one `Facts` per image, its strings
shared (`Labels`), so that a deletion or a rating change anywhere in the project can be counted
without reading the project again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from dashboard.events import ImageRecord
from dashboard.export import camera_name

#: The four distributions the dashboard draws, by the name of their `Facts` field.
FACETS = ("camera", "lens", "focal", "iso")
#: The value of a facet an image does not say (no EXIF lens, no ISO…).
UNKNOWN = "unknown"


class Facts(NamedTuple):
    """One image as the tallies count it; `minute_ms` is None when its capture time cannot be read."""

    camera: str
    lens: str
    focal: str
    iso: str
    minute_ms: int | None
    rating: int
    flag: str


assert Facts._fields[: len(FACETS)] == FACETS, "the facets are the first fields of Facts, in order"


@dataclass(frozen=True)
class Marks:
    """Picks and ratings of a group of images: how many, picked, rejected, rated (1 star or more), their stars."""

    images: int = 0
    picks: int = 0
    rejects: int = 0
    rated: int = 0
    stars: int = 0

    @property
    def mean_rating(self) -> float | None:
        """Mean stars of the rated images; None when none is rated."""
        return self.stars / self.rated if self.rated else None


class Sums:
    """A `Marks` being counted: images added and taken away one at a time."""

    __slots__ = ("images", "picks", "rated", "rejects", "stars")

    def __init__(self) -> None:
        self.images = self.picks = self.rejects = self.rated = self.stars = 0

    def add(self, facts: Facts, sign: int = 1) -> None:
        self.images += sign
        self.picks += sign * (facts.flag == "pick")
        self.rejects += sign * (facts.flag == "reject")
        self.rated += sign * (facts.rating > 0)
        self.stars += sign * facts.rating

    def marks(self) -> Marks:
        return Marks(self.images, self.picks, self.rejects, self.rated, self.stars)


class Labels:
    """Makes `Facts`, sharing each string and minute among the images that have it (memory, not speed)."""

    def __init__(self) -> None:
        self._strings: dict[str, str] = {}
        self._minutes: dict[str, int | None] = {}
        self._gear: dict[tuple[Any, ...], tuple[str, str, str, str]] = {}  # EXIF as stored → its four facets

    def facts(self, image: ImageRecord) -> Facts:
        exif = image.exif if isinstance(image.exif, dict) else {}
        stored = (image.camera_make, image.camera_model, exif.get("lens"), exif.get("focal_length_mm"), exif.get("iso"))
        try:
            gear = self._gear.get(stored)
        except TypeError:  # a value JSON allows but EXIF never has (a list): not remembered
            gear = self._facets(image, exif)
        if gear is None:
            gear = self._gear[stored] = self._facets(image, exif)
        return Facts(*gear, self._minute(image.captured_at), image.rating, self._shared(image.flag))

    def _facets(self, image: ImageRecord, exif: dict[str, Any]) -> tuple[str, str, str, str]:
        lens, focal, iso = exif.get("lens"), _positive(exif.get("focal_length_mm")), _positive(exif.get("iso"))
        return (
            self._shared(camera_name(image) or UNKNOWN),
            self._shared(str(lens) if lens else UNKNOWN),
            self._shared(f"{focal:g} mm" if focal else UNKNOWN),
            self._shared(f"ISO {iso:.0f}" if iso else UNKNOWN),
        )

    def _shared(self, text: str) -> str:
        return self._strings.setdefault(text, text)

    def _minute(self, captured_at: str) -> int | None:
        stamp = (captured_at or "")[:16]  # "YYYY-MM-DDTHH:MM": the minute as the camera's clock wrote it
        if stamp not in self._minutes:
            self._minutes[stamp] = minute_ms(stamp)
        return self._minutes[stamp]


def minute_ms(stamp: str) -> int | None:
    """ "2026-11-20T14:05" as milliseconds since the epoch, the clock time taken as UTC (what a Bokeh axis shows)."""
    try:
        moment = datetime.fromisoformat(stamp[:16])
    except ValueError:
        return None
    return int(moment.replace(second=0, microsecond=0, tzinfo=UTC).timestamp() * 1000)


def order_key(facet: str, key: str) -> tuple[int, float, str]:
    """How a facet's values sort on its chart: focal lengths and ISOs by number, others by name; unknown last."""
    if key == UNKNOWN:
        return (1, 0.0, "")
    if facet in ("focal", "iso"):
        digits = key.removeprefix("ISO ").removesuffix(" mm")
        try:
            return (0, float(digits), "")
        except ValueError:
            pass
    return (0, 0.0, key.casefold())


def _positive(value: object) -> float | None:
    """`value` as a number above 0, else None (EXIF as stored is a number; any other JSON is possible)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number > 0 and number != float("inf") else None
