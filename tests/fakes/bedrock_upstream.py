"""A fake Bedrock runtime (and STS) that checks SigV4 signatures the way AWS does.

Every request's signature is recomputed with botocore from the method, the raw path as received,
the headers listed in ``SignedHeaders``, the body and ``X-Amz-Date``, using the secret of the
access key it names; a mismatch gets 403 ``InvalidSignatureException`` and an unknown key 403
``UnrecognizedClientException``, as from AWS. It answers Converse, ConverseStream (binary AWS
event-stream frames), InvokeModel for Titan and Cohere embeddings and
InvokeModelWithResponseStream, and fails on demand (throttling, validation errors, …).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tollgate.fakes.sigv4 import TEST_ACCESS_KEY, TEST_SECRET_KEY, sigv4_problem
from tollgate.framing.eventstream import CONTENT_TYPE, encode_event, encode_exception, encode_message

ERROR_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.bedrock/"

DEFAULT_CONVERSE_REPLY: dict[str, Any] = {
    "output": {"message": {"role": "assistant", "content": [{"text": "Hello from fake Bedrock"}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 12, "outputTokens": 5, "totalTokens": 17},
    "metrics": {"latencyMs": 42},
}

DEFAULT_STREAM_EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("messageStart", {"role": "assistant"}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hello"}}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": " world"}}),
    ("contentBlockStop", {"contentBlockIndex": 0}),
    ("messageStop", {"stopReason": "end_turn"}),
    (
        "metadata",
        {"usage": {"inputTokens": 9, "outputTokens": 2, "totalTokens": 11}, "metrics": {"latencyMs": 7}},
    ),
]


@dataclass(frozen=True)
class Received:
    method: str
    raw_path: str
    model_id: str | None
    operation: str | None
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


def _aws_error(
    status: int, error_type: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps({"message": message}),
        status_code=status,
        media_type="application/json",
        headers={"x-amzn-ErrorType": error_type + ERROR_SUFFIX, **(headers or {})},
    )


def _vector(text: str) -> list[float]:
    return [float(len(text)), 0.5, -0.25]


class FakeBedrock:
    """State of one fake: accepted credentials, canned answers, queued failures, requests seen."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {TEST_ACCESS_KEY: TEST_SECRET_KEY}
        self.session_tokens: dict[str, str] = {}
        self.converse_reply: dict[str, Any] = DEFAULT_CONVERSE_REPLY
        self.stream_events: list[tuple[str, dict[str, Any]]] = list(DEFAULT_STREAM_EVENTS)
        self.stream_exception: tuple[str, str] | None = None  # (type, message) after the events
        self.failures: list[Failure] = []
        self.requests: list[Received] = []
        self.region: str | None = None  # when set, the signing region must match

    def fail_next(
        self, status: int, error_type: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self.failures.append(Failure(status, error_type, message, dict(headers or {})))

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{rest:path}", self._handle, methods=["POST"])])

    async def _handle(self, request: Request) -> Response:
        raw_path = request.scope["raw_path"].decode("latin-1")
        headers = {name.lower(): value for name, value in request.headers.items()}
        body = await request.body()
        parts = raw_path.split("/")
        model_id = unquote(parts[2]) if len(parts) == 4 and parts[1] == "model" else None
        operation = parts[3] if model_id is not None else None
        self.requests.append(Received(request.method, raw_path, model_id, operation, headers, body))
        problem = sigv4_problem(request.method, raw_path, headers, body, self.secrets, self.session_tokens)
        if problem is not None:
            return _aws_error(403, *problem)
        if self.region is not None and f"/{self.region}/bedrock/" not in headers["authorization"]:
            return _aws_error(
                403, "InvalidSignatureException", "Credential should be scoped to a valid region."
            )
        if model_id is None:
            return _aws_error(404, "UnknownOperationException", "")
        if self.failures:
            failure = self.failures.pop(0)
            return _aws_error(failure.status, failure.error_type, failure.message, failure.headers)
        if operation == "converse":
            return Response(orjson.dumps(self.converse_reply), media_type="application/json")
        if operation == "converse-stream":
            return Response(self._stream_bytes(), media_type=CONTENT_TYPE)
        if operation == "invoke":
            return self._invoke(model_id, orjson.loads(body))
        if operation == "invoke-with-response-stream":
            chunk = base64.b64encode(orjson.dumps({"completion": "streamed", "model": model_id})).decode()
            frame = encode_message(
                ((":event-type", "chunk"), (":content-type", "application/json"), (":message-type", "event")),
                orjson.dumps({"bytes": chunk}),
            )
            return Response(frame, media_type=CONTENT_TYPE)
        return _aws_error(404, "UnknownOperationException", "")

    def _stream_bytes(self) -> bytes:
        frames = [encode_event(name, orjson.dumps(payload)) for name, payload in self.stream_events]
        if self.stream_exception is not None:
            kind, message = self.stream_exception
            frames.append(encode_exception(kind, orjson.dumps({"message": message})))
        return b"".join(frames)

    def _invoke(self, model_id: str, body: dict[str, Any]) -> Response:
        if "titan-embed" in model_id:
            text = body.get("inputText")
            if not isinstance(text, str):
                return _aws_error(400, "ValidationException", "inputText is required")
            answer: dict[str, Any] = {"embedding": _vector(text), "inputTextTokenCount": len(text.split())}
            return Response(orjson.dumps(answer), media_type="application/json")
        if "cohere.embed" in model_id:
            texts = body.get("texts")
            if not isinstance(texts, list):
                return _aws_error(400, "ValidationException", "texts is required")
            answer = {
                "id": "fake-cohere",
                "embeddings": [_vector(text) for text in texts],
                "texts": texts,
                "response_type": "embeddings_floats",
            }
            return Response(
                orjson.dumps(answer),
                media_type="application/json",
                headers={"x-amzn-bedrock-input-token-count": str(sum(len(t.split()) for t in texts))},
            )
        return Response(orjson.dumps({"echo": body, "model": model_id}), media_type="application/json")


class FakeSts:
    """A fake STS: AssumeRole (signed) and AssumeRoleWithWebIdentity; issued credentials are
    registered with the given ``FakeBedrock`` so they can sign Bedrock requests."""

    def __init__(self, bedrock: FakeBedrock, *, lifetime: timedelta = timedelta(hours=1)) -> None:
        self.bedrock = bedrock
        self.lifetime = lifetime
        self.calls: list[dict[str, str]] = []

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/", self._handle, methods=["POST"])])

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        form = dict(parse_qsl(body.decode()))
        self.calls.append(form)
        action = form.get("Action")
        if action == "AssumeRole":
            headers = {name.lower(): value for name, value in request.headers.items()}
            raw_path = request.scope["raw_path"].decode("latin-1")
            problem = sigv4_problem("POST", raw_path, headers, body, self.bedrock.secrets)
            if problem is not None:
                return Response(_sts_error(problem[0], problem[1]), status_code=403, media_type="text/xml")
        elif action != "AssumeRoleWithWebIdentity":
            return Response(_sts_error("InvalidAction", str(action)), status_code=400, media_type="text/xml")
        number = len(self.calls)
        access_key, secret, token = f"ASIAFAKESTS{number:04d}", f"sts-secret-{number}", f"sts-token-{number}"
        self.bedrock.secrets[access_key] = secret
        self.bedrock.session_tokens[access_key] = token
        expiration = (datetime.now(UTC) + self.lifetime).strftime("%Y-%m-%dT%H:%M:%SZ")
        xml = (
            f'<{action}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><{action}Result>'
            f"<Credentials><AccessKeyId>{access_key}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey>"
            f"<SessionToken>{token}</SessionToken><Expiration>{expiration}</Expiration></Credentials>"
            f"<AssumedRoleUser><Arn>{form.get('RoleArn')}/{form.get('RoleSessionName')}</Arn>"
            f"<AssumedRoleId>AROAFAKE:{form.get('RoleSessionName')}</AssumedRoleId></AssumedRoleUser>"
            f"</{action}Result><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></{action}Response>"
        )
        return Response(xml.encode(), media_type="text/xml")


def _sts_error(code: str, message: str) -> bytes:
    return (
        f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>fake</RequestId></ErrorResponse>"
    ).encode()
