"""Open the store, blobs and bus a server is configured with (`--db`, `--blobs`, `--bus`, `--supabase-url`).

The embedded default is SQLite and the blob files in the data directory and the in-process bus;
PostgreSQL, S3, Redis and Supabase are loaded only when named, so their client libraries are
optional (the `postgres`, `s3`, `redis` and `supabase` extras).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from dashboard.blobs import Blobs, FileBlobs
from dashboard.bus import Bus, LocalBus
from dashboard.config import ConfigError
from dashboard.leader import Lock
from dashboard.store import Store

if TYPE_CHECKING:
    import httpx

    from dashboard.auth.store import AuthStore
    from dashboard.config import Settings
    from dashboard.notify.store import NotifyStore

T = TypeVar("T")

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(location: str | Path | None) -> bool:
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


def open_store(location: str | Path) -> Store:
    """A `postgresql://` URL opens `PostgresStore`; anything else is a SQLite file or data directory."""
    if is_postgres_url(location):
        from dashboard.store.postgres import PostgresStore

        return _open_postgres(PostgresStore, str(location))
    from dashboard.store.sqlite import SQLiteStore

    return SQLiteStore(location)


def _open_postgres(opener: Callable[[str], T], url: str) -> T:
    """`opener(url)`, its connection failure as a `ConfigError` of one line."""
    import psycopg

    try:
        return opener(url)
    except psycopg.OperationalError as exc:
        # One line, without the URL's password: psycopg's message names host and port only.
        reason = " ".join(str(exc).split())
        raise ConfigError(f"--db {redact_url(url)}: cannot open the database: {reason}") from None


def auth_store_for(settings: Settings, *, transport: httpx.BaseTransport | None = None) -> AuthStore:
    """Where tokens, share links and sessions live: the Supabase project's `fotoflo_auth` tables, or with
    `--db postgresql://…` its `auth_*` tables (either: one store for every server on it), else
    `DATA/auth.sqlite` (this data directory's servers and CLI). `transport` replaces Supabase's network."""
    project = supabase_project(settings)
    if project is not None:
        from dashboard.supabase.auth import SupabaseAuthStore

        return SupabaseAuthStore(*project, transport=transport)
    if is_postgres_url(settings.db):
        from dashboard.auth.postgres import PostgresAuthStore

        assert settings.db is not None
        return _open_postgres(PostgresAuthStore, settings.db)
    from dashboard.auth.store import SQLiteAuthStore

    return SQLiteAuthStore(Path(settings.data) / "auth.sqlite")


def notify_store_for(settings: Settings) -> NotifyStore:
    """Where webhooks, recipients and the outbox live: with `--db postgresql://…` its `notify_*` tables,
    else `DATA/notify.sqlite`."""
    if is_postgres_url(settings.db):
        from dashboard.notify.postgres import PostgresNotifyStore

        assert settings.db is not None
        return _open_postgres(PostgresNotifyStore, settings.db)
    from dashboard.notify.store import SQLiteNotifyStore

    return SQLiteNotifyStore(Path(settings.data) / "notify.sqlite")


def redact_url(url: str) -> str:
    """`url` with the password of its user info replaced by `***` (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def open_bus(spec: str | None, *, db_url: str | None = None) -> Bus:
    """`local` (or nothing): in-process; `redis://HOST:PORT/DB`: `RedisBus`; `postgres`: NOTIFY on `db_url`.

    `postgres` may also be a `postgresql://` URL of its own.
    """
    spec = (spec or "local").strip()
    if spec == "local":
        return LocalBus()
    if spec.startswith(("redis://", "rediss://", "unix://")):
        from dashboard.buses.redis import RedisBus

        return RedisBus(spec)
    if spec in ("postgres", "postgresql") or is_postgres_url(spec):
        url = spec if is_postgres_url(spec) else db_url
        if not is_postgres_url(url):
            raise ConfigError("--bus postgres needs --db postgresql://… (or a postgresql:// URL of its own)")
        from dashboard.buses.postgres import PostgresBus

        assert url is not None
        return PostgresBus(url)
    raise ConfigError(f"unknown bus {spec!r}: use local, redis://HOST:PORT/DB or postgres")


def supabase_project(settings: Settings) -> tuple[str, str] | None:
    """The (URL, service role key) of the Supabase project the settings name, or `None`."""
    if not (settings.supabase_url or settings.supabase_key):
        return None
    if not (settings.supabase_url and settings.supabase_key):
        raise ConfigError("--supabase-url and --supabase-key (SUPABASE_URL, SUPABASE_KEY) go together")
    if settings.db:
        raise ConfigError("--db and --supabase-url both name a store: give one")
    return settings.supabase_url, settings.supabase_key


def store_for(settings: Settings, *, transport: httpx.BaseTransport | None = None) -> Store:
    """The Supabase project's tables, else `open_store` of `--db` or the data directory's SQLite file."""
    project = supabase_project(settings)
    if project is not None:
        from dashboard.supabase.store import SupabaseStore

        return SupabaseStore(*project, transport=transport)
    return open_store(settings.db or settings.data / "fotoflo.sqlite")


def open_blobs(spec: str | None, data: Path) -> Blobs:
    """`file:///PATH` (or nothing: `DATA/blobs`): `FileBlobs`; `s3://BUCKET/PREFIX`: `S3Blobs`, checked reachable.

    S3's endpoint, region and credentials come from the standard AWS variables, never from the URL.
    """
    spec = (spec or "").strip()
    if not spec:
        return FileBlobs(data / "blobs")
    parts = urlsplit(spec)
    if "@" in parts.netloc:  # named without the netloc: it holds a secret
        raise ConfigError(
            f"--blobs {parts.scheme}://…: no credentials in the URL; give them as AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (see docs/several-servers.md)"
        )
    if parts.scheme == "file":
        path = Path(unquote(parts.path))
        if parts.netloc not in ("", "localhost") or not path.is_absolute() or parts.query:
            raise ConfigError(f"--blobs {spec!r}: give a folder as file:///ABSOLUTE/PATH")
        return FileBlobs(path)
    if parts.scheme == "s3":
        if not parts.netloc or parts.query or parts.fragment:
            raise ConfigError(f"--blobs {spec!r}: give a bucket as s3://BUCKET or s3://BUCKET/PREFIX")
        try:
            from dashboard.s3blobs import S3Blobs
        except ImportError:
            raise ConfigError("--blobs s3://… needs boto3: pip install 'fotoflo[s3]'") from None
        blobs = S3Blobs(parts.netloc, unquote(parts.path))
        blobs.check()
        return blobs
    raise ConfigError(f"unknown blobs {redact_url(spec)!r}: use file:///PATH or s3://BUCKET/PREFIX")


def blobs_for(settings: Settings, *, transport: httpx.BaseTransport | None = None) -> Blobs:
    """The Supabase project's Storage bucket (cached in `DATA/blob-cache`), else `open_blobs` of `--blobs`."""
    project = supabase_project(settings)
    if project is not None:
        if settings.blobs:
            raise ConfigError("--blobs and --supabase-url both name where files go: give one")
        from dashboard.supabase.blobs import SupabaseBlobs

        return SupabaseBlobs(*project, settings.data / "blob-cache", transport=transport)
    return open_blobs(settings.blobs, settings.data)


def blobs_kind(blobs: Blobs) -> str:
    """`file`, `s3`, `supabase`, or the class name of other blobs (for `/healthz`)."""
    name = type(blobs).__name__
    return {"FileBlobs": "file", "S3Blobs": "s3", "SupabaseBlobs": "supabase"}.get(name, name)


def bus_for(settings: Settings, *, server: bool = True) -> Bus:
    """`open_bus` of `--bus`; with a Supabase project and the default bus, Realtime (`SupabaseBus`).

    `server=False` (`fotoflo ingest`): with Supabase, the in-process bus is enough, since Realtime
    announces every new feed entry to the servers by itself.
    """
    project = supabase_project(settings)
    if project is not None and (settings.bus or "local").strip() == "local":
        if not server:
            return LocalBus()
        from dashboard.supabase.bus import SupabaseBus

        return SupabaseBus(*project)
    return open_bus(settings.bus, db_url=settings.db)


def hot_folder_lock(store: Store, key: str) -> Lock | None:
    """The lock that lets one server of several ingest a shared hot folder; `None` for a store of one server."""
    make = getattr(store, "advisory_lock", None)
    return make(key) if make is not None else None


def store_kind(store: Store) -> str:
    """`sqlite`, `postgres`, `supabase`, or the class name of another store (for `/healthz`)."""
    name = type(store).__name__
    return {"SQLiteStore": "sqlite", "PostgresStore": "postgres", "SupabaseStore": "supabase"}.get(name, name)


def bus_kind(bus: Bus) -> str:
    """`local`, `redis`, `postgres`, `supabase`, or the class name of another bus (for `/healthz`)."""
    if isinstance(bus, LocalBus):
        return "local"
    return str(getattr(bus, "kind", type(bus).__name__))
