"""The ``cache`` body object: parsed the same way by every client dialect into
``ChatRequest.cache`` / ``EmbeddingRequest.cache``, refused with a 400 naming the field when wrong,
and never rendered into an upstream body."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tollgate.canonical import CacheControls
from tollgate.dialects.anthropic import messages as anthropic_messages
from tollgate.dialects.bedrock import converse as bedrock_converse
from tollgate.dialects.cache_controls import parse_cache_controls
from tollgate.dialects.openai import chat as openai_chat
from tollgate.dialects.openai import embeddings as openai_embeddings
from tollgate.errors import InvalidRequest

EVERY = {
    "no-cache": True, "no-store": False, "ttl": 300, "s-maxage": 1.5, "namespace": "ns", "use-cache": True
}
PARSED = CacheControls(no_cache=True, no_store=False, ttl=300.0, s_maxage=1.5, namespace="ns", use_cache=True)
HI = "hi"


def test_every_control_is_parsed() -> None:
    assert parse_cache_controls(EVERY) == PARSED
    assert parse_cache_controls(None) is None
    assert parse_cache_controls({}) == CacheControls()


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        ("no-cache", "cache"),
        ({"no-cache": "yes"}, "cache.no-cache"),
        ({"ttl": -1}, "cache.ttl"),
        ({"ttl": True}, "cache.ttl"),
        ({"s-maxage": "60"}, "cache.s-maxage"),
        ({"namespace": ""}, "cache.namespace"),
        ({"no_cache": True}, "cache.no_cache"),
    ],
)
def test_a_wrong_control_is_a_400_naming_it(raw: object, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_cache_controls(raw)
    assert caught.value.param == param and caught.value.status == 400


def _openai(extra: dict[str, Any]) -> bytes:
    return orjson.dumps({"model": "m", "messages": [{"role": "user", "content": HI}], **extra})


def _anthropic(extra: dict[str, Any]) -> bytes:
    messages = [{"role": "user", "content": HI}]
    return orjson.dumps({"model": "m", "max_tokens": 5, "messages": messages, **extra})


def _bedrock(extra: dict[str, Any]) -> bytes:
    return orjson.dumps({"messages": [{"role": "user", "content": [{"text": HI}]}], **extra})


def test_each_chat_dialect_models_the_cache_object_and_never_forwards_it() -> None:
    cases: list[tuple[Any, bytes]] = [
        (openai_chat, _openai({"cache": EVERY})),
        (anthropic_messages, _anthropic({"cache": EVERY})),
        (bedrock_converse, _bedrock({"cache": EVERY})),
        (bedrock_converse, _bedrock({"additionalModelRequestFields": {"cache": EVERY, "top_k": 3}})),
    ]
    for dialect, body in cases:
        request = dialect.parse_request(body, model="m")
        assert request.cache == PARSED, dialect
        assert "cache" not in request.passthrough
        for upstream in (openai_chat, anthropic_messages, bedrock_converse):
            rendered = orjson.dumps(upstream.render_request(request, "m", drop_params=True))
            assert b'"cache"' not in rendered and b"no-cache" not in rendered, (dialect, upstream)


def test_bedrock_keeps_the_other_additional_fields() -> None:
    request = bedrock_converse.parse_request(
        _bedrock({"additionalModelRequestFields": {"cache": {"ttl": 1}, "custom": 1}}), model="m"
    )
    assert request.cache == CacheControls(ttl=1.0)
    assert request.passthrough["additionalModelRequestFields"] == {"custom": 1}


def test_embeddings_model_the_cache_object() -> None:
    body = orjson.dumps({"model": "e", "input": ["a"], "cache": {"no-store": True}})
    request = openai_embeddings.parse_request(body)
    assert request.cache == CacheControls(no_store=True)
    rendered = orjson.dumps(openai_embeddings.render_request(request, "e", drop_params=False))
    assert b"no-store" not in rendered


@pytest.mark.parametrize(
    ("dialect", "body"),
    [
        (openai_chat, _openai({"cache": {"ttl": "soon"}})),
        (anthropic_messages, _anthropic({"cache": {"ttl": "soon"}})),
        (bedrock_converse, _bedrock({"cache": {"ttl": "soon"}})),
    ],
)
def test_a_wrong_control_is_refused_by_each_dialect(dialect: Any, body: bytes) -> None:
    with pytest.raises(InvalidRequest) as caught:
        dialect.parse_request(body, model="m")
    assert caught.value.param == "cache.ttl"
