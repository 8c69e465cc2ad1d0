"""Fotoflo on a Supabase project: the tables, Storage and Realtime behind the `Store`, `Blobs` and `Bus` protocols.

- `SupabaseStore` (`store.py`): the tables through PostgREST; every write is one database function
  (`rpc`), so it is one transaction, with the same rules as `PostgresStore`.
- `SupabaseBlobs` (`blobs.py`): content-addressed files in a Storage bucket, signed URLs.
- `SupabaseBus` (`bus.py`): Realtime `postgres_changes` INSERTs on the change feed, plus broadcast.

The schema is `supabase/migrations/*.sql`. supabase-py is the `supabase` extra
(`pip install -e '.[supabase]'`); its HTTP clients take an injected `httpx` transport, which is how
the tests run them against fakes (`tests/supabase/fakes/`).
"""

from __future__ import annotations

import httpx

from supabase import Client, ClientOptions, create_client

#: The Storage bucket the migrations create.
BUCKET = "fotoflo"
#: Header that carries a share's token on anon requests (see the security migration).
SHARE_HEADER = "x-fotoflo-share"


def sync_client(
    url: str,
    key: str,
    *,
    transport: httpx.BaseTransport | None = None,
    timeout_s: float = 10.0,
    headers: dict[str, str] | None = None,
) -> tuple[Client, httpx.Client]:
    """A supabase-py client on an `httpx.Client` of our own (closed by the caller), and that client.

    `transport` replaces the network (tests); no session is kept or refreshed: the key is the identity.
    PostgREST reads are not retried (supabase-py would sleep seconds in the caller's thread): a
    failure surfaces at once, and the feed hub, the watcher and clients retry as they do on any store.
    """
    http = httpx.Client(transport=transport, timeout=timeout_s, follow_redirects=True)
    options = ClientOptions(
        httpx_client=http, auto_refresh_token=False, persist_session=False, postgrest_client_retry=False
    )
    options.headers.update(headers or {})
    return create_client(url, key, options), http
