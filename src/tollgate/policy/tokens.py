"""A cheap input-token estimate for reservations, without any tokenizer download. Pure.

Text counts ``ceil(bytes / 4)`` tokens, where ``bytes`` is the character count for ASCII text and
the UTF-8 length otherwise; each message adds 4 tokens of framing, the request 3, each tool its
name, description and JSON schema as text plus 8. Images count a fixed 1,600 tokens (Anthropic's
cost of a maximal ~1.15 MP image; OpenAI's high-detail 1024×1024 is 765), documents their decoded
size / 4. Token-id embedding inputs count exactly.

The bound: BPE tokenizers (cl100k/o200k, Claude's, Llama 3's) average 3.5–4.5 characters per
token on English prose, so prose lands within about ±25%. Code and numbers run nearer 2.5–3
characters per token (under-estimate up to ~40%); CJK text is ~1 token per character, which the
UTF-8 length (3 bytes each) puts at 0.75 per character. Images larger than the fixed cost are
under-estimated. Nothing here is final: settlement replaces the estimate with the upstream's real
usage, so the error only matters for the request being admitted.
May import: ``canonical``.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from tollgate.canonical import (
    ChatRequest,
    DocumentPart,
    EmbeddingRequest,
    ImagePart,
    Part,
    ReasoningPart,
    TextPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
)

IMAGE_TOKENS = 1600
MESSAGE_OVERHEAD = 4
REQUEST_OVERHEAD = 3
TOOL_OVERHEAD = 8


def text_tokens(text: str) -> int:
    size = len(text) if text.isascii() else len(text.encode("utf-8"))
    return (size + 3) // 4


def estimate_input_tokens(request: ChatRequest | EmbeddingRequest) -> int:
    if isinstance(request, EmbeddingRequest):
        return _embedding_tokens(request)
    total = REQUEST_OVERHEAD
    for part in request.system:
        total += text_tokens(part.text)
    for message in request.messages:
        total += MESSAGE_OVERHEAD
        for item in message.parts:
            total += _part_tokens(item)
    for tool in request.tools:
        total += _tool_tokens(tool)
    return total


def _embedding_tokens(request: EmbeddingRequest) -> int:
    total = 0
    for item in request.inputs:
        total += text_tokens(item) if isinstance(item, str) else len(item)
    return total


def _part_tokens(item: Part) -> int:
    if isinstance(item, TextPart):
        return text_tokens(item.text)
    if isinstance(item, ImagePart):
        return IMAGE_TOKENS
    if isinstance(item, DocumentPart):
        return _document_tokens(item)
    if isinstance(item, ToolCallPart):
        return text_tokens(item.name) + text_tokens(item.arguments)
    if isinstance(item, ToolResultPart):
        return 2 + sum(_part_tokens(inner) for inner in item.content)
    if isinstance(item, ReasoningPart):
        return text_tokens(item.text) + text_tokens(item.redacted or "")
    return 0


def _document_tokens(item: DocumentPart) -> int:
    decoded = len(item.data) * 3 // 4
    return (decoded + 3) // 4


def _tool_tokens(tool: Tool) -> int:
    schema = orjson.dumps(tool.parameters, default=_plain).decode() if tool.parameters else ""
    return TOOL_OVERHEAD + text_tokens(tool.name) + text_tokens(tool.description or "") + text_tokens(schema)


def _plain(value: object) -> object:
    # Schemas may hold read-only mappings (MappingProxyType), which orjson does not serialise.
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(type(value).__name__)
