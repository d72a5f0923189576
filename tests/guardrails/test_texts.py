"""The texts a guardrail checks: out of canonical values and back in place."""

from __future__ import annotations

from tollgate.canonical import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    MessageStop,
    PartStart,
    PartStop,
    TextDelta,
    TextPart,
    ToolArgumentsDelta,
    ToolCallPart,
    ToolResultPart,
)
from tollgate.guardrails.texts import (
    request_texts,
    response_texts,
    stream_texts,
    with_request_texts,
    with_response_texts,
    with_stream_texts,
)

REQUEST = ChatRequest(
    model="m",
    system=(TextPart("sys"),),
    messages=(
        Message("user", (TextPart("one"), ImagePart(data="AA=="))),
        Message("assistant", (TextPart("answer"), ToolCallPart("c1", "f"))),
        Message("user", (ToolResultPart("c1", (TextPart("result"),)), TextPart("two"))),
    ),
)


def test_prompt_is_system_and_user_text_tool_results_included() -> None:
    assert request_texts(REQUEST) == ["sys", "one", "result", "two"]
    masked = with_request_texts(REQUEST, ["S", "O", "R", "T"])
    assert request_texts(masked) == ["S", "O", "R", "T"]
    assert masked.messages[1] == REQUEST.messages[1]  # the model's own turns are not touched
    assert masked.messages[0].parts[1] == REQUEST.messages[0].parts[1]


def test_answer_texts() -> None:
    response = ChatResponse("id", "m", (TextPart("a"), ToolCallPart("c", "f"), TextPart("b")))
    assert response_texts(response) == ["a", "b"]
    assert with_response_texts(response, ["A", "B"]).parts == (
        TextPart("A"),
        ToolCallPart("c", "f"),
        TextPart("B"),
    )


def test_stream_texts_go_back_as_one_delta_per_part() -> None:
    events = [
        PartStart(0, TextPart("")), TextDelta(0, "mail "), TextDelta(0, "a@b.co"), PartStop(0),
        PartStart(1, ToolCallPart("c", "f", "")), ToolArgumentsDelta(1, "{}"), PartStop(1),
        PartStart(2, TextPart("")), TextDelta(2, "bye"), PartStop(2),
        MessageStop("end_turn"),
    ]  # fmt: skip
    assert stream_texts(events) == ["mail a@b.co", "bye"]
    replaced = with_stream_texts(events, ["mail {EMAIL}", "bye"])
    assert [e for e in replaced if isinstance(e, TextDelta)] == [
        TextDelta(0, "mail {EMAIL}"),
        TextDelta(2, "bye"),
    ]
    assert len(replaced) == len(events) - 1
