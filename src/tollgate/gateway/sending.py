"""How one attempt goes out: the provider that sends it, its options (timeout, ``drop_params``,
the trace context to continue upstream) and its tracing span."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager

from tollgate.canonical import ChatRequest
from tollgate.config import Deployment
from tollgate.errors import InvalidRequest
from tollgate.providers import Provider, SendOptions
from tollgate.routing import Plan
from tollgate.telemetry.tracing import SpanHandle, Tracing


class Sender:
    def __init__(self, providers: Mapping[str, Provider], tracing: Tracing, drop_params: bool) -> None:
        self._providers = providers
        self._tracing = tracing
        self._drop_params = drop_params

    def span(self, deployment: Deployment, number: int) -> AbstractContextManager[SpanHandle]:
        if not self._tracing.enabled:
            return self._tracing.span("upstream.attempt")
        return self._tracing.span(
            "upstream.attempt",
            {"deployment": deployment.id, "provider": deployment.provider, "attempt": number},
        )

    def options(self, deployment: Deployment, plan: Plan) -> SendOptions:
        drop = deployment.params.get("drop_params")
        headers: tuple[tuple[str, str], ...] = ()
        if self._tracing.enabled:  # called inside the attempt's span: the upstream continues it
            carrier: dict[str, str] = {}
            self._tracing.inject(carrier)
            headers = tuple(carrier.items())
        return SendOptions(
            # The router bounds each attempt; a stream also needs the bound between its chunks.
            timeout=plan.timeout_for(deployment) if plan.stream else None,
            drop_params=self._drop_params if drop is None else bool(drop),
            headers=headers,
        )

    def provider(self, deployment: Deployment, request: ChatRequest | None = None) -> Provider:
        if request is not None and deployment.info.mode == "embedding":
            raise InvalidRequest(f"model '{request.model}' is an embedding model; use /embeddings")
        return self._providers[deployment.provider]
