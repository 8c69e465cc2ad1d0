"""`SupabaseAuthStore`: the `AuthStore` in a Supabase project, shared by every server on it and by the CLI.

Its tables are in the schema `fotoflo_auth` of `supabase/migrations/…_fotoflo_auth.sql`, which PostgREST
does not serve and only the service role may use; every call is one of that migration's functions
(`rpc`), so each is one transaction (a revocation ends the sessions it signed in, in the same one). The
secrets are made and hashed here, by `dashboard.auth.store`'s `new_token`, `new_share` and
`new_session_secrets`, as the SQL stores make them: only their digests (and share passwords' scrypt
hashes) reach Supabase. Nothing is cached in the process: a token or link revoked by any server (or
`fotoflo token|share revoke --supabase-url …`) is refused by every other at its next request.
Share links keep their download rules and watermarks (`…_fotoflo_share_rules.sql`), as in the SQL stores.
"""

from __future__ import annotations

import base64
import time
from typing import Any, TypeVar

import httpx
from postgrest.exceptions import APIError

from dashboard.auth.roles import ANY_PROJECT, Role
from dashboard.auth.store import (
    DEFAULT_DOWNLOAD,
    SESSION_COLUMNS,
    SHARE_COLUMNS,
    SHARE_RULE_COLUMNS,
    TOKEN_COLUMNS,
    Guest,
    SessionRecord,
    ShareRecord,
    TokenRecord,
    digest,
    new_session_secrets,
    new_share,
    new_token,
    session_from_row,
    share_from_row,
    token_from_row,
)
from dashboard.supabase import sync_client
from dashboard.supabase.store import SchemaMissing

#: The `fotoflo_auth_schema_version()` the auth migrations create; a project at another version is refused.
AUTH_SCHEMA_VERSION = 2  # 1: the auth store (20250601001000), 2: share links' rules (20250601001100)
_MIGRATION = "supabase/migrations/20250601001000_fotoflo_auth.sql"
T = TypeVar("T")


class SupabaseAuthStore:
    """`AuthStore` in the Supabase project at `url`, with its service role `key`; see `dashboard.auth.store.AuthStore`.

    Thread-safe (one pooled `httpx.Client`). `transport` replaces the network (tests). Network and
    PostgREST errors propagate, as database errors do from the SQL stores; a project without the auth
    migration is refused at once with `SchemaMissing`.
    """

    def __init__(self, url: str, key: str, *, transport: httpx.BaseTransport | None = None, timeout_s: float = 10.0):
        self.url = url
        self._client, self._http = sync_client(url, key, transport=transport, timeout_s=timeout_s)
        try:
            version = self._rpc("fotoflo_auth_schema_version")
        except APIError as exc:
            self._http.close()
            if exc.code in ("PGRST202", "42883"):
                raise SchemaMissing(
                    f"this Supabase project has no Fotoflo auth tables: run {_MIGRATION} on it (see docs/supabase.md)"
                ) from exc
            raise
        if version != AUTH_SCHEMA_VERSION:
            self._http.close()
            raise SchemaMissing(
                f"the Supabase project has Fotoflo auth schema version {version}, this Fotoflo needs"
                f" {AUTH_SCHEMA_VERSION}: run supabase/migrations/*.sql on it, in order (see docs/supabase.md)"
            )

    def _rpc(self, fn: str, **params: Any) -> Any:
        return self._client.rpc(fn, params).execute().data

    # -- tokens -------------------------------------------------------------------------------

    def create_token(
        self, *, name: str, role: Role, project: str = ANY_PROJECT, expires_at: float | None = None
    ) -> tuple[TokenRecord, str]:
        record, secret, hashed = new_token(name=name, role=role, project=project, expires_at=expires_at)
        self._rpc(
            "fotoflo_auth_create_token", p_id=record.id, p_hash=hashed, p_name=record.name, p_role=role.label,
            p_project=project, p_created_at=record.created_at, p_expires_at=expires_at,
        )  # fmt: skip
        return record, secret

    def _tokens(self, *, token_id: str | None = None, hashed: str | None = None) -> list[TokenRecord]:
        rows = self._rpc("fotoflo_auth_tokens", p_id=token_id, p_hash=hashed)
        return [token_from_row(_values(r, TOKEN_COLUMNS)) for r in rows]

    def tokens(self) -> list[TokenRecord]:
        return self._tokens()

    def get_token(self, token_id: str) -> TokenRecord | None:
        return _first(self._tokens(token_id=token_id))

    def find_token(self, secret: str) -> TokenRecord | None:
        return _first(self._tokens(hashed=digest(secret)))

    def revoke_token(self, token_id: str) -> bool:
        return bool(self._rpc("fotoflo_auth_revoke_token", p_id=token_id, p_now=time.time()))

    # -- share links --------------------------------------------------------------------------

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
        self._rpc(
            "fotoflo_auth_create_share", p_id=record.id, p_hash=hashed, p_name=name, p_role=role.label,
            p_project=project, p_collection_id=collection_id, p_password=record.password_hash,
            p_created_at=record.created_at, p_expires_at=expires_at, p_download=record.download,
            p_watermark_text=record.watermark_text, p_watermark_version=record.watermark_version,
        )  # fmt: skip
        return record, secret

    def _shares(
        self, *, share_id: str | None = None, hashed: str | None = None, project: str | None = None
    ) -> list[ShareRecord]:
        rows = self._rpc("fotoflo_auth_shares", p_id=share_id, p_hash=hashed, p_project=project)
        return [_share(r) for r in rows]

    def shares(self, project: str | None = None) -> list[ShareRecord]:
        return self._shares(project=project)

    def get_share(self, share_id: str) -> ShareRecord | None:
        return _first(self._shares(share_id=share_id))

    def find_share(self, secret: str) -> ShareRecord | None:
        return _first(self._shares(hashed=digest(secret)))

    def revoke_share(self, share_id: str) -> bool:
        return bool(self._rpc("fotoflo_auth_revoke_share", p_id=share_id, p_now=time.time()))

    def set_share_watermark_png(self, share_id: str, png: bytes | None) -> ShareRecord | None:
        # Base64: JSON carries no bytes. The function hashes the PNG and moves the version on with it.
        encoded = base64.b64encode(png).decode("ascii") if png is not None else None
        row = self._rpc("fotoflo_auth_set_share_watermark_png", p_id=share_id, p_png_base64=encoded)
        return _share(row) if row else None

    def share_watermark_png(self, share_id: str) -> bytes | None:
        encoded = self._rpc("fotoflo_auth_share_watermark_png", p_id=share_id)
        return base64.b64decode(encoded) if encoded is not None else None  # PostgreSQL's base64 has line breaks

    # -- browser sessions ---------------------------------------------------------------------

    def create_session(self, kind: str, subject: str, expires_at: float, guest: Guest | None = None) -> tuple[str, str]:
        secret, csrf = new_session_secrets()
        self._rpc(
            "fotoflo_auth_create_session", p_hash=digest(secret), p_kind=kind, p_subject=subject, p_csrf=csrf,
            p_now=time.time(), p_expires_at=expires_at, p_guest_id=guest.id if guest else None,
            p_guest_name=guest.name if guest else None, p_guest_email=guest.email if guest else None,
        )  # fmt: skip
        return secret, csrf

    def find_session(self, secret: str) -> SessionRecord | None:
        row = self._rpc("fotoflo_auth_find_session", p_hash=digest(secret), p_now=time.time())
        return session_from_row(_values(row, SESSION_COLUMNS)) if row else None

    def delete_session(self, secret: str) -> None:
        self._rpc("fotoflo_auth_delete_session", p_hash=digest(secret))

    # -- who saved which collection -----------------------------------------------------------

    def set_collection_owner(self, project: str, collection_id: str, owner: str) -> None:
        self._rpc("fotoflo_auth_set_collection_owner", p_project=project, p_collection_id=collection_id, p_owner=owner)

    def _owners(self, project: str, collection_id: str | None, owner: str | None) -> list[dict[str, str]]:
        return list(
            self._rpc("fotoflo_auth_collection_owners", p_project=project, p_collection_id=collection_id, p_owner=owner)
        )

    def collection_owner(self, project: str, collection_id: str) -> str | None:
        rows = self._owners(project, collection_id, None)
        return str(rows[0]["owner"]) if rows else None

    def collections_owned(self, project: str, owner: str) -> set[str]:
        return {str(r["collection_id"]) for r in self._owners(project, None, owner)}

    def close(self) -> None:
        self._http.close()


def _values(row: dict[str, Any], columns: tuple[str, ...]) -> list[object]:
    """The row's values in `columns`' order; times as floats (JSON writes a whole number of seconds as an int)."""
    return [float(row[c]) if c.endswith("_at") and row[c] is not None else row[c] for c in columns]


def _share(row: dict[str, Any]) -> ShareRecord:
    return share_from_row(_values(row, SHARE_COLUMNS + SHARE_RULE_COLUMNS))


def _first(records: list[T]) -> T | None:
    return records[0] if records else None
