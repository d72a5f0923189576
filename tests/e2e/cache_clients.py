"""One question asked through each official client — the openai and anthropic SDKs and boto3's
``bedrock-runtime`` — streamed or not, with the response-cache controls each client can send
(``extra_body`` for the SDKs, ``additionalModelRequestFields`` for boto3), reduced to an
``Answer``: the text, the response headers and the status."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx
import openai
from botocore.exceptions import ClientError

from tests.e2e.conftest_native import bedrock_client as native_bedrock_client

MAX_TOKENS = 64
FORMATS = ("openai", "anthropic", "bedrock")


@dataclass
class Answer:
    ok: bool
    text: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    error: str = ""

    @property
    def cache_key(self) -> str | None:
        return self.headers.get("x-litellm-cache-key")

    @property
    def request_id(self) -> str:
        return self.headers["x-request-id"]


def question() -> str:
    """A question no other test asks (entries outlive a test in the shared Redis)."""
    return f"what is {uuid.uuid4().hex[:12]}"


def _openai(base: str, key: str, model: str, text: str, stream: bool, cache: Any) -> Answer:
    client = openai.OpenAI(api_key=key, base_url=f"{base}/v1", max_retries=0)
    extra = {"cache": cache} if cache is not None else None
    messages: Any = [{"role": "user", "content": text}]
    try:
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=messages, max_tokens=MAX_TOKENS, stream=stream, extra_body=extra
        )
        headers = {k.lower(): v for k, v in raw.headers.items()}
        if not stream:
            return Answer(True, raw.parse().choices[0].message.content or "", headers)
        pieces = [c.choices[0].delta.content or "" for c in raw.parse() if c.choices]
        return Answer(True, "".join(pieces), headers)
    except openai.APIStatusError as exc:
        return Answer(False, status=exc.status_code, headers=dict(exc.response.headers), error=str(exc))
    except openai.APIError as exc:  # an error event inside a stream
        return Answer(False, status=0, error=str(exc))


def _anthropic(base: str, key: str, model: str, text: str, stream: bool, cache: Any) -> Answer:
    client = anthropic.Anthropic(api_key=key, base_url=base, max_retries=0)
    extra = {"cache": cache} if cache is not None else None
    messages: Any = [{"role": "user", "content": text}]
    try:
        raw = client.messages.with_raw_response.create(
            model=model, messages=messages, max_tokens=MAX_TOKENS, stream=stream, extra_body=extra
        )
        headers = {k.lower(): v for k, v in raw.headers.items()}
        if not stream:
            blocks = raw.parse().content
            return Answer(True, "".join(b.text for b in blocks if b.type == "text"), headers)
        pieces = [
            e.delta.text
            for e in raw.parse()
            if e.type == "content_block_delta" and e.delta.type == "text_delta"
        ]
        return Answer(True, "".join(pieces), headers)
    except anthropic.APIStatusError as exc:
        return Answer(False, status=exc.status_code, headers=dict(exc.response.headers), error=str(exc))
    except anthropic.APIError as exc:
        return Answer(False, status=0, error=str(exc))


_BEDROCK: dict[tuple[str, str], Any] = {}


def bedrock_client(base: str, key: str) -> Any:
    client = _BEDROCK.get((base, key))
    if client is None:
        client = native_bedrock_client(f"{base}/bedrock", key)
        _BEDROCK[(base, key)] = client
    return client


def _bedrock(base: str, key: str, model: str, text: str, stream: bool, cache: Any) -> Answer:
    client = bedrock_client(base, key)
    args: dict[str, Any] = {
        "modelId": model,
        "messages": [{"role": "user", "content": [{"text": text}]}],
        "inferenceConfig": {"maxTokens": MAX_TOKENS},
    }
    if cache is not None:
        args["additionalModelRequestFields"] = {"cache": cache}
    try:
        if not stream:
            resp = client.converse(**args)
            headers = dict(resp["ResponseMetadata"]["HTTPHeaders"])
            return Answer(True, resp["output"]["message"]["content"][0]["text"], headers)
        resp = client.converse_stream(**args)
        headers = dict(resp["ResponseMetadata"]["HTTPHeaders"])
        deltas = [e["contentBlockDelta"]["delta"] for e in resp["stream"] if "contentBlockDelta" in e]
        pieces = [delta.get("text", "") for delta in deltas]
        return Answer(True, "".join(pieces), headers)
    except ClientError as exc:  # also botocore's EventStreamError, for an error inside a stream
        meta = exc.response.get("ResponseMetadata", {})
        status = int(meta.get("HTTPStatusCode", 0))
        return Answer(False, status=status, headers=dict(meta.get("HTTPHeaders", {})), error=str(exc))
    except Exception as exc:  # a connection cut mid-stream
        return Answer(False, status=0, error=f"{type(exc).__name__}: {exc}")


_ASK = {"openai": _openai, "anthropic": _anthropic, "bedrock": _bedrock}


def ask(
    base: str,
    key: str,
    text: str,
    *,
    fmt: str = "openai",
    stream: bool = False,
    cache: Any = None,
    model: str = "gpt-cache",
) -> Answer:
    return _ASK[fmt](base, key, model, text, stream, cache)


def embed(base: str, key: str, inputs: list[str], *, model: str = "embed-cache", cache: Any = None) -> Any:
    """The raw HTTP answer (the vectors and the headers) to an OpenAI SDK embeddings request."""
    client = openai.OpenAI(api_key=key, base_url=f"{base}/v1", max_retries=0)
    extra = {"cache": cache} if cache is not None else None
    return client.embeddings.with_raw_response.create(
        model=model, input=inputs, encoding_format="float", extra_body=extra
    )


def upstream_calls(upstream: str, model: str) -> int:
    """How many requests the fake upstream has answered for ``model``."""
    counts: dict[str, int] = httpx.get(f"{upstream}/_fake/calls", timeout=5).json()
    return counts.get(model, 0)
