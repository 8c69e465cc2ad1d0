"""`dashboard.auth` without a server: roles, the auth store, rate limits, `Access`, and the token/share CLI."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dashboard import qrcodes
from dashboard.auth import Access, Action, AuthStore, ConfigError, Role, SQLiteAuthStore, auth_required, is_loopback
from dashboard.auth.access import SESSION_COOKIE, AuthRefused, SignIn
from dashboard.auth.ratelimit import RateLimiter
from dashboard.auth.roles import MIN_ROLE, OPEN, Principal
from dashboard.auth.store import SCHEMA_VERSION, Guest, check_password, hash_password
from dashboard.backends import store_for
from dashboard.cli import main
from dashboard.config import Settings
from dashboard.http.pages import page_download, page_sees_whole_project, wall_qr
from dashboard.store import CollectionEdit, Store
from dashboard.store.sqlite import SQLiteStore
from tests.support.records import image_record


@dataclass
class AuthBackend:
    """An `AuthStore` of one kind, and everything it keeps as text (no secret may ever be in it)."""

    kind: str
    store: AuthStore
    kept: Callable[[], str]


def _pg_tables_as_text(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        tables = ("auth_tokens", "auth_shares", "auth_sessions", "auth_collection_owners")
        return "\n".join(str(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in tables)  # type: ignore[arg-type]


def _supabase_tables_as_text(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:  # as the database's owner: the service role's view, and more
        tables = ("tokens", "shares", "sessions", "collection_owners")
        return "\n".join(
            str(conn.execute(f"SELECT * FROM fotoflo_auth.{t}").fetchall())  # type: ignore[arg-type]
            for t in tables
        )


@pytest.fixture(params=["sqlite", "postgres", "supabase"])
def auth_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuthBackend]:
    """`SQLiteAuthStore` in a data directory, `PostgresAuthStore` on a fresh database, and `SupabaseAuthStore`
    on a fresh Supabase project (the FAKE HTTP API of tests/supabase/fakes/ on a real PostgreSQL)."""
    store: AuthStore
    if request.param == "sqlite":
        path = tmp_path / "auth.sqlite"
        store = SQLiteAuthStore(path)
        files = (path, path.with_name("auth.sqlite-wal"))  # WAL mode: the newest writes are in the log
        backend = AuthBackend(
            "sqlite", store, lambda: "".join(f.read_bytes().decode(errors="replace") for f in files if f.exists())
        )
    elif request.param == "postgres":
        from dashboard.auth.postgres import PostgresAuthStore

        url = request.getfixturevalue("pg_url")
        store = PostgresAuthStore(url)
        backend = AuthBackend("postgres", store, lambda: _pg_tables_as_text(url))
    elif request.param == "supabase":
        from dashboard.supabase.auth import SupabaseAuthStore
        from tests.supabase.fakes.common import FAKE_URL, SERVICE_KEY

        fake = request.getfixturevalue("fake_http")
        store = SupabaseAuthStore(FAKE_URL, SERVICE_KEY, transport=fake)
        backend = AuthBackend("supabase", store, lambda: _supabase_tables_as_text(fake.db_url))
    yield backend
    store.close()


@pytest.fixture
def store(auth_backend: AuthBackend) -> AuthStore:
    return auth_backend.store


@pytest.fixture
def access(store: AuthStore) -> Access:
    return Access(store, upload_per_min=3)


# -- roles ----------------------------------------------------------------------------------


def test_roles_are_ordered_and_each_action_needs_the_documented_least_role() -> None:
    assert Role.VIEWER < Role.CLIENT < Role.EDITOR < Role.OWNER
    assert Role.parse(" Client ") is Role.CLIENT
    with pytest.raises(ValueError, match="unknown role"):
        Role.parse("admin")
    assert {a: r.label for a, r in MIN_ROLE.items()} == {
        Action.VIEW: "viewer",
        Action.RATE: "client",
        Action.COLLECT: "client",
        Action.EDIT_COLLECTION: "client",
        Action.COMMENT: "client",
        Action.UPLOAD: "editor",
        Action.MODERATE: "editor",
        Action.MANAGE: "owner",
    }


def test_a_principal_acts_only_in_its_project() -> None:
    editor = Principal("token", "t1", "second shooter", Role.EDITOR, "wedding")
    assert editor.may(Action.UPLOAD, "wedding") and not editor.may(Action.UPLOAD, "portraits")
    assert not editor.may(Action.MANAGE, "wedding")
    assert editor.may(Action.VIEW, None)  # an endpoint outside projects (the list, filtered)
    assert OPEN.may(Action.MANAGE, "anything")


@pytest.mark.parametrize(
    ("address", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("", False), ("192.168.1.20", False), ("studio.local", False)],
)  # fmt: skip
def test_loopback_addresses(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_auth_is_required_off_loopback_and_cannot_be_turned_off_there(tmp_path: Path) -> None:
    assert auth_required(Settings(data=tmp_path)) is False  # the embedded default stays open
    assert auth_required(Settings(data=tmp_path, auth=True)) is True
    assert auth_required(Settings(data=tmp_path, address="0.0.0.0")) is True
    with pytest.raises(ConfigError, match="without authentication"):
        auth_required(Settings(data=tmp_path, address="0.0.0.0", auth=False))


# -- the store ------------------------------------------------------------------------------


def test_tokens_are_stored_hashed_and_revocable(auth_backend: AuthBackend, tmp_path: Path) -> None:
    store = auth_backend.store
    record, secret = store.create_token(name="laptop", role=Role.EDITOR, project="wedding")
    assert secret.startswith("fft_") and len(secret) > 40
    assert record.id in auth_backend.kept() and secret not in auth_backend.kept()
    assert store.find_token(secret) == record and store.find_token(secret + "x") is None
    assert [t.id for t in store.tokens()] == [record.id] and record.state() == "active"
    assert store.revoke_token(record.id) and not store.revoke_token(record.id)
    found = store.find_token(secret)
    assert found is not None and found.state() == "revoked"
    if auth_backend.kind == "sqlite":
        assert (tmp_path / "auth.sqlite").stat().st_mode & 0o077 == 0


def test_no_secret_is_kept_in_clear(auth_backend: AuthBackend, access: Access) -> None:
    store = auth_backend.store
    _, token = store.create_token(name="", role=Role.OWNER)
    share, link = store.create_share(project="p", role=Role.CLIENT, password="correct horse")
    _, signed_in = access.login(token, "c")
    _, guest = access.open_share(link, "correct horse", "c")
    kept = auth_backend.kept()
    assert share.id in kept and signed_in.csrf in kept  # the CSRF token is no secret: the page reads its cookie
    for secret in (token, link, "correct horse", signed_in.session, guest.session):
        assert secret not in kept


def test_share_links_expire_and_keep_only_a_password_hash(store: AuthStore) -> None:
    share, secret = store.create_share(project="p", role=Role.CLIENT, expires_at=time.time() + 60, password="pässword")
    found = store.find_share(secret)
    assert found is not None and found.id == share.id and found.state() == "active"
    assert found.password_hash is not None and "pässword" not in found.password_hash
    assert check_password("pässword", found.password_hash) and not check_password("password", found.password_hash)
    assert share.state(now_s=time.time() + 61) == "expired"
    assert store.shares("p") == [found] and store.shares("other") == []


def test_share_links_keep_their_download_rule_and_watermark(auth_backend: AuthBackend) -> None:
    store = auth_backend.store
    plain, _ = store.create_share(project="p", role=Role.CLIENT)
    assert (plain.download, plain.watermarked) == ("original", False)
    share, secret = store.create_share(project="p", role=Role.VIEWER, download="preview", watermark="© Studio")
    found = store.find_share(secret)
    assert found == share and (found.download, found.watermark_text, found.watermark_version) == (
        "preview", "© Studio", 1,
    )  # fmt: skip
    png = bytes(range(256)) * 4  # any bytes: the store keeps what the decoder worker made of the upload
    marked = store.set_share_watermark_png(share.id, png)
    assert marked is not None and marked.watermark_version == 2 and marked.watermark_png_sha is not None
    assert store.share_watermark_png(share.id) == png and store.share_watermark_png(plain.id) is None
    assert marked.to_dict()["watermark"] == {"text": "© Studio", "png": True}
    assert marked.watermark_png_sha == hashlib.sha256(png).hexdigest() and store.get_share(share.id) == marked
    cleared = store.set_share_watermark_png(share.id, None)
    assert cleared is not None and cleared.watermark_version == 3 and cleared.watermark_png_sha is None
    assert store.share_watermark_png(share.id) is None and cleared.watermarked  # its text stays
    assert store.set_share_watermark_png("nope", png) is None and store.share_watermark_png("nope") is None
    for download, watermark in (("all", None), ("none", ""), ("none", "x" * 101)):
        with pytest.raises(ValueError):
            store.create_share(project="p", role=Role.CLIENT, download=download, watermark=watermark)


def test_password_hashes_are_salted_and_malformed_ones_never_match() -> None:
    assert hash_password("x") != hash_password("x")
    assert not check_password("x", "scrypt$not$a$hash")
    assert not check_password("x", "")


def test_revoking_ends_the_sessions_it_signed_in(store: AuthStore) -> None:
    token, _ = store.create_token(name="", role=Role.OWNER)
    session, csrf = store.create_session("token", token.id, time.time() + 60)
    found = store.find_session(session)
    assert found is not None and found.csrf == csrf
    store.revoke_token(token.id)
    assert store.find_session(session) is None
    stale, _ = store.create_session("token", token.id, time.time() - 1)
    assert store.find_session(stale) is None


def test_a_link_s_session_may_act_as_a_named_guest(access: Access, store: AuthStore) -> None:
    share, link = store.create_share(project="p", role=Role.CLIENT, name="Proofs")
    anna = Guest.named("  Anna \t Berg ", "anna@example.com")
    assert (anna.name, anna.email) == ("Anna Berg", "anna@example.com")
    _, as_anna = access.open_share(link, None, "c", anna)
    _, as_ben = access.open_share(link, None, "c", Guest.named("Anna Berg"))  # the same name, another person
    _, unnamed = access.open_share(link, None, "c")
    found = store.find_session(as_anna.session)
    assert found is not None and found.guest == anna
    a, b, plain = (access.authenticate(None, s.session, "c").principal for s in (as_anna, as_ben, unnamed))
    assert a is not None and b is not None and plain is not None
    assert (a.name, a.guest, a.kind, a.id, a.role) == ("Anna Berg", anna.id, "share", share.id, Role.CLIENT)
    assert a.key != b.key and a.name == b.name and a.key.startswith("guest:")
    assert (plain.name, plain.guest, plain.key) == ("Proofs", None, f"share:{share.id}")
    for name, email in (("", None), ("x" * 101, None), ("Anna", "not an address"), ("Anna", "@example.com")):
        with pytest.raises(ValueError):
            Guest.named(name, email)
    assert Guest.named("Anna", " ").email is None


def test_a_v1_auth_file_s_sessions_learn_guests(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "auth.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE sessions (hash TEXT PRIMARY KEY, kind TEXT NOT NULL, subject TEXT NOT NULL,"
            " csrf TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL);"
            "INSERT INTO sessions VALUES ('h', 'token', 't1', 'c', 0, 9e18); PRAGMA user_version = 1;"
        )
    store = SQLiteAuthStore(path)
    try:
        secret, _ = store.create_session("share", "s1", time.time() + 60, Guest.named("Anna"))
        found = store.find_session(secret)
        assert found is not None and found.guest is not None and found.guest.name == "Anna"
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION  # through every step
        assert db.execute("SELECT count(*) FROM sessions").fetchone()[0] == 2  # the old session kept


def test_a_v2_auth_file_s_links_learn_download_rules_and_keep_downloading_originals(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "auth.sqlite"
    with sqlite3.connect(path) as db:  # the shares table as version 2 made it, with one link
        db.executescript(
            "CREATE TABLE shares (id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
            " role TEXT NOT NULL, project TEXT NOT NULL, collection_id TEXT, password TEXT,"
            " created_at REAL NOT NULL, expires_at REAL, revoked_at REAL);"
            "INSERT INTO shares VALUES ('old', 'h', 'Proofs', 'client', 'p', NULL, NULL, 0, NULL, NULL);"
            "PRAGMA user_version = 2;"
        )
    store = SQLiteAuthStore(path)
    try:
        old = store.get_share("old")
        assert old is not None and (old.download, old.watermarked, old.watermark_version) == ("original", False, 0)
        new, _ = store.create_share(project="p", role=Role.CLIENT, download="none", watermark="  © Studio ")
        assert (new.download, new.watermark_text, new.watermark_version) == ("none", "© Studio", 1)
        marked = store.set_share_watermark_png(new.id, b"png")
        assert marked is not None and marked.watermark_version == 2 and store.share_watermark_png(new.id) == b"png"
        cleared = store.set_share_watermark_png(new.id, None)
        assert cleared is not None and cleared.watermark_version == 3 and store.share_watermark_png(new.id) is None
        assert cleared.watermarked  # its text stays
        assert store.set_share_watermark_png("nope", b"png") is None
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    import sqlite3

    with sqlite3.connect(tmp_path / "auth.sqlite") as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(RuntimeError, match="newer Fotoflo"):
        SQLiteAuthStore(tmp_path / "auth.sqlite")


# -- rate limits ----------------------------------------------------------------------------


def test_rate_limiter_allows_a_burst_then_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(3, 60.0, clock=lambda: now[0])
    assert [limiter.hit("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.hit("a") == pytest.approx(20.0)
    assert limiter.hit("b") == 0.0  # per key
    now[0] = 20.0
    assert limiter.blocked("a") == 0.0 and limiter.hit("a") == 0.0 and limiter.hit("a") > 0
    assert RateLimiter(0, 60.0).hit("a") == 0.0  # 0: unlimited


# -- Access ---------------------------------------------------------------------------------


def test_open_access_is_everyone_as_owner() -> None:
    access = Access(None)
    assert not access.enabled
    assert access.authenticate(None, None, "1.2.3.4").principal is OPEN
    assert access.authenticate("Bearer nonsense", "cookie", "1.2.3.4").principal is OPEN


def test_bearer_tokens_and_their_refusals(access: Access, store: AuthStore) -> None:
    record, secret = store.create_token(name="sync", role=Role.EDITOR, project="p")
    principal = access.authenticate(f"Bearer {secret}", None, "c").principal
    assert principal is not None and (principal.role, principal.project, principal.key) == (
        Role.EDITOR, "p", f"token:{record.id}",
    )  # fmt: skip
    assert access.authenticate(None, None, "c").principal is None
    for header, code in [("Basic abc", "bad_authorization"), ("Bearer", "bad_authorization"),
                         ("Bearer fft_forged", "invalid_token")]:  # fmt: skip
        with pytest.raises(AuthRefused) as refused:
            access.authenticate(header, None, "c")
        assert (refused.value.status, refused.value.code) == (401, code)
    _, expired_secret = store.create_token(name="", role=Role.VIEWER, expires_at=time.time() - 1)
    with pytest.raises(AuthRefused, match="expired"):
        access.authenticate(f"Bearer {expired_secret}", None, "c")


def test_failed_sign_ins_lock_the_client_out_for_a_while(access: Access, store: AuthStore) -> None:
    _, secret = store.create_token(name="", role=Role.OWNER)
    for _ in range(10):
        with pytest.raises(AuthRefused, match="not valid"):
            access.authenticate("Bearer fft_guess", None, "attacker")
    with pytest.raises(AuthRefused) as refused:
        access.authenticate("Bearer fft_guess", None, "attacker")  # one more guess, too soon
    assert refused.value.status == 429 and refused.value.retry_after_s
    # A valid token is looked up first: never refused for the failures of others at its address.
    assert access.authenticate(f"Bearer {secret}", None, "attacker").principal is not None
    assert access.login(secret, "attacker")[0].role == Role.OWNER
    assert access.authenticate(f"Bearer {secret}", None, "someone else").principal is not None


def test_a_link_s_password_guesses_lock_that_link_only(access: Access, store: AuthStore) -> None:
    guarded, guarded_secret = store.create_share(project="p", role=Role.VIEWER, password="correct horse")
    _, open_secret = store.create_share(project="p", role=Role.VIEWER)
    for n in range(10):  # spread over addresses: the link counts them all
        with pytest.raises(AuthRefused, match="wrong password"):
            access.open_share(guarded_secret, "guess", f"10.0.0.{n}")
    with pytest.raises(AuthRefused) as refused:
        access.open_share(guarded_secret, "correct horse", "10.0.1.1")  # not even checked while locked
    assert refused.value.status == 429
    # The addresses that guessed still open other links, and the locked link is still found.
    assert access.open_share(open_secret, None, "10.0.0.1")[0].project == "p"
    assert access.find_share(guarded_secret, "10.0.0.1").id == guarded.id


def test_csrf_is_checked_for_a_session_s_writes_only(access: Access, store: AuthStore) -> None:
    _, secret = store.create_token(name="", role=Role.OWNER)
    _, signed_in = access.login(secret, "c")
    identity = access.authenticate(None, signed_in.session, "c")
    assert identity.principal is not None and identity.csrf == signed_in.csrf
    access.check_csrf(identity, "GET", None)
    access.check_csrf(identity, "POST", signed_in.csrf)
    for header in (None, "", "wrong", "é"):
        with pytest.raises(AuthRefused, match="X-Fotoflo-CSRF"):
            access.check_csrf(identity, "POST", header)
    bearer = access.authenticate(f"Bearer {secret}", None, "c")
    access.check_csrf(bearer, "DELETE", None)  # a browser never sends a bearer token by itself


def test_a_collection_link_sees_its_collection_and_what_its_holder_saved(tmp_path: Path, access: Access) -> None:
    images = SQLiteStore(tmp_path / "fotoflo.sqlite")
    try:
        images.ensure_project("p")
        assert access.store is not None
        shared, _ = images.save_collection("p", "Shared", [])
        share, _ = access.store.create_share(project="p", role=Role.CLIENT, collection_id=shared.id)
        principal = Principal("share", share.id, "", Role.CLIENT, "p", shared.id)
        assert access.visible_collections(principal, "p") == {shared.id}
        mine, _ = images.save_collection("p", "Mine", [])
        access.record_collection(principal, "p", mine.id)
        assert access.visible_collections(principal, "p") == {shared.id, mine.id}
        assert access.visible_images(images, principal, "p") == frozenset()
        assert access.may_edit_collection(principal, "p", mine.id)
        assert not access.may_edit_collection(principal, "p", shared.id)
        assert access.visible_collections(OPEN, "p") is None
    finally:
        images.close()


def test_a_collection_link_s_scope_is_the_shared_collection_s_current_members(tmp_path: Path, access: Access) -> None:
    images = SQLiteStore(tmp_path / "fotoflo.sqlite")
    try:
        images.ensure_project("p")
        assert access.store is not None
        a, b = (images.add_image(image_record(n, "p"))[0] for n in (1, 2))
        shared, _ = images.save_collection("p", "Shared", [a.id, b.id])
        principal = Principal("share", "s1", "", Role.CLIENT, "p", shared.id)
        mine, _ = images.save_collection("p", "Mine", [b.id, a.id])  # saved while both were shared
        access.record_collection(principal, "p", mine.id)
        images.edit_collection("p", shared.id, CollectionEdit("remove", image_ids=(b.id,)))
        scope = access.scope(images, principal, "p")
        assert scope is not None
        assert (scope.images, scope.collections) == (frozenset({a.id}), frozenset({shared.id, mine.id}))
        assert access.visible_images(images, principal, "p") == frozenset({a.id})  # not b, though Mine holds it
        # A feed entry of Mine: the ids it puts in and its cover, narrowed; a `remove` keeps what left.
        saved = {"op": "save", "collection_id": mine.id, "image_ids": [b.id, a.id], "cover_image_id": b.id}
        assert scope.collection_data(saved) == {**saved, "image_ids": [a.id], "cover_image_id": None}
        removed = {"op": "remove", "collection_id": mine.id, "image_ids": [b.id], "cover_image_id": a.id}
        assert scope.collection_data(removed) is removed
        images.edit_collection("p", shared.id, CollectionEdit("delete"))
        assert access.visible_images(images, principal, "p") == frozenset()
        assert access.scope(images, OPEN, "p") is None
    finally:
        images.close()


def test_upload_rate_is_per_client(access: Access) -> None:
    editor = Principal("token", "t", "", Role.EDITOR)
    for _ in range(3):
        access.check_upload_rate(editor, "c")
    with pytest.raises(AuthRefused) as refused:
        access.check_upload_rate(editor, "c")
    assert (refused.value.status, refused.value.code) == (429, "too_many_uploads")
    access.check_upload_rate(Principal("token", "other", "", Role.EDITOR), "c")
    Access(None).check_upload_rate(OPEN, "c")  # no limits with authentication off, as before


def test_the_first_owner_token_is_made_once(access: Access) -> None:
    secret = access.ensure_owner_token()
    assert secret is not None and access.ensure_owner_token() is None
    assert access.authenticate(f"Bearer {secret}", None, "c").principal is not None


# -- fotoflo token / share ------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres", "supabase"])
def cli_db(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The options that name the data directory and, for PostgreSQL, the database (`--db`), for Supabase the
    project (`--supabase-url`, `--supabase-key`; the FAKE HTTP API of tests/supabase/fakes/)."""
    if request.param == "sqlite":
        yield ["--data", str(tmp_path)]
        return
    if request.param == "postgres":
        yield ["--data", str(tmp_path), "--db", request.getfixturevalue("pg_url")]
    else:
        from tests.supabase.fakes.common import FAKE_URL, SERVICE_KEY
        from tests.supabase.fakes.stores import route_clients_to

        route_clients_to(monkeypatch, request.getfixturevalue("fake_http"))
        yield ["--data", str(tmp_path), "--supabase-url", FAKE_URL, "--supabase-key", SERVICE_KEY]
    assert not (tmp_path / "auth.sqlite").exists(), "with --db, no token or link is kept in the data directory"


def images_named_by(cli: list[str]) -> Store:
    """The image store the options name, as `fotoflo share create` opens it to check what it shares."""
    given = dict(zip(cli[::2], cli[1::2], strict=True))
    return store_for(
        Settings.from_env(
            data=Path(given["--data"]), db=given.get("--db"),
            supabase_url=given.get("--supabase-url"), supabase_key=given.get("--supabase-key"),
        )
    )  # fmt: skip


def test_token_cli_creates_lists_and_revokes(cli_db: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    data = cli_db
    assert main(["token", "create", "--role", "editor", "--project", "wedding", "--name", "laptop", *data]) == 0
    secret = capsys.readouterr().out.strip()
    assert secret.startswith("fft_")
    assert main(["token", "list", *data]) == 0
    listed = capsys.readouterr().out
    assert "editor" in listed and "wedding" in listed and "laptop" in listed and secret not in listed
    token_id = listed.split()[0]
    assert main(["token", "revoke", token_id, *data]) == 0
    assert main(["token", "revoke", token_id, *data]) == 1
    assert "revoked" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["token", "create", "--role", "admin", *data])


def test_share_cli_checks_what_it_shares(cli_db: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = images_named_by(cli_db)
    images.ensure_project("wedding")
    collection, _ = images.save_collection("wedding", "Selects", [])
    images.close()
    data = cli_db
    assert main(["share", "create", "--project", "nope", *data]) == 2
    assert main(["share", "create", "--project", "wedding", "--collection", "nope", *data]) == 2
    assert main(["share", "create", "--project", "wedding", "--collection", collection.id, "--role", "editor",
                 *data]) == 2  # fmt: skip
    capsys.readouterr()
    assert main(["share", "create", "--project", "wedding", "--collection", collection.id, "--expires", "7d",
                 "--url", "http://studio:5006/", *data]) == 0  # fmt: skip
    url = capsys.readouterr().out.strip()
    assert url.startswith("http://studio:5006/s/")
    assert main(["share", "list", "--project", "wedding", *data]) == 0
    listed = capsys.readouterr().out
    assert collection.id in listed and "client" in listed and "active" in listed and url.rsplit("/", 1)[1] not in listed
    share_id = listed.split()[0]
    assert main(["share", "revoke", share_id, *data]) == 0
    assert main(["share", "list", *data]) == 0 and "revoked" in capsys.readouterr().out


def test_only_a_session_that_sees_the_whole_project_gets_the_studio_dashboard(access: Access) -> None:
    assert access.store is not None
    _, owner_secret = access.store.create_token(name="", role=Role.OWNER)
    _, owner = access.login(owner_secret, "c")
    _, project_link = access.store.create_share(project="p", role=Role.CLIENT)
    _, guest = access.open_share(project_link, None, "c")
    _, collection_link = access.store.create_share(project="p", role=Role.CLIENT, collection_id="c1")
    _, collection_guest = access.open_share(collection_link, None, "c")

    def sees(signed_in: SignIn | None, project: str = "p") -> bool:
        cookies = {SESSION_COOKIE: signed_in.session} if signed_in is not None else {}
        return page_sees_whole_project(access, cookies, project)

    assert sees(owner) and sees(guest)
    assert not sees(collection_guest), "a collection's guests must not count the rest of the project"
    assert not sees(guest, "other") and not sees(None)
    assert page_sees_whole_project(Access(None), {}, "p"), "authentication off: the studio's own machine"


@pytest.fixture
def sqlite_access(tmp_path: Path) -> Iterator[Access]:
    """`Access` on an auth file: for the pages' logic, which is the same whatever keeps the links."""
    store = SQLiteAuthStore(tmp_path / "auth.sqlite")
    yield Access(store)
    store.close()


def test_the_wall_shows_a_link_s_qr_code_only_to_an_owner_and_the_page_knows_a_link_s_download_rule(
    sqlite_access: Access,
) -> None:
    access = sqlite_access
    assert access.store is not None
    _, owner_secret = access.store.create_token(name="", role=Role.OWNER, project="p")
    _, owner = access.login(owner_secret, "c")
    share, link = access.store.create_share(project="p", role=Role.CLIENT, download="preview")
    _, guest = access.open_share(link, None, "c")
    _, elsewhere = access.store.create_share(project="q", role=Role.CLIENT)
    origin = "http://studio.local:5006"

    def qr(signed_in: SignIn, given: str, project: str = "p") -> str:
        return wall_qr(access, {SESSION_COOKIE: signed_in.session}, project, given, origin)

    assert qr(owner, f"/s/{link}") == qrcodes.svg_data_url(f"{origin}/s/{link}")
    assert qr(owner, f"https://photos.example/s/{link}") == qrcodes.svg_data_url(f"https://photos.example/s/{link}")
    assert qr(guest, f"/s/{link}") == "", "only whoever manages the project is shown a link's code"
    assert qr(owner, f"/s/{elsewhere}") == "" and qr(owner, "/s/guessed") == "" and qr(owner, "nonsense") == ""
    access.store.revoke_share(share.id)
    assert qr(owner, f"/s/{link}") == "", "a revoked link is shown no more"
    assert wall_qr(Access(None), {}, "p", f"/s/{link}", origin) == ""

    _, other = access.store.create_share(project="p", role=Role.CLIENT, download="none")
    _, none_guest = access.open_share(other, None, "c")
    assert page_download(access, {SESSION_COOKIE: none_guest.session}) == "none"
    assert page_download(access, {SESSION_COOKIE: owner.session}) == "original"
    assert page_download(Access(None), {}) == "original"
