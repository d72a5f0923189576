"""Guardrail fields in the dialects: LiteLLM's request ``guardrails`` (a gateway instruction, never
sent upstream) and Bedrock's guardrail ``trace`` and stop reason (back to Bedrock clients only)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tollgate.canonical import GuardrailChoice
from tollgate.dialects.anthropic import messages as anthropic_messages
from tollgate.dialects.bedrock import converse as bedrock_converse
from tollgate.dialects.guardrail_choice import parse_guardrail_choice
from tollgate.dialects.openai import chat as openai_chat
from tollgate.errors import InvalidRequest


@pytest.mark.parametrize(
    ("body", "metadata", "expected"),
    [
        (["a", "b", "a"], None, GuardrailChoice(("a", "b"))),
        ({"a": {"extra_body": {"x": 1}}}, None, GuardrailChoice(("a",))),
        (None, {"a": False, "b": True}, GuardrailChoice(("b",), ("a",))),
        (["c"], ["d"], GuardrailChoice(("c", "d"))),
    ],
)
def test_litellm_forms(body: object, metadata: object, expected: GuardrailChoice) -> None:
    assert parse_guardrail_choice(body, metadata) == expected


@pytest.mark.parametrize(("body", "metadata"), [("a", None), ([1], None), (None, {"a": "off"}), (None, 3)])
def test_malformed_is_a_400(body: object, metadata: object) -> None:
    with pytest.raises(InvalidRequest):
        parse_guardrail_choice(body, metadata)


def test_openai_body_guardrails_never_reach_the_upstream() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "guardrails": ["g"],
            "metadata": {"guardrails": {"h": False}}}  # fmt: skip
    request = openai_chat.parse_request(orjson.dumps(body))
    assert request.guardrails == GuardrailChoice(("g",), ("h",))
    for render in (openai_chat.render_request, anthropic_messages.render_request):
        sent: dict[str, Any] = dict(render(request, "up", drop_params=False))
        assert "guardrails" not in sent and "guardrails" not in orjson.dumps(sent).decode()


def test_anthropic_body_guardrails_never_reach_the_upstream() -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}],
            "guardrails": ["g"], "metadata": {"user_id": "u", "guardrails": {"g": True}}}  # fmt: skip
    request = anthropic_messages.parse_request(orjson.dumps(body))
    assert request.guardrails == GuardrailChoice(("g",)) and request.user == "u"
    sent = dict(anthropic_messages.render_request(request, "up", drop_params=False))
    assert "guardrails" not in orjson.dumps(sent).decode() and sent["metadata"] == {"user_id": "u"}


TRACE = {"guardrail": {"inputAssessment": {"gr": {"topicPolicy": {"topics": []}}}}}


def test_bedrock_trace_and_stop_reason_go_back_to_bedrock_clients_only() -> None:
    upstream = {"output": {"message": {"role": "assistant", "content": [{"text": "Sorry."}]}},
                "stopReason": "guardrail_intervened", "usage": {"inputTokens": 1, "outputTokens": 1},
                "trace": TRACE}  # fmt: skip
    response = bedrock_converse.parse_response(orjson.dumps(upstream))
    assert response.finish_reason == "content_filter"
    to_bedrock = orjson.loads(bedrock_converse.render_response(response))
    assert to_bedrock["stopReason"] == "guardrail_intervened" and to_bedrock["trace"] == TRACE
    to_openai = orjson.loads(openai_chat.render_response(response))
    assert "trace" not in to_openai and to_openai["choices"][0]["finish_reason"] == "content_filter"
