"""`PostgresBus`: LISTEN/NOTIFY on the database the servers already share.

The listener holds one autocommit connection with `LISTEN` in a thread of its own and reconnects
by itself; publishing is `pg_notify` on a second autocommit connection. NOTIFY drops messages
while a listener is away (and caps payloads at 8000 bytes): messages carry only project and seq,
and the feed is the truth.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from psycopg import sql

from dashboard.buses import CHANNEL, BrokerBus

CONNECT_TIMEOUT_S = 2


class PostgresBus(BrokerBus):
    """`Bus` over PostgreSQL LISTEN/NOTIFY at `url`; `connected` follows the listening connection."""

    kind = "postgres"

    def __init__(self, url: str, *, channel: str = CHANNEL, connect_wait_s: float = 2.0) -> None:
        super().__init__()
        self.url = url
        self.channel = channel
        self._listen_conn: psycopg.Connection | None = None
        self._send_conn: psycopg.Connection | None = None
        self._start(connect_wait_s)

    def _connect(self) -> psycopg.Connection:
        # TCP keepalives notice a silently dead server (a cut network) within about 10 s.
        return psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name="fotoflo-bus",
            keepalives=1,
            keepalives_idle=4,
            keepalives_interval=2,
            keepalives_count=3,
        )

    def _connect_listener(self) -> None:
        self._listen_conn = self._connect()
        self._listen_conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))

    def _receive(self, timeout_s: float) -> Iterable[str]:
        assert self._listen_conn is not None
        # A generator: each notification is handed on as it arrives, not after the timeout.
        return (n.payload for n in self._listen_conn.notifies(timeout=timeout_s) if n.channel == self.channel)

    def _disconnect_listener(self) -> None:
        conn, self._listen_conn = self._listen_conn, None
        if conn is not None:
            conn.close()

    def _send(self, payload: str) -> None:
        if self._send_conn is None or self._send_conn.closed or self._send_conn.broken:
            if self._send_conn is not None:
                self._send_conn.close()
            self._send_conn = self._connect()
        try:
            self._send_conn.execute("SELECT pg_notify(%s, %s)", (self.channel, payload))
        except psycopg.OperationalError:
            self._send_conn.close()
            self._send_conn = None
            raise

    def _close_sender(self) -> None:
        if self._send_conn is not None:
            self._send_conn.close()
            self._send_conn = None
