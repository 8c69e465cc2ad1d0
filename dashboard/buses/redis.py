"""`RedisBus`: Redis pub/sub on one channel, for servers that share a Redis.

A listener thread with a blocking pub/sub connection (so listeners are called from that thread,
whatever loop the server runs) that reconnects by itself; redis-py's own silent reconnects are
turned off, so that every lost connection is seen, reported by `connected` and followed by an
`EVERY_PROJECT` wake-up. Pub/sub drops messages while a listener is away: the feed is the truth.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from dashboard.buses import CHANNEL, BrokerBus

CONNECT_TIMEOUT_S = 2.0
HEALTH_CHECK_S = 2.0  # a silently dead connection is noticed within about this


class RedisBus(BrokerBus):
    """`Bus` over Redis pub/sub at `url` (`redis://HOST:PORT/DB`); `connected` follows the subscription."""

    kind = "redis"

    def __init__(self, url: str, *, channel: str = CHANNEL, connect_wait_s: float = 2.0) -> None:
        super().__init__()
        self.url = url
        self.channel = channel
        self._sender = self._client()
        self._listener_client: redis.Redis | None = None
        self._pubsub: redis.client.PubSub | None = None
        self._start(connect_wait_s)

    def _client(self) -> redis.Redis:
        return redis.Redis.from_url(
            self.url,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=CONNECT_TIMEOUT_S,
            health_check_interval=HEALTH_CHECK_S,
            retry=Retry(NoBackoff(), 0),
        )

    def _connect_listener(self) -> None:
        self._listener_client = self._client()
        self._pubsub = self._listener_client.pubsub()
        self._pubsub.subscribe(self.channel)
        # The subscription is confirmed by the server's reply: until then we are not listening.
        while True:
            reply = self._pubsub.get_message(timeout=CONNECT_TIMEOUT_S)
            if reply is None:
                raise ConnectionError("Redis did not confirm the subscription")
            if reply["type"] == "subscribe":
                return

    def _receive(self, timeout_s: float) -> Iterable[bytes]:
        assert self._pubsub is not None
        out = []
        message = self._pubsub.get_message(timeout=timeout_s)
        while message is not None:
            if message["type"] == "message":
                out.append(message["data"])
            message = self._pubsub.get_message(timeout=0)
        return out

    def _disconnect_listener(self) -> None:
        pubsub, client = self._pubsub, self._listener_client
        self._pubsub = self._listener_client = None
        if pubsub is not None:
            pubsub.close()
        if client is not None:
            client.close()

    def _send(self, payload: str) -> None:
        self._sender.publish(self.channel, payload)

    def _close_sender(self) -> None:
        self._sender.close()
