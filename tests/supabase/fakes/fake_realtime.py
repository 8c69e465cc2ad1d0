"""`FakeRealtime`: a FAKE Supabase Realtime server, for realtime-py (supabase-py's Realtime client).

A websocket server on a loopback port at `/realtime/v1/websocket`, speaking the Phoenix channel
protocol (JSON, vsn 1.0.0) the client speaks: `phx_join` with `postgres_changes` bindings (answered
with their server ids, then the `system` "Subscribed to PostgreSQL" message), heartbeats,
`broadcast` (to the topic's other members; to the sender too when it joined with `self: true`),
`phx_leave`, and `postgres_changes` events. Those come from the REAL test PostgreSQL: `start()`
installs a trigger on every table of the `supabase_realtime` publication that NOTIFYs each row
change, and the server LISTENs and hands each one to the matching subscriptions, with the row as
Realtime sends it (a row too big for NOTIFY keeps only its short fields, as Realtime truncates big
records). A binding on a table outside the publication gets Realtime's `system` error.

Realtime's known failure modes, on demand (all thread-safe):

- `blind_after_join_s`: every subscription misses the events of this long after its join
  (supabase-js#1599: events lost for 1-3 s after SUBSCRIBED);
- `drop_next_subscriptions(n)`: the next n joins are answered (the client says SUBSCRIBED) but get
  no postgres_changes subscription: no `system` message, no events (realtime-py#213: a reconnect
  that silently drops the subscription);
- `channel_error_all()`: every joined channel dies with `phx_error` (realtime#1414: CHANNEL_ERROR
  after hours);
- `disconnect_all()`: every websocket is cut, as a network drop or a Realtime restart does.

Not faked: Realtime's row level security checks on postgres_changes, filters beyond `col=eq.v`,
presence, private channels.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt
import psycopg
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tests.supabase.fakes.common import JWT_SECRET

NOTIFY_CHANNEL = "fake_realtime"

INSTALL_SQL = """
CREATE SCHEMA IF NOT EXISTS fake_realtime;
CREATE OR REPLACE FUNCTION fake_realtime.notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_record jsonb := to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END);
    v_payload jsonb;
BEGIN
    v_payload := jsonb_build_object(
        'schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME, 'type', TG_OP,
        'commit_timestamp', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'columns', (SELECT jsonb_agg(jsonb_build_object('name', a.attname, 'type', format_type(a.atttypid, NULL))
                                     ORDER BY a.attnum)
                    FROM pg_attribute a WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped),
        'record', v_record);
    IF octet_length(v_payload::text) > 7000 THEN  -- Realtime too keeps only the short fields of a big record
        v_payload := jsonb_set(v_payload, '{record}',
            (SELECT coalesce(jsonb_object_agg(key, value), '{}') FROM jsonb_each(v_record)
             WHERE octet_length(value::text) <= 64));
    END IF;
    PERFORM pg_notify('fake_realtime', v_payload::text);
    RETURN NULL;
END $$;
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = 'supabase_realtime' LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS fake_realtime_notify ON %I.%I', t.schemaname, t.tablename);
        EXECUTE format('CREATE TRIGGER fake_realtime_notify AFTER INSERT OR UPDATE OR DELETE ON %I.%I'
                       ' FOR EACH ROW EXECUTE FUNCTION fake_realtime.notify()', t.schemaname, t.tablename);
    END LOOP;
END $$;
"""


@dataclass
class _Join:
    """One channel joined on one socket."""

    ws: ServerConnection
    topic: str
    join_ref: str | None
    bindings: list[dict[str, Any]]
    self_broadcast: bool
    active: bool = False  # the postgres_changes subscription exists
    blind_until: float = 0.0  # loop time before which its events are lost
    received: list[dict[str, Any]] = field(default_factory=list)


class FakeRealtime:
    """A FAKE Realtime on 127.0.0.1 (see the module); `url` is the Supabase URL to give the client."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.port = 0
        self.blind_after_join_s = 0.0
        self.joins = 0  # joins answered so far
        self.connections = 0  # websockets accepted so far
        self.lost = 0  # events dropped in blind windows
        self._drop_next = 0
        self._ids = itertools.count(1000)
        self._channels: dict[tuple[int, str], _Join] = {}
        self._sockets: set[ServerConnection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fake-realtime", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeRealtime:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            conn.execute(INSTALL_SQL)  # type: ignore[arg-type]
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"FakeRealtime did not start: {self._error}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        listen = await psycopg.AsyncConnection.connect(self.db_url, autocommit=True)
        queries = await psycopg.AsyncConnection.connect(self.db_url, autocommit=True)
        try:
            await listen.execute(f"LISTEN {NOTIFY_CHANNEL}")  # type: ignore[arg-type]
            server: Server = await serve(
                lambda ws: self._serve(ws, queries), "127.0.0.1", 0, process_request=self._check_key
            )
            self.port = server.sockets[0].getsockname()[1] if server.sockets else 0
            feeder = asyncio.create_task(self._feed(listen))
            self._ready.set()
            await self._stop.wait()
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder
            for ws in list(self._sockets):
                ws.transport.abort()
            server.close()
            await server.wait_closed()
        finally:
            await listen.close()
            await queries.close()

    # -- failure modes ----------------------------------------------------------------------

    def drop_next_subscriptions(self, count: int = 1) -> None:
        self._call(lambda: setattr(self, "_drop_next", self._drop_next + count))

    def disconnect_all(self) -> None:
        def cut() -> None:
            for ws in list(self._sockets):
                ws.transport.abort()

        self._call(cut)

    def channel_error_all(self) -> None:
        def error() -> None:
            for key, join in list(self._channels.items()):
                del self._channels[key]
                self._send_soon(
                    join.ws, {"topic": join.topic, "event": "phx_error", "payload": {}, "ref": join.join_ref}
                )

        self._call(error)

    def active_subscriptions(self) -> int:
        """postgres_changes subscriptions that get events (or will, after the blind window)."""
        return sum(1 for j in list(self._channels.values()) if j.active)

    def _call(self, fn: Callable[[], None]) -> None:
        assert self._loop is not None, "FakeRealtime is not started"
        done = threading.Event()

        def run() -> None:
            try:
                fn()
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(5)

    # -- the protocol -----------------------------------------------------------------------

    def _check_key(self, connection: ServerConnection, request: Request) -> Response | None:
        if not request.path.startswith("/realtime/v1/websocket"):
            return connection.respond(HTTPStatus.NOT_FOUND, "no such path\n")
        if _role(parse_qs(urlparse(request.path).query).get("apikey", [""])[0]) is None:
            return connection.respond(HTTPStatus.FORBIDDEN, "invalid apikey\n")
        return None

    async def _serve(self, ws: ServerConnection, queries: psycopg.AsyncConnection[Any]) -> None:
        self.connections += 1
        self._sockets.add(ws)
        try:
            async for raw in ws:
                await self._on_message(ws, json.loads(raw), queries)
        except ConnectionClosed:
            pass
        finally:
            self._sockets.discard(ws)
            for key in [k for k, j in self._channels.items() if j.ws is ws]:
                del self._channels[key]

    async def _on_message(
        self, ws: ServerConnection, msg: dict[str, Any], queries: psycopg.AsyncConnection[Any]
    ) -> None:
        topic, event, ref = msg.get("topic"), msg.get("event"), msg.get("ref")
        payload = msg.get("payload") or {}
        if event == "phx_join":
            await self._join(ws, str(topic), msg, queries)
            return
        if event == "phx_leave":
            self._channels.pop((id(ws), str(topic)), None)
        elif event == "broadcast":
            sender = self._channels.get((id(ws), str(topic)))
            for join in list(self._channels.values()):
                if join.topic == topic and (join.ws is not ws or (sender is not None and sender.self_broadcast)):
                    message = {"topic": topic, "event": "broadcast", "payload": payload, "ref": None}
                    self._send_soon(join.ws, message)
        if ref is not None:
            await _send(ws, {"topic": topic, "event": "phx_reply", "payload": {"status": "ok", "response": {}},
                             "ref": ref, "join_ref": msg.get("join_ref")})  # fmt: skip

    async def _join(
        self, ws: ServerConnection, topic: str, msg: dict[str, Any], queries: psycopg.AsyncConnection[Any]
    ) -> None:
        payload = msg.get("payload") or {}
        config = payload.get("config") or {}
        if _role(payload.get("access_token") or "") is None:
            await _send(ws, {"topic": topic, "event": "phx_reply", "ref": msg.get("ref"),
                             "payload": {"status": "error", "response": {"reason": "Invalid token"}}})  # fmt: skip
            return
        bindings = [{**b, "id": next(self._ids)} for b in config.get("postgres_changes") or []]
        join = _Join(ws, topic, msg.get("join_ref"), bindings, bool((config.get("broadcast") or {}).get("self")))
        self._channels[(id(ws), topic)] = join
        self.joins += 1
        reply = {
            "postgres_changes": [{k: b.get(k) for k in ("id", "event", "schema", "table", "filter")} for b in bindings]
        }
        await _send(ws, {"topic": topic, "event": "phx_reply", "ref": msg.get("ref"), "join_ref": msg.get("join_ref"),
                         "payload": {"status": "ok", "response": reply}})  # fmt: skip
        if not bindings:
            return
        if self._drop_next > 0:  # realtime-py#213: joined, but no subscription behind it
            self._drop_next -= 1
            return
        published = await (
            await queries.execute(
                "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = 'supabase_realtime'"
            )
        ).fetchall()
        for b in bindings:
            if (b.get("schema") or "public", b.get("table")) not in published:
                message = (
                    "Unable to subscribe to changes with given parameters. Please check Realtime is enabled for the"
                    f" given connect parameters: [schema: {b.get('schema')}, table: {b.get('table')}, filters: []]"
                )
                await _send(ws, _system(topic, message, "error"))
                return
        join.active = True
        join.blind_until = asyncio.get_running_loop().time() + self.blind_after_join_s
        await _send(ws, _system(topic, "Subscribed to PostgreSQL", "ok"))

    async def _feed(self, listen: psycopg.AsyncConnection[Any]) -> None:
        async for notify in listen.notifies():
            change = json.loads(notify.payload)
            now = asyncio.get_running_loop().time()
            for join in list(self._channels.values()):
                ids = [b["id"] for b in join.bindings if _matches(b, change)] if join.active else []
                if ids and now < join.blind_until:
                    self.lost += 1
                elif ids:
                    data = {**change, "errors": None}
                    self._send_soon(join.ws, {"topic": join.topic, "event": "postgres_changes", "ref": None,
                                              "payload": {"data": data, "ids": ids}})  # fmt: skip

    def _send_soon(self, ws: ServerConnection, message: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(_send(ws, message))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)


def _system(topic: str, message: str, status: str) -> dict[str, Any]:
    """Realtime's word on a channel's postgres_changes subscription."""
    payload = {"channel": topic.removeprefix("realtime:"), "extension": "postgres_changes", "message": message}
    return {"topic": topic, "event": "system", "ref": None, "payload": {**payload, "status": status}}


async def _send(ws: ServerConnection, message: dict[str, Any]) -> None:
    with contextlib.suppress(ConnectionClosed):
        await ws.send(json.dumps(message))


def _role(token: str) -> str | None:
    try:
        role = jwt.decode(token, JWT_SECRET, algorithms=["HS256"]).get("role")
    except jwt.PyJWTError:
        return None
    return role if isinstance(role, str) else None


def _matches(binding: dict[str, Any], change: dict[str, Any]) -> bool:
    if binding.get("event") not in ("*", change["type"]):
        return False
    if (binding.get("schema") or "public") != change["schema"] or binding.get("table") not in (
        None,
        "*",
        change["table"],
    ):
        return False
    wanted = binding.get("filter")
    if not wanted:
        return True
    column, _, condition = wanted.partition("=")
    op, _, value = condition.partition(".")
    return op == "eq" and str((change.get("record") or {}).get(column)) == value
