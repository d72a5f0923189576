"""The cheap input-token estimate."""

from __future__ import annotations

from types import MappingProxyType

from tollgate.canonical import (
    ChatRequest,
    EmbeddingRequest,
    ImagePart,
    Message,
    TextPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
)
from tollgate.policy.tokens import IMAGE_TOKENS, estimate_input_tokens, text_tokens


def test_text_is_about_four_characters_per_token() -> None:
    assert text_tokens("") == 0
    assert text_tokens("abcd") == 1
    assert text_tokens("abcde") == 2
    assert text_tokens("日本語") == 3  # 9 UTF-8 bytes


def test_chat_request_counts_system_messages_parts_and_tools() -> None:
    request = ChatRequest(
        model="m",
        system=(TextPart("x" * 8),),
        messages=(
            Message("user", (TextPart("y" * 40), ImagePart(data="AAAA"))),
            Message("assistant", (ToolCallPart("c1", "look", '{"q":"a"}'),)),
            Message("user", (ToolResultPart("c1", (TextPart("z" * 12),)),)),
        ),
        tools=(Tool("look", "find", MappingProxyType({"type": "object"})),),
    )
    expected = (
        3  # request
        + 2  # system
        + 4 + 10 + IMAGE_TOKENS
        + 4 + 1 + 3  # "look" + 9 chars of arguments
        + 4 + 2 + 3  # tool result framing + 12 chars
        + 8 + 1 + 1 + 5  # tool overhead, name, description, '{"type":"object"}' (17 chars)
    )
    assert estimate_input_tokens(request) == expected


def test_embedding_inputs() -> None:
    assert estimate_input_tokens(EmbeddingRequest(model="e", inputs=("a" * 8, "b" * 9))) == 2 + 3
    assert estimate_input_tokens(EmbeddingRequest(model="e", inputs=((1, 2, 3), (4,)))) == 4
