"""ResponseCache, the lifecycle step, with an in-process store and injected clocks: which requests
use the cache (mode, call types, use-cache), each control (no-cache, no-store, ttl, s-maxage,
namespace), the tenant scope, streams kept only when they end well, embeddings per input item, and
a store that fails: skipped, counted, logged once per outage, retried after a pause."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from tollgate.auth.principal import Principal
from tollgate.cache import ResponseCache
from tollgate.cache.responses import RETRY_SECONDS
from tollgate.cache.streams import replay_events
from tollgate.call import Call
from tollgate.canonical import (
    CacheControls,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Message,
    StreamEvent,
    TextPart,
    Usage,
)
from tollgate.config.cache import CacheParams
from tollgate.errors import UpstreamError
from tollgate.store.cache import CacheUnavailable, MemoryCacheStore

TEAM_A = Principal(kind="key", key_hash="h1", team_id="a")
TEAM_B = Principal(kind="key", key_hash="h2", team_id="b")
ANSWER = ChatResponse("id-1", "group", (TextPart("the answer"),), usage=Usage(3, 4))


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Observer:
    def __init__(self) -> None:
        self.lookups: list[tuple[str, str, bool, int]] = []
        self.errors: list[str] = []

    def cache_lookup(self, call_type: str, model_group: str, hit: bool, count: int = 1) -> None:
        self.lookups.append((call_type, model_group, hit, count))

    def cache_error(self, operation: str) -> None:
        self.errors.append(operation)


class FailingStore(MemoryCacheStore):
    """A store that fails while ``down`` and counts the calls it gets."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock=clock)
        self.down = True
        self.calls = 0

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        self.calls += 1
        if self.down:
            raise CacheUnavailable("ConnectionError: refused")
        return await super().get_many(keys)

    async def put_many(self, items: Sequence[tuple[str, bytes]], ttl: float) -> None:
        self.calls += 1
        if self.down:
            raise CacheUnavailable("ConnectionError: refused")
        await super().put_many(items, ttl)


def cache(store: MemoryCacheStore | None = None, clock: Clock | None = None, **params: Any) -> ResponseCache:
    clock = clock or Clock()
    return ResponseCache(
        store or MemoryCacheStore(clock=clock), CacheParams(type="local", **params),
        observer=Observer(), clock=clock, monotonic=clock,
    )


def chat_call(principal: Principal = TEAM_A, controls: CacheControls | None = None, text: str = "q") -> Call:
    request = ChatRequest(model="alias", messages=(Message("user", (TextPart(text),)),), cache=controls)
    return Call(principal, request, "openai", "rid", 0.0)


async def stored_then_found(c: ResponseCache, call: Call, again: Call | None = None) -> bool:
    lookup = await c.find_chat(call, "group")
    await c.keep_chat(lookup, ANSWER)
    return (await c.find_chat(again or call, "group")).hit is not None


async def test_a_kept_answer_is_found_under_the_clients_model_name() -> None:
    c = cache()
    first = await c.find_chat(chat_call(), "group")
    assert first.hit is None and first.key is not None
    await c.keep_chat(first, ANSWER)
    hit = (await c.find_chat(chat_call(), "group")).hit
    assert hit is not None and hit.key == first.key and hit.group == "group" and hit.usage == Usage(3, 4)
    assert hit.value.model == "alias" and hit.value.parts == ANSWER.parts
    assert c._observer.lookups == [("chat", "group", False, 1), ("chat", "group", True, 1)]  # type: ignore[attr-defined]


async def test_an_unknown_model_or_a_disabled_cache_is_left_alone() -> None:
    assert (await cache().find_chat(chat_call(), None)).key is None
    assert (await ResponseCache.disabled().find_chat(chat_call(), "group")).key is None
    assert (await cache(supported_call_types=("aembedding",)).find_chat(chat_call(), "group")).key is None


async def test_default_off_caches_only_requests_that_opt_in() -> None:
    c = cache(mode="default_off")
    assert (await c.find_chat(chat_call(), "group")).key is None
    assert await stored_then_found(c, chat_call(controls=CacheControls(use_cache=True)))


async def test_use_cache_false_opts_out_when_on() -> None:
    assert (await cache().find_chat(chat_call(controls=CacheControls(use_cache=False)), "group")).key is None


async def test_no_cache_reads_nothing_but_stores() -> None:
    c = cache()
    assert await stored_then_found(c, chat_call())
    fresh = await c.find_chat(chat_call(controls=CacheControls(no_cache=True)), "group")
    assert fresh.hit is None and fresh.store


async def test_no_store_keeps_nothing() -> None:
    assert not await stored_then_found(cache(), chat_call(controls=CacheControls(no_store=True)), chat_call())


async def test_entries_live_for_the_ttl() -> None:
    clock = Clock()
    c = cache(clock=clock, ttl=60)
    assert await stored_then_found(c, chat_call())
    clock.now += 61
    assert (await c.find_chat(chat_call(), "group")).hit is None
    assert await stored_then_found(c, chat_call(controls=CacheControls(ttl=120)))
    clock.now += 100
    assert (await c.find_chat(chat_call(), "group")).hit is not None
    assert (await c.find_chat(chat_call(controls=CacheControls(ttl=0)), "group")).store is False


async def test_s_maxage_refuses_older_entries() -> None:
    clock = Clock()
    c = cache(clock=clock)
    assert await stored_then_found(c, chat_call())
    clock.now += 30
    assert (await c.find_chat(chat_call(controls=CacheControls(s_maxage=30)), "group")).hit is not None
    assert (await c.find_chat(chat_call(controls=CacheControls(s_maxage=29)), "group")).hit is None


async def test_namespaces_and_tenants_are_apart_unless_the_scope_is_the_gateway() -> None:
    c = cache()
    assert not await stored_then_found(c, chat_call(), chat_call(controls=CacheControls(namespace="n")))
    assert not await stored_then_found(c, chat_call(TEAM_A), chat_call(TEAM_B))
    assert await stored_then_found(cache(scope="gateway"), chat_call(TEAM_A), chat_call(TEAM_B))
    assert await stored_then_found(cache(namespace="cfg"), chat_call())


async def _events(events: list[StreamEvent], fail: bool = False) -> AsyncIterator[StreamEvent]:
    for event in events:
        yield event
    if fail:
        raise UpstreamError("cut")


async def test_a_stream_is_kept_only_when_it_ends_well() -> None:
    c = cache()
    events = replay_events(ANSWER)
    lookup = await c.find_chat(chat_call(text="ok"), "group")
    assert [e async for e in c.recorded(lookup, _events(events))] == events
    assert (await c.find_chat(chat_call(text="ok"), "group")).hit is not None

    lookup = await c.find_chat(chat_call(text="failed"), "group")
    with pytest.raises(UpstreamError):
        _ = [e async for e in c.recorded(lookup, _events(events[:-1], fail=True))]
    assert (await c.find_chat(chat_call(text="failed"), "group")).hit is None

    lookup = await c.find_chat(chat_call(text="left"), "group")
    inner = _events(events)
    stream = c.recorded(lookup, inner)
    await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]  # the client went away
    assert (await c.find_chat(chat_call(text="left"), "group")).hit is None
    assert inner.ag_running is False and inner.ag_frame is None  # type: ignore[attr-defined]


def embedding_call(*inputs: str, controls: CacheControls | None = None) -> Call:
    return Call(TEAM_A, EmbeddingRequest(model="e", inputs=inputs, cache=controls), "openai", "rid", 0.0)


def vectors(*inputs: str) -> EmbeddingResponse:
    values = tuple((float(len(i)), float(ord(i[0]))) for i in inputs)
    return EmbeddingResponse("e", values, Usage(len(inputs) * 2))


async def test_embeddings_are_kept_per_input_and_only_missing_inputs_go_upstream() -> None:
    c = cache()
    first = await c.find_embeddings(embedding_call("aa", "b"), "group")
    assert first.hit is None and first.request.inputs == ("aa", "b")
    assert await c.keep_embeddings(first, vectors("aa", "b")) == vectors("aa", "b")

    partial = await c.find_embeddings(embedding_call("b", "ccc", "aa"), "group")
    assert partial.hit is None and partial.request.inputs == ("ccc",)
    merged = await c.keep_embeddings(partial, vectors("ccc"))
    assert merged.vectors == vectors("b", "ccc", "aa").vectors and merged.usage == Usage(2)

    whole = await c.find_embeddings(embedding_call("ccc", "aa"), "group")
    assert whole.hit is not None and whole.hit.value.vectors == vectors("ccc", "aa").vectors
    # "aa" holds 2 of its batch's 4 tokens (by size, the rest to the last item), "ccc" all 2 of its own.
    assert whole.hit.key.count(",") == 1 and whole.hit.usage == Usage(2 + 2)


async def test_a_failing_store_is_skipped_counted_logged_once_and_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    store = FailingStore(clock)
    c = cache(store, clock)
    with caplog.at_level(logging.WARNING, logger="tollgate.cache"):
        lookup = await c.find_chat(chat_call(), "group")
        assert lookup.hit is None
        await c.keep_chat(lookup, ANSWER)
        for _ in range(3):
            assert (await c.find_chat(chat_call(), "group")).key is None  # not even tried
        clock.now += RETRY_SECONDS + 1
        assert (await c.find_chat(chat_call(), "group")).key is not None
        store.down = False
        clock.now += RETRY_SECONDS + 1
        assert await stored_then_found(c, chat_call())
    assert c._observer.errors == ["read", "read"]  # type: ignore[attr-defined]
    assert store.calls == 2 + 3  # the two failed reads; then read, write and read again
    messages = [r.getMessage() for r in caplog.records]
    assert sum("response cache unavailable" in m for m in messages) == 1
    assert sum("available again" in m for m in messages) == 1
