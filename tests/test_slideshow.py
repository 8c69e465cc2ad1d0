"""The slideshow's URL parameters (dashboard/slideshow.py) and its order with arrivals interleaved
(dashboard/assets/showorder.js, run under node); the show in a browser is tests/e2e/test_slideshow.py."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from dashboard.gallery import ASSETS, esm_bundle
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


# -- the order (assets/showorder.js) -----------------------------------------------------------------

#: Runs `ShowOrder` methods in turn (argv: JSON [[method, ...args], ...]); prints what each returned, a slide
#: as its id, with a leading "+" when it is shown as an arrival.
DRIVER = """
import { ShowOrder } from "./showorder.mjs";
const order = new ShowOrder();
const slide = (s) => (s?.id === undefined ? s : (s.arrival ? "+" : "") + s.id);
console.log(JSON.stringify(JSON.parse(process.argv[2]).map(([method, ...args]) => slide(order[method](...args)))));
"""


@pytest.fixture(scope="module")
def run_order(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Run a list of `ShowOrder` calls under node; returns what each call returned (see DRIVER)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: install Debian's nodejs (scripts/test does)")
    folder = tmp_path_factory.mktemp("showorder")
    # The module as the page gets it (joined by esm_bundle), so what is tested is what runs.
    (folder / "showorder.mjs").write_text(esm_bundle(ASSETS / "showorder.js"))
    (folder / "driver.mjs").write_text(DRIVER)

    def run(*calls: list[Any]) -> list[Any]:
        done = subprocess.run(
            [node, str(folder / "driver.mjs"), json.dumps(calls)], capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
        return list(json.loads(done.stdout))

    return run


def nexts(n: int) -> list[list[Any]]:
    return [["next"]] * n


def test_the_show_goes_round_its_order(run_order: Any) -> None:
    assert run_order(["next"]) == [None]  # nothing to show
    assert run_order(["reorder", ["a", "b", "c"], False], *nexts(5))[1:] == ["a", "b", "c", "a", "b"]


def test_a_burst_of_arrivals_takes_turns_with_the_show(run_order: Any) -> None:
    # One arrival after each slide of the show's own; then the round goes on, the arrivals at its end.
    calls = [["reorder", ["a", "b", "c", "d"], False], ["next"], ["add", "x"], ["add", "y"], ["add", "z"]]
    assert run_order(*calls, *nexts(10))[5:] == ["+x", "b", "+y", "c", "+z", "d", "x", "y", "z", "a"]
    # An image already in the show is no arrival.
    assert run_order(["reorder", ["a", "b"], False], ["add", "a"], *nexts(3)) == [[], False, "a", "b", "a"]


def test_an_arrival_is_not_shown_twice_in_a_row(run_order: Any) -> None:
    # Its own turn in the round comes right after it was shown as an arrival: the round passes over it.
    assert run_order(["reorder", ["a"], False], ["next"], ["add", "x"], *nexts(4))[3:] == ["+x", "a", "x", "a"]
    # Only arrivals left: they are shown in turn, then the round.
    calls = [["reorder", [], False], ["add", "x"], ["add", "y"], *nexts(4)]
    assert run_order(*calls)[3:] == ["+x", "+y", "x", "y"]


def test_previous_and_first(run_order: Any) -> None:
    calls = [["reorder", ["a", "b", "c"], False], ["next"], ["next"], ["add", "x"], ["next"]]
    # From an arrival, back to the show's slide it followed; from there, the one before; round the start.
    assert run_order(*calls, ["previous"], ["previous"], ["previous"])[5:] == ["b", "a", "x"]
    # Home: the show's first; the arrival still waits, and is shown next.
    assert run_order(*calls[:4], ["first"], *nexts(2))[4:] == ["a", "+x", "b"]
    assert run_order(["previous"], ["first"]) == [None, None]


def test_what_leaves_the_show_is_passed_over(run_order: Any) -> None:
    start = [["reorder", ["a", "b", "c", "d"], False], ["next"], ["next"]]
    # The slide shown: the caller is told, and the next is the one after it.
    assert run_order(*start, ["drop", "b"], ["next"])[3:] == [True, "c"]
    # One before it: the show goes on from where it was.
    assert run_order(*start, ["drop", "a"], *nexts(3))[3:] == [False, "c", "d", "b"]
    # One waiting as an arrival no longer waits.
    assert run_order(*start, ["add", "x"], ["drop", "x"], ["next"])[4:] == [False, "c"]


def test_a_new_order_keeps_the_place_and_its_new_images_arrive(run_order: Any) -> None:
    # A collection re-read: "a" taken out, "d" added, the order changed; the show shows "b".
    calls = [["reorder", ["a", "b", "c"], False], ["next"], ["next"], ["reorder", ["c", "b", "d"], True]]
    assert run_order(*calls, *nexts(4))[3:] == [["a"], "+d", "c", "b", "d"]
