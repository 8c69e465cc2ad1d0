"""Helpers shared by the tests (tests/, tests/e2e/) and the benchmarks (benchmarks/_common.py and its scripts).

One module a concern: `images` (JPEG and PNG factories), `records` (image records for the stores),
`waiting` (`wait_until`, `run_loop`), `servers` (a real `fotoflo serve` on a free port), `api` (requests
to it), `sse` (event-stream readers), `services` (throwaway PostgreSQL and Redis), `proxy` (a TCP proxy
that can cut connections), `browser` (Debian's Chromium), `embedded` (an in-process Fotoflo). Plain
functions and classes: the pytest fixtures built on them are in tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

#: The repository: where servers are started, and what a test reads files of.
ROOT = Path(__file__).resolve().parents[2]
