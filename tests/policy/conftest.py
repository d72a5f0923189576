"""Shared values for the policy tests: an injected clock, a counting store, requests and calls."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from tollgate.auth.principal import Entity, Limits, Principal
from tollgate.call import Call, Destination, Route
from tollgate.canonical import ChatRequest, EmbeddingRequest, Message, TextPart
from tollgate.config import Price
from tollgate.policy import PolicyAdmission
from tollgate.policy.tokens import estimate_input_tokens
from tollgate.store.counters import AdmissionResult, CounterAdmission, CounterStore, Settlement
from tollgate.store.memory_counters import MemoryCounterStore

T0 = 1_700_006_400.0  # 2023-11-15 00:00:00 UTC: a day boundary (a Wednesday)
PRICE = Price(input=Decimal("0.000001"), output=Decimal("0.000002"))


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingStore:
    """Wraps a store and counts calls, to prove which paths skip the store."""

    def __init__(self, inner: CounterStore | None = None) -> None:
        self.inner = inner or MemoryCounterStore()
        self.admits = 0
        self.settles = 0

    async def admit(self, admission: CounterAdmission) -> AdmissionResult:
        self.admits += 1
        return await self.inner.admit(admission)

    async def settle(self, settlement: Settlement) -> tuple[int, ...]:
        self.settles += 1
        return await self.inner.settle(settlement)

    async def peek(self, keys: Sequence[str]) -> tuple[int | None, ...]:
        return await self.inner.peek(keys)

    async def close(self) -> None:
        return None


def chat(text: str = "x" * 40, max_tokens: int | None = 10, model: str = "gpt-4o") -> ChatRequest:
    # 40 ASCII chars = 10 tokens + 4 message + 3 request overhead = 17 input tokens.
    return ChatRequest(model=model, messages=(Message("user", (TextPart(text),)),), max_tokens=max_tokens)


def call(*entities: Entity, request: ChatRequest | EmbeddingRequest | None = None) -> Call:
    principal = Principal(kind="key", entities=entities)
    return Call(principal, request or chat(), "openai", uuid.uuid4().hex, T0)


def route(request: ChatRequest | EmbeddingRequest, *destinations: Destination) -> Route:
    found = destinations or (Destination(request.model, request.model, (request.model,)),)
    return Route(tuple(found), estimate_input_tokens(request))


async def admit(p: PolicyAdmission, *entities: Entity, request: ChatRequest | None = None,
                destinations: Sequence[Destination] = ()) -> Any:
    request = request or chat()
    return await p.admit(call(*entities, request=request), route(request, *destinations))


def policy(store: CounterStore | None = None, clock: Clock | None = None, **kwargs: Any) -> PolicyAdmission:
    chosen = store or MemoryCounterStore()
    kwargs.setdefault("price_for", lambda name: PRICE)
    return PolicyAdmission(chosen, clock=clock or Clock(), **kwargs)


def key(**limits: Any) -> Entity:
    return Entity(kind="key", id="k1", limits=Limits(**limits))
