"""`supabase/migrations/*.sql` on a real PostgreSQL, after the shim of what a Supabase project already has.

Idempotent (run again, nothing changes), and what they grant: the service role writes through the
functions; anon (and authenticated) users read only what a live share grants, and write nothing, as
`SET ROLE` and PostgREST-style request settings show, directly and through the fake HTTP API. The auth
store's tables (schema `fotoflo_auth`, the service role's only) are checked in tests/supabase/test_auth.py.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from postgrest.exceptions import APIError
from storage3.exceptions import StorageApiError

from dashboard.auth import Role
from dashboard.supabase import SHARE_HEADER, sync_client
from dashboard.supabase.auth import AUTH_SCHEMA_VERSION, SupabaseAuthStore
from dashboard.supabase.store import SCHEMA_VERSION
from tests.supabase.fakes.common import ANON_KEY, FAKE_URL, MIGRATIONS, SERVICE_KEY, SHIM, apply_sql
from tests.supabase.fakes.fake_http import FakeSupabaseHTTP
from tests.support.services import PostgresServer

SHARED_TOKEN = "shared-token-" + "a" * 20
EXPIRED_TOKEN = "expired-token-" + "b" * 20
SHA_SHARED = "1" * 64
SHA_PRIVATE = "2" * 64


def image(project: str, image_id: str, sha256: str) -> dict[str, Any]:
    return {
        "id": image_id, "project": project, "filename": f"{image_id}.jpg", "sha256": sha256, "size_bytes": 10,
        "width": 4, "height": 3, "format": "JPEG", "mime": "image/jpeg", "captured_at": "2025-01-01T00:00:00",
        "camera_make": None, "camera_model": None, "created_at": "2025-01-01T00:00:00.000Z", "seq": 0,
        "exif": {}, "rating": 0, "flag": "none", "label": "none", "version": 1, "conflict_of": None,
    }  # fmt: skip


def snapshot(url: str) -> dict[str, Any]:
    """What the migrations make, as the catalogs say: enough to see that a second run changed nothing."""
    queries = {
        "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default"
        " FROM information_schema.columns WHERE table_schema IN ('public', 'fotoflo_auth')"
        " ORDER BY table_schema, 1, 2",  # `shares` is in both schemas: without it, their order may change
        "indexes": "SELECT indexname, indexdef FROM pg_indexes"
        " WHERE schemaname IN ('public', 'storage', 'fotoflo_auth') ORDER BY 1",
        "policies": "SELECT schemaname, tablename, policyname, cmd, roles::text, qual, with_check FROM pg_policies"
        " ORDER BY 1, 2, 3",
        "functions": "SELECT p.oid::regprocedure::text, md5(p.prosrc), p.proacl::text FROM pg_proc p"
        " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' ORDER BY 1",
        "grants": "SELECT grantee, table_name, privilege_type FROM information_schema.role_table_grants"
        " WHERE table_schema IN ('public', 'fotoflo_auth') ORDER BY 1, 2, 3",
        "rls": "SELECT relname, relrowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname IN ('public', 'fotoflo_auth') AND c.relkind = 'r' ORDER BY 1",
        "publication": "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = 'supabase_realtime'"
        " ORDER BY 1, 2",
        "buckets": "SELECT id, name, public, file_size_limit FROM storage.buckets ORDER BY 1",
        "views": "SELECT viewname, definition FROM pg_views WHERE schemaname = 'public' ORDER BY 1",
        "schemas": "SELECT nspname, nspacl::text FROM pg_namespace WHERE nspname = 'fotoflo_auth'",
    }
    with psycopg.connect(url) as conn:
        return {name: conn.execute(query).fetchall() for name, query in queries.items()}  # type: ignore[arg-type]


@pytest.fixture
def seeded(supabase_db: str) -> Iterator[str]:
    """Two projects written by the service role; `shared` has a live share, `private` only an expired one."""
    with psycopg.connect(supabase_db, autocommit=True) as conn:
        conn.execute("SET ROLE service_role")
        for project, image_id, sha in (("shared", "s1", SHA_SHARED), ("private", "p1", SHA_PRIVATE)):
            conn.execute("SELECT fotoflo_add_image(%s::jsonb, NULL)", (json.dumps(image(project, image_id, sha)),))
            conn.execute(
                "SELECT fotoflo_save_collection(%s, 'Picks', ARRAY[%s], %s, 'now')", (project, image_id, f"c-{project}")
            )
        conn.execute(
            "INSERT INTO shares (token, project, expires_at) VALUES (%s, 'shared', NULL),"
            " (%s, 'private', now() - interval '1 minute')",
            (SHARED_TOKEN, EXPIRED_TOKEN),
        )
        for sha in (SHA_SHARED, SHA_PRIVATE):
            conn.execute(
                "INSERT INTO storage.objects (bucket_id, name) VALUES ('fotoflo', %s), ('fotoflo', %s)",
                (f"original/{sha[:2]}/{sha}", f"thumb/{sha[:2]}/{sha}"),
            )
    return supabase_db


def as_role(url: str, role: str, share: str | None, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run `sql` as PostgREST would for a request with this role and (optionally) a share header."""
    headers = json.dumps({SHARE_HEADER: share} if share else {})
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute(f"SET LOCAL ROLE {role}")  # type: ignore[arg-type]
        conn.execute("SELECT set_config('request.headers', %s, true)", (headers,))
        conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps({"role": role}),))
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


# -- the migrations -------------------------------------------------------------------------------


def test_migrations_apply_in_order_on_a_fresh_project_and_again_without_change(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database(empty=True)
    try:
        apply_sql(url, SHIM, *MIGRATIONS)
        first = snapshot(url)
        apply_sql(url, SHIM, *MIGRATIONS)  # `supabase db reset`, a rerun by hand: safe
        apply_sql(url, *MIGRATIONS)
        assert snapshot(url) == first
        assert [m.name.split("_", 1)[1] for m in MIGRATIONS] == [
            "fotoflo_tables.sql", "fotoflo_functions.sql", "fotoflo_security.sql", "fotoflo_realtime.sql",
            "fotoflo_storage.sql", "fotoflo_share_hashes.sql", "fotoflo_previews.sql", "fotoflo_favorites.sql",
            "fotoflo_comments.sql", "fotoflo_pairs.sql", "fotoflo_auth.sql", "fotoflo_share_rules.sql",
        ]  # fmt: skip
        assert first["publication"] == [("public", "changes")]
        assert first["buckets"] == [("fotoflo", "fotoflo", False, None)]
        assert all(on for _, on in first["rls"]), first["rls"]
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT fotoflo_schema_version()").fetchone() == (SCHEMA_VERSION,)
            assert conn.execute("SELECT fotoflo_auth_schema_version()").fetchone() == (AUTH_SCHEMA_VERSION,)
    finally:
        postgres_server.drop_database(url)


def test_a_rerun_keeps_the_data(seeded: str) -> None:
    before = as_role(seeded, "service_role", None, "SELECT project, seq, kind FROM changes ORDER BY 1, 2")
    apply_sql(seeded, *MIGRATIONS)
    assert as_role(seeded, "service_role", None, "SELECT project, seq, kind FROM changes ORDER BY 1, 2") == before
    assert len(before) == 4


def sha256_hex(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def test_tokens_kept_in_plain_text_before_are_hashed_by_the_migration(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database(empty=True)
    try:
        at = next(i for i, m in enumerate(MIGRATIONS) if m.name.endswith("_fotoflo_share_hashes.sql"))
        before, hashing = MIGRATIONS[:at], MIGRATIONS[at]
        apply_sql(url, SHIM, *before)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET ROLE service_role")
            conn.execute("SELECT fotoflo_ensure_project('shared', 'now')")
            conn.execute("INSERT INTO shares (token, project) VALUES (%s, 'shared')", (SHARED_TOKEN,))
        apply_sql(url, hashing)
        kept = as_role(url, "service_role", None, "SELECT token, token_sha256 FROM shares")
        assert kept == [(None, sha256_hex(SHARED_TOKEN))]
        assert as_role(url, "anon", SHARED_TOKEN, "SELECT name FROM projects") == [("shared",)]
        apply_sql(url, SHIM, *MIGRATIONS)  # and again: nothing changes
        assert as_role(url, "service_role", None, "SELECT token, token_sha256 FROM shares") == kept
        assert as_role(url, "anon", SHARED_TOKEN, "SELECT name FROM projects") == [("shared",)]
    finally:
        postgres_server.drop_database(url)


def test_auth_share_links_made_before_their_rules_keep_downloading_originals(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.create_database(empty=True)
    fake = FakeSupabaseHTTP(url, tmp_path / "storage")
    try:
        at = next(i for i, m in enumerate(MIGRATIONS) if m.name.endswith("_fotoflo_share_rules.sql"))
        apply_sql(url, SHIM, *MIGRATIONS[:at])
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET ROLE service_role")
            conn.execute(
                "SELECT fotoflo_auth_create_share('old', 'h', 'Proofs', 'client', 'p', NULL, NULL, 0, NULL)"
            )  # as a server of the auth migration's version made it
        apply_sql(url, *MIGRATIONS[at:])
        store = SupabaseAuthStore(FAKE_URL, SERVICE_KEY, transport=fake)
        try:
            old = store.get_share("old")
            assert old is not None and (old.download, old.watermarked, old.watermark_version) == ("original", False, 0)
            new, _ = store.create_share(project="p", role=Role.CLIENT, download="none", watermark="© Studio")
            apply_sql(url, SHIM, *MIGRATIONS)  # and again: nothing changes, the old function stays gone
            assert store.shares("p") == [old, new]
        finally:
            store.close()
        with psycopg.connect(url) as conn:
            overloads = conn.execute("SELECT count(*) FROM pg_proc WHERE proname = 'fotoflo_auth_create_share'")
            assert overloads.fetchone() == (1,)
    finally:
        fake.shutdown()
        postgres_server.drop_database(url)


def test_shares_keep_only_the_hash_and_the_hash_is_no_token(seeded: str) -> None:
    # `seeded` wrote its tokens in plain text, as docs/supabase.md says: the trigger kept their hashes only.
    rows = as_role(
        seeded, "service_role", None, "SELECT token, token_sha256 FROM shares ORDER BY expires_at NULLS FIRST"
    )
    assert rows == [(None, sha256_hex(SHARED_TOKEN)), (None, sha256_hex(EXPIRED_TOKEN))]
    with psycopg.connect(seeded) as conn:
        dump = conn.execute("SELECT string_agg(s::text, ' ') FROM shares s").fetchone()
    assert dump is not None and SHARED_TOKEN not in dump[0]
    # Whoever reads the table (a dump, a backup) holds hashes, and a hash opens nothing.
    assert as_role(seeded, "anon", sha256_hex(SHARED_TOKEN), READS["images"]) == []
    assert as_role(seeded, "anon", SHARED_TOKEN, READS["images"]) == [("shared",)]
    # A hash made where the token was made works as well, and the token never reached the database.
    other = "made-elsewhere-" + secrets.token_urlsafe(24)
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute("SET ROLE service_role")
        conn.execute("INSERT INTO shares (token_sha256, project) VALUES (%s, 'private')", (sha256_hex(other),))
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO shares (token, project) VALUES ('too-short', 'private')")
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO shares (token_sha256, project) VALUES ('not-hex', 'private')")
    assert as_role(seeded, "anon", other, READS["images"]) == [("private",)]


# -- row level security ---------------------------------------------------------------------------

READS = {
    "projects": "SELECT name FROM projects",
    "images": "SELECT project FROM images",
    "image_versions": "SELECT project FROM image_versions",
    "changes": "SELECT project FROM changes",
    "collections": "SELECT project FROM collections",
    "collection_items": "SELECT i.image_id FROM collection_items i",
    "fotoflo_feed": "SELECT project FROM fotoflo_feed",
    "fotoflo_collections": "SELECT project FROM fotoflo_collections",
    "storage.objects": "SELECT split_part(name, '/', 3) FROM storage.objects",
}


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_without_a_live_share_nothing_is_readable(seeded: str, role: str) -> None:
    for share in (None, EXPIRED_TOKEN, "not-a-token-" + "c" * 20):
        for table, sql in READS.items():
            assert as_role(seeded, role, share, sql) == [], (table, share)


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_a_share_grants_reading_its_project_only(seeded: str, role: str) -> None:
    expected = {
        "projects": ["shared"], "images": ["shared"], "image_versions": ["shared"], "changes": ["shared", "shared"],
        "collections": ["shared"], "collection_items": ["s1"], "fotoflo_feed": ["shared", "shared"],
        "fotoflo_collections": ["shared"], "storage.objects": [SHA_SHARED, SHA_SHARED],
    }  # fmt: skip
    for table, sql in READS.items():
        assert sorted(r[0] for r in as_role(seeded, role, SHARED_TOKEN, sql)) == expected[table], table


@pytest.mark.parametrize("role", ["anon", "authenticated"])
@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO projects (name, created_at) VALUES ('mine', 'now')",
        "UPDATE images SET rating = 5",
        "DELETE FROM changes",
        "INSERT INTO changes (project, seq, kind, created_at) VALUES ('shared', 99, 'image.created', 'now')",
        "SELECT token FROM shares",
        "SELECT fotoflo_ensure_project('mine', 'now')",
        "SELECT fotoflo_set_rating('shared', 's1', 5, NULL, NULL, 'now')",
        "SELECT fotoflo_find_by_sha('shared', repeat('1', 64))",
        "INSERT INTO storage.objects (bucket_id, name) VALUES ('fotoflo', 'original/33/' || repeat('3', 64))",
        "DELETE FROM storage.objects RETURNING name",
        "SELECT by_name FROM favorites",
        "SELECT fotoflo_set_favorite('shared', 's1', 'Eve', 'guest:e', true, 'now')",
        "SELECT text FROM comments",
        "SELECT fotoflo_add_comment('shared', 's1', 'c1', 'Hi', 'Eve', 'guest:e', NULL, 'now')",
    ],
    ids=["insert", "update", "delete", "forge-feed", "read-shares", "rpc-project", "rpc-rating", "rpc-read",
         "upload", "delete-files", "read-favorites", "rpc-favorite", "read-comments", "rpc-comment"],
)  # fmt: skip
def test_anon_and_authenticated_cannot_write_or_call_the_functions(seeded: str, role: str, sql: str) -> None:
    try:
        rows = as_role(seeded, role, SHARED_TOKEN, sql)
    except psycopg.errors.InsufficientPrivilege:
        return  # refused outright (no privilege, or a row level security violation)
    assert rows == [], f"{role} could run {sql!r}"  # or it touched no row: row level security hid them all


def test_the_service_role_writes_through_the_functions_and_reads_everything(seeded: str) -> None:
    rows = as_role(seeded, "service_role", None, "SELECT fotoflo_set_rating('private', 'p1', 4, 'pick', NULL, 'now')")
    assert rows[0][0]["change"]["kind"] == "rating.changed"
    assert sorted(r[0] for r in as_role(seeded, "service_role", None, READS["images"])) == ["private", "shared"]
    assert len(as_role(seeded, "service_role", None, "SELECT token FROM shares")) == 2


# -- the same, through the fake HTTP API (PostgREST, Storage) with supabase-py ---------------------


@pytest.fixture
def fake(seeded: str, tmp_path: Path) -> Iterator[FakeSupabaseHTTP]:
    fake = FakeSupabaseHTTP(seeded, tmp_path / "storage")
    yield fake
    fake.shutdown()


def test_the_anon_key_reads_a_shared_project_through_postgrest_and_writes_nothing(fake: FakeSupabaseHTTP) -> None:
    anon, http = sync_client(FAKE_URL, ANON_KEY, transport=fake, headers={SHARE_HEADER: SHARED_TOKEN})
    stranger, http2 = sync_client(FAKE_URL, ANON_KEY, transport=fake)
    try:
        assert [r["id"] for r in anon.table("images").select("id").execute().data] == ["s1"]
        assert stranger.table("images").select("id").execute().data == []
        with pytest.raises(APIError) as refused:
            anon.rpc("fotoflo_add_image", {"p_image": image("shared", "x1", "3" * 64), "p_device": None}).execute()
        assert refused.value.code == "42501"
        with pytest.raises(APIError) as refused:
            anon.table("projects").insert({"name": "mine", "created_at": "now"}).execute()
        assert refused.value.code == "42501"
        with pytest.raises(StorageApiError) as denied:
            anon.storage.from_("fotoflo").upload(f"original/33/{'3' * 64}", b"bytes")
        assert str(denied.value.status) == "403"
    finally:
        http.close()
        http2.close()


def test_a_forged_key_is_refused(fake: FakeSupabaseHTTP) -> None:
    from tests.supabase.fakes.common import make_key

    forged, http = sync_client(FAKE_URL, make_key("service_role", secret=secrets.token_hex(32)), transport=fake)
    try:
        with pytest.raises(APIError) as refused:
            forged.table("images").select("id").execute()
        assert refused.value.code == "PGRST301"
    finally:
        http.close()
    service, http = sync_client(FAKE_URL, SERVICE_KEY, transport=fake)
    try:
        assert len(service.table("images").select("id").execute().data) == 2
    finally:
        http.close()
