"""Whole OpenAI ``chat.completion`` answers, both ways, and the usage and finish-reason mappings
that whole and streamed answers share. Imports ``canonical`` and ``errors`` only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from tollgate.canonical import (
    ChatResponse,
    FinishReason,
    Part,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    Usage,
)
from tollgate.dialects.openai.content import (
    parse_reasoning,
    parse_tool_call,
    render_tool_call,
    thinking_block,
)
from tollgate.dialects.openai.errors import error_from_payload
from tollgate.errors import (
    InvalidRequest,
    UpstreamError,
)

FINISH_TO_OPENAI: Mapping[FinishReason, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "content_filter": "content_filter",
    "error": "stop",  # OpenAI has no error finish; the error itself travels separately
}


FINISH_FROM_OPENAI: Mapping[str, FinishReason] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "content_filter",
}


def usage_to_openai(usage: Usage) -> dict[str, object]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def _count(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_from_openai(obj: object) -> Usage:
    """OpenAI ``prompt_tokens`` includes cached tokens; canonical ``input_tokens`` does not."""
    if not isinstance(obj, dict):
        return Usage()
    prompt_details = obj.get("prompt_tokens_details")
    completion_details = obj.get("completion_tokens_details")
    cached = _count(prompt_details, "cached_tokens") if isinstance(prompt_details, dict) else 0
    # LiteLLM (fronting Anthropic) also reports cache writes, counted inside prompt_tokens.
    written = _count(obj, "cache_creation_input_tokens")
    reasoning = _count(completion_details, "reasoning_tokens") if isinstance(completion_details, dict) else 0
    return Usage(
        input_tokens=max(_count(obj, "prompt_tokens") - cached - written, 0),
        output_tokens=_count(obj, "completion_tokens"),
        cache_read_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=reasoning,
    )


def render_response(response: ChatResponse) -> bytes:
    texts = [p.text for p in response.parts if isinstance(p, TextPart)]
    message: dict[str, object] = {"role": "assistant", "content": "".join(texts) if texts else None}
    calls = [render_tool_call(p) for p in response.parts if isinstance(p, ToolCallPart)]
    if calls:
        message["tool_calls"] = calls
    reasoning = [p for p in response.parts if isinstance(p, ReasoningPart)]
    if reasoning:
        message["reasoning_content"] = "".join(p.text for p in reasoning)
        if any(p.signature or p.redacted for p in reasoning):
            message["thinking_blocks"] = [thinking_block(p) for p in reasoning]
    message["refusal"] = None
    message["annotations"] = []
    body: dict[str, object] = {
        "id": response.id,
        "object": "chat.completion",
        "created": response.created or int(time.time()),
        "model": response.model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": FINISH_TO_OPENAI[response.finish_reason],
            }
        ],
        "usage": usage_to_openai(response.usage),
    }
    if response.session_id is not None:
        body["session_id"] = response.session_id  # the SDK exposes it as response.model_extra
    return orjson.dumps(body)


def _parse_message_parts(message: Mapping[str, Any]) -> tuple[Part, ...]:
    parts: list[Part] = list(parse_reasoning(message, "message"))
    if not parts and isinstance(message.get("reasoning"), str) and message["reasoning"]:
        parts.append(ReasoningPart(message["reasoning"]))  # vLLM and OpenRouter spell it so
    content = message.get("content")
    if isinstance(content, str) and content:
        parts.append(TextPart(content))
    elif isinstance(content, list):
        texts = (p.get("text") for p in content if isinstance(p, dict))
        parts.extend(TextPart(text) for text in texts if isinstance(text, str))
    elif isinstance(message.get("refusal"), str):
        parts.append(TextPart(message["refusal"]))
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        parts.extend(parse_tool_call(call, "tool_calls") for call in calls)
    return tuple(parts)


def parse_response(body: bytes) -> ChatResponse:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamError(f"malformed response from upstream: {body[:200]!r}") from None
    if isinstance(data, dict) and "error" in data:
        raise error_from_payload(500, data, body, {})
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(choices, list) or not choices:
        raise UpstreamError("malformed response from upstream: no choices")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise UpstreamError("malformed response from upstream: no message")
    try:
        parts = _parse_message_parts(message)
    except InvalidRequest as exc:
        raise UpstreamError(f"malformed response from upstream: {exc.message}") from None
    finish = choice.get("finish_reason")
    created = data.get("created")
    return ChatResponse(
        id=str(data.get("id") or ""),
        model=str(data.get("model") or ""),
        parts=parts,
        finish_reason=FINISH_FROM_OPENAI.get(finish, "end_turn") if isinstance(finish, str) else "end_turn",
        usage=usage_from_openai(data.get("usage")),
        created=created if isinstance(created, int) else 0,
    )


