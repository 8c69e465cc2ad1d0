"""Debian's Chromium, as the browser tests and the benchmarks launch it under Playwright."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

CHROMIUM = os.environ.get("FOTOFLO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def launch_chromium(pw: Any, extra_args: Sequence[str] = ()) -> Any:
    """Debian's Chromium under Playwright (`pw` is a started `sync_playwright()`), headless."""
    return pw.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])
