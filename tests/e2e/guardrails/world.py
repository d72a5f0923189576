"""The guardrail end-to-end tests' world: the gateway's config (one guardrail per behaviour of the
fake Bedrock's ApplyGuardrail, scripted by the identifier: ``tollgate.fakes.guardrails``), and one
way to ask through each official client (OpenAI, Anthropic, boto3) that returns the answer text
and the response headers, or the refusal as the client saw it. ``conftest`` starts the world."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeVar

import anthropic
import httpx
import openai
from botocore.exceptions import ClientError

from tests.e2e.conftest_native import bedrock_client
from tollgate.fakes.sigv4 import TEST_ACCESS_KEY, TEST_SECRET_KEY

MASTER = "sk-guardrails-master"
REPLY = "Hello from tollgate's fake upstream! You said: "
FORMATS = ["openai", "anthropic", "bedrock"]
NOVA = "amazon.nova-micro-v1:0"
T = TypeVar("T")
PRICES = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}


def guard(name: str, upstream: str, mode: str | list[str], identifier: str, **extra: Any) -> dict[str, Any]:
    params = {
        "guardrail": "bedrock", "mode": mode, "guardrailIdentifier": identifier, "guardrailVersion": "1",
        "api_base": upstream, "aws_region_name": "us-east-1",
        "aws_access_key_id": TEST_ACCESS_KEY, "aws_secret_access_key": TEST_SECRET_KEY, **extra,
    }  # fmt: skip
    return {"guardrail_name": name, "litellm_params": {k: v for k, v in params.items() if v is not None}}


def _bedrock_model(name: str, upstream: str, **extra: Any) -> dict[str, Any]:
    params = {
        "model": f"bedrock/{NOVA}", "api_base": upstream, "aws_region_name": "us-east-1",
        "aws_access_key_id": TEST_ACCESS_KEY, "aws_secret_access_key": TEST_SECRET_KEY, **extra,
    }  # fmt: skip
    return {"model_name": name, "litellm_params": params}


def guardrails_config(upstream: str, database_url: str) -> dict[str, Any]:
    readme = {  # the README's snippet, pointed at the fake Bedrock
        "guardrail_name": "bedrock-pre-guard",
        "litellm_params": {
            "guardrail": "bedrock", "mode": "during_call", "guardrailIdentifier": "ff6ujrregl1q",
            "guardrailVersion": "1", "default_on": True, "api_base": upstream,
            "aws_access_key_id": TEST_ACCESS_KEY, "aws_secret_access_key": TEST_SECRET_KEY,
        },
    }  # fmt: skip
    gpt = {"model": "openai/gpt-fake", "api_base": f"{upstream}/v1", "api_key": "sk-upstream"}
    native = {"guardrailIdentifier": "block-nativeword", "guardrailVersion": "1", "trace": "enabled"}
    return {
        "model_list": [
            {"model_name": "gpt", "litellm_params": gpt, "model_info": PRICES},
            _bedrock_model("nova", upstream),
            _bedrock_model("nova-guarded", upstream, guardrailConfig=native),
        ],
        "guardrails": [
            readme,
            guard("default-pre", upstream, "pre_call", "block-forbidden", default_on=True),
            guard("pii-mask", upstream, "pre_call", "anonymize-email", mask_request_content=True),
            guard("pii-mask-out", upstream, "post_call", "anonymize-email", mask_response_content=True),
            guard("during-guard", upstream, "during_call", "block-duringword"),
            guard("post-guard", upstream, "post_call", "block-postword"),
            guard("both", upstream, ["pre_call", "post_call"], "block-bothword"),
            guard("key-guard", upstream, "pre_call", "block-keyword"),
            guard("team-guard", upstream, "pre_call", "block-teamword"),
            # no api_base: the endpoint comes from AWS_ENDPOINT_URL_BEDROCK_RUNTIME (conftest.py)
            guard("env-endpoint", upstream, "pre_call", "block-envword", api_base=None),
            guard("down", upstream, "pre_call", "fail-503"),
            guard("down-open", upstream, "pre_call", "fail-500", unreachable_fallback="fail_open"),
            guard("hung", upstream, "during_call", "hang", timeout=0.5),
        ],
        "general_settings": {"master_key": MASTER, "database_url": database_url, "proxy_batch_write_at": 0.1},
        "router_settings": {"num_retries": 0},
    }


@dataclass(frozen=True)
class World:
    url: str
    upstream: str

    def admin(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = httpx.post(f"{self.url}{path}", json=body, headers={"Authorization": f"Bearer {MASTER}"})
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def key(self, **fields: Any) -> str:
        return str(self.admin("/key/generate", fields)["key"])

    def checks(self) -> list[dict[str, Any]]:
        """ApplyGuardrail calls the fake Bedrock received so far."""
        calls: list[dict[str, Any]] = httpx.get(f"{self.upstream}/_fake/guardrails").json()
        return calls

    def upstream_calls(self) -> int:
        return int(httpx.get(f"{self.upstream}/_fake/calls").json().get("gpt-fake", 0))


@dataclass(frozen=True)
class Answer:
    text: str
    headers: dict[str, str]


def ask(
    fmt: str, world: World, text: str, *, key: str = MASTER, stream: bool = False,
    model: str = "gpt", extra: dict[str, Any] | None = None,
) -> Answer:  # fmt: skip
    """One user message through the official client of ``fmt``; ``extra`` is the body extension
    (not for boto3, whose requests cannot carry one)."""
    if fmt == "openai":
        client = openai.OpenAI(base_url=f"{world.url}/v1", api_key=key, max_retries=0)
        messages: Any = [{"role": "user", "content": text}]
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=messages, stream=stream, extra_body=extra
        )
        if stream:
            chunks = [c.choices[0].delta.content or "" for c in raw.parse() if c.choices]
            return Answer("".join(chunks), dict(raw.headers))
        return Answer(raw.parse().choices[0].message.content or "", dict(raw.headers))
    if fmt == "anthropic":
        claude = anthropic.Anthropic(base_url=world.url, api_key=key, max_retries=0)
        reply = claude.messages.with_raw_response.create(
            model=model, max_tokens=100, messages=[{"role": "user", "content": text}], stream=stream,
            extra_body=extra,
        )  # fmt: skip
        if stream:
            deltas = [e.delta for e in reply.parse() if e.type == "content_block_delta"]
            return Answer("".join(d.text for d in deltas if d.type == "text_delta"), dict(reply.headers))
        message = reply.parse()
        return Answer("".join(b.text for b in message.content if b.type == "text"), dict(reply.headers))
    assert extra is None, "boto3 sends no body extensions"
    bedrock = bedrock_client(f"{world.url}/bedrock", key)
    messages = [{"role": "user", "content": [{"text": text}]}]
    if stream:
        answer = bedrock.converse_stream(modelId=model, messages=messages)
        deltas = [e["contentBlockDelta"]["delta"] for e in answer["stream"] if "contentBlockDelta" in e]
        streamed = "".join(d.get("text", "") for d in deltas)
        return Answer(streamed, answer["ResponseMetadata"]["HTTPHeaders"])
    answer = bedrock.converse(modelId=model, messages=messages)
    content = answer["output"]["message"]["content"]
    return Answer("".join(b.get("text", "") for b in content), answer["ResponseMetadata"]["HTTPHeaders"])


@dataclass(frozen=True)
class Refusal:
    status: int
    body: dict[str, Any]  # the error body as sent
    raw: bytes
    headers: dict[str, str]  # lower-case names
    error_type: str  # OpenAI error.type, Anthropic error.type, or Bedrock's x-amzn-ErrorType


def refuse(fmt: str, world: World, text: str, **kwargs: Any) -> Refusal:
    """``ask`` for an answer the gateway must refuse; the refusal as the client saw it."""
    if fmt == "bedrock":
        return _bedrock_refusal(world, text, **kwargs)
    error: type[Exception] = openai.APIStatusError if fmt == "openai" else anthropic.APIStatusError
    try:
        ask(fmt, world, text, **kwargs)
    except error as exc:
        response: httpx.Response = exc.response  # type: ignore[attr-defined]
        body = response.json()
        kind = body["error"]["type"]
        return Refusal(response.status_code, body, response.content,
                       {k.lower(): v for k, v in response.headers.items()}, kind)  # fmt: skip
    raise AssertionError("the request was answered")


def _bedrock_refusal(world: World, text: str, *, key: str = MASTER, stream: bool = False,
                     model: str = "gpt") -> Refusal:  # fmt: skip
    bedrock = bedrock_client(f"{world.url}/bedrock", key)
    seen: dict[str, bytes] = {}

    def keep(http_response: Any, **_: Any) -> None:
        seen["raw"] = http_response.content

    bedrock.meta.events.register("after-call.bedrock-runtime.*", keep)
    messages = [{"role": "user", "content": [{"text": text}]}]
    try:
        if stream:
            list(bedrock.converse_stream(modelId=model, messages=messages)["stream"])
        else:
            bedrock.converse(modelId=model, messages=messages)
    except ClientError as exc:
        meta = exc.response["ResponseMetadata"]
        raw = seen.get("raw", b"")
        return Refusal(meta["HTTPStatusCode"], json.loads(raw), raw, dict(meta["HTTPHeaders"]),
                       exc.response["Error"]["Code"])  # fmt: skip
    raise AssertionError("the request was answered")
