"""The Anthropic Messages API upstream.

Where: ``{api_base}/v1/messages`` (``api_base`` defaults to https://api.anthropic.com; a base
that already ends in ``/v1`` is not doubled). How: ``x-api-key`` and ``anthropic-version``
headers, SSE stream framing. What the fields mean is ``dialects.anthropic_messages``'s business.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import orjson

from tollgate.canonical import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, StreamEvent
from tollgate.config import Deployment
from tollgate.dialects.anthropic import messages as anthropic_messages
from tollgate.errors import InvalidRequest, UpstreamError
from tollgate.providers import SendOptions
from tollgate.providers.http import HttpClient, UpstreamStream
from tollgate.providers.streaming import decode_stream

DEFAULT_API_BASE = "https://api.anthropic.com"
API_VERSION = "2023-06-01"

# The fields POST /v1/messages/count_tokens accepts; the rest of a rendered Messages body is refused.
_COUNT_TOKENS_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers")

# Client headers a passthrough forwards: the protocol's own (version, beta flags) and the body's type.
_FORWARDED_PREFIXES = ("anthropic-",)
_FORWARDED = frozenset({"content-type", "accept"})


def api_root(deployment: Deployment) -> str:
    """The base URL without a trailing ``/v1``: paths are appended whole (``/v1/messages``)."""
    base = (deployment.api_base or DEFAULT_API_BASE).rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


class AnthropicProvider:
    name = "anthropic"

    def __init__(self, http: HttpClient, env: Mapping[str, str]) -> None:
        self._http = http

    def _headers(self, deployment: Deployment, options: SendOptions) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "anthropic-version": API_VERSION,
        }
        if deployment.api_key:
            headers["x-api-key"] = deployment.api_key
        # Lower-cased so that a configured ``Anthropic-Version`` replaces the default, not joins it.
        headers.update((name.lower(), value) for name, value in deployment.extra_headers.items())
        headers.update((name.lower(), value) for name, value in options.headers)
        return headers

    async def chat(self, deployment: Deployment, request: ChatRequest, options: SendOptions) -> ChatResponse:
        body = anthropic_messages.render_request(
            request, deployment.upstream_model, drop_params=options.drop_params
        )
        body.pop("stream", None)
        answer = await self._http.post(
            f"{api_root(deployment)}/v1/messages", orjson.dumps(body), self._headers(deployment, options),
            timeout=options.timeout, provider=self.name,
        )
        if answer.status >= 400:
            raise anthropic_messages.parse_error(answer.status, answer.body, answer.headers)
        return anthropic_messages.parse_response(answer.body)

    async def chat_stream(
        self, deployment: Deployment, request: ChatRequest, options: SendOptions
    ) -> AsyncIterator[StreamEvent]:
        body = anthropic_messages.render_request(
            request, deployment.upstream_model, drop_params=options.drop_params
        )
        body["stream"] = True
        headers = self._headers(deployment, options)
        headers["accept"] = "text/event-stream"
        stream = await self._http.open_stream(
            f"{api_root(deployment)}/v1/messages", orjson.dumps(body), headers,
            timeout=options.timeout, provider=self.name,
        )
        if stream.status >= 400:
            raise anthropic_messages.parse_error(stream.status, await stream.read_all(), stream.headers)
        return decode_stream(stream, anthropic_messages.stream_decoder())

    async def count_tokens(self, deployment: Deployment, request: ChatRequest, options: SendOptions) -> int:
        """``input_tokens`` from ``POST {api root}/v1/messages/count_tokens`` for the request."""
        rendered = anthropic_messages.render_request(request, deployment.upstream_model, drop_params=True)
        body = {key: rendered[key] for key in _COUNT_TOKENS_FIELDS if key in rendered}
        answer = await self._http.post(
            f"{api_root(deployment)}/v1/messages/count_tokens", orjson.dumps(body),
            self._headers(deployment, options), timeout=options.timeout, provider=self.name,
        )
        if answer.status >= 400:
            raise anthropic_messages.parse_error(answer.status, answer.body, answer.headers)
        try:
            data = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            data = None
        tokens = data.get("input_tokens") if isinstance(data, dict) else None
        if not isinstance(tokens, int) or isinstance(tokens, bool):
            raise UpstreamError("count_tokens answer has no integer input_tokens", provider=self.name)
        return tokens

    async def embed(
        self, deployment: Deployment, request: EmbeddingRequest, options: SendOptions
    ) -> EmbeddingResponse:
        raise InvalidRequest(
            f"model '{deployment.model_name}' is an Anthropic model; Anthropic has no embeddings API",
            param="model",
        )

    async def passthrough(
        self, deployment: Deployment, path: str, body: bytes, headers: Mapping[str, str],
        *, timeout: float | None = None,
    ) -> UpstreamStream:
        """Forward a provider-native body to ``{api root}{path}`` (``path`` starts with ``/v1/``)
        with the deployment's key. Of the client's headers only ``anthropic-*``, content-type and
        accept are kept: its own credentials and hop-by-hop headers must not reach the upstream.
        Any status is returned as is; the caller relays it."""
        forwarded = {"content-type": "application/json", "anthropic-version": API_VERSION}
        for name, value in headers.items():
            lowered = name.lower()
            if lowered in _FORWARDED or lowered.startswith(_FORWARDED_PREFIXES):
                forwarded[lowered] = value
        if deployment.api_key:
            forwarded["x-api-key"] = deployment.api_key
        forwarded.update((name.lower(), value) for name, value in deployment.extra_headers.items())
        path = path if path.startswith("/") else f"/{path}"
        return await self._http.open_stream(
            f"{api_root(deployment)}{path}", body, forwarded,
            timeout=timeout or deployment.timeout, provider=self.name,
        )

    async def aclose(self) -> None:
        return None
