"""boto3 ``bedrock-runtime`` (unsigned, gateway key as bearer token) against a real gateway whose
Bedrock deployments sign their upstream calls; the fake upstream verifies every signature."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest_native import REPLY, TITAN_ID, UPSTREAM_ONLY_ID, bedrock_client

HI = [{"role": "user", "content": [{"text": "hi"}]}]
TOOL_CONFIG = {
    "tools": [
        {
            "toolSpec": {
                "name": "get_weather",
                "description": "Weather for a city",
                "inputSchema": {
                    "json": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                        "required": ["city", "days"],
                    }
                },
            }
        }
    ]
}


@pytest.mark.parametrize(
    "model", ["claude-primary", "nova", "claude-arn", "gpt-upstream", "claude-anthropic", "local-fake"]
)
def test_converse_reaches_every_upstream(bedrock: Any, model: str) -> None:
    resp = bedrock.converse(modelId=model, messages=HI)
    assert resp["output"]["message"] == {"role": "assistant", "content": [{"text": REPLY + "hi"}]}
    assert resp["stopReason"] == "end_turn"
    assert resp["usage"]["inputTokens"] == 1
    assert resp["usage"]["outputTokens"] == 8
    assert resp["usage"]["totalTokens"] == 9


def test_converse_with_endpoint_at_the_root(native_gateway: str) -> None:
    resp = bedrock_client(native_gateway).converse(modelId="claude-primary", messages=HI)
    assert resp["output"]["message"]["content"][0]["text"] == REPLY + "hi"


def test_converse_system_and_inference_config(bedrock: Any) -> None:
    resp = bedrock.converse(
        modelId="claude-primary",
        messages=[{"role": "user", "content": [{"text": "one two three"}]}],
        system=[{"text": "be brief"}],
        inferenceConfig={"maxTokens": 3, "temperature": 0.1},
    )
    assert resp["output"]["message"]["content"][0]["text"] == "Hello from tollgate's"
    assert resp["stopReason"] == "max_tokens"


def test_upstream_model_id_as_model_id(bedrock: Any) -> None:
    resp = bedrock.converse(modelId=UPSTREAM_ONLY_ID, messages=HI)
    assert resp["output"]["message"]["content"][0]["text"] == REPLY + "hi"


@pytest.mark.parametrize("model", ["claude-primary", "gpt-upstream", "claude-anthropic"])
def test_converse_stream(bedrock: Any, model: str) -> None:
    messages = [{"role": "user", "content": [{"text": "stream me"}]}]
    resp = bedrock.converse_stream(modelId=model, messages=messages)
    events = list(resp["stream"])
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart"
    assert kinds[-2:] == ["messageStop", "metadata"]
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert text == REPLY + "stream me"
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"
    assert events[-1]["metadata"]["usage"]["outputTokens"] == 9


def test_tool_use_round_trip(bedrock: Any) -> None:
    resp = bedrock.converse(
        modelId="claude-primary",
        messages=[{"role": "user", "content": [{"text": "weather in Paris?"}]}],
        toolConfig=TOOL_CONFIG,
    )
    assert resp["stopReason"] == "tool_use"
    use = resp["output"]["message"]["content"][0]["toolUse"]
    assert use["name"] == "get_weather"
    assert use["input"] == {"city": "example", "days": 1}
    follow_up = bedrock.converse(
        modelId="claude-primary",
        messages=[
            {"role": "user", "content": [{"text": "weather in Paris?"}]},
            resp["output"]["message"],
            {
                "role": "user",
                "content": [
                    {"toolResult": {"toolUseId": use["toolUseId"], "content": [{"json": {"temp": 21}}]}}
                ],
            },
        ],
        toolConfig=TOOL_CONFIG,
    )
    assert follow_up["stopReason"] == "end_turn"
    assert follow_up["output"]["message"]["content"][0]["text"] == REPLY + "tool results received"


def test_tool_use_streamed(bedrock: Any) -> None:
    resp = bedrock.converse_stream(
        modelId="gpt-upstream",
        messages=[{"role": "user", "content": [{"text": "weather?"}]}],
        toolConfig=TOOL_CONFIG,
    )
    events = list(resp["stream"])
    starts = [e["contentBlockStart"]["start"]["toolUse"] for e in events if "contentBlockStart" in e]
    assert starts[0]["name"] == "get_weather" and starts[0]["toolUseId"]
    arguments = "".join(
        e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events if "contentBlockDelta" in e
    )
    assert json.loads(arguments) == {"city": "example", "days": 1}
    assert events[-2]["messageStop"]["stopReason"] == "tool_use"


def _error(call: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as info:
        call()
    response = info.value.response
    error = response["Error"]
    return error["Code"], response["ResponseMetadata"]["HTTPStatusCode"], error["Message"]


@pytest.mark.parametrize(
    ("model", "code", "status"),
    [
        ("throttled", "ThrottlingException", 429),
        ("too-long", "ValidationException", 400),
        ("denied", "AccessDeniedException", 403),
        ("no-such-model", "ResourceNotFoundException", 404),
    ],
)
def test_error_codes(bedrock: Any, model: str, code: str, status: int) -> None:
    got = _error(lambda: bedrock.converse(modelId=model, messages=HI))
    assert got[:2] == (code, status)


def test_throttling_in_stream_call(bedrock: Any) -> None:
    got = _error(lambda: bedrock.converse_stream(modelId="throttled", messages=HI))
    assert got[:2] == ("ThrottlingException", 429)


def test_bad_gateway_key(native_gateway: str) -> None:
    client = bedrock_client(f"{native_gateway}/bedrock", key="sk-wrong")
    code, status, _ = _error(lambda: client.converse(modelId="nova", messages=HI))
    assert (code, status) == ("UnrecognizedClientException", 401)


def test_invalid_body_is_validation_exception(bedrock: Any) -> None:
    code, status, message = _error(
        lambda: bedrock.converse(modelId="nova", messages=[{"role": "robot", "content": [{"text": "x"}]}])
    )
    assert (code, status) == ("ValidationException", 400)
    assert "role" in message


def test_bad_upstream_signature_is_reported(bedrock: Any) -> None:
    # The deployment's secret is wrong: the fake Bedrock rejects the signature as AWS would.
    code, _, message = _error(lambda: bedrock.converse(modelId="bad-signature", messages=HI))
    assert code == "UnrecognizedClientException"
    assert "signature" in message


# ---- InvokeModel passthrough -------------------------------------------------------------------


def test_invoke_titan_embedding(bedrock: Any) -> None:
    resp = bedrock.invoke_model(modelId="titan-embed", body=json.dumps({"inputText": "hello world"}))
    body = json.loads(resp["body"].read())
    assert len(body["embedding"]) == 1024
    assert body["inputTextTokenCount"] == 2
    assert resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-bedrock-input-token-count"] == "2"
    assert resp["ResponseMetadata"]["HTTPHeaders"]["x-litellm-model-group"] == "titan-embed"


def test_invoke_by_upstream_id(bedrock: Any) -> None:
    resp = bedrock.invoke_model(modelId=TITAN_ID, body=json.dumps({"inputText": "abcd"}))
    assert json.loads(resp["body"].read())["inputTextTokenCount"] == 1


ANTHROPIC_BODY = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 50,
    "messages": [{"role": "user", "content": "yo"}],
}


def test_invoke_anthropic_native_body(bedrock: Any) -> None:
    resp = bedrock.invoke_model(modelId="claude-primary", body=json.dumps(ANTHROPIC_BODY))
    body = json.loads(resp["body"].read())
    assert body["type"] == "message"
    assert body["content"] == [{"type": "text", "text": REPLY + "yo"}]
    assert resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-bedrock-output-token-count"] == "8"


def test_invoke_with_response_stream_relays_chunks(bedrock: Any) -> None:
    resp = bedrock.invoke_model_with_response_stream(modelId="claude-arn", body=json.dumps(ANTHROPIC_BODY))
    chunks = [json.loads(event["chunk"]["bytes"]) for event in resp["body"]]
    assert chunks[0]["type"] == "message_start"
    text = "".join(c["delta"].get("text", "") for c in chunks if c["type"] == "content_block_delta")
    assert text == REPLY + "yo"
    assert chunks[-1]["type"] == "message_stop"
    assert chunks[-1]["amazon-bedrock-invocationMetrics"]["outputTokenCount"] == 8


def test_invoke_errors(bedrock: Any, native_gateway: str) -> None:
    assert _error(lambda: bedrock.invoke_model(modelId="throttled", body=b"{}"))[:2] == (
        "ThrottlingException",
        429,
    )
    assert _error(lambda: bedrock.invoke_model(modelId="nope", body=b"{}"))[:2] == (
        "ResourceNotFoundException",
        404,
    )
    code, status, message = _error(lambda: bedrock.invoke_model(modelId="gpt-upstream", body=b"{}"))
    assert (code, status) == ("ValidationException", 400)
    assert "no Bedrock deployment" in message
    client = bedrock_client(f"{native_gateway}/bedrock", key="sk-wrong")
    code = _error(lambda: client.invoke_model(modelId="titan-embed", body=b"{}"))[0]
    assert code == "UnrecognizedClientException"
