"""Placeholder until the live gallery lands."""

from __future__ import annotations

from typing import Any


def app_for_session(fotoflo: Any) -> Any:
    import panel as pn

    return pn.pane.Markdown(f"# Fotoflo — {fotoflo.settings.project}")
