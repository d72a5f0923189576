"""Cross-replica invalidation of the virtual-key principal cache, over Redis pub/sub.

Every replica caches the principals of the keys it authenticates (``auth.keys.KeyAuthenticator``).
An admin write on one replica drops the entry there at once; ``Invalidation`` also publishes the
change on a Redis channel, and a background subscriber on every replica drops the same entry
locally, so a blocked, deleted or regenerated key stops working everywhere within a round trip.

Without Redis the publisher and subscriber are no-ops (the cache TTL bounds staleness). Redis
errors never reach the admin write or the request path: a failed publish is logged, and the
subscriber reconnects with backoff, clearing the whole local cache after each reconnect because
messages sent while it was away are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

from tollgate.background import cancel_and_wait

CHANNEL = "tollgate:auth:invalidate"
ALL = "*"  # the message meaning "drop every cached principal"
PUBLISH_TIMEOUT = 1.0

log = logging.getLogger("tollgate.auth")


class LocalCache(Protocol):
    def invalidate(self, key_hash: str) -> None: ...

    def invalidate_all(self) -> None: ...


class Invalidation:
    """A ``KeyCache`` that invalidates locally and tells the other replicas.

    ``client`` is a ``redis.asyncio.Redis`` (or ``None`` for a single replica); ``errors`` are the
    exception types treated as "Redis is unavailable".
    """

    def __init__(
        self,
        local: LocalCache,
        client: Any | None = None,
        *,
        channel: str = CHANNEL,
        errors: tuple[type[BaseException], ...] = (OSError,),
        warn: Callable[[str], None] = log.warning,
        max_backoff: float = 5.0,
    ) -> None:
        self._local = local
        self._client = client
        self._channel = channel
        self._errors = errors
        self._send_errors: tuple[type[BaseException], ...] = (*errors, TimeoutError)
        self._warn = warn
        self._max_backoff = max_backoff
        self._listener: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self._subscribed = asyncio.Event()

    @property
    def enabled(self) -> bool:
        return self._client is not None

    def invalidate(self, key_hash: str) -> None:
        self._local.invalidate(key_hash)
        self._publish(key_hash)

    def invalidate_all(self) -> None:
        self._local.invalidate_all()
        self._publish(ALL)

    def _publish(self, message: str) -> None:
        if self._client is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside an event loop (a CLI script): nobody to tell
            return
        task = loop.create_task(self._send(message))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _send(self, message: str) -> None:
        assert self._client is not None
        try:
            await asyncio.wait_for(self._client.publish(self._channel, message), PUBLISH_TIMEOUT)
        except self._send_errors as exc:
            self._warn(f"could not publish a key-cache invalidation to Redis ({exc!r}); "
                       "other replicas will notice when their cache entry expires")

    def apply(self, message: bytes | str) -> None:
        """Act on one message from another replica (or our own: dropping twice is harmless)."""
        text = message.decode() if isinstance(message, bytes) else message
        if text == ALL:
            self._local.invalidate_all()
        elif text:
            self._local.invalidate(text)

    async def start(self) -> None:
        if self._client is not None and self._listener is None:
            self._listener = asyncio.create_task(self._listen())

    async def wait_subscribed(self, timeout: float) -> bool:
        """For tests and start-up probes: whether the subscriber is listening."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), timeout)
        return self._subscribed.is_set()

    async def _listen(self) -> None:
        assert self._client is not None
        delay, first = 0.1, True
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                if not first:
                    self._local.invalidate_all()  # we may have missed messages while away
                first, delay = False, 0.1
                self._subscribed.set()
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self.apply(message["data"])
            except self._errors as exc:
                self._subscribed.clear()
                self._warn(f"key-cache invalidation subscriber lost Redis ({exc!r}); "
                           f"retrying in {delay:.1f}s")
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_backoff)

    async def stop(self) -> None:
        await cancel_and_wait(self._listener)
        self._listener = None
        if self._sends:
            await asyncio.gather(*self._sends, return_exceptions=True)
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()


def redis_invalidation(local: LocalCache, url: str | None, channel: str = CHANNEL) -> Invalidation:
    """An ``Invalidation`` over the Redis at ``url``; a local-only one when ``url`` is ``None``."""
    if url is None:
        return Invalidation(local)
    import redis
    import redis.asyncio

    # No read timeout: the subscriber waits on the socket; health checks PING an idle connection.
    client = redis.asyncio.Redis.from_url(
        url, socket_connect_timeout=0.5, health_check_interval=10, socket_keepalive=True
    )
    return Invalidation(local, client, channel=channel, errors=(redis.RedisError, OSError))


__all__ = ["ALL", "CHANNEL", "Invalidation", "redis_invalidation"]
