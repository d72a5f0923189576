"""A stream on its way to the client, accounted when it ends however it ends.

``relay`` passes the upstream's canonical events on (stamping the client's model name and the
request's id on the start), notes the first token's time and the usage, and lands the ``Flight``
in a ``finally``: complete, failed inside the stream, cut short by the upstream (a stream that
ends without its end marker is a ``StreamTruncated`` failure, never a silent success), or
abandoned by the client. Where the upstream reported no usage, the input estimate and the output
relayed so far are counted (``fill_usage``).
May import: ``accounting.landing``, ``canonical``, ``errors``, ``policy.tokens``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from tollgate.accounting.landing import Flight, Landing, failure
from tollgate.canonical import (
    MessageStart,
    MessageStop,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolArgumentsDelta,
    Usage,
)
from tollgate.errors import GatewayError, StreamTruncated
from tollgate.policy.tokens import text_tokens


async def relay(
    landing: Landing,
    flight: Flight,
    first: StreamEvent,
    rest: AsyncIterator[StreamEvent],
    estimated_input: int,
    clock: Callable[[], float],
) -> AsyncIterator[StreamEvent]:
    call = flight.call
    usage = Usage()
    error: GatewayError | None = None
    stopped = False
    streamed: list[str] = []  # output so far, in case the upstream never reports usage
    try:
        event = first
        while True:
            if isinstance(event, MessageStart):
                usage = usage + event.usage
                event = replace(
                    event,
                    model=call.request.model,
                    id=event.id or f"chatcmpl-{call.request_id}",
                    created=event.created or int(flight.started),
                )
            elif isinstance(event, MessageStop):
                # MessageStop carries the whole message's usage; it supersedes the start's.
                usage = event.usage if event.usage.total_tokens else usage
                stopped = True
            else:
                if flight.first_token_at is None:
                    flight.first_token_at = clock()
                if isinstance(event, TextDelta | ReasoningDelta):
                    streamed.append(event.text)
                elif isinstance(event, ToolArgumentsDelta):
                    streamed.append(event.json)
            yield event
            try:
                event = await anext(rest)
            except StopAsyncIteration:
                break
        if not stopped:
            provider = flight.deployment.provider if flight.deployment is not None else None
            raise StreamTruncated("the upstream stream ended before its end", provider=provider)
    except BaseException as exc:
        error = failure(exc)
        raise
    finally:
        await landing.land(flight, fill_usage(usage, estimated_input, streamed), error)
        await aclose(rest)


def fill_usage(usage: Usage, estimated_input: int, streamed: list[str]) -> Usage:
    """A stream cut short (or an upstream that never reports usage) still used tokens: count
    the input estimate and the output relayed so far where the upstream said nothing."""
    if usage.input_tokens or usage.cache_read_tokens or usage.cache_write_tokens:
        estimated_input = usage.input_tokens
    output = usage.output_tokens or text_tokens("".join(streamed))
    if estimated_input == usage.input_tokens and output == usage.output_tokens:
        return usage
    return replace(usage, input_tokens=estimated_input, output_tokens=output)


async def aclose(events: AsyncIterator[StreamEvent]) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()
