"""``ResponseCache``: the response-cache step of the lifecycle — find a stored answer before
admission, keep a new one after it arrived.

Which requests use it: every chat or embedding request (``supported_call_types``) when the
cache is on (``litellm_settings.cache``); under ``mode: default_off`` only those asking
``{"use-cache": true}``; never those asking ``{"use-cache": false}``. Per request,
``no-cache`` skips the read, ``no-store`` the write, ``ttl`` sets the entry's life, ``s-maxage``
refuses older entries and ``namespace`` picks a separate key space (``canonical.CacheControls``).

When the store fails (Redis down) the request is served as if the cache were off: the failure is
counted, logged once per outage, and the store is left alone for ``RETRY_SECONDS`` so requests
do not each wait for a timeout.
May import: ``call``, ``canonical``, ``config``, ``store.cache``, ``cache``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Generic, Protocol, TypeVar

from tollgate.cache.entries import decode_chat, decode_vector, encode_chat, encode_vector, token_shares
from tollgate.cache.keys import GATEWAY_SCOPE, chat_key, embedding_keys, tenant_scope
from tollgate.cache.streams import Assembly
from tollgate.call import Call
from tollgate.canonical import (
    CacheControls,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    StreamEvent,
    Usage,
)
from tollgate.config.cache import CacheParams
from tollgate.store.cache import CacheStore, CacheUnavailable, MemoryCacheStore

log = logging.getLogger("tollgate.cache")
RETRY_SECONDS = 5.0
NO_CONTROLS = CacheControls()
T = TypeVar("T")


class CacheObserver(Protocol):
    """What the cache reports (``telemetry.metrics.Metrics`` implements it)."""

    def cache_lookup(self, call_type: str, model_group: str, hit: bool, count: int = 1) -> None: ...

    def cache_error(self, operation: str) -> None: ...


class _Unobserved:
    def cache_lookup(self, call_type: str, model_group: str, hit: bool, count: int = 1) -> None:
        return None

    def cache_error(self, operation: str) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Hit(Generic[T]):
    """A request answered from the cache: the answer, its key(s) (for ``x-litellm-cache-key``),
    the model group and the usage the stored answer reported."""

    value: T
    key: str
    group: str
    usage: Usage


@dataclass(slots=True)
class ChatLookup:
    """A chat request's cache decision: ``hit`` if answered from the cache, else where (``key``)
    and whether (``store``) its answer is kept."""

    key: str | None = None
    store: bool = False
    ttl: float = 0.0
    hit: Hit[ChatResponse] | None = None


@dataclass(slots=True)
class EmbeddingLookup:
    """An embedding request's cache decision, per input item. ``request`` holds the items still
    to be asked of the upstream (all of them on a miss); ``found`` the stored vectors by position."""

    request: EmbeddingRequest
    keys: list[str] = field(default_factory=list)
    found: dict[int, tuple[tuple[float, ...], int]] = field(default_factory=dict)
    store: bool = False
    ttl: float = 0.0
    hit: Hit[EmbeddingResponse] | None = None


class ResponseCache:
    def __init__(
        self,
        store: CacheStore,
        params: CacheParams,
        *,
        enabled: bool = True,
        observer: CacheObserver | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._params = params
        self._enabled = enabled
        self._observer = observer or _Unobserved()
        self._clock = clock
        self._monotonic = monotonic
        self._down_until = 0.0
        self._down = False

    @classmethod
    def disabled(cls) -> ResponseCache:
        return cls(MemoryCacheStore(max_bytes=0), CacheParams(), enabled=False)

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def kind(self) -> str:
        return self._store.kind

    # ---- the decision ---------------------------------------------------------------------

    def _controls(self, request: ChatRequest | EmbeddingRequest, supported: bool) -> CacheControls | None:
        """The request's controls, or ``None`` when the cache does not apply to it at all."""
        if not self._enabled or not supported:
            return None
        controls = request.cache or NO_CONTROLS
        wanted = controls.use_cache
        if wanted is False or (wanted is None and self._params.mode == "default_off"):
            return None
        if self._resting():
            return None  # the store failed a moment ago: serve without it for now
        return controls

    def _scope(self, call: Call) -> str:
        return GATEWAY_SCOPE if self._params.scope == "gateway" else tenant_scope(call.principal)

    def _ttl(self, controls: CacheControls) -> float:
        return controls.ttl if controls.ttl is not None else self._params.default_ttl

    def _fresh(self, stored_at: float, controls: CacheControls) -> bool:
        return controls.s_maxage is None or self._clock() - stored_at <= controls.s_maxage

    async def find_chat(self, call: Call, group: str | None) -> ChatLookup:
        request = call.request
        assert isinstance(request, ChatRequest)
        controls = self._controls(request, self._params.chat)
        if controls is None or group is None:
            return ChatLookup()
        key = chat_key(request, group, self._scope(call), controls.namespace or self._params.namespace)
        ttl = self._ttl(controls)
        lookup = ChatLookup(key, store=not controls.no_store and ttl > 0, ttl=ttl)
        if controls.no_cache:
            return lookup
        found = await self._get([key], "read")
        entry = decode_chat(found[0]) if found and found[0] is not None else None
        if entry is not None and self._fresh(entry[1], controls):
            response = replace(entry[0], model=request.model)
            lookup.hit = Hit(response, key, group, response.usage)
        self._observer.cache_lookup("chat", group, lookup.hit is not None)
        return lookup

    async def keep_chat(self, lookup: ChatLookup, response: ChatResponse) -> None:
        if lookup.key is None or not lookup.store:
            return
        entry = encode_chat(response, self._clock())
        if entry is not None:
            await self._put([(lookup.key, entry)], lookup.ttl)

    def recorded(self, lookup: ChatLookup, events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
        """``events`` unchanged for the client; kept in the cache if the stream ends well."""
        if lookup.key is None or not lookup.store:
            return events
        return self._record(lookup, events)

    async def _record(
        self, lookup: ChatLookup, events: AsyncIterator[StreamEvent]
    ) -> AsyncIterator[StreamEvent]:
        assembly = Assembly()
        ended = False
        try:
            async for event in events:
                assembly.feed(event)
                yield event
            ended = True
        finally:
            if not ended:  # failed or abandoned: close the upstream side, keep nothing
                close = getattr(events, "aclose", None)
                if close is not None:
                    await close()
        response = assembly.response()
        if response is not None:
            await self.keep_chat(lookup, response)

    async def find_embeddings(self, call: Call, group: str | None) -> EmbeddingLookup:
        request = call.request
        assert isinstance(request, EmbeddingRequest)
        controls = self._controls(request, self._params.embeddings)
        if controls is None or group is None:
            return EmbeddingLookup(request)
        keys = embedding_keys(request, group, self._scope(call), controls.namespace or self._params.namespace)
        ttl = self._ttl(controls)
        lookup = EmbeddingLookup(request, keys, store=not controls.no_store and ttl > 0, ttl=ttl)
        if controls.no_cache:
            return lookup
        for position, raw in enumerate(await self._get(keys, "read")):
            entry = decode_vector(raw) if raw is not None else None
            if entry is not None and self._fresh(entry[2], controls):
                lookup.found[position] = (entry[0], entry[1])
        hits = len(lookup.found)
        if hits:
            self._observer.cache_lookup("embedding", group, True, hits)
        if hits < len(keys):
            self._observer.cache_lookup("embedding", group, False, len(keys) - hits)
        if hits == len(keys):
            vectors = tuple(lookup.found[i][0] for i in range(len(keys)))
            usage = Usage(input_tokens=sum(tokens for _, tokens in lookup.found.values()))
            response = EmbeddingResponse(request.model, vectors, usage)
            lookup.hit = Hit(response, ",".join(dict.fromkeys(keys)), group, usage)
        elif hits:
            missing = tuple(item for i, item in enumerate(request.inputs) if i not in lookup.found)
            lookup.request = replace(request, inputs=missing)  # type: ignore[arg-type]
        return lookup

    async def keep_embeddings(
        self, lookup: EmbeddingLookup, response: EmbeddingResponse
    ) -> EmbeddingResponse:
        """Store the vectors the upstream returned for the missing items; the whole answer, in the
        order the client asked, with the upstream's usage (stored items cost nothing)."""
        if not lookup.keys:
            return response
        missing = [i for i in range(len(lookup.keys)) if i not in lookup.found]
        if len(response.vectors) != len(missing):
            return response  # not one vector per item: nothing can be matched up or stored
        if lookup.store:
            now = self._clock()
            shares = token_shares(lookup.request.inputs, response.usage.prompt_tokens)
            items = [
                (lookup.keys[i], encode_vector(vector, tokens, now))
                for i, vector, tokens in zip(missing, response.vectors, shares, strict=True)
            ]
            await self._put(items, lookup.ttl)
        if not lookup.found:
            return response
        fresh = dict(zip(missing, response.vectors, strict=True))
        vectors = tuple(
            lookup.found[i][0] if i in lookup.found else fresh[i] for i in range(len(lookup.keys))
        )
        return replace(response, vectors=vectors)

    # ---- the store, and its outages -------------------------------------------------------

    async def _get(self, keys: Sequence[str], operation: str) -> list[bytes | None]:
        try:
            found = await self._store.get_many(keys)
        except CacheUnavailable as exc:
            self._failed(operation, exc)
            return [None] * len(keys)
        self._recovered()
        return found

    async def _put(self, items: Sequence[tuple[str, bytes]], ttl: float) -> None:
        if self._resting():  # the read of this request just failed: do not wait on a write too
            return
        try:
            await self._store.put_many(items, ttl)
        except CacheUnavailable as exc:
            self._failed("write", exc)
            return
        self._recovered()

    def _resting(self) -> bool:
        return self._down and self._monotonic() < self._down_until

    def _failed(self, operation: str, exc: CacheUnavailable) -> None:
        self._observer.cache_error(operation)
        self._down_until = self._monotonic() + RETRY_SECONDS
        if not self._down:
            self._down = True
            log.warning(
                "response cache unavailable (%s); serving without it, retrying every %.0f s",
                exc,
                RETRY_SECONDS,
            )

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            log.warning("response cache available again")

    # ---- admin ----------------------------------------------------------------------------

    async def delete(self, keys: Sequence[str]) -> int:
        """Remove entries by the keys ``x-litellm-cache-key`` showed. Raises ``CacheUnavailable``."""
        return await self._store.delete(keys)

    async def ping(self) -> None:
        """Raises ``CacheUnavailable`` when the store does not answer."""
        await self._store.ping()

    async def close(self) -> None:
        await self._store.close()
