"""``POST /v1/messages/count_tokens`` (and ``/anthropic/v1/messages/count_tokens``).

The body is Anthropic's (a Messages body without ``max_tokens``), parsed by the anthropic dialect.
Like every route it is admitted first (``Gateway.native``: model access, budgets, rate limits) and
accounted (a spend-log row with no tokens and no cost). When the model group has an Anthropic
deployment the count is the upstream's own answer; otherwise (OpenAI-compatible, Bedrock and
fake upstreams have no such endpoint) it is the same estimate admission reserves
(``policy.tokens``: characters / 4 plus message and tool framing). An Anthropic upstream that has
no count_tokens endpoint (404) also falls back to the estimate. The ``x-tollgate-token-count``
response header says which (``upstream`` or ``estimate``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tollgate.auth.principal import Principal
from tollgate.canonical import ChatRequest
from tollgate.config import Deployment
from tollgate.dialects.anthropic import messages as anthropic_messages
from tollgate.dialects.bounds import load_json
from tollgate.edge.inference import INTERNAL_ERROR, Admittance, error_response, internal_error
from tollgate.errors import GatewayError, InvalidRequest, UpstreamNotFound
from tollgate.policy.tokens import estimate_input_tokens
from tollgate.providers import NativeRelay, SendOptions


def parse_count_request(body: bytes) -> ChatRequest:
    """A count_tokens body as a ``ChatRequest``: the Messages parser requires ``max_tokens``,
    which count_tokens does not take, so a placeholder is supplied when it is absent."""
    data = load_json(body)
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object", param="body")
    data.pop("stream", None)
    data.setdefault("max_tokens", 1)
    return anthropic_messages.parse_request(orjson.dumps(data))


class CountTokens:
    def __init__(self, admittance: Admittance, providers: Mapping[str, object]) -> None:
        self._admittance = admittance
        self._providers = providers

    async def handle(self, http: Request) -> Response:
        request_id = os.urandom(16).hex()
        render = anthropic_messages.render_error
        received = self._admittance.clock()
        principal: Principal | None = None
        try:
            principal = await self._admittance.authenticate(http)
            request = parse_count_request(await self._admittance.body(http, principal))
            call = self._admittance.call(principal, request, "anthropic", request_id, http)
        except GatewayError as exc:
            self._admittance.refused(exc, principal, None, "anthropic", request_id, http, received)
            return error_response(render, exc, request_id)
        except Exception as exc:
            err = GatewayError(INTERNAL_ERROR)
            self._admittance.refused(err, principal, None, "anthropic", request_id, http, received)
            return internal_error(render, exc, request_id)
        try:
            estimate = call.input_tokens if call.input_tokens is not None else estimate_input_tokens(request)
            passage = await self._admittance.gateway.native(
                call, "anthropic", lambda deployment: self._count(request, estimate, deployment)
            )
            await passage.land(None, None)  # counting uses no tokens
            tokens, source = passage.value
            return Response(
                orjson.dumps({"input_tokens": tokens}),
                media_type="application/json",
                headers={"x-request-id": request_id, "x-tollgate-token-count": source},
            )
        except GatewayError as exc:
            return error_response(render, exc, request_id)
        except Exception as exc:
            return internal_error(render, exc, request_id)

    async def _count(
        self, request: ChatRequest, estimate: int, anthropic: Deployment | None
    ) -> tuple[int, str]:
        provider = self._providers.get("anthropic")
        if anthropic is None or not isinstance(provider, NativeRelay):
            return estimate, "estimate"
        options = SendOptions(timeout=anthropic.timeout, drop_params=True)
        try:
            return await provider.count_tokens(anthropic, request, options), "upstream"
        except UpstreamNotFound:
            return estimate, "estimate"
