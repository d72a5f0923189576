"""The OpenAI embeddings dialect (``/embeddings``), both directions, float and base64 encodings.

base64 vectors are little-endian float32 arrays, which is what the openai SDK decodes (it asks
for base64 by default). Errors share the chat dialect's shapes (``errors``). Imports
``canonical``, ``errors`` and this package only.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Mapping
from typing import Any, Literal

import orjson

from tollgate.canonical import EmbeddingRequest, EmbeddingResponse, Usage
from tollgate.dialects.bounds import load_json
from tollgate.dialects.cache_controls import parse_cache_controls
from tollgate.dialects.openai.content import bad, opt_str
from tollgate.dialects.openai.errors import parse_error, render_error
from tollgate.dialects.openai.request import GATEWAY_ONLY
from tollgate.errors import InvalidRequest, UpstreamError

name = "openai"

__all__ = ["name", "parse_error", "parse_request", "parse_response", "render_error", "render_request",
           "render_response"]  # fmt: skip

_MODELED = frozenset(
    {"model", "input", "encoding_format", "dimensions", "user", "input_type", "metadata", "tags", "cache"}
)

def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_input(raw: object) -> tuple[str, ...] | tuple[tuple[int, ...], ...]:
    expected = "a string, a list of strings, a list of token ids or a list of token id lists"
    if isinstance(raw, str):
        return (raw,)
    if not isinstance(raw, list) or not raw:
        raise bad("input", f"{expected} (not empty)")
    if all(isinstance(item, str) for item in raw):
        return tuple(raw)
    if all(_is_int(item) for item in raw):
        return (tuple(raw),)
    if all(isinstance(item, list) and item and all(_is_int(t) for t in item) for item in raw):
        return tuple(tuple(item) for item in raw)
    raise bad("input", expected)


def _tags(data: Mapping[str, Any], metadata: Mapping[str, Any]) -> tuple[str, ...]:
    tags: list[str] = []
    for raw, param in ((data.get("tags"), "tags"), (metadata.get("tags"), "metadata.tags")):
        if raw is None:
            continue
        if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
            raise bad(param, "a list of strings")
        tags.extend(t for t in raw if t not in tags)
    return tuple(tags)


def parse_request(body: bytes) -> EmbeddingRequest:
    data = load_json(body)
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string.", param="model")
    if "input" not in data:
        raise InvalidRequest("'input' is required.", param="input")
    raw_encoding = data.get("encoding_format") or "float"
    if raw_encoding not in ("float", "base64"):
        raise bad("encoding_format", '"float" or "base64"')
    encoding: Literal["float", "base64"] = "base64" if raw_encoding == "base64" else "float"
    dimensions = data.get("dimensions")
    if dimensions is not None and (not _is_int(dimensions) or dimensions < 1):
        raise bad("dimensions", "an integer >= 1")
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise bad("metadata", "an object")
    return EmbeddingRequest(
        model=model,
        inputs=_parse_input(data["input"]),
        encoding_format=encoding,
        dimensions=dimensions,
        user=opt_str(data, "user", "user"),
        input_type=opt_str(data, "input_type", "input_type"),
        cache=parse_cache_controls(data.get("cache")),
        tags=_tags(data, metadata),
        metadata=metadata,
        passthrough={k: v for k, v in data.items() if k not in _MODELED and k not in GATEWAY_ONLY},
    )


def encode_base64(vector: tuple[float, ...]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def decode_base64(text: str) -> tuple[float, ...]:
    raw = base64.b64decode(text, validate=True)
    if len(raw) % 4:
        raise ValueError("a base64 embedding must hold whole float32 values")
    return struct.unpack(f"<{len(raw) // 4}f", raw)


def render_response(response: EmbeddingResponse, encoding_format: str, model: str) -> bytes:
    encode = encode_base64 if encoding_format == "base64" else list
    data = [
        {"object": "embedding", "index": i, "embedding": encode(vector)}
        for i, vector in enumerate(response.vectors)
    ]
    usage = {"prompt_tokens": response.usage.prompt_tokens, "total_tokens": response.usage.total_tokens}
    return orjson.dumps({"object": "list", "data": data, "model": model, "usage": usage})


def render_request(request: EmbeddingRequest, upstream_model: str, *, drop_params: bool) -> dict[str, object]:
    inputs = [list(item) if isinstance(item, tuple) else item for item in request.inputs]
    # Always float: base64 for the client is produced here, so the upstream's choice never matters.
    body: dict[str, object] = {"model": upstream_model, "input": inputs, "encoding_format": "float"}
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    if request.user is not None:
        body["user"] = request.user
    if request.input_type is not None and not drop_params:
        raise InvalidRequest(
            "'input_type' is not supported by this OpenAI-compatible upstream; set drop_params to omit it.",
            param="input_type",
        )
    for key, value in request.passthrough.items():
        body.setdefault(key, value)
    return body


def _vector(item: object, position: int) -> tuple[int, tuple[float, ...]]:
    embedding = item.get("embedding") if isinstance(item, dict) else None
    index = item.get("index", position) if isinstance(item, dict) else position
    if isinstance(embedding, str):
        try:
            return index, decode_base64(embedding)
        except (ValueError, binascii.Error):
            raise UpstreamError("malformed base64 embedding from upstream") from None
    if isinstance(embedding, list) and all(isinstance(x, int | float) for x in embedding):
        return index, tuple(float(x) for x in embedding)
    raise UpstreamError("malformed embedding from upstream")


def parse_response(body: bytes) -> EmbeddingResponse:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamError(f"malformed embeddings response from upstream: {body[:200]!r}") from None
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(items, list):
        raise UpstreamError("malformed embeddings response from upstream: no data list")
    indexed = sorted((_vector(item, i) for i, item in enumerate(items)), key=lambda pair: pair[0])
    usage = data.get("usage")
    prompt = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return EmbeddingResponse(
        model=str(data.get("model") or ""),
        vectors=tuple(vector for _, vector in indexed),
        usage=Usage(input_tokens=prompt if isinstance(prompt, int) and prompt > 0 else 0),
    )
