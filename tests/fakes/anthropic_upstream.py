"""A fake Anthropic Messages API: checks ``x-api-key`` and ``anthropic-version``, answers
``/v1/messages`` as JSON or as an SSE stream (byte for byte the event sequence Anthropic sends),
``/v1/messages/count_tokens``, and fails on demand with Anthropic's error bodies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

TEST_API_KEY = "sk-ant-test-0001"

DEFAULT_MESSAGE: dict[str, Any] = {
    "id": "msg_fake01",
    "type": "message",
    "role": "assistant",
    "model": "claude-3-5-sonnet-20241022",
    "content": [{"type": "text", "text": "Hello from fake Anthropic"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 6},
}

DEFAULT_STREAM: list[tuple[str, dict[str, Any]]] = [
    (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_fake02",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": "claude-3-5-sonnet-20241022",
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 1},
            },
        },
    ),
    (
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ),
    ("ping", {"type": "ping"}),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
    ),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " there"}},
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 3},
        },
    ),
    ("message_stop", {"type": "message_stop"}),
]


@dataclass(frozen=True)
class Received:
    path: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Failure:
    status: int
    error_type: str
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)


def _error(status: int, error_type: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=dict(headers or {})
    )


def sse(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(
        b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n" for name, data in events
    )


class FakeAnthropic:
    def __init__(self) -> None:
        self.api_keys = {TEST_API_KEY}
        self.message: dict[str, Any] = DEFAULT_MESSAGE
        self.stream_events: list[tuple[str, dict[str, Any]]] = list(DEFAULT_STREAM)
        self.failures: list[Failure] = []
        self.requests: list[Received] = []

    def fail_next(
        self, status: int, error_type: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self.failures.append(Failure(status, error_type, message, dict(headers or {})))

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{rest:path}", self._handle, methods=["POST"])])

    async def _handle(self, request: Request) -> Response:
        headers = {name.lower(): value for name, value in request.headers.items()}
        body = await request.body()
        self.requests.append(Received(request.url.path, headers, body))
        if headers.get("x-api-key") not in self.api_keys:
            return _error(401, "authentication_error", "invalid x-api-key")
        if "anthropic-version" not in headers:
            return _error(400, "invalid_request_error", "anthropic-version: header is required")
        if self.failures:
            failure = self.failures.pop(0)
            return _error(failure.status, failure.error_type, failure.message, failure.headers)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _error(400, "invalid_request_error", "There was an error parsing the body")
        if request.url.path == "/v1/messages/count_tokens":
            return Response(orjson.dumps({"input_tokens": len(body) // 4}), media_type="application/json")
        if request.url.path != "/v1/messages":
            return _error(404, "not_found_error", f"Not found: {request.url.path}")
        if payload.get("stream") is True:
            return Response(sse(self.stream_events), media_type="text/event-stream")
        return Response(orjson.dumps(self.message), media_type="application/json")
