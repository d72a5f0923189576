"""``Landing``: a request is recorded once, before its settlement; a sink that fails costs
neither the settlement nor the caller; a request being cancelled settles in the background."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from tollgate.accounting.landing import Flight, Landing, failure
from tollgate.auth.principal import Principal
from tollgate.call import Attempted, Call
from tollgate.canonical import ChatRequest, Usage
from tollgate.config import Deployment
from tollgate.errors import ClientDisconnected, GatewayError, RateLimited

CALL = Call(Principal(kind="key", key_hash="h"), ChatRequest(model="m", messages=()), "openai", "r1", 0.0)
DEPLOYMENT = Deployment(id="d1", model_name="m", provider="fake", upstream_model="m", litellm_model="fake/m")


class Ticket:
    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.settled: list[tuple[Usage | None, Decimal]] = []
        self.headers: dict[str, str] = {}
        self._gate = gate

    async def settle(self, usage: Usage | None, cost: Decimal, group: str | None = None) -> None:
        if self._gate is not None:
            await self._gate.wait()  # a Redis round trip
        self.settled.append((usage, cost))


class Accounting:
    def __init__(self, fail: bool = False) -> None:
        self.recorded: list[tuple[Attempted, Decimal]] = []
        self.fail = fail

    def cost(self, deployment: Deployment, usage: Usage) -> Decimal:
        return Decimal(usage.total_tokens) / 1000

    def record(self, attempted: Attempted, cost: Decimal) -> None:
        self.recorded.append((attempted, cost))
        if self.fail:
            raise RuntimeError("a sink's bug")


async def _no_usage(deployment: Deployment, tokens: int) -> None:
    return None


async def test_a_flight_lands_once_with_its_attempts_and_cost() -> None:
    accounting, ticket = Accounting(), Ticket()
    landing = Landing(accounting, _no_usage, clock=lambda: 5.0)
    flight = Flight(CALL, ticket, started=1.0)
    flight.aboard(DEPLOYMENT, 3)
    await landing.land(flight, Usage(10, 5), None)
    await landing.land(flight, Usage(99, 99), RateLimited("late"))  # later landings do nothing
    [(attempted, cost)] = accounting.recorded
    assert (attempted.attempts, attempted.status, attempted.model_group) == (3, 200, "m")
    assert cost == Decimal("0.015")
    assert ticket.settled == [(Usage(10, 5), Decimal("0.015"))]


async def test_a_failing_sink_still_settles() -> None:
    accounting, ticket = Accounting(fail=True), Ticket()
    await Landing(accounting, _no_usage).land(Flight(CALL, ticket, 0.0), None, GatewayError("x"))
    assert len(accounting.recorded) == 1 and ticket.settled == [(None, Decimal(0))]


async def test_a_cancelled_request_is_recorded_at_once_and_settled_in_the_background() -> None:
    accounting, gate = Accounting(), asyncio.Event()
    ticket = Ticket(gate)
    landing = Landing(accounting, _no_usage)

    async def request() -> None:
        try:
            await asyncio.Event().wait()  # waiting for the upstream when the client leaves
        except asyncio.CancelledError as exc:
            flight = Flight(CALL, ticket, 0.0, stream=True)
            flight.aboard(DEPLOYMENT, 1)
            await landing.land(flight, Usage(3, 0), failure(exc))
            raise

    task = asyncio.ensure_future(request())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [(attempted, _)] = accounting.recorded  # recorded before anything could be cancelled
    assert isinstance(attempted.error, ClientDisconnected) and attempted.status == 499
    assert ticket.settled == []  # the settlement waits on its store, out of the request's reach
    gate.set()
    await landing.drain()
    assert ticket.settled == [(Usage(3, 0), Decimal("0.003"))]


def test_failure_names_what_ended_the_request() -> None:
    assert isinstance(failure(asyncio.CancelledError()), ClientDisconnected)
    assert failure(RateLimited("r")).status == 429
    assert failure(ValueError("bug")).status == 500
