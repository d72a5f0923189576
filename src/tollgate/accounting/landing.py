"""Landing: every request the gateway takes is accounted exactly once, however it ends.

A ``Flight`` is one admitted request between admission and its accounting; ``Landing.land``
records it (spend row, metric line, Prometheus — synchronously, so nothing can cut it short) and
then settles its counters (reservation, parallel slot, budgets). A request whose task is being
cancelled (a client that disconnected mid-stream, a server stopping) cannot await anything any
more, so its settlement goes to a background task the request cannot cancel; ``drain`` waits for
those at shutdown. ``refused`` records the requests answered before any upstream was asked.
May import: ``call``, ``canonical``, ``config``, ``errors``, ``telemetry``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tollgate.call import Accounting, Attempted, Call, Ticket
from tollgate.canonical import Usage
from tollgate.config import Deployment
from tollgate.errors import ClientDisconnected, GatewayError
from tollgate.telemetry.tracing import NO_TRACING, Tracing

log = logging.getLogger("tollgate.accounting")

CANCELLED = "the request was cancelled before its answer was complete (the client disconnected)"
INTERNAL = "internal error in the gateway; the server log has the details"


@dataclass(slots=True)
class Flight:
    """One admitted request, from admission to its accounting."""

    call: Call
    ticket: Ticket
    started: float
    stream: bool = False
    attempts: int = 0
    deployment: Deployment | None = None  # the answering one, else the last one tried
    model_group: str | None = None
    first_token_at: float | None = None
    landed: bool = False
    cache_hit: bool = False  # answered from the response cache: no upstream, no cost

    def aboard(self, deployment: Deployment, number: int) -> None:
        """Attempt ``number`` goes to ``deployment``."""
        self.deployment = deployment
        self.model_group = deployment.model_name
        self.attempts = number


def cancelled() -> ClientDisconnected:
    return ClientDisconnected(CANCELLED)


def failure(exc: BaseException) -> GatewayError:
    """What the spend row says about a request that ended with ``exc``."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        return cancelled()
    return GatewayError(INTERNAL)  # a bug: the edge logs it and answers 500


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class Landing:
    """``on_usage(deployment, tokens)``: the router's per-deployment usage (tpm caps, routing)."""

    def __init__(
        self,
        accounting: Accounting,
        on_usage: Callable[[Deployment, int], Awaitable[None]],
        *,
        clock: Callable[[], float] = time.time,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        self._accounting = accounting
        self._on_usage = on_usage
        self._clock = clock
        self._tracing = tracing
        self._background: set[asyncio.Task[None]] = set()

    def refused(
        self, call: Call, error: GatewayError, started: float | None = None, model_group: str | None = None
    ) -> None:
        """Account for a request answered with ``error`` before any upstream was asked;
        ``model_group`` only when the model is one the gateway serves."""
        self._record(
            Attempted(
                call=call, deployment=None, model_group=model_group, attempts=0, usage=None,
                status=error.status, error=error,
                started=call.received_at if started is None else started, ended=self._clock(),
            ),
            Decimal(0),
        )

    async def land(self, flight: Flight, usage: Usage | None, error: GatewayError | None = None) -> None:
        """Account for the flight, once (later calls do nothing)."""
        if flight.landed:
            return
        flight.landed = True
        with self._tracing.span("accounting"):
            deployment = flight.deployment
            # Whatever the upstream used is charged, even if the answer then failed or was cut.
            cost = Decimal(0)
            if deployment is not None and usage is not None:
                cost = self._accounting.cost(deployment, usage)
            self._record(
                Attempted(
                    call=flight.call, deployment=deployment, model_group=flight.model_group,
                    attempts=flight.attempts, usage=usage,
                    status=error.status if error is not None else 200, error=error,
                    started=flight.started, ended=self._clock(),
                    first_token_at=flight.first_token_at, stream=flight.stream, cache_hit=flight.cache_hit,
                ),
                cost,
            )
            # The group that answered (a fallback's, perhaps) settles its per-model windows.
            group = flight.model_group if deployment is not None else None
            settle = self._settle(flight.ticket, usage, cost, deployment, group)
            if _cancelling():
                # Any await would raise at once: settle where the cancellation cannot reach.
                self._in_background(settle)
            else:
                await settle

    def _record(self, attempted: Attempted, cost: Decimal) -> None:
        try:
            self._accounting.record(attempted, cost)
        except Exception:  # a sink's bug must cost neither the settlement nor the answer
            log.exception("recording request %s failed", attempted.call.request_id)

    async def _settle(
        self, ticket: Ticket, usage: Usage | None, cost: Decimal, deployment: Deployment | None,
        group: str | None,
    ) -> None:
        try:
            await ticket.settle(usage, cost, group)
            if deployment is not None and usage is not None:
                await self._on_usage(deployment, usage.total_tokens)
        except Exception:
            log.exception("settling request counters failed")

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for settlements handed to background tasks (at shutdown, before stores close)."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
