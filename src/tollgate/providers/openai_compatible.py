"""Any upstream that speaks OpenAI chat completions: OpenAI, vLLM, Groq, Ollama, LiteLLM, …

Where: ``{api_base}/chat/completions`` and ``{api_base}/embeddings`` (``api_base`` defaults to
OpenAI's, including its ``/v1``). How: ``Authorization: Bearer <api_key>`` plus the deployment's
extra headers; SSE stream framing. What the fields mean is ``dialects.openai_chat``'s business.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import orjson

from tollgate.canonical import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, StreamEvent
from tollgate.config import Deployment
from tollgate.dialects.openai import chat as openai_chat
from tollgate.dialects.openai import embeddings as openai_embeddings
from tollgate.providers import SendOptions
from tollgate.providers.http import HttpClient
from tollgate.providers.streaming import decode_stream

DEFAULT_API_BASE = "https://api.openai.com/v1"


class OpenAICompatible:
    name = "openai"

    def __init__(self, http: HttpClient, env: Mapping[str, str]) -> None:
        self._http = http

    def _headers(self, deployment: Deployment, options: SendOptions) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        if deployment.api_key:
            headers["authorization"] = f"Bearer {deployment.api_key}"
        headers.update(deployment.extra_headers)
        headers.update(options.headers)
        return headers

    def _url(self, deployment: Deployment, path: str) -> str:
        return f"{deployment.api_base or DEFAULT_API_BASE}{path}"

    async def _post(
        self, deployment: Deployment, path: str, body: dict[str, object], options: SendOptions
    ) -> bytes:
        answer = await self._http.post(
            self._url(deployment, path),
            orjson.dumps(body),
            self._headers(deployment, options),
            timeout=options.timeout,
            provider=self.name,
        )
        if answer.status >= 400:
            raise openai_chat.parse_error(answer.status, answer.body, answer.headers)
        return answer.body

    async def chat(self, deployment: Deployment, request: ChatRequest, options: SendOptions) -> ChatResponse:
        body = openai_chat.render_request(request, deployment.upstream_model, drop_params=options.drop_params)
        body["stream"] = False
        body.pop("stream_options", None)
        return openai_chat.parse_response(await self._post(deployment, "/chat/completions", body, options))

    async def chat_stream(
        self, deployment: Deployment, request: ChatRequest, options: SendOptions
    ) -> AsyncIterator[StreamEvent]:
        body = openai_chat.render_request(request, deployment.upstream_model, drop_params=options.drop_params)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        headers = self._headers(deployment, options)
        headers["accept"] = "text/event-stream"
        stream = await self._http.open_stream(
            self._url(deployment, "/chat/completions"),
            orjson.dumps(body),
            headers,
            timeout=options.timeout,
            provider=self.name,
        )
        if stream.status >= 400:
            raise openai_chat.parse_error(stream.status, await stream.read_all(), stream.headers)
        return decode_stream(stream, openai_chat.stream_decoder())

    async def embed(
        self, deployment: Deployment, request: EmbeddingRequest, options: SendOptions
    ) -> EmbeddingResponse:
        body = openai_embeddings.render_request(
            request, deployment.upstream_model, drop_params=options.drop_params
        )
        return openai_embeddings.parse_response(await self._post(deployment, "/embeddings", body, options))

    async def aclose(self) -> None:
        return None
