"""OpenAI embeddings dialect: request parsing/rendering and float/base64 response encodings."""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson
import pytest
from openai.types import CreateEmbeddingResponse

from tollgate.canonical import EmbeddingRequest, EmbeddingResponse, Usage
from tollgate.dialects.openai import embeddings as openai_embeddings
from tollgate.errors import InvalidRequest, UpstreamError

VECTORS = ((0.5, -1.25, 3.0), (0.0, 1e-3, -2.5))


def _body(**fields: Any) -> bytes:
    base: dict[str, Any] = {"model": "text-embedding-3-small", "input": "hello"}
    base.update(fields)
    return orjson.dumps(base)


@pytest.mark.parametrize(
    ("raw", "inputs"),
    [
        ("hello", ("hello",)),
        (["a", "b"], ("a", "b")),
        ([1, 2, 3], ((1, 2, 3),)),
        ([[1, 2], [3]], ((1, 2), (3,))),
    ],
)
def test_parse_input_shapes(raw: object, inputs: tuple[Any, ...]) -> None:
    assert openai_embeddings.parse_request(_body(input=raw)).inputs == inputs


def test_parse_every_field() -> None:
    body = _body(
        encoding_format="base64",
        dimensions=256,
        user="u1",
        input_type="search_query",
        metadata={"tags": ["a"], "k": "v"},
        tags=["b", "a"],
        service_tier="flex",
        api_key="sk-client",
    )
    assert openai_embeddings.parse_request(body) == EmbeddingRequest(
        model="text-embedding-3-small",
        inputs=("hello",),
        encoding_format="base64",
        dimensions=256,
        user="u1",
        input_type="search_query",
        tags=("b", "a"),
        metadata={"tags": ["a"], "k": "v"},
        passthrough={"service_tier": "flex"},
    )
    assert openai_embeddings.parse_request(_body()).encoding_format == "float"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"nope", None),
        (b'"x"', None),
        (orjson.dumps({"input": "x"}), "model"),
        (orjson.dumps({"model": "m"}), "input"),
        (_body(input=[]), "input"),
        (_body(input=5), "input"),
        (_body(input=["a", 1]), "input"),
        (_body(input=[[1], []]), "input"),
        (_body(input=[True]), "input"),
        (_body(encoding_format="int8"), "encoding_format"),
        (_body(dimensions=0), "dimensions"),
        (_body(dimensions="256"), "dimensions"),
        (_body(user=1), "user"),
        (_body(input_type=["q"]), "input_type"),
        (_body(metadata="x"), "metadata"),
        (_body(tags="x"), "tags"),
    ],
)
def test_invalid_requests(body: bytes, param: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        openai_embeddings.parse_request(body)
    assert info.value.param == param and info.value.status == 400


def test_render_response_float() -> None:
    response = EmbeddingResponse(model="up", vectors=VECTORS, usage=Usage(input_tokens=8))
    raw = openai_embeddings.render_response(response, "float", "alias")
    assert orjson.loads(raw) == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.5, -1.25, 3.0]},
            {"object": "embedding", "index": 1, "embedding": [0.0, 1e-3, -2.5]},
        ],
        "model": "alias",
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }
    parsed = CreateEmbeddingResponse.model_validate(orjson.loads(raw))
    assert parsed.data[1].embedding == [0.0, 1e-3, -2.5]
    assert parsed.usage.prompt_tokens == 8


def test_render_response_base64_decodes_back_with_struct() -> None:
    response = EmbeddingResponse(model="up", vectors=VECTORS, usage=Usage(input_tokens=8))
    data = orjson.loads(openai_embeddings.render_response(response, "base64", "alias"))["data"]
    for item, vector in zip(data, VECTORS, strict=True):
        raw = base64.b64decode(item["embedding"])
        decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
        assert decoded == pytest.approx(vector, rel=1e-6)
        assert len(raw) == 4 * len(vector)
    assert base64.b64decode(data[0]["embedding"]) == struct.pack("<3f", 0.5, -1.25, 3.0)


def test_render_request_always_float() -> None:
    request = openai_embeddings.parse_request(
        _body(input=[[1, 2], [3]], encoding_format="base64", dimensions=64, user="u", service_tier="flex")
    )
    assert openai_embeddings.render_request(request, "text-embedding-3-large", drop_params=False) == {
        "model": "text-embedding-3-large",
        "input": [[1, 2], [3]],
        "encoding_format": "float",
        "dimensions": 64,
        "user": "u",
        "service_tier": "flex",
    }


def test_render_request_input_type_needs_drop_params() -> None:
    request = openai_embeddings.parse_request(_body(input_type="search_query"))
    with pytest.raises(InvalidRequest) as info:
        openai_embeddings.render_request(request, "m", drop_params=False)
    assert info.value.param == "input_type"
    body = openai_embeddings.render_request(request, "m", drop_params=True)
    assert body == {"model": "m", "input": ["hello"], "encoding_format": "float"}


def test_parse_response_float_and_base64_sorted_by_index() -> None:
    b64 = base64.b64encode(struct.pack("<2f", 1.5, -2.0)).decode()
    body = orjson.dumps(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "index": 1, "embedding": b64},
                {"object": "embedding", "index": 0, "embedding": [0.25, 1]},
            ],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 5, "total_tokens": 5},
        }
    )
    assert openai_embeddings.parse_response(body) == EmbeddingResponse(
        model="text-embedding-3-small", vectors=((0.25, 1.0), (1.5, -2.0)), usage=Usage(input_tokens=5)
    )


@pytest.mark.parametrize(
    "body",
    [b"x", b"{}", b'{"data": [{"embedding": "!!!"}]}', b'{"data": [{"embedding": ["a"]}]}'],
)
def test_parse_response_malformed(body: bytes) -> None:
    with pytest.raises(UpstreamError):
        openai_embeddings.parse_response(body)


def test_errors_reuse_chat_shapes() -> None:
    status, body, _ = openai_embeddings.render_error(InvalidRequest("bad input", param="input"))
    assert status == 400
    assert orjson.loads(body)["error"] == {
        "message": "bad input",
        "type": "invalid_request_error",
        "param": "input",
        "code": "400",
    }
