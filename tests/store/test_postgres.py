"""What only `PostgresStore` has: migrations on start, a feed readers never skip, advisory locks, recovery.

The `Store` contract itself runs on both engines in tests/test_store*.py (the `store_backend` fixture).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from dashboard.events import ImageRecord
from dashboard.store.pg_migrations import MIGRATIONS, SCHEMA_VERSION
from dashboard.store.postgres import PostgresStore
from tests.support.records import image_record
from tests.support.services import PostgresServer


def record(n: int, project: str = "alpha") -> ImageRecord:
    return image_record(n, project, id_prefix="pg", content=f"pg bytes {n}")


@pytest.fixture
def empty_db(postgres_server: PostgresServer) -> Iterator[str]:
    """A database without Fotoflo's schema."""
    url = postgres_server.create_database(empty=True)
    yield url
    postgres_server.drop_database(url)


def applied_versions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]


def test_the_schema_is_migrated_on_start_once(empty_db: str) -> None:
    store = PostgresStore(empty_db)
    try:
        # Steps are reserved per feature branch, so a merged tree may skip numbers: every step
        # there is, in order, the last the schema version.
        assert applied_versions(empty_db) == list(MIGRATIONS) == sorted(MIGRATIONS)
        assert max(MIGRATIONS) == SCHEMA_VERSION
        store.ensure_project("alpha")
        store.add_image(record(1))
    finally:
        store.close()

    again = PostgresStore(empty_db)  # idempotent: nothing is applied twice, nothing is lost
    try:
        assert applied_versions(empty_db) == list(MIGRATIONS)
        assert again.last_seq("alpha") == 1
    finally:
        again.close()


def test_servers_starting_at_once_migrate_once(empty_db: str) -> None:
    start = threading.Barrier(4)

    def open_and_close(_: int) -> list[str]:
        start.wait()
        store = PostgresStore(empty_db)
        try:
            return store.projects()
        finally:
            store.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(open_and_close, range(4))) == [[], [], [], []]
    assert applied_versions(empty_db) == list(MIGRATIONS)


def test_a_step_merged_below_the_highest_applied_is_applied_too(empty_db: str) -> None:
    """Steps are numbered per branch: a database that ran step 10 before step 8 was merged still gets step 8."""
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations ("
            " version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        for version in sorted(v for v in MIGRATIONS if v != 8):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))

    store = PostgresStore(empty_db)
    try:
        assert applied_versions(empty_db) == list(MIGRATIONS)
        store.ensure_project("alpha")
        store.add_image(record(1))
        assert store.list_images("alpha")[0].raw_sha256 is None  # step 8's columns are there
    finally:
        store.close()


def test_a_step_numbered_below_the_newest_applied_is_still_applied(empty_db: str) -> None:
    """A database migrated by a tree without step 7 (comments) to step 10 gets 7 when it arrives."""
    PostgresStore(empty_db).close()
    with psycopg.connect(empty_db) as conn:
        conn.execute("DROP TABLE comments")
        conn.execute("DELETE FROM schema_migrations WHERE version = 7")
    PostgresStore(empty_db).close()
    assert applied_versions(empty_db) == list(MIGRATIONS)
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("SELECT count(*) FROM comments").fetchone() == (0,)


def test_share_rules_arrive_in_a_database_migrated_past_them(empty_db: str) -> None:
    """Step 9 (share links' download rules and watermarks) on a database at 10 without it: links keep `original`."""
    PostgresStore(empty_db).close()
    with psycopg.connect(empty_db) as conn:  # as a tree without step 9 left it
        conn.execute("DELETE FROM schema_migrations WHERE version = 9")
        conn.execute("DROP TABLE auth_share_watermarks")
        for column in ("download", "watermark_text", "watermark_version", "watermark_png_sha"):
            conn.execute(f"ALTER TABLE auth_shares DROP COLUMN {column}")
        conn.execute("INSERT INTO auth_shares (id, hash, name, role, project, created_at) VALUES"
                     " ('old', 'h', '', 'client', 'p', 0)")  # fmt: skip
    PostgresStore(empty_db).close()
    assert applied_versions(empty_db) == list(MIGRATIONS)
    with psycopg.connect(empty_db) as conn:
        row = conn.execute("SELECT download, watermark_version FROM auth_shares WHERE id = 'old'").fetchone()
        assert row == ("original", 0)
        assert conn.execute("SELECT count(*) FROM auth_share_watermarks").fetchone() == (0,)


def test_a_database_from_a_newer_fotoflo_is_refused(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(RuntimeError, match="newer"):
        PostgresStore(pg_url)


def test_a_reader_paging_by_cursor_never_skips_an_entry(pg_url: str) -> None:
    """Writers on several stores (servers) race; a reader that only ever asks `seq > cursor` sees every seq."""
    writers = [PostgresStore(pg_url, pool_size=3) for _ in range(3)]
    reader = PostgresStore(pg_url, pool_size=2)
    total = 150
    try:
        writers[0].ensure_project("alpha")
        done = threading.Event()
        seen: list[int] = []

        def read() -> None:
            cursor = 0
            while True:
                finished = done.is_set()
                page = reader.changes("alpha", after=cursor, limit=7)
                seen.extend(c.seq for c in page)
                if page:
                    cursor = page[-1].seq
                elif finished:
                    return

        reading = threading.Thread(target=read, name="test-feed-reader")
        reading.start()
        try:
            with ThreadPoolExecutor(max_workers=6) as pool:
                list(pool.map(lambda n: writers[n % 3].add_image(record(n)), range(total)))
        finally:
            done.set()
            reading.join()
        assert seen == list(range(1, total + 1))
    finally:
        for store in (*writers, reader):
            store.close()


def test_an_advisory_lock_has_one_holder_and_passes_on_when_it_dies(
    pg_url: str, postgres_server: PostgresServer
) -> None:
    a, b = PostgresStore(pg_url), PostgresStore(pg_url)
    lock_a, lock_b = a.advisory_lock("hotfolder:/srv/hot"), b.advisory_lock("hotfolder:/srv/hot")
    other = b.advisory_lock("hotfolder:/srv/other")
    try:
        assert lock_a.try_acquire() and lock_a.try_acquire()  # re-entrant for its holder
        assert not lock_b.try_acquire()
        assert other.try_acquire()  # another key is another lock

        lock_a.release()
        assert not lock_a.held()
        assert lock_b.try_acquire()
        assert not lock_a.try_acquire()

        # The holder's session dies (a killed server, a cut network): the lock is free again.
        with psycopg.connect(postgres_server.url(), autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid <> pg_backend_pid()"
            )
        assert not lock_b.held()
        assert lock_a.try_acquire()
    finally:
        for lock in (lock_a, lock_b, other):
            lock.release()
        a.close()
        b.close()


def test_the_store_recovers_when_its_connections_are_killed(pg_url: str, postgres_server: PostgresServer) -> None:
    store = PostgresStore(pg_url)
    try:
        store.ensure_project("alpha")
        store.add_image(record(1))
        with psycopg.connect(postgres_server.url(), autocommit=True) as conn:
            killed = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'fotoflo'"
            ).fetchone()
        assert killed is not None and killed[0] >= 1
        # The pool checks each connection as it is handed out and replaces the dead ones.
        assert store.last_seq("alpha") == 1
        assert store.add_image(record(2))[0].seq == 2
    finally:
        store.close()
