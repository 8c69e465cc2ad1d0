"""Fotoflo: a live photo gallery for studios."""

from __future__ import annotations

__version__ = "0.1.0"
