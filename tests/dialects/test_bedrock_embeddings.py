"""Bedrock InvokeModel embedding bodies: Amazon Titan and Cohere Embed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tollgate.canonical import EmbeddingRequest, Usage
from tollgate.dialects.bedrock import embeddings
from tollgate.errors import InvalidRequest, UpstreamError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "bedrock"
TITAN = "amazon.titan-embed-text-v2:0"
COHERE = "cohere.embed-english-v3"


def test_titan_takes_one_body_per_input() -> None:
    request = EmbeddingRequest(model="e", inputs=("a", "b"), dimensions=256, passthrough={"normalize": False})
    assert embeddings.render_requests(request, TITAN) == [
        {"inputText": "a", "dimensions": 256, "normalize": False},
        {"inputText": "b", "dimensions": 256, "normalize": False},
    ]
    plain = EmbeddingRequest(model="e", inputs=("a",))
    assert embeddings.render_requests(plain, TITAN) == [{"inputText": "a"}]


def test_titan_image_model_uses_embedding_config() -> None:
    request = EmbeddingRequest(model="e", inputs=("a",), dimensions=384)
    assert embeddings.render_requests(request, "amazon.titan-embed-image-v1") == [
        {"inputText": "a", "embeddingConfig": {"outputEmbeddingLength": 384}}
    ]


def test_cohere_takes_one_body_per_96_texts() -> None:
    texts = tuple(f"t{i}" for i in range(100))
    request = EmbeddingRequest(model="e", inputs=texts, input_type="search_query")
    first, second = embeddings.render_requests(request, COHERE)
    assert first == {"texts": list(texts[:96]), "input_type": "search_query", "embedding_types": ["float"]}
    assert second["texts"] == ["t96", "t97", "t98", "t99"]


def test_cohere_defaults_and_v4_dimensions() -> None:
    request = EmbeddingRequest(model="e", inputs=("x",), dimensions=512, passthrough={"truncate": "END"})
    assert embeddings.render_requests(request, "cohere.embed-v4:0") == [
        {
            "texts": ["x"],
            "input_type": "search_document",
            "embedding_types": ["float"],
            "truncate": "END",
            "output_dimension": 512,
        }
    ]
    assert "output_dimension" not in embeddings.render_requests(request, COHERE)[0]


@pytest.mark.parametrize(
    ("model_id", "inputs", "param"),
    [
        ("meta.llama3-8b-instruct-v1:0", ("a",), "model"),
        (TITAN, ((1, 2, 3),), "input"),
        (COHERE, (), "input"),
    ],
)
def test_invalid_requests(model_id: str, inputs: tuple[str, ...], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        embeddings.render_requests(EmbeddingRequest(model="e", inputs=inputs), model_id)
    assert info.value.param == param


def test_parse_titan_responses_sums_tokens() -> None:
    body = (FIXTURES / "titan_embedding_response.json").read_bytes()
    response = embeddings.parse_responses(TITAN, [body, b'{"embedding":[1,2,3],"inputTextTokenCount":6}'])
    assert response.model == TITAN
    assert response.vectors == ((0.125, -0.5, 0.75), (1.0, 2.0, 3.0))
    assert response.usage == Usage(input_tokens=10)


def test_parse_cohere_responses_by_type_and_plain_list() -> None:
    body = (FIXTURES / "cohere_embedding_response.json").read_bytes()
    response = embeddings.parse_responses(COHERE, [body, b'{"embeddings":[[0.5,0.5]]}'])
    assert response.vectors == ((0.1, 0.2), (0.3, -0.4), (0.5, 0.5))
    assert response.usage == Usage()


@pytest.mark.parametrize(
    ("model_id", "body"),
    [
        (TITAN, b"not json"),
        (TITAN, b'{"embedding":"x"}'),
        (TITAN, b'{"embedding":["a"]}'),
        (COHERE, b'{"embeddings":{"int8":[[1]]}}'),
        (COHERE, b"[]"),
    ],
)
def test_parse_malformed_responses(model_id: str, body: bytes) -> None:
    with pytest.raises(UpstreamError, match="malformed Bedrock embedding response"):
        embeddings.parse_responses(model_id, [body])
