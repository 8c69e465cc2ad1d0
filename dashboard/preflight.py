"""Start-up checks: a setting that cannot work stops `fotoflo` with one `ConfigError` line naming it.

A new user's mistakes (a data directory that cannot be made, a file given as a folder, a port in
use) would otherwise end in a traceback from deep inside; these say which setting and what to do.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from pathlib import Path

from dashboard.config import ConfigError
from dashboard.datadir import private_dir, tighten

log = logging.getLogger("fotoflo.datadir")

DATA = "--data (FOTOFLO_DATA)"
WATCH = "--watch (FOTOFLO_WATCH)"
PORT = "--port (FOTOFLO_PORT)"
#: What `bind()` says when the address or port cannot be had.
BIND_ERRNOS = (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES)


def data_dir(path: Path, setting: str = DATA) -> Path:
    """Make the data directory (0700) or say why it cannot be; tighten what older versions left open."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{setting} {path} is a file, not a folder: give a folder for Fotoflo's data")
    try:
        private_dir(path)
    except OSError as exc:
        raise ConfigError(
            f"{setting} {path}: cannot make the data directory ({_reason(exc)}): give a folder you can write to"
        ) from None
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise ConfigError(f"{setting} {path}: this user cannot write there: give a folder you can write to")
    changed, failed = tighten(path)
    if changed:
        log.warning(
            "made %d file(s) and folder(s) in the data directory %s private to this user (0700/0600): "
            "other users could read them (as older versions of Fotoflo left them)",
            len(changed),
            path,
        )
    if failed:
        log.warning(
            "could not make %d file(s) in the data directory %s private to this user (e.g. %s): "
            "they belong to another user; fix their owner or mode",
            len(failed),
            path,
            failed[0],
        )
    return path


def folder(path: Path, setting: str, what: str, advice: str) -> Path:
    """Make `path` a folder if it is missing; `ConfigError` naming `setting` if it is a file or cannot be made."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{setting} {path} is a file, not a folder: {advice}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{setting} {path}: cannot make the {what} ({_reason(exc)}): {advice}") from None
    return path


def hot_folder(path: Path, setting: str = WATCH) -> Path:
    """The hot folder, made if missing; `ConfigError` if it is a file or cannot be made."""
    return folder(path, setting, "hot folder", "name a folder to watch (it is made if missing), or give --no-watch")


def existing(paths: list[Path], setting: str = "PATH") -> None:
    """`ConfigError` for the first path that does not exist or cannot be read (a typo costs no work)."""
    for path in paths:
        if not path.exists():
            raise ConfigError(f"{setting} {path} does not exist: name image files or folders")
        if not os.access(path, os.R_OK):
            raise ConfigError(f"{setting} {path} cannot be read by this user: check its permissions")


def free_port(address: str, port: int, setting: str = PORT) -> None:
    """Bind `address:port` as the server will, and let go; `ConfigError` if it cannot be had."""
    from tornado.netutil import bind_sockets

    try:
        sockets = bind_sockets(port, address or None)
    except OSError as exc:
        raise bind_error(exc, address, port, setting) from None
    for sock in sockets:
        sock.close()


def bind_error(exc: OSError, address: str, port: int, setting: str = PORT) -> ConfigError:
    """The one line for a failed `bind()` of `address:port`."""
    if exc.errno == errno.EADDRINUSE:
        return ConfigError(
            f"{setting} {port} is in use on {address or 'every address'} (another Fotoflo, or another program): "
            f"stop it, or give another {setting.split()[0]}"
        )
    if exc.errno == errno.EACCES:
        return ConfigError(f"{setting} {port} needs privileges to bind: give a port above 1023")
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return ConfigError(
            f"--address (FOTOFLO_ADDRESS) {address!r} is not an address of this machine ({_reason(exc)}): "
            "give 127.0.0.1, 0.0.0.0 or one of its own addresses"
        )
    return ConfigError(f"{setting} {port} on {address}: cannot listen ({_reason(exc)})")


def database_error(exc: Exception, data: Path, setting: str = DATA) -> ConfigError:
    """The one line for a SQLite file of the data directory that cannot be opened (not a database, …)."""
    return ConfigError(
        f"{setting} {data}: a database in it cannot be opened ({exc}): restore it from a backup, "
        "or give another data directory"
    )


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
