"""Bedrock InvokeModel bodies for embedding models: Amazon Titan and Cohere Embed.

Bedrock has no common embeddings API; each model family has its own ``InvokeModel`` body.
Titan text embeddings take one ``inputText`` per call, so a request with N inputs becomes N bodies
(sent by the provider, concurrently if it likes); Cohere takes a ``texts`` list of at most 96.
``parse_responses`` takes the answers in the same order. Pure functions, no I/O.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

from tollgate.canonical import EmbeddingRequest, EmbeddingResponse, Usage
from tollgate.errors import InvalidRequest, UpstreamError

Family = Literal["titan", "titan-image", "cohere"]

COHERE_MAX_TEXTS = 96  # Cohere Embed on Bedrock refuses larger batches


def model_family(model_id: str) -> Family:
    """Which body shape ``model_id`` takes; ``InvalidRequest`` for other embedding models."""
    lowered = model_id.lower()
    if "amazon.titan-embed-image" in lowered:
        return "titan-image"
    if "amazon.titan-embed" in lowered:
        return "titan"
    if "cohere.embed" in lowered:
        return "cohere"
    raise InvalidRequest(
        f"Bedrock embedding model {model_id!r} is not supported (Amazon Titan and Cohere Embed are)",
        param="model",
    )


def render_requests(request: EmbeddingRequest, model_id: str) -> list[dict[str, object]]:
    family = model_family(model_id)
    texts = _texts(request)
    if family == "cohere":
        return [
            _cohere_body(request, model_id, texts[i : i + COHERE_MAX_TEXTS])
            for i in range(0, len(texts), COHERE_MAX_TEXTS)
        ]
    return [_titan_body(request, family, text) for text in texts]


def _texts(request: EmbeddingRequest) -> list[str]:
    texts: list[str] = []
    for item in request.inputs:
        if not isinstance(item, str):
            raise InvalidRequest("Bedrock embedding models take text, not token arrays", param="input")
        texts.append(item)
    if not texts:
        raise InvalidRequest("'input' must not be empty", param="input")
    return texts


def _titan_body(request: EmbeddingRequest, family: Family, text: str) -> dict[str, object]:
    body: dict[str, object] = {"inputText": text}
    if family == "titan-image":
        if request.dimensions is not None:
            body["embeddingConfig"] = {"outputEmbeddingLength": request.dimensions}
        return body
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    normalize = request.passthrough.get("normalize")
    if isinstance(normalize, bool):
        body["normalize"] = normalize
    return body


def _cohere_body(request: EmbeddingRequest, model_id: str, texts: list[str]) -> dict[str, object]:
    body: dict[str, object] = {
        "texts": texts,
        "input_type": request.input_type or "search_document",
        "embedding_types": ["float"],
    }
    truncate = request.passthrough.get("truncate")
    if isinstance(truncate, str):
        body["truncate"] = truncate
    if request.dimensions is not None and "embed-v4" in model_id.lower():
        body["output_dimension"] = request.dimensions  # only v4 can shorten its vectors
    return body


def parse_responses(model_id: str, bodies: list[bytes]) -> EmbeddingResponse:
    """Vectors in input order from the answers to ``render_requests``' bodies, in that order.
    Cohere reports no token counts, so its usage is zero."""
    family = model_family(model_id)
    vectors: list[tuple[float, ...]] = []
    input_tokens = 0
    for body in bodies:
        data = _load(body)
        if family == "cohere":
            embeddings = data.get("embeddings")
            if isinstance(embeddings, dict):
                embeddings = embeddings.get("float")
            if not isinstance(embeddings, list):
                raise _malformed("no 'embeddings' list")
            vectors.extend(_vector(v) for v in embeddings)
        else:
            vectors.append(_vector(data.get("embedding")))
            count = data.get("inputTextTokenCount")
            if isinstance(count, int) and not isinstance(count, bool):
                input_tokens += count
    return EmbeddingResponse(model=model_id, vectors=tuple(vectors), usage=Usage(input_tokens=input_tokens))


def _load(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _malformed("not JSON") from exc
    if not isinstance(data, dict):
        raise _malformed("not a JSON object")
    return data


def _vector(value: object) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise _malformed("an embedding is not a list")
    try:
        return tuple(map(float, value))
    except (TypeError, ValueError) as exc:
        raise _malformed("an embedding holds a non-number") from exc


def _malformed(reason: str) -> UpstreamError:
    return UpstreamError(f"malformed Bedrock embedding response: {reason}", provider="bedrock")
