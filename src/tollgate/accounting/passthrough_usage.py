"""Accounting for the provider-native passthrough routes (``edge.passthrough.UsageSink``).

Passthrough answers never become a canonical ``ChatResponse``, so they do not go through
``Gateway``; this adapter turns what the route measured into the same ``Attempted`` the gateway
records, priced by the same ``Ledger``, so passthrough calls get spend-log rows, spend totals and
metrics like any other request. The call's request is a bare ``ChatRequest`` naming the model
group: the native body is not parsed (and prompts are not stored for these rows).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

from tollgate.accounting.ledger import Ledger
from tollgate.auth.principal import Principal
from tollgate.call import Attempted, Call
from tollgate.canonical import ChatRequest, Usage
from tollgate.config import Deployment
from tollgate.errors import UpstreamError


def client_format(route: str) -> str:
    """The ingress format a passthrough route speaks: ``bedrock_invoke`` or ``anthropic/...``."""
    return "bedrock" if route.startswith("bedrock") else "anthropic"


class PassthroughUsage:
    """``UsageSink`` that records a passthrough call in the ``Ledger``."""

    def __init__(self, ledger: Ledger, clock: Callable[[], float] = time.time) -> None:
        self._ledger = ledger
        self._clock = clock

    async def record(
        self,
        principal: Principal,
        deployment: Deployment,
        usage: Usage | None,
        status: int,
        *,
        route: str,
        request_id: str,
        started: float,
    ) -> None:
        self._ledger.record(*self.attempted(principal, deployment, usage, status, route, request_id, started))

    def attempted(
        self,
        principal: Principal,
        deployment: Deployment,
        usage: Usage | None,
        status: int,
        route: str,
        request_id: str,
        started: float,
    ) -> tuple[Attempted, Decimal]:
        """The ``Attempted`` and its cost, as the gateway would have recorded them."""
        call = Call(
            principal=principal,
            request=ChatRequest(model=deployment.model_name, messages=()),
            client_format=client_format(route),
            request_id=request_id,
            received_at=started,
        )
        # Upstream errors are relayed untouched; the row still says the call failed, and why.
        error = None
        if status >= 400:
            error = UpstreamError(
                f"passthrough {route} answered {status}", provider=deployment.provider, status=status
            )
        cost = self._ledger.cost(deployment, usage) if usage is not None and status < 400 else Decimal(0)
        attempted = Attempted(
            call=call,
            deployment=deployment,
            model_group=deployment.model_name,
            attempts=1,
            usage=usage,
            status=status,
            error=error,
            started=started,
            ended=self._clock(),
        )
        return attempted, cost
