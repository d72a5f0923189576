"""What the gateway holds for one request while conversations are involved: the call as it goes
upstream (prompt rendered, history prepended), the headers to add, and the recording of the
answer. ``Passing`` is the request without chat history (possibly with a rendered prompt);
``Recorded`` belongs to a chat-history session.

A whole answer is recorded before it is returned. A stream is recorded when its ``MessageStop``
arrives, before that event is passed on, so a client that has read the end of a stream finds
its exchange stored; a stream that fails or is abandoned records nothing.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType

from tollgate.call import Call
from tollgate.canonical import ChatRequest, ChatResponse, Message, MessageStart, MessageStop, StreamEvent
from tollgate.conversations.assembly import AnswerAssembly
from tollgate.conversations.history import History
from tollgate.errors import NotFound

log = logging.getLogger("tollgate.conversations")
SESSION_HEADER = "x-session-id"
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


class Passing:
    """A request that records nothing."""

    __slots__ = ("call",)
    headers = _NO_HEADERS

    def __init__(self, call: Call) -> None:
        self.call = call

    async def record(self, response: ChatResponse) -> ChatResponse:
        return response

    def relay(self, events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
        return events

    async def abandon(self) -> None:
        return None


class Recorded:
    """A request in a chat-history session: ``new_messages`` (what the client sent this time, or
    the rendered prompt) and the answer are stored as one exchange."""

    __slots__ = ("_history", "_new_messages", "_started", "call", "headers", "session_id")

    def __init__(
        self,
        call: Call,
        history: History,
        session_id: str,
        new_messages: Sequence[Message],
        *,
        started: bool,
    ) -> None:
        self.call = call
        self.session_id = session_id
        self.headers: Mapping[str, str] = {SESSION_HEADER: session_id}
        self._history = history
        self._new_messages = tuple(new_messages)
        self._started = started  # this request created the session

    async def record(self, response: ChatResponse) -> ChatResponse:
        await self._store(Message("assistant", response.parts))
        return replace(response, session_id=self.session_id)

    def relay(self, events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
        return self._relay(events)

    async def _relay(self, events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
        assembly = AnswerAssembly()
        try:
            async for event in events:
                if isinstance(event, MessageStart):
                    event = replace(event, session_id=self.session_id)
                assembly.add(event)
                if isinstance(event, MessageStop):
                    await self._store(assembly.message())
                yield event
        finally:
            close = getattr(events, "aclose", None)
            if close is not None:
                await close()  # the gateway's relay accounts for the stream when it closes

    async def abandon(self) -> None:
        """The request failed before any answer reached the client."""
        if self._started:
            await self._history.forget_if_empty(self.session_id)

    async def _store(self, answer: Message) -> None:
        request = self.call.request
        assert isinstance(request, ChatRequest)
        try:
            await self._history.record(
                self.session_id, request, answer, new_messages=self._new_messages,
                request_id=self.call.request_id,
            )
        except NotFound:
            # Deleted (by an admin, or purged) while the request ran: the answer stands, and
            # there is no session left to record it in.
            log.warning("chat session %s was deleted before its exchange could be recorded", self.session_id)
