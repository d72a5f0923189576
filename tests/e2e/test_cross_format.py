"""Any ingress to any upstream: the ``openai`` SDK to Bedrock and Anthropic upstreams, the raw
OpenAI / Anthropic / Converse routes to every upstream format, and the fake upstream's own SigV4
checks (boto3 signing straight against it)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import httpx
import openai
import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest_native import NATIVE_KEY, REPLY
from tollgate.fakes.sigv4 import TEST_ACCESS_KEY, TEST_SECRET_KEY

UPSTREAMS = ["gpt-upstream", "claude-anthropic", "claude-primary", "nova", "claude-arn", "local-fake"]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city", "days"],
            },
        },
    }
]


@pytest.fixture
def oai(native_gateway: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=NATIVE_KEY, base_url=f"{native_gateway}/v1", max_retries=0)


@pytest.mark.parametrize("model", UPSTREAMS)
def test_openai_sdk_to_every_upstream(oai: openai.OpenAI, model: str) -> None:
    resp = oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello all"}])
    assert resp.choices[0].message.content == REPLY + "hello all"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.model == model
    assert resp.usage is not None and resp.usage.completion_tokens == 9


@pytest.mark.parametrize("model", UPSTREAMS)
def test_openai_sdk_streaming_to_every_upstream(oai: openai.OpenAI, model: str) -> None:
    chunks = list(
        oai.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "stream all"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == REPLY + "stream all"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 9


@pytest.mark.parametrize("model", ["claude-anthropic", "claude-primary"])
def test_openai_sdk_tool_calls_to_native_upstreams(oai: openai.OpenAI, model: str) -> None:
    resp = oai.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "weather?"}],
        tools=TOOLS,  # type: ignore[arg-type]
    )
    call = resp.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert resp.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "example", "days": 1}  # type: ignore[union-attr]
    chunks = list(
        oai.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "weather?"}],
            tools=TOOLS,  # type: ignore[arg-type]
            stream=True,
        )
    )
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].function is not None and deltas[0].function.name == "get_weather"
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function is not None)
    assert json.loads(arguments) == {"city": "example", "days": 1}


def test_openai_sdk_embeddings_to_bedrock_titan(oai: openai.OpenAI) -> None:
    resp = oai.embeddings.create(model="titan-embed", input=["hello world", "abc"])
    assert [len(d.embedding) for d in resp.data] == [1024, 1024]
    assert resp.usage.prompt_tokens == 3


def _post(url: str, body: object) -> httpx.Response:
    return httpx.post(url, json=body, headers={"Authorization": f"Bearer {NATIVE_KEY}"}, timeout=30)


@pytest.mark.parametrize("model", UPSTREAMS)
def test_every_ingress_to_every_upstream(native_gateway: str, model: str) -> None:
    user = "matrix"
    openai_resp = _post(
        f"{native_gateway}/chat/completions",
        {"model": model, "messages": [{"role": "user", "content": user}]},
    )
    assert openai_resp.json()["choices"][0]["message"]["content"] == REPLY + user
    anthropic_resp = _post(
        f"{native_gateway}/anthropic/v1/messages",
        {"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": user}]},
    )
    assert anthropic_resp.json()["content"] == [{"type": "text", "text": REPLY + user}]
    converse = _post(
        f"{native_gateway}/bedrock/model/{model}/converse",
        {"messages": [{"role": "user", "content": [{"text": user}]}]},
    )
    assert converse.json()["output"]["message"]["content"] == [{"text": REPLY + user}]


# ---- the fake upstream's own SigV4 verification ------------------------------------------------


def _direct(upstream: str, secret: str = TEST_SECRET_KEY, key: str = TEST_ACCESS_KEY) -> Any:
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=upstream,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )


def test_fake_upstream_accepts_a_valid_signature(native_upstream: str) -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-v1:0"
    resp = _direct(native_upstream).converse(
        modelId=arn, messages=[{"role": "user", "content": [{"text": "s"}]}]
    )
    assert resp["output"]["message"]["content"][0]["text"] == REPLY + "s"


@pytest.mark.parametrize(
    ("key", "secret", "code"),
    [
        (TEST_ACCESS_KEY, "wrong-secret", "InvalidSignatureException"),
        ("AKIDUNKNOWN", TEST_SECRET_KEY, "UnrecognizedClientException"),
    ],
)
def test_fake_upstream_rejects_bad_signatures(native_upstream: str, key: str, secret: str, code: str) -> None:
    with pytest.raises(ClientError) as info:
        _direct(native_upstream, secret, key).converse(
            modelId="amazon.nova-micro-v1:0", messages=[{"role": "user", "content": [{"text": "s"}]}]
        )
    assert info.value.response["Error"]["Code"] == code
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_fake_upstream_invoke_cohere(native_upstream: str) -> None:
    resp = _direct(native_upstream).invoke_model(
        modelId="cohere.embed-english-v3",
        body=json.dumps({"texts": ["abcd", "efgh"], "input_type": "search_query"}),
    )
    body = json.loads(resp["body"].read())
    assert [len(v) for v in body["embeddings"]] == [1024, 1024]
    assert resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-bedrock-input-token-count"] == "2"
