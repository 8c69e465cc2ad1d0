"""Fotoflo: a live photo gallery for studios."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # `dashboard.open(...)` for notebooks, imported on first use: the CLI need not load pandas or Panel.
    if name == "open":
        from dashboard.notebook import open

        return open
    raise AttributeError(f"module 'dashboard' has no attribute {name!r}")
