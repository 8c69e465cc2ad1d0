"""The pages' languages (dashboard/i18n.py): negotiation, complete catalogues, every key used exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dashboard import i18n
from dashboard.first_paint import first_paint_html

ROOT = Path(__file__).resolve().parents[1] / "dashboard"


@pytest.mark.parametrize(
    ("accept", "cookie", "lang"),
    [
        ("de-DE,de;q=0.9", None, "de"),
        ("de", None, "de"),
        ("en-US,en;q=0.9", None, "en"),
        ("fr-FR,fr;q=0.9,de;q=0.8,en;q=0.5", None, "de"),  # the best language there is a catalogue for
        ("en;q=0.4,de;q=0.8", None, "de"),  # q-values rank, not the order
        ("de;q=0,en;q=0.1", None, "en"),  # q=0: not acceptable
        ("fr, *;q=0.5", None, "en"),
        ("ja", None, "en"),
        ("", None, "en"),
        (None, None, "en"),
        ("DE-at", None, "de"),
        ("de-DE,de;q=0.9", "en", "en"),  # the page's switch wins
        (None, "de", "de"),
        ("en", "xx", "en"),  # a cookie naming no language is ignored
        ("de;q=oops", None, "en"),
    ],
)
def test_negotiate(accept: str | None, cookie: str | None, lang: str) -> None:
    assert i18n.negotiate(accept, cookie) == lang


def _forms(entry: object) -> list[str]:
    return list(entry.values()) if isinstance(entry, dict) else [str(entry)]


def test_every_catalogue_has_the_same_keys_forms_and_placeholders() -> None:
    english = i18n.catalogue("en")
    for lang in i18n.LANGUAGES:
        other = i18n.catalogue(lang)
        assert set(other) == set(english), lang
        for key, entry in english.items():
            theirs = other[key]
            assert isinstance(theirs, dict) == isinstance(entry, dict), (lang, key)
            if isinstance(entry, dict):
                assert set(theirs) == set(entry) == {"one", "other"}, (lang, key)
            want = set().union(*(i18n.placeholders(f) for f in _forms(entry)))
            for form in _forms(theirs):
                assert i18n.placeholders(form) == want, (lang, key, form)


# Keys the code names: `t("key")` in the browser modules, `t(lang, "key")` / `t_html(lang, "key")` and
# `tr("key")` in Python, and keys held in tables (BADGE, EMPTY, the lightbox's rows, the filters) or
# chosen by a condition (`t(x ? "a" : "b")`): every quoted string of a catalogue namespace.


def _used_keys() -> set[str]:
    namespaces = {key.split(".")[0] for key in i18n.catalogue("en")}
    alternatives = "|".join(sorted(namespaces))
    pattern = re.compile(rf"[\"']((?:{alternatives})\.[\w.]+)[\"']")
    used: set[str] = set()
    sources = [*(ROOT / "assets").glob("*.js"), *(ROOT / n for n in ("first_paint.py", "gallery.py", "http/pages.py"))]
    for path in sources:
        text = path.read_text(encoding="utf-8")
        used |= set(pattern.findall(text))
        used |= set(re.findall(r'\bt\("([^"]+)"', text))
        used |= set(re.findall(r"\b(?:t|t_html)\([\w.]+, [\"']([^\"']+)[\"']", text))
    return used


def test_every_key_used_is_in_the_catalogue() -> None:
    used = _used_keys()
    assert {"header.count", "live.live", "upload.button", "arrivals.announce", "signin.title", "switch.now"} <= used
    assert sorted(used - set(i18n.catalogue("en"))) == []
    # Keys made at run time: a colour label's name.
    for label in ("none", "red", "yellow", "green", "blue", "purple"):
        assert f"label.{label}" in i18n.catalogue("en")


def test_plurals_placeholders_and_numbers() -> None:
    assert i18n.t("en", "header.count", n=1) == "1 image"
    assert i18n.t("en", "header.count", n=12345) == "12,345 images"
    assert i18n.t("de", "header.count", n=1) == "1 Bild"
    assert i18n.t("de", "header.count", n=12345) == "12.345 Bilder"
    assert i18n.t("de", "arrivals.announce", n=3) == "3 neue Fotos"
    assert i18n.t("de", "tile.select.name", name="a.jpg") == "a.jpg auswählen"
    assert i18n.t_html("de", "switch.stay", name="<b>x</b>") == "Angemeldet bleiben als <b>x</b>"
    with pytest.raises(KeyError):
        i18n.t("en", "no.such.key")
    with pytest.raises(ValueError):
        i18n.catalogue("xx")


def test_the_painted_page_speaks_the_page_s_language() -> None:
    page = {"images": [], "next": None, "last_seq": 0, "total": 1234}
    german = first_paint_html("p", page, 60, "de")
    assert "1.234 Bilder" in german and ">Hochladen<" in german and ">Einzeln<" in german
    assert 'documentElement.lang = "de"' in german
    english = first_paint_html("p", page, 60)
    assert "1,234 images" in english and ">Upload<" in english and ">Single<" in english
