"""The slideshow's URL parameters (dashboard/slideshow.py); the show itself is tests/e2e/test_slideshow.py."""

from __future__ import annotations

import pytest

from dashboard.slideshow import DEFAULT_PACE_S, pace_s, show_of, slideshow_view


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(None, DEFAULT_PACE_S), ("8", 8.0), ("2.5", 2.5), ("0", 1.0), ("-3", 1.0), ("99999", 3600.0),
     ("soon", DEFAULT_PACE_S), ("nan", DEFAULT_PACE_S), ("inf", DEFAULT_PACE_S)],
)  # fmt: skip
def test_pace_is_kept_within_a_second_and_an_hour(text: str | None, seconds: float) -> None:
    assert pace_s(text) == seconds


def test_show_names_the_project_a_collection_or_favourites() -> None:
    assert show_of(None) == show_of("") == "project"
    for show in ("project", "collection:abc_D-1", "favorites", "favorites:Anna Maria"):
        assert show_of(show) == show
    for bad in ("everything", "collection:", "collection:a/b", "project:x"):
        with pytest.raises(ValueError, match="show="):
            show_of(bad)


def test_the_view_takes_the_query_and_says_what_it_could_not_take() -> None:
    view = slideshow_view("p", {"show": "collection:c1", "pace": "3", "kiosk": "1"}, heartbeat_s=1.5, lang="de")
    assert (view.source, view.bad_source, view.pace_s, view.kiosk, view.lang) == ("collection:c1", "", 3.0, True, "de")
    assert view.catalogue["slideshow.paused"] == "Angehalten"
    wrong = slideshow_view("p", {"show": "nonsense"}, heartbeat_s=1.5, lang="en")
    assert (wrong.source, wrong.bad_source, wrong.pace_s, wrong.kiosk) == ("project", "nonsense", DEFAULT_PACE_S, False)
