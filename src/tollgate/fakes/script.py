"""The scripting hooks of the one fake upstream (``fakes.server``), for tests that need more than
its model names can ask for: every request recorded as received, failures queued (answered next,
in the route's own error format, with the given headers), an Anthropic API key and
``anthropic-version`` demanded as Anthropic does, the SigV4 credentials Bedrock routes accept
(STS fakes add theirs), a canned wire body in place of the fake model's answer, and an in-stream
error in place of a stream's end marker.

A ``Script`` is plain state: a test holds it, changes it between calls, and reads ``requests``.
``tollgate fake-upstream`` runs with an empty one (it records nothing it is not asked to:
``record`` is off).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tollgate.errors import GatewayError

Wire = Literal["openai", "anthropic", "bedrock"]


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the fake received it: ``raw_path`` undecoded, header names lower-case."""

    method: str
    path: str
    raw_path: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def model_id(self) -> str | None:
        """Bedrock's ``/model/{id}/{operation}``: the model id, decoded."""
        parts = self.raw_path.split("?")[0].split("/")
        return unquote(parts[2]) if len(parts) == 4 and parts[1] == "model" else None

    @property
    def operation(self) -> str | None:
        return self.raw_path.split("?")[0].split("/")[3] if self.model_id is not None else None


@dataclass(frozen=True, slots=True)
class Failure:
    """A scripted upstream error: ``error_type`` is the format's own (``rate_limit_error``,
    ``ThrottlingException``, ``insufficient_quota``…)."""

    status: int
    error_type: str
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Script:
    record: bool = False
    requests: list[Received] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    anthropic_api_keys: set[str] | None = None  # None: any key, or none, is accepted
    aws_secrets: dict[str, str] = field(default_factory=dict)  # access key id → secret
    aws_session_tokens: dict[str, str] = field(default_factory=dict)  # access key id → token
    reply: dict[str, Any] | None = None  # a non-streamed chat answer's wire body, as given
    stream_error: GatewayError | None = None  # ends streams in place of their end marker

    def fail_next(
        self, status: int, error_type: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self.failures.append(Failure(status, error_type, message, dict(headers or {})))

    def reset(self) -> None:
        """Back to answering as the fake model, with nothing recorded or queued."""
        self.requests.clear()
        self.failures.clear()
        self.reply = None
        self.stream_error = None

    def note(self, request: Request, body: bytes) -> None:
        """Record the request (when ``record`` is on)."""
        if not self.record:
            return
        raw_path = request.scope["raw_path"].decode("latin-1")
        query = request.scope.get("query_string", b"").decode("latin-1")
        headers = {name.lower(): value for name, value in request.headers.items()}
        path = f"{raw_path}?{query}" if query else raw_path
        self.requests.append(Received(request.method, request.url.path, path, headers, body))

    def refusal(self, request: Request, wire: Wire) -> Response | None:
        """The scripted refusal (a missing Anthropic key or version) or failure to answer with."""
        if wire == "anthropic" and self.anthropic_api_keys is not None:
            if request.headers.get("x-api-key") not in self.anthropic_api_keys:
                return error_response("anthropic", Failure(401, "authentication_error", "invalid x-api-key"))
            if "anthropic-version" not in request.headers:
                missing = Failure(400, "invalid_request_error", "anthropic-version: header is required")
                return error_response("anthropic", missing)
        if self.failures:
            return error_response(wire, self.failures.pop(0))
        return None

def error_response(wire: Wire, failure: Failure) -> Response:
    """An upstream error as each format sends it."""
    headers = dict(failure.headers)
    body: dict[str, Any]
    if wire == "bedrock":
        body = {"message": failure.message}
        headers["x-amzn-ErrorType"] = failure.error_type
    elif wire == "anthropic":
        body = {"type": "error", "error": {"type": failure.error_type, "message": failure.message}}
    else:
        error = {"message": failure.message, "type": failure.error_type, "param": None, "code": None}
        body = {"error": error}
    return Response(orjson.dumps(body), failure.status, headers=headers, media_type="application/json")
