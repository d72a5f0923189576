"""The counter store's pipelined Redis connection, against real Redis (and a silent server)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from tests.services import missing
from tests.store.test_counters import REDIS_URL, redis_reachable
from tollgate.store.redis_wire import RedisWire, Script, WireError


@pytest.fixture
async def wire() -> AsyncIterator[RedisWire]:
    if not await redis_reachable():
        missing("Redis is not reachable at 127.0.0.1:6379")
    connection = RedisWire(REDIS_URL, timeout=5.0)
    yield connection
    await connection.close()


async def test_concurrent_calls_get_their_own_replies(wire: RedisWire) -> None:
    key = f"tollgate-test-wire-{uuid.uuid4().hex}"
    try:
        replies = await asyncio.gather(*(wire.call("INCR", key) for _ in range(200)))
        assert sorted(replies) == list(range(1, 201))
        echoes = await asyncio.gather(*(wire.call("ECHO", str(i)) for i in range(50)))
        assert echoes == [str(i).encode() for i in range(50)]
    finally:
        await wire.call("DEL", key)


async def test_a_script_redis_does_not_know_is_sent_by_body_once(wire: RedisWire) -> None:
    # A new body has never been loaded: EVALSHA answers NOSCRIPT, the body goes once, then the SHA
    # works (the same path as after a SCRIPT FLUSH, without flushing a shared Redis).
    script = Script(f"return {{ARGV[1], KEYS[1], '{uuid.uuid4().hex}'}}")
    assert await wire.call("SCRIPT", "EXISTS", script.sha) == [0]
    assert (await wire.script(script, ["k"], [7]))[:2] == [b"7", b"k"]
    assert await wire.call("SCRIPT", "EXISTS", script.sha) == [1]
    assert (await wire.call("EVALSHA", script.sha, 1, "k", 8))[:2] == [b"8", b"k"]


async def test_the_database_in_the_url_is_selected() -> None:
    if not await redis_reachable():
        missing("Redis is not reachable at 127.0.0.1:6379")
    key = f"tollgate-test-wire-{uuid.uuid4().hex}"
    wire = RedisWire("redis://127.0.0.1:6379/3")
    other = aioredis.Redis.from_url("redis://127.0.0.1:6379/3")
    try:
        await wire.call("SET", key, "in-db-3")
        assert await other.get(key) == b"in-db-3"
    finally:
        await other.delete(key)
        await other.aclose()
        await wire.close()


async def test_errors_of_redis_reach_the_caller(wire: RedisWire) -> None:
    import hiredis

    with pytest.raises(hiredis.ReplyError, match="unknown command"):
        await wire.call("NO-SUCH-COMMAND")
    assert await wire.call("PING") == b"PONG"  # the connection is still in order


async def test_a_silent_redis_times_out_and_the_next_call_reconnects() -> None:
    connections: list[asyncio.StreamWriter] = []
    answer = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while await reader.read(1024):
            if answer.is_set():
                writer.write(b"+PONG\r\n")

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    wire = RedisWire(f"redis://127.0.0.1:{port}/0", timeout=0.2)
    try:
        with pytest.raises(WireError, match="did not answer"):
            await wire.call("PING")
        answer.set()
        assert await wire.call("PING") == b"PONG"
        assert len(connections) == 2  # the silent connection was dropped, a new one made
    finally:
        await wire.close()
        server.close()
        for writer in connections:
            writer.close()


async def test_an_unreachable_redis_fails_fast() -> None:
    wire = RedisWire("redis://127.0.0.1:1/0", timeout=0.5, connect_timeout=0.5)
    with pytest.raises(WireError, match="cannot connect"):
        await wire.call("PING")


def test_it_works_on_uvloop_as_the_server_runs_it() -> None:
    import uvloop

    async def ping() -> object:
        if not await redis_reachable():
            missing("Redis is not reachable at 127.0.0.1:6379")
        wire = RedisWire(REDIS_URL, timeout=5.0)
        try:
            return await wire.call("PING")
        finally:
            await wire.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(ping()) == b"PONG"
