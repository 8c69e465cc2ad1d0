"""The pages' languages: one JSON catalogue per language (`assets/i18n/<lang>.json`), chosen per request.

A catalogue maps flat keys to strings with `{name}` placeholders, or to plural forms
(`{"one": …, "other": …}`, chosen by the count `n`). The browser code reads the same catalogue
(`i18n.js`), sent with the page, so a page never shows English first. Adding a language is adding
its file with the same keys (tests/test_i18n.py checks) and its code to `LANGUAGES`.
"""

from __future__ import annotations

import functools
import html
import json
import re
from pathlib import Path
from typing import Any

#: The languages with a complete catalogue; the first is the fallback.
LANGUAGES = ("en", "de")
DEFAULT = LANGUAGES[0]
#: The cookie the page's language switch sets: it wins over `Accept-Language`.
COOKIE = "fotoflo_lang"
CATALOGUES = Path(__file__).parent / "assets" / "i18n"

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@functools.cache
def catalogue(lang: str) -> dict[str, Any]:
    """The catalogue of `lang` (one of `LANGUAGES`), read once."""
    if lang not in LANGUAGES:
        raise ValueError(f"no catalogue for language {lang!r}")
    data: dict[str, Any] = json.loads((CATALOGUES / f"{lang}.json").read_text(encoding="utf-8"))
    return data


def negotiate(accept_language: str | None, cookie: str | None = None) -> str:
    """The language of a page: the `fotoflo_lang` cookie's if it names one, else the best of `Accept-Language`.

    `de-DE,de;q=0.9,en;q=0.8` gives "de"; q-values rank, a `q=0` range is refused; no match gives "en".
    """
    if cookie in LANGUAGES:
        return str(cookie)
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if q > 0 and primary:
            ranked.append((-q, index, primary))
    for _, _, primary in sorted(ranked):
        if primary in LANGUAGES:
            return primary
        if primary == "*":
            return DEFAULT
    return DEFAULT


def t(lang: str, key: str, **values: Any) -> str:
    """The string `key` of `lang`'s catalogue with its `{name}`s filled from `values`.

    A plural entry is chosen by `n` (an int); numbers are formatted for `lang` (`format_number`).
    A key missing from the catalogue raises KeyError: the tests keep the catalogues complete.
    """
    entry = catalogue(lang)[key]
    if isinstance(entry, dict):
        entry = entry["one" if values.get("n") == 1 else "other"]
    shown = {k: _shown(lang, v) for k, v in values.items()}
    return _PLACEHOLDER.sub(lambda m: str(shown[m.group(1)]), str(entry))


def _shown(lang: str, value: Any) -> str:
    return format_number(lang, value) if isinstance(value, int) and not isinstance(value, bool) else str(value)


def t_html(lang: str, key: str, **markup: str) -> str:
    """`t` for an HTML page: the catalogue's text escaped, `markup`'s values (HTML the caller made safe) not."""
    entry = catalogue(lang)[key]
    return _PLACEHOLDER.sub(lambda m: markup[m.group(1)], html.escape(str(entry), quote=False))


def format_number(lang: str, n: int) -> str:
    """`n` with `lang`'s digit grouping: 12,345 in English, 12.345 in German."""
    text = f"{n:,}"
    return text.replace(",", ".") if lang == "de" else text


def placeholders(text: str) -> set[str]:
    """The `{name}`s of a catalogue string."""
    return set(_PLACEHOLDER.findall(text))
