"""The bounds every client body must respect (``dialects.bounds``), in each dialect's parser:
nesting depth, 64-bit integers and token counts are 400s at parse time, never 500s later."""

from __future__ import annotations

import orjson
import pytest

from tollgate.dialects.anthropic import messages as anthropic_messages
from tollgate.dialects.bedrock import converse as bedrock_converse
from tollgate.dialects.bounds import MAX_DEPTH, MAX_TOKENS, check_bounds, load_json
from tollgate.dialects.openai import chat as openai_chat
from tollgate.dialects.openai import embeddings as openai_embeddings
from tollgate.errors import InvalidRequest

TEXT = [{"role": "user", "content": "hi"}]


def nested(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def deep_json(levels: int) -> bytes:
    """``levels`` nested objects as JSON text (orjson will not write more than 255)."""
    return b'{"a":' * levels + b"1" + b"}" * levels


def test_depth_limit_is_exact() -> None:
    check_bounds(nested(MAX_DEPTH))  # the body itself is the first level
    with pytest.raises(InvalidRequest, match="nested more than"):
        check_bounds(nested(MAX_DEPTH + 1))
    with pytest.raises(InvalidRequest, match="nested more than"):
        check_bounds(orjson.loads(b"[" * 1000 + b"]" * 1000))


def test_integers_outside_64_bits_are_refused() -> None:
    check_bounds({"seed": 2**63 - 1, "x": [-(2**63)]})
    with pytest.raises(InvalidRequest, match="64-bit"):
        load_json(b'{"seed": 18446744073709551615}')
    with pytest.raises(InvalidRequest, match="64-bit"):
        load_json(b"[[18446744073709551615]]")


def test_bad_json_is_invalid_request() -> None:
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        load_json(b'{"a": 1e400}')


def _bodies(metadata: bytes, max_tokens: object) -> list[tuple[object, bytes]]:
    """One body per chat dialect, with ``metadata`` spliced in as raw JSON text."""
    tokens = orjson.dumps(max_tokens).decode()
    text = orjson.dumps(TEXT).decode()
    meta = metadata.decode()
    return [
        (openai_chat, f'{{"model":"m","messages":{text},"metadata":{meta},"max_tokens":{tokens}}}'.encode()),
        (
            anthropic_messages,
            f'{{"model":"m","messages":{text},"metadata":{meta},"max_tokens":{tokens}}}'.encode(),
        ),
        (
            bedrock_converse,
            (
                '{"messages":[{"role":"user","content":[{"text":"hi"}]}],'
                f'"requestMetadata":{meta},"inferenceConfig":{{"maxTokens":{tokens}}}}}'
            ).encode(),
        ),
    ]


@pytest.mark.parametrize("max_tokens", [-100_000_000, 0, MAX_TOKENS + 1, 2**63 - 1, "5", 1.5, True])
def test_token_counts_out_of_range_are_400_in_every_dialect(max_tokens: object) -> None:
    for dialect, body in _bodies(b"{}", max_tokens):
        with pytest.raises(InvalidRequest) as info:
            dialect.parse_request(body, model="m")  # type: ignore[attr-defined]
        assert info.value.status == 400
        assert info.value.param in ("max_tokens", "inferenceConfig.maxTokens")


def test_deep_metadata_is_400_in_every_dialect() -> None:
    for dialect, body in _bodies(deep_json(300), 10):
        with pytest.raises(InvalidRequest, match="nested"):
            dialect.parse_request(body, model="m")  # type: ignore[attr-defined]
    embedding = b'{"model":"e","input":"x","metadata":' + deep_json(300) + b"}"
    with pytest.raises(InvalidRequest, match="nested"):
        openai_embeddings.parse_request(embedding)


def test_accepted_bodies_keep_their_values() -> None:
    for dialect, body in _bodies(deep_json(10), MAX_TOKENS):
        assert dialect.parse_request(body, model="m").max_tokens == MAX_TOKENS  # type: ignore[attr-defined]
