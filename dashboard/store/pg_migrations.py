"""`PostgresStore`'s schema: versioned steps, applied on start, each once, recorded in `schema_migrations`.

Steps 1 to 4 mirror `SQLiteStore`'s schema versions (1: projects, images and the feed; 2: ratings
and collections; 3: image versions; 4: the projects' image counts and the filters in the newest-first
index), so one number names the same shape on both engines. Step 5 adds the access-control tables
(`auth_*`, `PostgresAuthStore`), which on SQLite are a file of their own (DATA/auth.sqlite). Step 6
adds favourites per person (SQLite's version 5) and the guest a browser session acts as (the auth
file's version 2). Step 7 adds comments on images (SQLite's version 6), step 8 RAW + JPEG pairs
(SQLite's version 7). Step 9 adds share links' download rules and watermarks (the auth file's version 3).
Step 10 adds the notifications' tables (`notify_*`, `PostgresNotifyStore`), which on SQLite are a file of
their own (DATA/notify.sqlite). Text
columns hold what SQLite holds (JSON as text, times as ISO strings), so both stores return equal records.
"""

from __future__ import annotations

import psycopg

#: Taken (for the transaction) by whoever migrates: two servers starting at once migrate once.
MIGRATION_LOCK = 0x466F746F  # "Foto"

MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE projects (
            name       TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            last_seq   BIGINT NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE images (
            id           TEXT PRIMARY KEY,
            project      TEXT NOT NULL REFERENCES projects(name),
            filename     TEXT NOT NULL,
            sha256       TEXT NOT NULL,
            size_bytes   BIGINT NOT NULL,
            width        INTEGER NOT NULL,
            height       INTEGER NOT NULL,
            format       TEXT NOT NULL,
            mime         TEXT NOT NULL,
            captured_at  TEXT NOT NULL,
            camera_make  TEXT,
            camera_model TEXT,
            exif         TEXT NOT NULL DEFAULT '{}',
            created_at   TEXT NOT NULL,
            seq          BIGINT NOT NULL,
            UNIQUE (project, sha256)
        )""",
        "CREATE INDEX images_by_project_seq ON images (project, seq DESC)",
        """CREATE TABLE changes (
            project    TEXT NOT NULL,
            seq        BIGINT NOT NULL,
            kind       TEXT NOT NULL,
            created_at TEXT NOT NULL,
            image_id   TEXT,
            data       TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (project, seq)
        )""",
    ),
    2: (
        "ALTER TABLE images ADD COLUMN rating SMALLINT NOT NULL DEFAULT 0 CHECK (rating BETWEEN 0 AND 5)",
        "ALTER TABLE images ADD COLUMN flag TEXT NOT NULL DEFAULT 'none' CHECK (flag IN ('none', 'pick', 'reject'))",
        "ALTER TABLE images ADD COLUMN label TEXT NOT NULL DEFAULT 'none'"
        " CHECK (label IN ('none', 'red', 'yellow', 'green', 'blue', 'purple'))",
        """CREATE TABLE collections (
            id             TEXT PRIMARY KEY,
            project        TEXT NOT NULL REFERENCES projects(name),
            name           TEXT NOT NULL,
            cover_image_id TEXT REFERENCES images(id),
            created_at     TEXT NOT NULL,
            updated_at     TEXT NOT NULL,
            version        INTEGER NOT NULL DEFAULT 1,
            seq            BIGINT NOT NULL,
            deleted_at     TEXT
        )""",
        "CREATE UNIQUE INDEX collections_live_name ON collections (project, name) WHERE deleted_at IS NULL",
        "CREATE INDEX collections_by_project_seq ON collections (project, seq DESC)",
        """CREATE TABLE collection_items (
            collection_id TEXT NOT NULL REFERENCES collections(id),
            image_id      TEXT NOT NULL REFERENCES images(id),
            position      INTEGER NOT NULL,
            PRIMARY KEY (collection_id, image_id)
        )""",
        "CREATE INDEX collection_items_in_order ON collection_items (collection_id, position)",
    ),
    3: (
        "ALTER TABLE images ADD COLUMN version INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE images ADD COLUMN conflict_of TEXT REFERENCES images(id)",
        """CREATE TABLE image_versions (
            image_id    TEXT NOT NULL REFERENCES images(id),
            version     INTEGER NOT NULL,
            project     TEXT NOT NULL,
            sha256      TEXT NOT NULL,
            filename    TEXT NOT NULL,
            size_bytes  BIGINT NOT NULL,
            width       INTEGER NOT NULL,
            height      INTEGER NOT NULL,
            format      TEXT NOT NULL,
            mime        TEXT NOT NULL,
            created_at  TEXT NOT NULL,
            seq         BIGINT NOT NULL,
            device_id   TEXT,
            device_name TEXT,
            PRIMARY KEY (image_id, version)
        )""",
        "CREATE INDEX image_versions_by_sha ON image_versions (project, sha256)",
        "INSERT INTO image_versions (image_id, version, project, sha256, filename, size_bytes, width, height,"
        " format, mime, created_at, seq) SELECT id, 1, project, sha256, filename, size_bytes, width, height,"
        " format, mime, created_at, seq FROM images",
    ),
    4: (
        "ALTER TABLE projects ADD COLUMN image_count BIGINT NOT NULL DEFAULT 0",
        "UPDATE projects SET image_count = (SELECT count(*) FROM images i WHERE i.project = projects.name)",
        "CREATE INDEX images_by_project_seq_filters ON images (project, seq DESC, rating, flag, label)",
        "DROP INDEX images_by_project_seq",
    ),
    # Access control (`dashboard.auth.postgres`), shared by every server on this database; on SQLite
    # these are the tables of DATA/auth.sqlite. Secrets are kept as their SHA-256 only, as there.
    5: (
        """CREATE TABLE auth_tokens (
            id         TEXT PRIMARY KEY,
            hash       TEXT NOT NULL UNIQUE,
            name       TEXT NOT NULL,
            role       TEXT NOT NULL,
            project    TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION,
            revoked_at DOUBLE PRECISION
        )""",
        """CREATE TABLE auth_shares (
            id            TEXT PRIMARY KEY,
            hash          TEXT NOT NULL UNIQUE,
            name          TEXT NOT NULL,
            role          TEXT NOT NULL,
            project       TEXT NOT NULL,
            collection_id TEXT,
            password      TEXT,
            created_at    DOUBLE PRECISION NOT NULL,
            expires_at    DOUBLE PRECISION,
            revoked_at    DOUBLE PRECISION
        )""",
        """CREATE TABLE auth_sessions (
            hash       TEXT PRIMARY KEY,
            kind       TEXT NOT NULL,
            subject    TEXT NOT NULL,
            csrf       TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX auth_sessions_by_subject ON auth_sessions (kind, subject)",
        """CREATE TABLE auth_collection_owners (
            project       TEXT NOT NULL,
            collection_id TEXT NOT NULL,
            owner         TEXT NOT NULL,
            PRIMARY KEY (project, collection_id)
        )""",
    ),
    6: (
        """CREATE TABLE favorites (
            project  TEXT NOT NULL REFERENCES projects(name),
            image_id TEXT NOT NULL REFERENCES images(id),
            by_key   TEXT NOT NULL,
            by_name  TEXT NOT NULL,
            at       TEXT NOT NULL,
            seq      BIGINT NOT NULL,
            PRIMARY KEY (project, image_id, by_key)
        )""",
        "CREATE INDEX favorites_by_person ON favorites (project, by_key)",
        "ALTER TABLE auth_sessions ADD COLUMN guest_id TEXT",
        "ALTER TABLE auth_sessions ADD COLUMN guest_name TEXT",
        "ALTER TABLE auth_sessions ADD COLUMN guest_email TEXT",
    ),
    7: (
        """CREATE TABLE comments (
            id          TEXT PRIMARY KEY,
            project     TEXT NOT NULL REFERENCES projects(name),
            image_id    TEXT NOT NULL REFERENCES images(id),
            text        TEXT NOT NULL,
            author_name TEXT NOT NULL,
            author_key  TEXT NOT NULL,
            reply_to    TEXT,
            created_at  TEXT NOT NULL,
            resolved    INTEGER NOT NULL DEFAULT 0,
            seq         BIGINT NOT NULL
        )""",
        "CREATE INDEX comments_by_image ON comments (project, image_id, seq)",
    ),
    # 8: RAW + JPEG pairs (dashboard/pairs.py), as SQLite's version 7.
    8: (
        "ALTER TABLE images ADD COLUMN pair_key TEXT",
        "ALTER TABLE images ADD COLUMN raw_sha256 TEXT",
        "ALTER TABLE images ADD COLUMN raw_filename TEXT",
        "ALTER TABLE images ADD COLUMN raw_size_bytes BIGINT",
        "ALTER TABLE images ADD COLUMN raw_format TEXT",
        "CREATE INDEX images_by_pair_key ON images (project, pair_key) WHERE pair_key IS NOT NULL",
        "CREATE INDEX images_by_raw_sha ON images (project, raw_sha256) WHERE raw_sha256 IS NOT NULL",
    ),
    # Share links' download rules and watermarks (the auth file's version 3); existing links keep `original`.
    9: (
        "ALTER TABLE auth_shares ADD COLUMN download TEXT NOT NULL DEFAULT 'original'",
        "ALTER TABLE auth_shares ADD COLUMN watermark_text TEXT",
        "ALTER TABLE auth_shares ADD COLUMN watermark_version INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE auth_shares ADD COLUMN watermark_png_sha TEXT",
        """CREATE TABLE auth_share_watermarks (
            share_id TEXT PRIMARY KEY REFERENCES auth_shares(id),
            png      BYTEA NOT NULL
        )""",
    ),
    # 10: notifications (`dashboard.notify`): webhooks, e-mail recipients, the digests' feed cursor, the outbox.
    # On SQLite they are a file of their own (DATA/notify.sqlite). `migrate` applies every step not yet
    # recorded, in order.
    10: (
        """CREATE TABLE notify_webhooks (
            id TEXT PRIMARY KEY, project TEXT NOT NULL, url TEXT NOT NULL, secret TEXT NOT NULL,
            events TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL
        )""",
        """CREATE TABLE notify_emails (
            project TEXT NOT NULL, address TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (project, address)
        )""",
        "CREATE TABLE notify_cursors (project TEXT PRIMARY KEY, last_seq BIGINT NOT NULL)",
        """CREATE TABLE notify_outbox (
            id TEXT PRIMARY KEY, project TEXT NOT NULL, channel TEXT NOT NULL, target TEXT NOT NULL,
            body TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
            next_at DOUBLE PRECISION NOT NULL, state TEXT NOT NULL DEFAULT 'pending', last_error TEXT,
            done_at DOUBLE PRECISION
        )""",
        "CREATE INDEX notify_outbox_due ON notify_outbox (state, next_at)",
    ),
}

SCHEMA_VERSION = max(MIGRATIONS)


def migrate(conn: psycopg.Connection) -> list[int]:
    """Apply the missing steps in one transaction; returns the versions applied (none when current).

    Raises `RuntimeError` for a database a newer Fotoflo has migrated further.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        done = {int(row[0]) for row in conn.execute("SELECT version FROM schema_migrations")}
        current = max(done, default=0)
        if current > SCHEMA_VERSION:
            raise RuntimeError(f"the database has schema version {current}, newer than this Fotoflo's {SCHEMA_VERSION}")
        applied = []
        # Every step not yet recorded, not only those above the newest: steps are numbered per branch, so a
        # database at 10 (notifications) may still lack 7 (comments) or 8 (pairs), merged later.
        for version in sorted(set(MIGRATIONS) - done):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            applied.append(version)
    return applied
