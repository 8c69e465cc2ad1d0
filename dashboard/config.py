"""Settings for a Fotoflo server, from command-line options or `FOTOFLO_*` environment variables."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dashboard.imaging.errors import DEFAULT_DECODE_TIMEOUT_S, DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "fotoflo"


def comma_list(raw: str) -> tuple[str, ...]:
    """A list setting from its environment variable (`FOTOFLO_ALLOWED_HOSTS`, ...): items separated by commas."""
    return tuple(part.strip() for part in raw.split(",") if part.strip())


#: option name → (environment variable, type); the CLI and the docs test read this table.
ENV: dict[str, tuple[str, Callable[[str], object]]] = {
    "data": ("FOTOFLO_DATA", Path),
    "watch": ("FOTOFLO_WATCH", Path),
    "project": ("FOTOFLO_PROJECT", str),
    "port": ("FOTOFLO_PORT", int),
    "address": ("FOTOFLO_ADDRESS", str),
    "secret": ("FOTOFLO_SECRET", str),
    "max_bytes": ("FOTOFLO_MAX_BYTES", int),
    "max_pixels": ("FOTOFLO_MAX_PIXELS", int),
    "decode_timeout_s": ("FOTOFLO_DECODE_TIMEOUT_S", float),
    "rescan_s": ("FOTOFLO_RESCAN_S", float),
    "heartbeat_s": ("FOTOFLO_HEARTBEAT_S", float),
    "wall": ("FOTOFLO_WALL", bool),
    "db": ("FOTOFLO_DB", str),
    "bus": ("FOTOFLO_BUS", str),
    "blobs": ("FOTOFLO_BLOBS", str),
    "auth": ("FOTOFLO_AUTH", bool),
    "max_files": ("FOTOFLO_MAX_FILES", int),
    "upload_rate": ("FOTOFLO_UPLOAD_RATE", int),
    "login_failures": ("FOTOFLO_LOGIN_FAILURES", int),
    "allowed_hosts": ("FOTOFLO_ALLOWED_HOSTS", comma_list),
    "cors_origins": ("FOTOFLO_CORS_ORIGINS", comma_list),
    "trusted_proxy": ("FOTOFLO_TRUSTED_PROXIES", comma_list),
    "upload_buffer_bytes": ("FOTOFLO_UPLOAD_BUFFER_BYTES", int),
    "notify_interval_s": ("FOTOFLO_NOTIFY_INTERVAL_S", float),
    "smtp": ("FOTOFLO_SMTP", str),
    "smtp_from": ("FOTOFLO_SMTP_FROM", str),
    "supabase_url": ("SUPABASE_URL", str),
    "supabase_key": ("SUPABASE_KEY", str),
}


#: `fotoflo sync` option → (environment variable, type); `FOTOFLO_PROJECT` is shared with `serve`.
SYNC_ENV = {
    "server": ("FOTOFLO_SERVER", str),
    "project": ("FOTOFLO_PROJECT", str),
    "token": ("FOTOFLO_TOKEN", str),
    "device_name": ("FOTOFLO_DEVICE_NAME", str),
}


class ConfigError(ValueError):
    """The server must not start like this (open on a network address, a bus without its database, …)."""


@dataclass
class Settings:
    data: Path = field(default_factory=default_data_dir)
    watch: Path | None = None
    project: str = "default"
    port: int = 5006
    address: str = "127.0.0.1"
    secret: str | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    decode_timeout_s: float = DEFAULT_DECODE_TIMEOUT_S  # one file's decode in a worker process, wall and CPU
    rescan_s: float = 60.0
    heartbeat_s: float = 15.0
    wall: bool = False
    db: str | None = None  # a postgresql:// URL; None: SQLite in the data directory
    bus: str = "local"  # local, redis://HOST:PORT/DB or postgres (NOTIFY on `db`)
    blobs: str | None = None  # file:///PATH or s3://BUCKET/PREFIX; None: the files in DATA/blobs
    supabase_url: str | None = None  # a Supabase project: store, blobs and (by default) bus there
    supabase_key: str | None = None  # its service role key
    auth: bool | None = None  # require sign-in; None: only off loopback (where it cannot be turned off)
    max_files: int = 100  # files in one upload request
    upload_rate: int = 600  # uploads per minute per client, with authentication on (0: unlimited)
    login_failures: int = 10  # failed sign-ins per minute per client address (and per credential) before a wait
    allowed_hosts: tuple[str, ...] = ()  # names the server answers to besides its address and loopback
    cors_origins: tuple[str, ...] = ()  # origins whose pages may read and write the API (CORS), exactly
    #: Reverse proxies whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed (addresses or CIDRs;
    #: named as its repeatable option, `--trusted-proxy`).
    trusted_proxy: tuple[str, ...] = ()
    #: Upload bytes held at once by all requests in flight (temp files); 0: 8 × max_bytes.
    upload_buffer_bytes: int = 0
    #: Seconds between two digests of one project (webhooks and e-mail; docs/notifications.md).
    notify_interval_s: float = 60.0
    smtp: str | None = None  # smtp://USER:PASS@HOST:PORT or smtps://…: where e-mail digests go; None: no e-mail
    smtp_from: str | None = None  # the digests' From address; None: fotoflo@ the SMTP host

    @property
    def upload_budget_bytes(self) -> int:
        """Upload bytes all requests in flight may hold at once (beyond it: `503 busy`)."""
        return self.upload_buffer_bytes if self.upload_buffer_bytes > 0 else 8 * self.max_bytes

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Defaults, then `FOTOFLO_*` variables, then explicit overrides (None means "not given")."""
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, object] = {}
        for name, (var, kind) in ENV.items():
            raw = environ.get(var)
            if not raw:
                continue
            try:
                values[name] = raw.lower() in ("1", "true", "yes", "on") if kind is bool else kind(raw)
            except ValueError:
                what = "a whole number" if kind is int else "a number" if kind is float else "valid"
                raise ConfigError(f"{var}={raw!r} is not {what}: give one, or unset it") from None
        # Set but empty is a mistake (a deployment template not filled in), not "make a key": the
        # signer refuses it rather than each server quietly signing with a key of its own.
        if environ.get(ENV["secret"][0]) == "":
            values["secret"] = ""
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        if not 0 <= settings.port <= 65535:
            raise ConfigError(f"--port (FOTOFLO_PORT) {settings.port} is not a port: give one from 1 to 65535")
        if settings.notify_interval_s <= 0:
            raise ConfigError(f"--notify-interval-s {settings.notify_interval_s} must be more than 0 seconds")
        settings.data = Path(settings.data).expanduser().resolve()
        if settings.watch is not None:
            settings.watch = Path(settings.watch).expanduser().resolve()
        return settings
