"""The gateway's one internal language: requests, responses, stream events and usage.

Every client format is parsed into these types and every upstream answer is turned into them
(DESIGN.md §1.1). They are frozen, slotted dataclasses tagged with a ``kind`` literal so that
``match`` statements and mypy can tell them apart. This module imports nothing from tollgate.

Conventions shared by every dialect:

* System prompts live in ``ChatRequest.system``, never in ``messages``.
* Roles are ``user`` and ``assistant`` only. Tool results are ``ToolResultPart``s inside a user
  message (the Anthropic/Bedrock shape); the OpenAI dialect maps ``role: tool`` messages to that.
* ``Usage.input_tokens`` counts input tokens that were neither read from nor written to a prompt
  cache (Anthropic/Bedrock semantics). ``Usage.prompt_tokens`` is the OpenAI-style total.
* Tool-call arguments are carried as JSON text, exactly as the model produced them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

EMPTY: Mapping[str, Any] = MappingProxyType({})

# ---------------------------------------------------------------------------------------------
# Content parts
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str
    cache_control: bool = False  # an Anthropic/Bedrock cache breakpoint after this part
    kind: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image given inline (``data`` is base64 text, no ``data:`` prefix) or by ``url``."""

    media_type: str = "image/png"
    data: str | None = None
    url: str | None = None
    detail: str | None = None  # OpenAI's "low" | "high" | "auto"
    kind: Literal["image"] = "image"


@dataclass(frozen=True, slots=True)
class DocumentPart:
    """A document (PDF, text, …) given inline as base64 ``data``."""

    media_type: str
    data: str
    name: str | None = None
    kind: Literal["document"] = "document"


@dataclass(frozen=True, slots=True)
class ToolCallPart:
    id: str
    name: str
    arguments: str = "{}"  # JSON text
    kind: Literal["tool_call"] = "tool_call"


@dataclass(frozen=True, slots=True)
class ToolResultPart:
    tool_call_id: str
    content: tuple[TextPart | ImagePart | DocumentPart, ...] = ()
    is_error: bool = False
    kind: Literal["tool_result"] = "tool_result"


@dataclass(frozen=True, slots=True)
class ReasoningPart:
    """Model reasoning ("thinking"). ``redacted`` holds opaque encrypted reasoning, if any."""

    text: str = ""
    signature: str | None = None
    redacted: str | None = None
    kind: Literal["reasoning"] = "reasoning"


Part = TextPart | ImagePart | DocumentPart | ToolCallPart | ToolResultPart | ReasoningPart
Role = Literal["user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    parts: tuple[Part, ...]
    name: str | None = None


# ---------------------------------------------------------------------------------------------
# Tools and output format
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None
    cache_control: bool = False


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """``mode`` is auto | none | required (call some tool) | tool (call ``name``)."""

    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | None = None
    disable_parallel: bool = False


AUTO = ToolChoice()


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """``kind`` text | json_object | json_schema; ``schema`` and ``name`` for json_schema."""

    kind: Literal["text", "json_object", "json_schema"] = "text"
    schema: Mapping[str, Any] | None = None
    name: str | None = None
    strict: bool | None = None


@dataclass(frozen=True, slots=True)
class Reasoning:
    """Extended thinking: a token budget (Anthropic/Bedrock) or an effort level (OpenAI o-series)."""

    budget_tokens: int | None = None
    effort: Literal["minimal", "low", "medium", "high"] | None = None


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RouteHints:
    """Per-request routing wishes a client may send (LiteLLM body extensions)."""

    fallbacks: tuple[str, ...] | None = None
    num_retries: int | None = None
    priority: int | None = None
    timeout: float | None = None
    # The model group to route to when it is not the one the model name resolves to: a managed
    # prompt is sent to its prompt's model. Never parsed from a client; access, limits and
    # accounting still go by ``ChatRequest.model``.
    model_group: str | None = None


NO_HINTS = RouteHints()


@dataclass(frozen=True, slots=True)
class GuardrailChoice:
    """The gateway guardrails a request asks for by name (LiteLLM's body ``guardrails``) and the
    ones it switches off (``metadata.guardrails: {name: false}``). A gateway instruction: never
    rendered for an upstream (Bedrock's own ``guardrailConfig`` is a different thing)."""

    named: tuple[str, ...] = ()
    switched_off: tuple[str, ...] = ()


NO_GUARDRAIL_CHOICE = GuardrailChoice()


@dataclass(frozen=True, slots=True)
class CacheControls:
    """Per-request wishes for the gateway's response cache (LiteLLM's ``cache`` body object).

    ``no_cache``: do not answer from the cache (the answer is still stored); ``no_store``: do not
    store the answer; ``ttl``: keep the stored answer this many seconds; ``s_maxage``: accept
    only a stored answer at most this old; ``namespace``: a separate key space; ``use_cache``:
    opt in (``True``) when the cache is ``default_off``, opt out (``False``) when it is on.
    """

    no_cache: bool = False
    no_store: bool = False
    ttl: float | None = None
    s_maxage: float | None = None
    namespace: str | None = None
    use_cache: bool | None = None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: tuple[Message, ...]
    system: tuple[TextPart, ...] = ()
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice = AUTO
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    user: str | None = None
    n: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    response_format: ResponseFormat | None = None
    reasoning: Reasoning | None = None
    stream: bool = False
    include_usage: bool = False  # OpenAI stream_options.include_usage
    hints: RouteHints = NO_HINTS
    guardrails: GuardrailChoice = NO_GUARDRAIL_CHOICE
    cache: CacheControls | None = None  # response-cache wishes; never sent upstream
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    # Fields the parsing dialect did not model. Re-emitted only when the upstream speaks the
    # same dialect (``passthrough_dialect``), so nothing a client sends is silently lost there.
    passthrough: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    passthrough_dialect: str | None = None
    # Server-side chat history (never sent upstream): start a session, or continue this one.
    enable_history: bool = False
    session_id: str | None = None
    # A managed prompt's variables (Bedrock ``promptVariables``), name → text.
    prompt_variables: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    model: str
    inputs: tuple[str, ...] | tuple[tuple[int, ...], ...]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    user: str | None = None
    input_type: str | None = None  # Cohere's search_document | search_query | …
    cache: CacheControls | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    passthrough: Mapping[str, Any] = field(default_factory=lambda: EMPTY)


# ---------------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0  # included in output_tokens

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )


ZERO_USAGE = Usage()

FinishReason = Literal["end_turn", "stop_sequence", "max_tokens", "tool_use", "content_filter", "error"]


@dataclass(frozen=True, slots=True)
class ChatResponse:
    id: str
    model: str
    parts: tuple[Part, ...]
    finish_reason: FinishReason = "end_turn"
    usage: Usage = ZERO_USAGE
    created: int = 0  # unix seconds
    stop_sequence: str | None = None
    # Fields of the upstream's answer not modelled here (Bedrock's guardrail ``trace``), re-emitted
    # only for a client that speaks the upstream's dialect (``native_dialect``).
    native: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    native_dialect: str | None = None
    session_id: str | None = None  # the chat-history session this answer was recorded in


@dataclass(frozen=True, slots=True)
class EmbeddingResponse:
    model: str
    vectors: tuple[tuple[float, ...], ...]
    usage: Usage = ZERO_USAGE


# ---------------------------------------------------------------------------------------------
# Stream events (part start / delta / stop, as Anthropic and pydantic-ai model them)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageStart:
    id: str
    model: str
    usage: Usage = ZERO_USAGE  # input usage, when the upstream reports it up front
    created: int = 0
    session_id: str | None = None  # the chat-history session the answer will be recorded in
    kind: Literal["message_start"] = "message_start"


@dataclass(frozen=True, slots=True)
class PartStart:
    """A new content part at ``index``: an empty TextPart/ReasoningPart, or a ToolCallPart with
    its id and name and empty arguments (``arguments=""``, not the class default ``"{}"``, so
    encoders can append the streamed JSON)."""

    index: int
    part: TextPart | ToolCallPart | ReasoningPart
    kind: Literal["part_start"] = "part_start"


@dataclass(frozen=True, slots=True)
class TextDelta:
    index: int
    text: str
    kind: Literal["text_delta"] = "text_delta"


@dataclass(frozen=True, slots=True)
class ToolArgumentsDelta:
    index: int
    json: str
    kind: Literal["tool_arguments_delta"] = "tool_arguments_delta"


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    index: int
    text: str = ""
    signature: str | None = None
    redacted: str | None = None
    kind: Literal["reasoning_delta"] = "reasoning_delta"


@dataclass(frozen=True, slots=True)
class PartStop:
    index: int
    kind: Literal["part_stop"] = "part_stop"


@dataclass(frozen=True, slots=True)
class MessageStop:
    finish_reason: FinishReason
    usage: Usage = ZERO_USAGE  # the whole message's usage, input included
    stop_sequence: str | None = None
    native: Mapping[str, Any] = field(default_factory=lambda: EMPTY)  # as ``ChatResponse.native``
    native_dialect: str | None = None
    kind: Literal["message_stop"] = "message_stop"


StreamEvent = (
    MessageStart | PartStart | TextDelta | ToolArgumentsDelta | ReasoningDelta | PartStop | MessageStop
)
