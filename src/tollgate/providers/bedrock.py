"""The Amazon Bedrock runtime upstream.

Where: ``{endpoint}/model/{model id}/converse`` and ``/converse-stream`` for chat,
``/model/{model id}/invoke`` for embeddings and the native passthrough; the endpoint is the
deployment's ``api_base`` (a VPC endpoint, or ``aws_bedrock_runtime_endpoint``), else
``https://bedrock-runtime.{region}.amazonaws.com``. How: SigV4 (``providers.aws``) over the exact
body bytes sent, and AWS event-stream framing for streams. What the fields mean is
``dialects.bedrock_converse``'s and ``dialects.bedrock_embeddings``' business.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import orjson
from yarl import URL

from tollgate.canonical import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, StreamEvent
from tollgate.config import AwsSettings, Deployment
from tollgate.dialects.bedrock import converse as bedrock_converse
from tollgate.dialects.bedrock import embeddings as bedrock_embeddings
from tollgate.errors import DeploymentMisconfigured
from tollgate.framing.eventstream import CONTENT_TYPE as EVENT_STREAM
from tollgate.providers import SendOptions
from tollgate.providers.aws import AwsSigner, region_of_arn
from tollgate.providers.http import HttpClient, UpstreamAnswer, UpstreamStream
from tollgate.providers.streaming import decode_stream

JSON = "application/json"
MAX_PARALLEL_EMBEDDING_CALLS = 8  # Titan takes one input per call; more in flight invites throttling

# Client headers the native passthrough forwards: InvokeModel's own options (guardrails, trace,
# performance config) and the body's type.
_FORWARDED_PREFIXES = ("x-amzn-bedrock-",)
_FORWARDED = frozenset({"content-type", "accept"})


def model_path(model_id: str, operation: str) -> str:
    """``/model/{id}/{operation}`` with every ``:`` and ``/`` of an ARN percent-encoded, as boto3
    sends it; SigV4 then signs this path encoded once more, as AWS expects."""
    return f"/model/{quote(model_id, safe='')}/{operation}"


def _native_guardrail(rendered: dict[str, Any], deployment: Deployment) -> None:
    """Bedrock's own guardrail on Converse: a deployment's ``guardrailConfig`` (LiteLLM
    ``litellm_params``) applies unless the request brought one (a Bedrock client's own)."""
    config = deployment.params.get("guardrailConfig")
    if isinstance(config, dict) and "guardrailConfig" not in rendered:
        rendered["guardrailConfig"] = dict(config)


class BedrockProvider:
    name = "bedrock"

    def __init__(self, http: HttpClient, env: Mapping[str, str]) -> None:
        self._http = http
        self._env = env
        self._signers: dict[AwsSettings, AwsSigner] = {}

    def signer(self, deployment: Deployment) -> AwsSigner:
        """One signer (and so one credential cache) per distinct ``AwsSettings``."""
        settings = deployment.aws or AwsSettings()
        signer = self._signers.get(settings)
        if signer is None:
            signer = self._signers[settings] = AwsSigner(settings, env=self._env)
        return signer

    def region(self, deployment: Deployment) -> str:
        """``aws_region_name``, else the region of an ARN model id, else the environment's."""
        signer = self.signer(deployment)
        if signer.settings.region:
            return signer.settings.region
        return region_of_arn(deployment.upstream_model) or signer.region

    def url(self, deployment: Deployment, operation: str) -> str:
        endpoint = deployment.api_base or f"https://bedrock-runtime.{self.region(deployment)}.amazonaws.com"
        return f"{endpoint.rstrip('/')}{model_path(deployment.upstream_model, operation)}"

    async def _signed(
        self, deployment: Deployment, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[URL, dict[str, str]]:
        signer = self.signer(deployment)
        try:
            signed = await signer.sign("POST", url, headers, body, region=self.region(deployment))
        except DeploymentMisconfigured as exc:
            raise DeploymentMisconfigured(
                f"deployment '{deployment.id}' of model '{deployment.model_name}' is misconfigured: "
                f"{exc.message}",
                provider=self.name,
            ) from exc
        # encoded=True: yarl would otherwise turn %3A back into ':' and the path sent would no
        # longer be the path signed.
        return URL(url, encoded=True), signed

    def _headers(
        self, deployment: Deployment, accept: str, extra: tuple[tuple[str, str], ...]
    ) -> dict[str, str]:
        headers = {"content-type": JSON, "accept": accept}
        headers.update((name.lower(), value) for name, value in deployment.extra_headers.items())
        headers.update((name.lower(), value) for name, value in extra)
        return headers

    async def _post(
        self, deployment: Deployment, operation: str, body: bytes, options: SendOptions
    ) -> UpstreamAnswer:
        headers = self._headers(deployment, JSON, options.headers)
        url, signed = await self._signed(deployment, self.url(deployment, operation), body, headers)
        # HttpClient passes the URL to aiohttp unchanged; it must stay a yarl.URL (see _signed).
        return await self._http.post(
            url, body, signed, timeout=options.timeout, provider=self.name
        )

    async def chat(self, deployment: Deployment, request: ChatRequest, options: SendOptions) -> ChatResponse:
        rendered = bedrock_converse.render_request(
            request, deployment.upstream_model, drop_params=options.drop_params
        )
        _native_guardrail(rendered, deployment)
        answer = await self._post(deployment, "converse", orjson.dumps(rendered), options)
        if answer.status >= 400:
            raise bedrock_converse.parse_error(answer.status, answer.body, answer.headers)
        return bedrock_converse.parse_response(answer.body)

    async def chat_stream(
        self, deployment: Deployment, request: ChatRequest, options: SendOptions
    ) -> AsyncIterator[StreamEvent]:
        rendered = bedrock_converse.render_request(
            request, deployment.upstream_model, drop_params=options.drop_params
        )
        _native_guardrail(rendered, deployment)
        body = orjson.dumps(rendered)
        url, headers = await self._signed(
            deployment, self.url(deployment, "converse-stream"), body,
            self._headers(deployment, EVENT_STREAM, options.headers),
        )
        stream = await self._http.open_stream(
            url, body, headers, timeout=options.timeout, provider=self.name
        )
        if stream.status >= 400:
            raise bedrock_converse.parse_error(stream.status, await stream.read_all(), stream.headers)
        return decode_stream(stream, bedrock_converse.stream_decoder())

    async def embed(
        self, deployment: Deployment, request: EmbeddingRequest, options: SendOptions
    ) -> EmbeddingResponse:
        model_id = deployment.upstream_model
        bodies = [orjson.dumps(body) for body in bedrock_embeddings.render_requests(request, model_id)]
        limit = asyncio.Semaphore(MAX_PARALLEL_EMBEDDING_CALLS)

        async def call(body: bytes) -> UpstreamAnswer:
            async with limit:
                return await self._post(deployment, "invoke", body, options)

        results = await asyncio.gather(*(call(body) for body in bodies), return_exceptions=True)
        answers: list[UpstreamAnswer] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            if result.status >= 400:
                raise bedrock_converse.parse_error(result.status, result.body, result.headers)
            answers.append(result)
        return bedrock_embeddings.parse_responses(model_id, [answer.body for answer in answers])

    async def invoke(
        self, deployment: Deployment, body: bytes, stream: bool,
        *, headers: Mapping[str, str] | None = None, timeout: float | None = None,
    ) -> UpstreamStream:
        """Signed InvokeModel (``stream``: InvokeModelWithResponseStream) with a provider-native
        body, for the ``/bedrock/model/{id}/invoke`` passthrough. Of the client's headers only
        ``x-amzn-bedrock-*``, content-type and accept are kept. Any status is returned as is."""
        operation = "invoke-with-response-stream" if stream else "invoke"
        sent = self._headers(deployment, EVENT_STREAM if stream else JSON, ())
        for name, value in (headers or {}).items():
            lowered = name.lower()
            if lowered in _FORWARDED or lowered.startswith(_FORWARDED_PREFIXES):
                sent[lowered] = value
        url, signed = await self._signed(deployment, self.url(deployment, operation), body, sent)
        return await self._http.open_stream(
            url, body, signed, timeout=timeout or deployment.timeout, provider=self.name
        )

    async def aclose(self) -> None:
        return None
