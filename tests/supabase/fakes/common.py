"""What the Supabase fakes share: the fake project's JWT secret and keys, and databases with the schema.

A test database for Supabase is the shim (`shim.sql`: what every Supabase project has before its
migrations) plus Fotoflo's `supabase/migrations/*.sql`, applied once to a template database of
the session's PostgreSQL cluster and copied for each test.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import jwt
import psycopg

from tests.support.services import PostgresServer

ROOT = Path(__file__).resolve().parents[3]
SHIM = Path(__file__).with_name("shim.sql")
MIGRATIONS = sorted((ROOT / "supabase" / "migrations").glob("*.sql"))
TEMPLATE = "fotoflo_supabase_template"
_numbers = itertools.count(1)

#: The fake project's JWT secret: keys are HS256 JWTs with a `role`, as Supabase's legacy API keys are.
JWT_SECRET = "fake-supabase-jwt-secret-for-tests-only-0123456789"
#: Where the fake project "is": HTTP goes to the injected transport, so only FakeRealtime's URL is real.
FAKE_URL = "http://supabase.fake.invalid"


def make_key(role: str, secret: str = JWT_SECRET) -> str:
    now = int(time.time())
    return jwt.encode({"iss": "supabase-fake", "role": role, "iat": now, "exp": now + 10 * 365 * 86400}, secret)


SERVICE_KEY = make_key("service_role")
ANON_KEY = make_key("anon")


def apply_sql(url: str, *files: Path) -> None:
    """Run each file as one script (as `supabase db push` runs a migration), as the database owner."""
    with psycopg.connect(url, autocommit=True) as conn:
        for path in files:
            conn.execute(path.read_text())  # type: ignore[arg-type]


def create_supabase_database(server: PostgresServer) -> str:
    """A new database with the shim and Fotoflo's Supabase migrations; returns its URL."""
    with psycopg.connect(server.url(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (TEMPLATE,)).fetchone()
        if not exists:
            conn.execute(f"CREATE DATABASE {TEMPLATE}")  # type: ignore[arg-type]
    if not exists:
        apply_sql(server.url(TEMPLATE), SHIM, *MIGRATIONS)
    name = f"supabase_{os.getpid()}_{next(_numbers)}"
    server.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    return server.url(name)
