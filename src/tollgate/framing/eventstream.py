"""AWS event-stream framing (``application/vnd.amazon.eventstream``): bytes ⇄ messages.

Decoding is botocore's ``EventStreamBuffer`` (prelude and message CRC32 checks included), wrapped
so that it can be fed arbitrary chunks and so that its exceptions surface as one
``EventStreamError``. Encoding is the small writer the Bedrock ingress needs: string headers only.

A message on the wire::

    total length u32 BE │ headers length u32 BE │ prelude CRC32 │ headers │ payload │ message CRC32

where each header is ``name length u8 │ name │ type u8 (7 = string) │ value length u16 BE │ value``
and the message CRC32 covers every byte before it. Imports nothing from tollgate.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

CONTENT_TYPE = "application/vnd.amazon.eventstream"

HeaderValue = str | bytes | bool | int | uuid.UUID  # what botocore decodes header values to

_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")
_STRING_TYPE = 7
_MAX_HEADER_VALUE = 2**15 - 1


class EventStreamError(Exception):
    """The event-stream bytes are malformed: bad CRC, impossible lengths, broken headers."""


@dataclass(frozen=True, slots=True)
class EventStreamMessage:
    headers: Mapping[str, HeaderValue]
    payload: bytes

    @property
    def message_type(self) -> str | None:
        """``event``, ``exception`` or ``error`` (the ``:message-type`` header)."""
        value = self.headers.get(":message-type")
        return value if isinstance(value, str) else None

    @property
    def event_type(self) -> str | None:
        value = self.headers.get(":event-type")
        return value if isinstance(value, str) else None

    @property
    def exception_type(self) -> str | None:
        value = self.headers.get(":exception-type")
        return value if isinstance(value, str) else None


class EventStreamDecoder:
    """Feed arbitrary byte chunks; get back the messages they complete.

    After an ``EventStreamError`` the decoder is unusable: frame boundaries are lost.
    """

    __slots__ = ("_buffer", "_failed", "_parser_error", "_pending")

    def __init__(self) -> None:
        # botocore loads only when something decodes an event stream (a Bedrock upstream).
        from botocore.eventstream import EventStreamBuffer, ParserError

        self._buffer = EventStreamBuffer()
        self._parser_error: type[Exception] = ParserError
        self._pending = 0  # bytes fed but not yet part of a decoded message
        self._failed = False

    def feed(self, chunk: bytes) -> list[EventStreamMessage]:
        if self._failed:
            raise EventStreamError("event stream decoder used after a framing error")
        if not chunk:
            return []
        self._buffer.add_data(chunk)
        self._pending += len(chunk)
        messages: list[EventStreamMessage] = []
        try:
            for raw in self._buffer:
                self._pending -= raw.prelude.total_length
                messages.append(EventStreamMessage(raw.headers, raw.payload))
        except (self._parser_error, KeyError, struct.error, UnicodeDecodeError) as exc:
            # KeyError: unknown header type byte; struct.error: headers shorter than declared.
            self._failed = True
            raise EventStreamError(f"malformed event stream: {exc or type(exc).__name__}") from exc
        return messages

    def finish(self) -> None:
        """Called at the end of the body: raises if it stopped in the middle of a message."""
        if self._pending:
            raise EventStreamError(f"event stream ended inside a message ({self._pending} bytes left)")


def encode_message(headers: Iterable[tuple[str, str]], payload: bytes) -> bytes:
    """One binary message with string headers, in the given order."""
    header_bytes = b"".join(_encode_header(name, value) for name, value in headers)
    total = 12 + len(header_bytes) + len(payload) + 4
    prelude = _PRELUDE.pack(total, len(header_bytes))
    prelude_crc = zlib.crc32(prelude)
    head = prelude + _CRC.pack(prelude_crc)
    body = header_bytes + payload
    return head + body + _CRC.pack(zlib.crc32(body, zlib.crc32(head)))


def encode_event(event_type: str, payload: bytes) -> bytes:
    return encode_message(
        (
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ),
        payload,
    )


def encode_exception(exception_type: str, payload: bytes) -> bytes:
    return encode_message(
        (
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ),
        payload,
    )


def _encode_header(name: str, value: str) -> bytes:
    raw_name = name.encode("utf-8")
    raw_value = value.encode("utf-8")
    if len(raw_name) > 255 or len(raw_value) > _MAX_HEADER_VALUE:
        raise EventStreamError(f"event-stream header {name!r} is too long")
    return (
        bytes((len(raw_name),))
        + raw_name
        + bytes((_STRING_TYPE,))
        + len(raw_value).to_bytes(2, "big")
        + raw_value
    )
