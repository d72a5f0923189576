"""framing.sse: incremental parsing under every line ending and chunking, and encoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tollgate.framing.sse import SseEvent, SseParser, encode

STREAM = b'event: message_start\ndata: {"a":1}\n\n: comment\ndata: line1\ndata:line2\n\ndata: [DONE]\n\n'
EXPECTED = [SseEvent("message_start", '{"a":1}'), SseEvent(None, "line1\nline2"), SseEvent(None, "[DONE]")]


def _feed_all(parser: SseParser, pieces: list[bytes]) -> list[SseEvent]:
    events: list[SseEvent] = []
    for piece in pieces:
        events.extend(parser.feed(piece))
    return events + parser.flush()


def test_parse_whole_stream() -> None:
    assert _feed_all(SseParser(), [STREAM]) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 7, 13])
def test_parse_any_chunking(size: int) -> None:
    pieces = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    assert _feed_all(SseParser(), pieces) == EXPECTED


@pytest.mark.parametrize("ending", [b"\r\n", b"\r"])
def test_parse_other_line_endings(ending: bytes) -> None:
    stream = STREAM.replace(b"\n", ending)
    assert _feed_all(SseParser(), [stream]) == EXPECTED
    pieces = [stream[i : i + 1] for i in range(len(stream))]
    assert _feed_all(SseParser(), pieces) == EXPECTED


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    parser = SseParser()
    assert parser.feed(b"data: x\r") == []
    assert parser.feed(b"\n\r\n") == [SseEvent(None, "x")]


def test_events_wait_for_blank_line_and_flush_finishes_them() -> None:
    parser = SseParser()
    assert parser.feed(b"data: partial") == []
    assert parser.feed(b"\n") == []
    assert parser.flush() == [SseEvent(None, "partial")]
    assert parser.flush() == []


def test_flush_includes_unterminated_last_line() -> None:
    parser = SseParser()
    assert parser.feed(b"data: a\n\ndata: tail") == [SseEvent(None, "a")]
    assert parser.flush() == [SseEvent(None, "tail")]


def test_only_one_space_after_colon_is_stripped_and_unknown_fields_ignored() -> None:
    events = _feed_all(SseParser(), [b"data:  two\nid: 5\nretry: 10\n\n"])
    assert events == [SseEvent(None, " two")]


def test_empty_data_field_still_dispatches() -> None:
    assert _feed_all(SseParser(), [b"data\n\n"]) == [SseEvent(None, "")]


def test_blank_lines_alone_dispatch_nothing() -> None:
    assert _feed_all(SseParser(), [b"\n\n: ping\n\n"]) == []


def test_utf8_split_inside_a_character() -> None:
    raw = "data: héllo ✓\n\n".encode()
    cut = raw.index("✓".encode()) + 1
    assert _feed_all(SseParser(), [raw[:cut], raw[cut:]]) == [SseEvent(None, "héllo ✓")]


def test_encode() -> None:
    assert encode(b'{"x":1}') == b'data: {"x":1}\n\n'
    assert encode(b"{}", "ping") == b"event: ping\ndata: {}\n\n"
    assert SseParser().feed(encode(b"{}", "ping")) == [SseEvent("ping", "{}")]


def _reference(stream: bytes) -> list[SseEvent]:
    """The WHATWG rules read literally, a whole stream at once, line by line."""
    events: list[SseEvent] = []
    event: str | None = None
    data: list[str] = []
    text = stream.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    for line in [*lines, ""]:  # the body's end finishes the last event
        if not line:
            if data or event is not None:
                events.append(SseEvent(event, "\n".join(data)))
            event, data = None, []
        elif not line.startswith(":"):
            name, sep, value = line.partition(":")
            value = value[1:] if sep and value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
    return events


_PIECES = [
    b"data: ", b"data:", b"event: e", b": c", b'{"k":1}', b"x", b"\xc3\xa9", b"\n", b"\r\n", b"\r", b"\n\n"
]


@given(
    st.lists(st.sampled_from(_PIECES), max_size=40),
    st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=10),
)
def test_any_stream_cut_anywhere_parses_as_the_reference_does(parts: list[bytes], sizes: list[int]) -> None:
    stream = b"".join(parts)
    pieces, at, i = [], 0, 0
    while at < len(stream):
        size = sizes[i % len(sizes)]
        pieces.append(stream[at : at + size])
        at, i = at + size, i + 1
    assert _feed_all(SseParser(), pieces) == _reference(stream)
