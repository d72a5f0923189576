"""AWS event-stream framing: encoder against botocore's decoder and published vectors."""

from __future__ import annotations

import orjson
import pytest
from botocore.eventstream import EventStreamBuffer

from tollgate.framing.eventstream import (
    EventStreamDecoder,
    EventStreamError,
    EventStreamMessage,
    encode_event,
    encode_exception,
    encode_message,
)

# Vectors from botocore's own test suite (tests/unit/test_eventstream.py).
ONE_STRING_HEADER = (
    b"\x00\x00\x00=\x00\x00\x00 \x07\xfd\x83\x96\x0ccontent-type\x07\x00\x10"
    b"application/json{'foo':'bar'}\x8d\x9c\x08\xb1"
)
STRING_HEADER_NO_PAYLOAD = b"\x00\x00\x00 \x00\x00\x00\x10\xb9T\xe0\t\x06string\x07\x00\x06foobarL\xc53("
EMPTY_MESSAGE = b"\x00\x00\x00\x10\x00\x00\x00\x00\x05\xc2H\xeb}\x98\xc8\xff"
ALL_HEADER_TYPES = (
    b"\x00\x00\x00\x62\x00\x00\x00\x52\x03\xb5\xcb\x9c"
    b"\x010\x00\x011\x01\x012\x02\x02\x013\x03\x00\x03"
    b"\x014\x04\x00\x00\x00\x04\x015\x05\x00\x00\x00\x00\x00\x00\x00\x05"
    b"\x016\x06\x00\x05bytes\x017\x07\x00\x04utf8"
    b"\x018\x08\x00\x00\x00\x00\x00\x00\x00\x08\x019\x090123456789abcdef"
    b"\x63\x35\x36\x71"
)


def test_encoder_matches_published_vectors() -> None:
    assert encode_message([("content-type", "application/json")], b"{'foo':'bar'}") == ONE_STRING_HEADER
    assert encode_message([("string", "foobar")], b"") == STRING_HEADER_NO_PAYLOAD
    assert encode_message([], b"") == EMPTY_MESSAGE


def test_decoder_reads_published_vector_with_every_header_type() -> None:
    (message,) = EventStreamDecoder().feed(ALL_HEADER_TYPES)
    assert message.payload == b""
    assert message.headers["0"] is True
    assert message.headers["1"] is False
    assert message.headers["4"] == 4
    assert message.headers["6"] == b"bytes"
    assert message.headers["7"] == "utf8"


def test_encode_event_round_trips_through_botocore() -> None:
    payload = orjson.dumps({"contentBlockIndex": 0, "delta": {"text": "héllo"}})
    buffer = EventStreamBuffer()
    exception = encode_exception("throttlingException", b"{}")
    buffer.add_data(encode_event("contentBlockDelta", payload) + exception)
    first, second = list(buffer)
    assert first.headers == {
        ":event-type": "contentBlockDelta",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert first.payload == payload
    assert second.headers == {
        ":exception-type": "throttlingException",
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    assert second.payload == b"{}"


def test_feeding_byte_by_byte_yields_each_message_once() -> None:
    data = encode_event("messageStart", b'{"role":"assistant"}') + encode_event("messageStop", b"{}")
    decoder = EventStreamDecoder()
    messages: list[EventStreamMessage] = []
    for i in range(len(data)):
        messages.extend(decoder.feed(data[i : i + 1]))
    decoder.finish()
    assert [m.event_type for m in messages] == ["messageStart", "messageStop"]
    assert messages[0].payload == b'{"role":"assistant"}'
    assert messages[0].message_type == "event"
    assert messages[0].exception_type is None


def test_exception_message_properties() -> None:
    (message,) = EventStreamDecoder().feed(encode_exception("validationException", b'{"message":"x"}'))
    assert message.message_type == "exception"
    assert message.exception_type == "validationException"
    assert message.event_type is None


def test_corrupted_message_crc_raises_event_stream_error() -> None:
    data = bytearray(encode_event("messageStart", b'{"role":"assistant"}'))
    data[-1] ^= 0xFF
    decoder = EventStreamDecoder()
    with pytest.raises(EventStreamError, match="Checksum mismatch"):
        decoder.feed(bytes(data))
    with pytest.raises(EventStreamError, match="after a framing error"):
        decoder.feed(b"more")


def test_corrupted_prelude_crc_raises_event_stream_error() -> None:
    data = bytearray(encode_event("messageStart", b"{}"))
    data[9] ^= 0x01
    with pytest.raises(EventStreamError, match="Checksum mismatch"):
        EventStreamDecoder().feed(bytes(data))


def test_finish_inside_a_message_raises() -> None:
    decoder = EventStreamDecoder()
    assert decoder.feed(encode_event("messageStart", b"{}")[:20]) == []
    with pytest.raises(EventStreamError, match="ended inside a message"):
        decoder.finish()


def test_too_long_header_value_is_refused() -> None:
    with pytest.raises(EventStreamError, match="too long"):
        encode_message([("x", "a" * 40000)], b"")
