"""A real `fotoflo serve` on a free loopback port: its command line, its process and its log, started and stopped.

`spawn_server` and `Server` are the tests' (tests/conftest.py's `server_factory`, `running_server` for a
fixture wider than one test); benchmarks/_common.py's `Server` starts its processes with the same pieces
(`serve_command`, `start_logged`, `wait_healthy`, `stop_process`).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from dashboard.store.sqlite import SQLiteStore
from tests.support import ROOT
from tests.support.waiting import wait_until


def free_port(*, avoid: Collection[int] = ()) -> int:
    """A loopback port nobody listens on now (never one of `avoid`)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in avoid:
            return port


def serve_command(
    data: Path, port: int, *, watch: Path | None = None, project: str | None = None, log_level: str | None = None,
    args: Sequence[str] = (), launcher: Sequence[str] = (),
) -> list[str]:  # fmt: skip
    """`fotoflo [--log-level L] serve --data D [--watch W] --port P [--project X] ARGS` as a command line.

    `launcher` replaces `python -m dashboard.cli` (with `python -c SCRIPT`, a script that calls the CLI).
    """
    command = [*(launcher or (sys.executable, "-m", "dashboard.cli"))]
    if log_level is not None:
        command += ["--log-level", log_level]
    command += ["serve", "--data", str(data)]
    if watch is not None:
        command += ["--watch", str(watch)]
    command += ["--port", str(port)]
    if project is not None:
        command += ["--project", project]
    return [*command, *args]


def start_logged(
    argv: Sequence[str], log_path: Path, *, env: Mapping[str, str] | None = None, append: bool = True
) -> subprocess.Popen[bytes]:
    """Start `argv` in the repository, its output (stdout and stderr) added to `log_path` (or replacing it)."""
    with open(log_path, "ab" if append else "wb") as log_file:
        return subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def wait_healthy(url: str, proc: subprocess.Popen[Any], *, timeout_s: float, log_path: Path | None = None) -> None:
    """Wait for `url/healthz` to answer 200; `RuntimeError` (with the log) if the process exits or time runs out."""

    def log() -> str:
        return log_path.read_text(errors="replace") if log_path is not None and log_path.exists() else ""

    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{log()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not answer {url}/healthz within {timeout_s} s:\n{log()}")
        time.sleep(0.05)


def stop_process(proc: subprocess.Popen[Any], timeout_s: float = 30.0) -> None:
    """Terminate `proc` unless it has ended, wait up to `timeout_s`, then kill it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass
class Server:
    """A started `fotoflo serve` process and where it keeps things."""

    url: str
    port: int
    data: Path
    watch: Path
    project: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def api(self, path: str) -> str:
        return f"{self.url}/api/projects/{self.project}{path}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.proc, timeout_s=10)

    def wait_healthy(self, timeout_s: float) -> None:
        """Wait for `/healthz` to answer 200; fail with the log at once if the process exits."""
        wait_healthy(self.url, self.proc, timeout_s=timeout_s, log_path=self.log_path)


ServerFactory = Callable[..., Server]


def spawn_server(
    *, data: Path, watch: Path, port: int, project: str, log_path: Path, extra_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Server:  # fmt: skip
    """Start `fotoflo serve` on loopback `port`, its output appended to `log_path`; the caller waits and stops it."""
    cmd = serve_command(data, port, watch=watch, project=project, args=extra_args)
    proc = start_logged(cmd, log_path, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    return Server(f"http://127.0.0.1:{port}", port, data, watch, project, proc, log_path)


# -- one server for many tests --------------------------------------------------------------


@contextmanager
def running_server(
    tmp: Path, *, project: str = "default", extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> Iterator[Server]:
    """A real `fotoflo serve` started like conftest's `server_factory`, for a fixture wider than one test.

    Starting the server (Panel's import alone) costs seconds of CPU; a module shares one and
    isolates its tests by giving each its own project (`fresh_project`).
    """
    port = free_port()
    server = spawn_server(
        data=tmp / "data",
        watch=tmp / "hot",
        port=port,
        project=project,
        log_path=tmp / f"server-{port}.log",
        extra_args=extra_args,
        env=env,
    )
    try:
        server.wait_healthy(timeout_s=60)
        yield server
    finally:
        server.stop()


_project_numbers = itertools.count(1)


def fresh_project(server: Server, test_name: str) -> Server:
    """`server` seen through a new, empty project of its store (created beside the running server)."""
    name = f"{re.sub(r'[^a-z0-9]+', '-', test_name.lower()).strip('-')[:60]}-{next(_project_numbers)}"
    store = SQLiteStore(server.data / "fotoflo.sqlite")  # SQLite's file locks make a second writer safe
    try:
        store.ensure_project(name)
    finally:
        store.close()
    return dataclasses.replace(server, project=name)


@contextmanager
def panel_app(tmp: Path, name: str, script: str, *, project: str = "studio") -> Iterator[tuple[str, Path]]:
    """`panel serve SCRIPT --plugins dashboard.plugin` on a free port: (its base URL, its hot folder).

    The app script (`script`, written to `tmp/NAME.py`, served at `/NAME`) gets the process's `App` from
    `dashboard.plugin`. On the way out the server's log must hold no traceback. Before it stops, it
    waits until every websocket the pages opened is closed (a session Bokeh is still opening or closing
    at SIGTERM logs a traceback of its own), so the test must close its pages first.
    """
    path = tmp / f"{name}.py"
    path.write_text(script)
    port = free_port()
    watch = tmp / "hot"
    env = {**os.environ, "FOTOFLO_DATA": str(tmp / "data"), "FOTOFLO_WATCH": str(watch),
           "FOTOFLO_PROJECT": project, "PYTHONUNBUFFERED": "1"}  # fmt: skip
    log_path = tmp / "panel.log"
    log = open(log_path, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "panel", "serve", str(path), "--plugins", "dashboard.plugin",
         "--port", str(port), "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, log_path.read_text()
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def sessions_closed() -> bool:
        text = log_path.read_text(errors="replace")
        return text.count("WebSocket connection opened") == text.count("WebSocket connection closed")

    try:
        wait_until(up, timeout_s=60)
        yield url, watch
        wait_until(sessions_closed, timeout_s=15)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
        text = log_path.read_text(errors="replace")
        assert "Traceback" not in text, text
