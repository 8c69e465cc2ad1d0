"""`SupabaseAuthStore` through the FAKE Supabase HTTP API, beyond the `AuthStore` contract.

The contract itself (tests/auth/test_access.py: the store, `Access` and the token/share CLI) runs on this
store too: the `supabase` backend of its fixtures. Here: two servers on one project, who may read the
auth tables (only the service role: `SET ROLE` as PostgREST would, and through the fake HTTP API), a
project without the auth migration, and the settings that select it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from postgrest.exceptions import APIError

from dashboard.auth import Access, AuthRefused, Role
from dashboard.auth.store import Guest, digest
from dashboard.backends import auth_store_for
from dashboard.config import ConfigError, Settings
from dashboard.supabase import SHARE_HEADER, sync_client
from dashboard.supabase.auth import SupabaseAuthStore
from dashboard.supabase.store import SchemaMissing
from tests.supabase.fakes.common import ANON_KEY, FAKE_URL, MIGRATIONS, SERVICE_KEY, SHIM, apply_sql, make_key
from tests.supabase.fakes.fake_http import FakeSupabaseHTTP
from tests.support.services import PostgresServer

TABLES = ("tokens", "shares", "sessions", "collection_owners", "share_watermarks")


@pytest.fixture
def two(fake_http: FakeSupabaseHTTP) -> Iterator[tuple[SupabaseAuthStore, SupabaseAuthStore]]:
    """The auth stores of two servers on one Supabase project: each its own client, nothing shared in-process."""
    a = SupabaseAuthStore(FAKE_URL, SERVICE_KEY, transport=fake_http)
    b = SupabaseAuthStore(FAKE_URL, SERVICE_KEY, transport=fake_http)
    yield a, b
    a.close()
    b.close()


# -- two servers ----------------------------------------------------------------------------------


def test_a_token_made_on_one_server_signs_in_on_the_other_and_its_revocation_is_seen_at_once(
    two: tuple[SupabaseAuthStore, SupabaseAuthStore],
) -> None:
    a, b = two
    on_a, on_b = Access(a), Access(b)
    token, secret = a.create_token(name="laptop", role=Role.EDITOR, project="wedding")
    principal = on_b.authenticate(f"Bearer {secret}", None, "c").principal
    assert principal is not None and (principal.id, principal.role) == (token.id, Role.EDITOR)
    _, signed_in = on_a.login(secret, "c")  # a browser signed in on A is signed in on B: no pinning needed
    assert on_b.authenticate(None, signed_in.session, "c").principal == principal

    assert b.revoke_token(token.id)
    with pytest.raises(AuthRefused) as refused:
        on_a.authenticate(f"Bearer {secret}", None, "c")
    assert refused.value.code == "token_revoked"
    assert on_a.authenticate(None, signed_in.session, "c").principal is None


def test_a_share_link_revoked_on_one_server_is_refused_by_the_other_at_once(
    two: tuple[SupabaseAuthStore, SupabaseAuthStore],
) -> None:
    a, b = two
    on_a, on_b = Access(a), Access(b)
    share, link = a.create_share(project="wedding", role=Role.CLIENT, name="Proofs", password="correct horse")
    anna = Guest.named("Anna Berg", "anna@example.com")
    _, guest = on_b.open_share(link, "correct horse", "c", anna)
    seen_on_a = on_a.authenticate(None, guest.session, "c").principal
    assert seen_on_a is not None and (seen_on_a.id, seen_on_a.guest, seen_on_a.name) == (share.id, anna.id, anna.name)
    assert [s.id for s in b.shares("wedding")] == [share.id]

    assert a.revoke_share(share.id) and not b.revoke_share(share.id)
    assert on_b.authenticate(None, guest.session, "c").principal is None  # the guest's session ended with it
    with pytest.raises(AuthRefused) as refused:
        on_b.open_share(link, "correct horse", "c")
    assert (refused.value.status, refused.value.code) == (410, "share_revoked")
    found = b.get_share(share.id)
    assert found is not None and found.state() == "revoked"


def test_a_link_s_rules_and_watermark_set_on_one_server_are_seen_by_the_other_at_once(
    two: tuple[SupabaseAuthStore, SupabaseAuthStore],
) -> None:
    a, b = two
    share, link = a.create_share(project="wedding", role=Role.CLIENT, download="preview", watermark="© Studio")
    assert b.find_share(link) == share and (share.download, share.watermark_text) == ("preview", "© Studio")
    png = bytes(range(256)) * 3000  # bigger than one base64 line of PostgreSQL's (76 characters)
    marked = a.set_share_watermark_png(share.id, png)
    assert marked is not None and b.get_share(share.id) == marked and b.share_watermark_png(share.id) == png
    cleared = b.set_share_watermark_png(share.id, None)
    assert cleared is not None and a.get_share(share.id) == cleared and a.share_watermark_png(share.id) is None
    assert cleared.watermark_version == 3 > marked.watermark_version > share.watermark_version


def test_collection_owners_are_the_project_s_not_a_server_s(two: tuple[SupabaseAuthStore, SupabaseAuthStore]) -> None:
    a, b = two
    a.set_collection_owner("wedding", "c1", "guest:anna")
    a.set_collection_owner("wedding", "c2", "guest:anna")
    b.set_collection_owner("wedding", "c2", "token:t1")  # saved again by someone else: theirs now
    assert (b.collection_owner("wedding", "c1"), a.collection_owner("wedding", "c2")) == ("guest:anna", "token:t1")
    assert (
        a.collections_owned("wedding", "guest:anna") == {"c1"} and b.collections_owned("other", "guest:anna") == set()
    )
    assert a.collection_owner("wedding", "nope") is None


def test_the_functions_never_hand_out_a_hash(two: tuple[SupabaseAuthStore, SupabaseAuthStore]) -> None:
    a, _ = two
    _, secret = a.create_token(name="", role=Role.OWNER)
    a.create_share(project="p", role=Role.VIEWER)
    session, _ = a.create_session("token", "t", time.time() + 60)
    rows: list[Any] = [
        *a._rpc("fotoflo_auth_tokens", p_id=None, p_hash=None),
        *a._rpc("fotoflo_auth_shares", p_id=None, p_hash=None, p_project=None),
        a._rpc("fotoflo_auth_find_session", p_hash=digest(session), p_now=time.time()),
    ]
    assert len(rows) == 3 and all("hash" not in row for row in rows)
    assert secret not in json.dumps(rows)


# -- only the service role ------------------------------------------------------------------------


def as_role(url: str, role: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run `sql` as PostgREST would for a request with this role (and a share header, which opens nothing here)."""
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute(f"SET LOCAL ROLE {role}")  # type: ignore[arg-type]
        conn.execute("SELECT set_config('request.headers', %s, true)", (json.dumps({SHARE_HEADER: "x" * 24}),))
        conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps({"role": role}),))
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


@pytest.fixture
def seeded(fake_http: FakeSupabaseHTTP) -> str:
    """A project whose auth tables hold a row each, written by a server (the service role)."""
    store = SupabaseAuthStore(FAKE_URL, SERVICE_KEY, transport=fake_http)
    try:
        token, _ = store.create_token(name="", role=Role.OWNER)
        share, _ = store.create_share(project="p", role=Role.CLIENT, download="preview", watermark="© Studio")
        store.set_share_watermark_png(share.id, b"png")
        store.create_session("token", token.id, time.time() + 60)
        store.set_collection_owner("p", "c1", f"token:{token.id}")
    finally:
        store.close()
    return fake_http.db_url


ATTEMPTS = [
    *(f"SELECT * FROM fotoflo_auth.{t}" for t in TABLES),
    "INSERT INTO fotoflo_auth.tokens (id, hash, name, role, project, created_at)"
    " VALUES ('x', 'h', 'n', 'owner', '*', 0)",
    "UPDATE fotoflo_auth.shares SET revoked_at = NULL RETURNING id",
    "DELETE FROM fotoflo_auth.sessions RETURNING kind",
    "SELECT fotoflo_auth_tokens(NULL, NULL)",
    "SELECT fotoflo_auth_shares(NULL, NULL, NULL)",
    "SELECT fotoflo_auth_create_token('x', 'h', 'n', 'owner', '*', 0, NULL)",
    "SELECT fotoflo_auth_create_session('h', 'token', 'x', 'c', 0, 1e12, NULL, NULL, NULL)",
    "SELECT fotoflo_auth_find_session('h', 0)",
    "SELECT fotoflo_auth_revoke_share('x', 0)",
    "SELECT fotoflo_auth_create_share('x', 'h', 'n', 'owner', 'p', NULL, NULL, 0, NULL, 'original', NULL, 0)",
    "SELECT fotoflo_auth_set_share_watermark_png('x', NULL)",
    "SELECT fotoflo_auth_share_watermark_png('x')",
    "SELECT fotoflo_auth_set_collection_owner('p', 'c1', 'me')",
    "SELECT fotoflo_auth_collection_owners('p', NULL, NULL)",
]


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_anon_and_authenticated_can_neither_read_nor_write_the_auth_tables(seeded: str, role: str) -> None:
    for sql in ATTEMPTS:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            as_role(seeded, role, sql)
    assert len(as_role(seeded, "service_role", "SELECT * FROM fotoflo_auth.sessions")) == 1  # nothing changed


def test_the_catalogs_say_so_too(seeded: str) -> None:
    with psycopg.connect(seeded) as conn:
        rls = conn.execute(
            "SELECT c.relname, c.relrowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'fotoflo_auth' AND c.relkind = 'r' ORDER BY 1"
        ).fetchall()
        assert rls == sorted((t, True) for t in TABLES)
        assert conn.execute("SELECT count(*) FROM pg_policies WHERE schemaname = 'fotoflo_auth'").fetchone() == (0,)
        for role in ("public", "anon", "authenticated"):
            assert conn.execute("SELECT has_schema_privilege(%s, 'fotoflo_auth', 'USAGE')", (role,)).fetchone() == (
                False,
            ), role
        functions = [
            r[0]
            for r in conn.execute(
                "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                " WHERE n.nspname = 'public' AND p.proname LIKE 'fotoflo\\_auth\\_%'"
            )
        ]
        assert len(functions) == 14
        for function in functions:
            for role, may in (("anon", False), ("authenticated", False), ("service_role", True)):
                allowed = conn.execute("SELECT has_function_privilege(%s, %s, 'EXECUTE')", (role, function))
                assert allowed.fetchone() == (may,), (role, function)


def test_a_privilege_granted_by_mistake_still_shows_no_row(seeded: str) -> None:
    # Row level security with no policy is the second lock: someone grants anon the schema and the tables
    # (a click in the dashboard), and anon still reads and changes nothing.
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute("GRANT USAGE ON SCHEMA fotoflo_auth TO anon")
        conn.execute("GRANT ALL ON ALL TABLES IN SCHEMA fotoflo_auth TO anon")
    for table in TABLES:
        assert as_role(seeded, "anon", f"SELECT * FROM fotoflo_auth.{table}") == [], table
    assert as_role(seeded, "anon", "UPDATE fotoflo_auth.tokens SET revoked_at = NULL RETURNING id") == []
    assert as_role(seeded, "anon", "DELETE FROM fotoflo_auth.sessions RETURNING hash") == []
    assert len(as_role(seeded, "service_role", "SELECT * FROM fotoflo_auth.tokens")) == 1


def test_the_anon_key_reaches_none_of_it_through_the_api(seeded: str, fake_http: FakeSupabaseHTTP) -> None:
    anon, http = sync_client(FAKE_URL, ANON_KEY, transport=fake_http)
    user, http2 = sync_client(FAKE_URL, make_key("authenticated"), transport=fake_http)
    try:
        for client in (anon, user):
            with pytest.raises(APIError) as refused:
                client.rpc("fotoflo_auth_tokens", {"p_id": None, "p_hash": None}).execute()
            assert refused.value.code == "42501"
            with pytest.raises(APIError) as refused:
                client.rpc(
                    "fotoflo_auth_create_token",
                    {"p_id": "x", "p_hash": "h", "p_name": "n", "p_role": "owner", "p_project": "*",
                     "p_created_at": 0, "p_expires_at": None},
                ).execute()  # fmt: skip
            assert refused.value.code == "42501"
            for table in TABLES:  # not in an exposed schema: PostgREST does not know them
                with pytest.raises(APIError) as refused:
                    client.table(table).select("*").execute()
                # (`shares` is found: it is public's, the anon-readable shares of the security migration, and
                # refused too)
                assert refused.value.code == ("42501" if table == "shares" else "PGRST205"), table
        with pytest.raises(APIError) as refused:  # nor does a server start on the anon key by mistake
            SupabaseAuthStore(FAKE_URL, ANON_KEY, transport=fake_http)
        assert refused.value.code == "42501"
    finally:
        http.close()
        http2.close()


# -- the project and the settings -----------------------------------------------------------------


def test_a_project_without_the_auth_migration_is_refused_with_what_to_do(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.create_database(empty=True)
    fake = FakeSupabaseHTTP(url, tmp_path / "storage")
    try:
        at = next(i for i, m in enumerate(MIGRATIONS) if m.name.endswith("_fotoflo_auth.sql"))
        apply_sql(url, SHIM, *MIGRATIONS[:at])  # the image store's, none of the auth store's
        with pytest.raises(SchemaMissing, match=r"supabase/migrations/20250601001000_fotoflo_auth\.sql"):
            SupabaseAuthStore(FAKE_URL, SERVICE_KEY, transport=fake)
        apply_sql(url, MIGRATIONS[at])  # without share links' rules (…_fotoflo_share_rules.sql): too old
        with pytest.raises(SchemaMissing, match="auth schema version 1, this Fotoflo needs 2"):
            SupabaseAuthStore(FAKE_URL, SERVICE_KEY, transport=fake)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "CREATE OR REPLACE FUNCTION public.fotoflo_auth_schema_version() RETURNS integer"
                " LANGUAGE sql AS 'SELECT 9'"
            )
        with pytest.raises(SchemaMissing, match="auth schema version 9"):
            SupabaseAuthStore(FAKE_URL, SERVICE_KEY, transport=fake)
    finally:
        fake.shutdown()
        postgres_server.drop_database(url)


def test_the_settings_open_it_for_servers_and_the_cli(fake_http: FakeSupabaseHTTP, tmp_path: Path) -> None:
    settings = Settings(data=tmp_path / "data", supabase_url=FAKE_URL, supabase_key=SERVICE_KEY)
    store = auth_store_for(settings, transport=fake_http)
    try:
        assert isinstance(store, SupabaseAuthStore)
    finally:
        store.close()
    assert not (tmp_path / "data" / "auth.sqlite").exists()
    with pytest.raises(ConfigError, match="give one"):
        auth_store_for(Settings(data=tmp_path, supabase_url=FAKE_URL, supabase_key=SERVICE_KEY, db="postgresql://x/y"))
