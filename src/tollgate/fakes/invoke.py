"""The fake upstream's Bedrock InvokeModel answers: Titan and Cohere embeddings and
Anthropic-on-Bedrock bodies (whole, or as the stream's ``chunk`` events with the invocation
metrics Bedrock appends to the last one). Used by ``fakes.server``."""

from __future__ import annotations

import base64

import orjson
from starlette.responses import Response

from tollgate.dialects.anthropic import messages as anthropic_messages
from tollgate.errors import GatewayError
from tollgate.fakes.behaviours import stream_failure
from tollgate.framing.eventstream import CONTENT_TYPE as EVENT_STREAM
from tollgate.framing.eventstream import encode_message
from tollgate.providers import fake


def json_answer(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status, headers=headers, media_type="application/json")


def aws_error(status: int, error_type: str, message: str) -> Response:
    return json_answer({"message": message}, status, {"x-amzn-ErrorType": error_type})


def _vector(text: str, size: int = fake.EMBEDDING_DIMENSIONS) -> list[float]:
    from tollgate.canonical import EmbeddingRequest

    answer = fake.embed(EmbeddingRequest(model="fake", inputs=(text,)), size)
    return list(answer.vectors[0])


def chunk_frame(payload: object) -> bytes:
    """One InvokeModelWithResponseStream ``chunk`` event: the JSON payload, base64 in ``bytes``."""
    encoded = base64.b64encode(orjson.dumps(payload)).decode()
    headers = ((":event-type", "chunk"), (":content-type", "application/json"), (":message-type", "event"))
    return encode_message(headers, orjson.dumps({"bytes": encoded}))


def invoke_embedding(model_id: str, body: dict[str, object]) -> Response | None:
    if "titan-embed" in model_id:
        text = body.get("inputText")
        if not isinstance(text, str):
            return aws_error(400, "ValidationException", "Malformed input request: inputText is required")
        size = body.get("dimensions")
        vector = _vector(text, size if isinstance(size, int) and size > 0 else 1024)
        tokens = max(1, len(text) // 4)
        return json_answer(
            {"embedding": vector, "inputTextTokenCount": tokens},
            headers={"x-amzn-bedrock-input-token-count": str(tokens)},
        )
    if "cohere.embed" in model_id:
        texts = body.get("texts")
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return aws_error(400, "ValidationException", "Malformed input request: texts is required")
        tokens = sum(max(1, len(t) // 4) for t in texts)
        answer = {
            "id": "fake-cohere",
            "embeddings": [_vector(t, 1024) for t in texts],
            "texts": texts,
            "response_type": "embeddings_floats",
        }
        return json_answer(answer, headers={"x-amzn-bedrock-input-token-count": str(tokens)})
    return None


def invoke_anthropic(model_id: str, raw: bytes, stream: bool) -> Response:
    """Anthropic-on-Bedrock InvokeModel: a Messages body without ``model``; the answer is the
    Messages response (or its stream events, one per ``chunk``) with Bedrock's usage headers."""
    try:
        parsed = anthropic_messages.parse_request(raw, model=model_id)
    except GatewayError as exc:
        return aws_error(400, "ValidationException", exc.message)
    answer = fake.reply(parsed)
    usage_headers = {
        "x-amzn-bedrock-input-token-count": str(answer.usage.input_tokens),
        "x-amzn-bedrock-output-token-count": str(answer.usage.output_tokens),
    }
    if not stream:
        return Response(anthropic_messages.render_response(answer), headers=usage_headers,
                        media_type="application/json")
    encoder = anthropic_messages.stream_encoder(parsed)
    frames: list[bytes] = []
    for event in fake.stream_events(answer):
        for block in encoder.encode(event).split(b"\n\n"):
            data = [line[len(b"data: "):] for line in block.split(b"\n") if line.startswith(b"data: ")]
            if data:
                payload = orjson.loads(data[0])
                if payload.get("type") == "message_stop":
                    # Bedrock appends the invocation's metrics to the last chunk.
                    payload["amazon-bedrock-invocationMetrics"] = {
                        "inputTokenCount": answer.usage.input_tokens,
                        "outputTokenCount": answer.usage.output_tokens,
                        "invocationLatency": 1,
                        "firstByteLatency": 1,
                    }
                frames.append(chunk_frame(payload))
    failure = stream_failure(model_id)
    if failure is not None and failure.how == "cut":
        frames = frames[: failure.after]  # a clean end of the body, without the last chunk
    return Response(b"".join(frames), media_type=EVENT_STREAM)
