"""Where API tokens, share links, browser sessions and collection ownership are kept.

`AuthStore` is the small protocol. `SQLiteAuthStore` keeps it in `DATA/auth.sqlite`, beside (not
in) the image store, so the CLI can manage it without a running server; `PostgresAuthStore`
(`dashboard.auth.postgres`) keeps it in the `auth_*` tables of the `--db` database, shared by every
server on it; both run `SqlAuthStore`'s SQL. `SupabaseAuthStore` (`dashboard.supabase.auth`) keeps it
in a Supabase project, through database functions, and makes its secrets and reads its rows with
`new_token`, `new_share`, `token_from_row`… of this module. `dashboard.backends.auth_store_for` picks one.
Secrets are never stored: only their SHA-256 (they are 256 random bits, so a slow hash adds
nothing), and share passwords as scrypt hashes. A share link also keeps its download rule
(`DOWNLOADS`) and its watermark (a text, and a PNG its owner uploaded, kept as the decoder worker
re-encoded it), whose `watermark_version` changes with each change of either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from dashboard.auth.roles import ANY_PROJECT, Role
from dashboard.datadir import private_dir, touch_private

T = TypeVar("T")

TOKEN_PREFIX = "fft_"
SCHEMA_VERSION = 3
#: What a share link lets its holder download: `original` (the files as uploaded: every link made
#: before download rules existed could, so it is the default), `preview` (the preview JPEG, watermarked
#: if the link has a watermark) or `none` (nothing to download; previews are still shown).
DOWNLOADS = ("none", "preview", "original")
DEFAULT_DOWNLOAD = "original"
MAX_WATERMARK_CHARS = 100
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL, role TEXT NOT NULL,
    project TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL, revoked_at REAL);
CREATE TABLE IF NOT EXISTS shares (
    id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL, role TEXT NOT NULL,
    project TEXT NOT NULL, collection_id TEXT, password TEXT, created_at REAL NOT NULL,
    expires_at REAL, revoked_at REAL, download TEXT NOT NULL DEFAULT 'original', watermark_text TEXT,
    watermark_version INTEGER NOT NULL DEFAULT 0, watermark_png_sha TEXT);
CREATE TABLE IF NOT EXISTS share_watermarks (share_id TEXT PRIMARY KEY, png BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    hash TEXT PRIMARY KEY, kind TEXT NOT NULL, subject TEXT NOT NULL, csrf TEXT NOT NULL,
    created_at REAL NOT NULL, expires_at REAL NOT NULL, guest_id TEXT, guest_name TEXT, guest_email TEXT);
CREATE TABLE IF NOT EXISTS collection_owners (
    project TEXT NOT NULL, collection_id TEXT NOT NULL, owner TEXT NOT NULL,
    PRIMARY KEY (project, collection_id));
"""


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    b64 = base64.urlsafe_b64encode
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${b64(salt).decode()}${b64(key).decode()}"


def check_password(password: str, stored: str) -> bool:
    """Whether `password` matches `hash_password`'s `stored` (in constant time); slow on purpose."""
    try:
        _, n, r, p, salt, key = stored.split("$")
        expected = base64.urlsafe_b64decode(key)
        got = hashlib.scrypt(
            password.encode("utf-8", "surrogatepass"),
            salt=base64.urlsafe_b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def _state(expires_at: float | None, revoked_at: float | None, now_s: float | None) -> str:
    if revoked_at is not None:
        return "revoked"
    if expires_at is not None and expires_at <= (time.time() if now_s is None else now_s):
        return "expired"
    return "active"


@dataclass(frozen=True)
class TokenRecord:
    """An API token (the secret itself is shown once, when it is made)."""

    id: str
    name: str
    role: Role
    project: str
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None

    def state(self, now_s: float | None = None) -> str:
        """`active`, `expired` or `revoked`."""
        return _state(self.expires_at, self.revoked_at, now_s)


@dataclass(frozen=True)
class ShareRecord:
    """A share link to a project, or to one collection of it, with a role; maybe a password."""

    id: str
    name: str
    role: Role
    project: str
    collection_id: str | None
    password_hash: str | None
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    download: str = DEFAULT_DOWNLOAD
    watermark_text: str | None = None
    #: 0 while the link has no watermark; else changes whenever its text or PNG does (caches key on it).
    watermark_version: int = 0
    watermark_png_sha: str | None = None

    def state(self, now_s: float | None = None) -> str:
        """`active`, `expired` or `revoked`."""
        return _state(self.expires_at, self.revoked_at, now_s)

    @property
    def watermarked(self) -> bool:
        return self.watermark_text is not None or self.watermark_png_sha is not None

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.label,
            "project": self.project,
            "collection_id": self.collection_id,
            "password": self.password_hash is not None,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "state": self.state(),
            "download": self.download,
            "watermark": {"text": self.watermark_text, "png": self.watermark_png_sha is not None}
            if self.watermarked
            else None,
        }


def check_share_rules(download: str, watermark: str | None) -> str | None:
    """`watermark` cleaned (None for none); `ValueError` for an unknown `download` or an empty or long text."""
    if download not in DOWNLOADS:
        raise ValueError(f"download must be one of {', '.join(DOWNLOADS)}, not {download!r}")
    if watermark is None:
        return None
    watermark = " ".join(watermark.split())
    if not watermark or len(watermark) > MAX_WATERMARK_CHARS:
        raise ValueError(f"a watermark's text must be 1 to {MAX_WATERMARK_CHARS} characters")
    return watermark


MAX_GUEST_NAME_CHARS = 100
MAX_GUEST_EMAIL_CHARS = 254


@dataclass(frozen=True)
class Guest:
    """Who a share link's browser session acts as, once they gave a name: `id` is theirs alone, so two
    guests of one name stay two people; `email` is optional."""

    id: str
    name: str
    email: str | None = None

    @classmethod
    def named(cls, name: str, email: str | None = None) -> Guest:
        """A new guest; `ValueError` for an empty or too long name, or an e-mail that is not one."""
        name = " ".join(name.split())
        if not name or len(name) > MAX_GUEST_NAME_CHARS:
            raise ValueError(f"a guest's name must be 1 to {MAX_GUEST_NAME_CHARS} characters")
        email = (email or "").strip() or None
        if email is not None and (len(email) > MAX_GUEST_EMAIL_CHARS or "@" not in email[1:-1] or " " in email):
            raise ValueError("that e-mail address does not look like one")
        return cls(secrets.token_urlsafe(12), name, email)


@dataclass(frozen=True)
class SessionRecord:
    """A browser session: who it signs in (`kind` `token` or `share`, `subject` its id) and its CSRF token;
    a share link's session may act as a named `guest`."""

    kind: str
    subject: str
    csrf: str
    expires_at: float
    guest: Guest | None = None


def new_token(*, name: str, role: Role, project: str, expires_at: float | None) -> tuple[TokenRecord, str, str]:
    """A new token: its record, its secret (shown once) and the secret's digest, which is all a store keeps.

    Every `AuthStore` makes its tokens here, so a token's form and id are the same whichever keeps it.
    """
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    hashed = digest(secret)
    return TokenRecord(hashed[:12], name or role.label, role, project, time.time(), expires_at), secret, hashed


def new_share(
    *,
    project: str,
    role: Role,
    name: str,
    collection_id: str | None,
    expires_at: float | None,
    password: str | None,
    download: str = DEFAULT_DOWNLOAD,
    watermark: str | None = None,
) -> tuple[ShareRecord, str, str]:
    """A new share link: its record (with the password's scrypt hash), its secret and the secret's digest.

    `download` and `watermark` are checked (`check_share_rules`: `ValueError`), the text kept cleaned.
    """
    watermark = check_share_rules(download, watermark)
    secret = secrets.token_urlsafe(24)
    hashed = digest(secret)
    record = ShareRecord(
        hashed[:12], name, role, project, collection_id,
        hash_password(password) if password else None, time.time(), expires_at, None,
        download, watermark, 1 if watermark else 0,
    )  # fmt: skip
    return record, secret, hashed


def new_session_secrets() -> tuple[str, str]:
    """A new browser session's secret (for its cookie; a store keeps its digest) and its CSRF token."""
    return secrets.token_urlsafe(32), secrets.token_urlsafe(24)


# The columns each record is read from, in its fields' order, and the records from such rows: one
# reading for every store (a SQL row, or a JSON object's values in this order).
TOKEN_COLUMNS = ("id", "name", "role", "project", "created_at", "expires_at", "revoked_at")
SHARE_COLUMNS = (
    "id", "name", "role", "project", "collection_id", "password", "created_at", "expires_at", "revoked_at"
)  # fmt: skip
#: A share link's rules (`ShareRecord.download`, its watermark), after `SHARE_COLUMNS` in every store's rows.
SHARE_RULE_COLUMNS = ("download", "watermark_text", "watermark_version", "watermark_png_sha")
SESSION_COLUMNS = ("kind", "subject", "csrf", "expires_at", "guest_id", "guest_name", "guest_email")


def token_from_row(row: Sequence[object]) -> TokenRecord:
    id_, name, role, project, created, expires, revoked = row
    return TokenRecord(
        str(id_), str(name), Role.parse(str(role)), str(project), float(created),  # type: ignore[arg-type]
        expires, revoked,  # type: ignore[arg-type]
    )  # fmt: skip


def share_from_row(row: Sequence[object]) -> ShareRecord:
    """A share link from the values of `SHARE_COLUMNS`, then `SHARE_RULE_COLUMNS`."""
    id_, name, role, project, collection, password, created, expires, revoked, download, text, version, png_sha = row
    return ShareRecord(
        str(id_), str(name), Role.parse(str(role)), str(project), collection, password,  # type: ignore[arg-type]
        float(created), expires, revoked, str(download), text, int(str(version)), png_sha,  # type: ignore[arg-type]
    )  # fmt: skip


def session_from_row(row: Sequence[object]) -> SessionRecord:
    kind, subject, csrf, expires, guest_id, guest_name, guest_email = row
    guest = None
    if guest_id is not None and guest_name is not None:
        guest = Guest(str(guest_id), str(guest_name), None if guest_email is None else str(guest_email))
    return SessionRecord(str(kind), str(subject), str(csrf), float(expires), guest)  # type: ignore[arg-type]


class _Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchall(self) -> list[Any]: ...


class _Cursorable(Protocol):
    """A connection of either engine as `SqlAuthStore` uses it: `execute` with `?` placeholders."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> _Cursor: ...


class AuthStore(Protocol):
    def create_token(
        self, *, name: str, role: Role, project: str = ANY_PROJECT, expires_at: float | None = None
    ) -> tuple[TokenRecord, str]:
        """A new token and its secret (returned only here)."""

    def tokens(self) -> list[TokenRecord]: ...

    def get_token(self, token_id: str) -> TokenRecord | None: ...

    def find_token(self, secret: str) -> TokenRecord | None:
        """The token with this secret, whatever its state."""

    def revoke_token(self, token_id: str) -> bool:
        """Revoke (and sign out its sessions); False if there is no such active token."""

    def create_share(
        self,
        *,
        project: str,
        role: Role,
        name: str = "",
        collection_id: str | None = None,
        expires_at: float | None = None,
        password: str | None = None,
        download: str = DEFAULT_DOWNLOAD,
        watermark: str | None = None,
    ) -> tuple[ShareRecord, str]:
        """A new share link and its secret (the last part of its URL; returned only here).

        `download` one of `DOWNLOADS`, `watermark` a text (see `check_share_rules`; `ValueError` otherwise).
        """

    def shares(self, project: str | None = None) -> list[ShareRecord]: ...

    def get_share(self, share_id: str) -> ShareRecord | None: ...

    def find_share(self, secret: str) -> ShareRecord | None:
        """The share link with this secret, whatever its state."""

    def revoke_share(self, share_id: str) -> bool: ...

    def set_share_watermark_png(self, share_id: str, png: bytes | None) -> ShareRecord | None:
        """Give the link this watermark PNG (already checked and re-encoded; None: take it away); the
        link as it is now, its `watermark_version` moved on; None if there is no such link."""

    def share_watermark_png(self, share_id: str) -> bytes | None:
        """The link's watermark PNG, if it has one."""

    def create_session(self, kind: str, subject: str, expires_at: float, guest: Guest | None = None) -> tuple[str, str]:
        """A new browser session (acting as `guest`, if given): (its secret for the cookie, its CSRF token)."""

    def find_session(self, secret: str) -> SessionRecord | None:
        """The unexpired session with this secret."""

    def delete_session(self, secret: str) -> None: ...

    def set_collection_owner(self, project: str, collection_id: str, owner: str) -> None: ...

    def collection_owner(self, project: str, collection_id: str) -> str | None: ...

    def collections_owned(self, project: str, owner: str) -> set[str]: ...

    def close(self) -> None: ...


class SqlAuthStore:
    """`AuthStore`'s SQL, written once for `SQLiteAuthStore` and `PostgresAuthStore` (`dashboard.auth.postgres`).

    A subclass gives `_transaction` (a connection whose `execute(sql, args)` takes `?` placeholders
    and returns a cursor with `fetchall` and `rowcount`, committed when the block ends) and the
    prefix of its tables (`_P`). Nothing is cached: every call reads the database, so a change made
    by one process (a revocation) is seen by every other at its next call.
    """

    _P = ""  # the tables' prefix: PostgreSQL's are `auth_*`, beside the image store's tables

    def _transaction(self) -> AbstractContextManager[_Cursorable]:
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[_Cursorable]:
        return self._transaction()

    def _all(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        with self._read() as conn:
            return [tuple(row) for row in conn.execute(sql, args).fetchall()]

    def _first(self, convert: Callable[[tuple[object, ...]], T], sql: str, *args: object) -> T | None:
        rows = self._all(sql, *args)
        return convert(rows[0]) if rows else None

    def _write(self, sql: str, *args: object) -> int:
        with self._transaction() as conn:
            return int(conn.execute(sql, args).rowcount)

    # -- tokens -------------------------------------------------------------------------------

    _TOKEN_COLUMNS = ", ".join(TOKEN_COLUMNS)
    _token = staticmethod(token_from_row)

    def create_token(
        self, *, name: str, role: Role, project: str = ANY_PROJECT, expires_at: float | None = None
    ) -> tuple[TokenRecord, str]:
        record, secret, hashed = new_token(name=name, role=role, project=project, expires_at=expires_at)
        self._write(
            f"INSERT INTO {self._P}tokens (id, hash, name, role, project, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            record.id, hashed, record.name, role.label, project, record.created_at, expires_at,
        )  # fmt: skip
        return record, secret

    def tokens(self) -> list[TokenRecord]:
        rows = self._all(f"SELECT {self._TOKEN_COLUMNS} FROM {self._P}tokens ORDER BY created_at")
        return [self._token(r) for r in rows]

    def get_token(self, token_id: str) -> TokenRecord | None:
        return self._first(self._token, f"SELECT {self._TOKEN_COLUMNS} FROM {self._P}tokens WHERE id = ?", token_id)

    def find_token(self, secret: str) -> TokenRecord | None:
        sql = f"SELECT {self._TOKEN_COLUMNS} FROM {self._P}tokens WHERE hash = ?"
        return self._first(self._token, sql, digest(secret))

    def revoke_token(self, token_id: str) -> bool:
        with self._transaction() as conn:
            changed = conn.execute(
                f"UPDATE {self._P}tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (time.time(), token_id),
            ).rowcount
            conn.execute(f"DELETE FROM {self._P}sessions WHERE kind = 'token' AND subject = ?", (token_id,))
        return changed > 0

    # -- share links --------------------------------------------------------------------------

    _SHARE_COLUMNS = ", ".join(SHARE_COLUMNS + SHARE_RULE_COLUMNS)
    _share = staticmethod(share_from_row)

    def create_share(
        self,
        *,
        project: str,
        role: Role,
        name: str = "",
        collection_id: str | None = None,
        expires_at: float | None = None,
        password: str | None = None,
        download: str = DEFAULT_DOWNLOAD,
        watermark: str | None = None,
    ) -> tuple[ShareRecord, str]:
        record, secret, hashed = new_share(
            project=project, role=role, name=name, collection_id=collection_id, expires_at=expires_at,
            password=password, download=download, watermark=watermark,
        )  # fmt: skip
        self._write(
            f"INSERT INTO {self._P}shares (id, hash, name, role, project, collection_id, password, created_at,"
            " expires_at, download, watermark_text, watermark_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            record.id, hashed, name, role.label, project, collection_id, record.password_hash,
            record.created_at, expires_at, download, record.watermark_text, record.watermark_version,
        )  # fmt: skip
        return record, secret

    def shares(self, project: str | None = None) -> list[ShareRecord]:
        select = f"SELECT {self._SHARE_COLUMNS} FROM {self._P}shares"
        if project is None:
            rows = self._all(f"{select} ORDER BY created_at")
        else:
            rows = self._all(f"{select} WHERE project = ? ORDER BY created_at", project)
        return [self._share(r) for r in rows]

    def get_share(self, share_id: str) -> ShareRecord | None:
        return self._first(self._share, f"SELECT {self._SHARE_COLUMNS} FROM {self._P}shares WHERE id = ?", share_id)

    def find_share(self, secret: str) -> ShareRecord | None:
        sql = f"SELECT {self._SHARE_COLUMNS} FROM {self._P}shares WHERE hash = ?"
        return self._first(self._share, sql, digest(secret))

    def revoke_share(self, share_id: str) -> bool:
        with self._transaction() as conn:
            changed = conn.execute(
                f"UPDATE {self._P}shares SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (time.time(), share_id),
            ).rowcount
            conn.execute(f"DELETE FROM {self._P}sessions WHERE kind = 'share' AND subject = ?", (share_id,))
        return changed > 0

    def set_share_watermark_png(self, share_id: str, png: bytes | None) -> ShareRecord | None:
        sha = hashlib.sha256(png).hexdigest() if png is not None else None
        with self._transaction() as conn:
            changed = conn.execute(
                f"UPDATE {self._P}shares SET watermark_png_sha = ?, watermark_version = watermark_version + 1"
                " WHERE id = ?",
                (sha, share_id),
            ).rowcount
            if changed:
                conn.execute(f"DELETE FROM {self._P}share_watermarks WHERE share_id = ?", (share_id,))
                if png is not None:
                    conn.execute(
                        f"INSERT INTO {self._P}share_watermarks (share_id, png) VALUES (?, ?)", (share_id, png)
                    )
        return self.get_share(share_id) if changed else None

    def share_watermark_png(self, share_id: str) -> bytes | None:
        rows = self._all(f"SELECT png FROM {self._P}share_watermarks WHERE share_id = ?", share_id)
        return bytes(rows[0][0]) if rows else None  # type: ignore[call-overload]  # bytes, or psycopg's memoryview

    # -- browser sessions ---------------------------------------------------------------------

    def create_session(self, kind: str, subject: str, expires_at: float, guest: Guest | None = None) -> tuple[str, str]:
        secret, csrf = new_session_secrets()
        now = time.time()
        named = (guest.id, guest.name, guest.email) if guest is not None else (None, None, None)
        with self._transaction() as conn:
            conn.execute(f"DELETE FROM {self._P}sessions WHERE expires_at <= ?", (now,))
            conn.execute(
                f"INSERT INTO {self._P}sessions (hash, kind, subject, csrf, created_at, expires_at,"
                " guest_id, guest_name, guest_email) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (digest(secret), kind, subject, csrf, now, expires_at, *named),
            )
        return secret, csrf

    def find_session(self, secret: str) -> SessionRecord | None:
        rows = self._all(
            f"SELECT {', '.join(SESSION_COLUMNS)} FROM {self._P}sessions WHERE hash = ? AND expires_at > ?",
            digest(secret), time.time(),
        )  # fmt: skip
        return session_from_row(rows[0]) if rows else None

    def delete_session(self, secret: str) -> None:
        self._write(f"DELETE FROM {self._P}sessions WHERE hash = ?", digest(secret))

    # -- who saved which collection -----------------------------------------------------------

    def set_collection_owner(self, project: str, collection_id: str, owner: str) -> None:
        self._write(
            f"INSERT INTO {self._P}collection_owners (project, collection_id, owner) VALUES (?, ?, ?)"
            " ON CONFLICT (project, collection_id) DO UPDATE SET owner = excluded.owner",
            project, collection_id, owner,
        )  # fmt: skip

    def collection_owner(self, project: str, collection_id: str) -> str | None:
        rows = self._all(
            f"SELECT owner FROM {self._P}collection_owners WHERE project = ? AND collection_id = ?",
            project, collection_id,
        )  # fmt: skip
        return str(rows[0][0]) if rows else None

    def collections_owned(self, project: str, owner: str) -> set[str]:
        rows = self._all(
            f"SELECT collection_id FROM {self._P}collection_owners WHERE project = ? AND owner = ?", project, owner
        )
        return {str(r[0]) for r in rows}


#: The columns that bring an auth file of an older version to each version, as (table, column); the
#: tables it lacks altogether (and new ones) are made whole by `_SCHEMA` afterwards.
_UPGRADES: dict[int, tuple[tuple[str, str], ...]] = {
    # 2: its sessions learn to act as a named guest.
    2: tuple(("sessions", f"{column} TEXT") for column in ("guest_id", "guest_name", "guest_email")),
    # 3: share links' download rules and watermarks (PostgreSQL's step 9); existing links keep `original`.
    3: (
        ("shares", "download TEXT NOT NULL DEFAULT 'original'"),
        ("shares", "watermark_text TEXT"),
        ("shares", "watermark_version INTEGER NOT NULL DEFAULT 0"),
        ("shares", "watermark_png_sha TEXT"),
    ),
}


class SQLiteAuthStore(SqlAuthStore):
    """`AuthStore` in one SQLite file (WAL mode); safe across threads and beside the CLI's process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        private_dir(self.path.parent)
        touch_private(self.path)  # hashes only, but nobody else's business (0600 whatever the umask)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{self.path} is from a newer Fotoflo (schema {version} > {SCHEMA_VERSION})")
            for step, statements in _UPGRADES.items():
                if 0 < version < step:
                    # Once, if another process races us: the version is read again inside the transaction.
                    self._db.execute("BEGIN IMMEDIATE")
                    if 0 < self._db.execute("PRAGMA user_version").fetchone()[0] < step:
                        for table, column in statements:
                            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
                            if have and column.split()[0] not in have:
                                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
                        self._db.execute(f"PRAGMA user_version = {step}")
                    self._db.execute("COMMIT")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # One statement commits by itself (autocommit); a revocation's two commit together.
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._db

    def close(self) -> None:
        with self._lock:
            self._db.close()
