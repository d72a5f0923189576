"""Whole Bedrock Converse answers, both ways, and the stop-reason and usage mappings that whole and
streamed answers share. Imports ``canonical``, ``errors`` and this package only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tollgate.canonical import (
    ChatResponse,
    FinishReason,
    Usage,
)
from tollgate.dialects.bedrock.content import (
    expect_object,
    output_block,
    parse_content,
)
from tollgate.dialects.bedrock.errors import PROVIDER
from tollgate.errors import InvalidRequest, UpstreamError

NATIVE = "bedrock"  # the ``native_dialect`` of fields only Bedrock clients get back


def render_response(response: ChatResponse) -> bytes:
    content = [output_block(p) for p in response.parts]
    body: dict[str, Any] = {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": FINISH_TO_BEDROCK[response.finish_reason],
        "usage": render_usage(response.usage),
        "metrics": {"latencyMs": 0},
    }
    if response.stop_sequence is not None:
        body["additionalModelResponseFields"] = {"stop_sequence": response.stop_sequence}
    if response.native_dialect == NATIVE:
        body.update(response.native)
    return orjson.dumps(body)


def parse_response(body: bytes) -> ChatResponse:
    try:
        data = expect_object(orjson.loads(body), "body")
        message = expect_object(expect_object(data.get("output"), "output").get("message"), "output.message")
        parts = parse_content(message.get("content", []), "output.message.content", strict=False)
    except (orjson.JSONDecodeError, InvalidRequest) as exc:
        raise UpstreamError(f"malformed Bedrock Converse response: {exc}", provider=PROVIDER) from exc
    extra = data.get("additionalModelResponseFields")
    stop_sequence = extra.get("stop_sequence") if isinstance(extra, dict) else None
    native = native_fields(data.get("stopReason"), data.get("trace"))
    return ChatResponse(
        id="",
        model="",
        parts=parts,
        finish_reason=finish_from_bedrock(data.get("stopReason")),
        usage=parse_usage(data.get("usage")),
        stop_sequence=stop_sequence if isinstance(stop_sequence, str) else None,
        native=native,
        native_dialect=NATIVE if native else None,
    )


def native_fields(stop_reason: object, trace: object) -> dict[str, Any]:
    """What a Bedrock client must get back as Bedrock sent it: the guardrail ``trace`` of a
    ``guardrailConfig`` with tracing on, and stop reasons the canonical set merges
    (``guardrail_intervened`` is a ``content_filter`` for every other client)."""
    native: dict[str, Any] = {}
    if isinstance(trace, dict) and trace:
        native["trace"] = trace
    if stop_reason == "guardrail_intervened":
        native["stopReason"] = stop_reason
    return native


FINISH_TO_BEDROCK: Mapping[FinishReason, str] = {
    "end_turn": "end_turn",
    "stop_sequence": "stop_sequence",
    "max_tokens": "max_tokens",
    "tool_use": "tool_use",
    "content_filter": "content_filtered",
    "error": "end_turn",  # Converse has no error stop reason; the error travels separately
}


FINISH_FROM_BEDROCK: Mapping[str, FinishReason] = {
    "end_turn": "end_turn",
    "stop_sequence": "stop_sequence",
    "max_tokens": "max_tokens",
    "tool_use": "tool_use",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "model_context_window_exceeded": "max_tokens",
    "malformed_model_output": "error",
    "malformed_tool_use": "error",
}


def render_usage(usage: Usage) -> dict[str, int]:
    return {
        "inputTokens": usage.input_tokens,
        "outputTokens": usage.output_tokens,
        "totalTokens": usage.total_tokens,
        "cacheReadInputTokens": usage.cache_read_tokens,
        "cacheWriteInputTokens": usage.cache_write_tokens,
    }


def parse_usage(value: object) -> Usage:
    if not isinstance(value, dict):
        return Usage()
    return Usage(
        input_tokens=int_field(value.get("inputTokens")),
        output_tokens=int_field(value.get("outputTokens")),
        cache_read_tokens=int_field(value.get("cacheReadInputTokens")),
        cache_write_tokens=int_field(value.get("cacheWriteInputTokens")),
    )


def finish_from_bedrock(stop_reason: object) -> FinishReason:
    return FINISH_FROM_BEDROCK.get(stop_reason, "end_turn") if isinstance(stop_reason, str) else "end_turn"


def int_field(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


