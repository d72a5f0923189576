"""``POST /v1/messages/count_tokens`` (and ``/anthropic/v1/messages/count_tokens``).

The body is Anthropic's (a Messages body without ``max_tokens``), parsed by the anthropic dialect.
When the model group has an Anthropic deployment the count is the upstream's own answer;
otherwise (OpenAI-compatible, Bedrock and fake upstreams have no such endpoint) it is the same
estimate admission reserves (``policy.tokens``: characters / 4 plus message and tool framing).
An Anthropic upstream that has no count_tokens endpoint (404) also falls back to the estimate.
The ``x-tollgate-token-count`` response header says which (``upstream`` or ``estimate``).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping, Sequence

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tollgate.auth.principal import Principal
from tollgate.canonical import ChatRequest
from tollgate.config import Deployment
from tollgate.dialects.anthropic import messages as anthropic_messages
from tollgate.edge.inference import error_response, internal_error
from tollgate.errors import GatewayError, InvalidRequest, UpstreamNotFound
from tollgate.policy.tokens import estimate_input_tokens
from tollgate.providers import NativeRelay, SendOptions

Authenticate = Callable[[Request], Awaitable[Principal]]
Deployments = Callable[[str], Sequence[Deployment]]

def parse_count_request(body: bytes) -> ChatRequest:
    """A count_tokens body as a ``ChatRequest``: the Messages parser requires ``max_tokens``,
    which count_tokens does not take, so a placeholder is supplied when it is absent."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object", param="body")
    data.pop("stream", None)
    data.setdefault("max_tokens", 1)
    return anthropic_messages.parse_request(orjson.dumps(data))


class CountTokens:
    def __init__(
        self, deployments: Deployments, providers: Mapping[str, object], authenticate: Authenticate
    ) -> None:
        self._deployments = deployments
        self._providers = providers
        self._authenticate = authenticate

    async def handle(self, http: Request) -> Response:
        request_id = os.urandom(16).hex()
        try:
            await self._authenticate(http)
            request = parse_count_request(await http.body())
            tokens, source = await self._count(request)
            return Response(
                orjson.dumps({"input_tokens": tokens}),
                media_type="application/json",
                headers={"x-request-id": request_id, "x-tollgate-token-count": source},
            )
        except GatewayError as exc:
            return error_response(anthropic_messages.render_error, exc, request_id)
        except Exception as exc:
            return internal_error(anthropic_messages.render_error, exc, request_id)

    async def _count(self, request: ChatRequest) -> tuple[int, str]:
        deployments = self._deployments(request.model)
        provider = self._providers.get("anthropic")
        anthropic = next((d for d in deployments if d.provider == "anthropic"), None)
        if anthropic is None or not isinstance(provider, NativeRelay):
            return estimate_input_tokens(request), "estimate"
        options = SendOptions(timeout=anthropic.timeout, drop_params=True)
        try:
            return await provider.count_tokens(anthropic, request, options), "upstream"
        except UpstreamNotFound:
            return estimate_input_tokens(request), "estimate"
