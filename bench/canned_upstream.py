"""A canned OpenAI-compatible upstream for benchmarks: as fast as pure Python gets.

It answers every chat completion with the same pre-built bytes, so that what a benchmark measures
is the gateway in front of it, not the upstream. An asyncio ``Protocol`` on uvloop (plain asyncio
when uvloop is missing) with a minimal HTTP/1.1 parser: keep-alive, pipelining, Content-Length or
chunked request bodies.

Routes:
  POST /v1/chat/completions, /chat/completions   JSON chat.completion, or an SSE stream (chunked
                                                  transfer-encoding) when the body has "stream": true
  GET  /v1/models, /models                       the one model
  GET  /health, /health/liveliness               200

Run: ``python bench/canned_upstream.py --port 18000 [--workers 2]``; with ``--workers N`` each
worker process binds its own SO_REUSEPORT socket, so the kernel spreads connections among them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sys

MODEL = "bench-model"
CREATED = 1_700_000_000

_COMPLETION = {
    "id": "chatcmpl-bench0000000000000000000001",
    "object": "chat.completion",
    "created": CREATED,
    "model": MODEL,
    "system_fingerprint": "fp_bench01",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello! I am a canned benchmark reply. How can I help you today?",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 9,
        "completion_tokens": 16,
        "total_tokens": 25,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
}

_STREAM_PIECES = ["Hello", "!", " I am", " a canned", " benchmark", " reply", ".", " How can I help?"]


def _chunk(delta: dict[str, object], finish: str | None) -> dict[str, object]:
    return {
        "id": "chatcmpl-bench0000000000000000000002",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "system_fingerprint": "fp_bench01",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _sse_events() -> list[bytes]:
    events: list[dict[str, object]] = [_chunk({"role": "assistant", "content": "", "refusal": None}, None)]
    events += [_chunk({"content": piece}, None) for piece in _STREAM_PIECES]
    events.append(_chunk({}, "stop"))
    usage_chunk = _chunk({}, None)
    usage_chunk["choices"] = []
    usage_chunk["usage"] = {"prompt_tokens": 9, "completion_tokens": 8, "total_tokens": 17}
    events.append(usage_chunk)
    out = [b"data: " + json.dumps(e, separators=(",", ":")).encode() + b"\n\n" for e in events]
    out.append(b"data: [DONE]\n\n")
    return out


def _as_chunked(parts: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


_JSON_BODY = json.dumps(_COMPLETION, separators=(",", ":")).encode()
_MODELS_BODY = json.dumps(
    {"object": "list", "data": [{"id": MODEL, "object": "model", "created": CREATED, "owned_by": "bench"}]},
    separators=(",", ":"),
).encode()


def _fixed(status: bytes, ctype: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\nContent-Type: "
        + ctype
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nx-request-id: bench\r\n\r\n"
        + body
    )


RESP_JSON = _fixed(b"200 OK", b"application/json", _JSON_BODY)
RESP_MODELS = _fixed(b"200 OK", b"application/json", _MODELS_BODY)
RESP_OK = _fixed(b"200 OK", b"application/json", b'{"status":"ok"}')
RESP_404 = _fixed(b"404 Not Found", b"application/json", b'{"error":{"message":"not found"}}')
RESP_400 = _fixed(b"400 Bad Request", b"application/json", b'{"error":{"message":"bad request"}}')
RESP_SSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
    b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\nx-request-id: bench\r\n\r\n"
    + _as_chunked(_sse_events())
)

_STREAM_MARKERS = (b'"stream":true', b'"stream": true')


class _Incomplete(Exception):
    """The buffer does not hold a whole request yet."""


def _chunked_body(buf: bytearray, start: int) -> tuple[bytes, int]:
    """Decode a chunked body starting at ``start``; return (body, end offset)."""
    body = bytearray()
    pos = start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            raise _Incomplete
        size = int(bytes(buf[pos:eol]).split(b";", 1)[0], 16)
        pos = eol + 2
        if size == 0:
            end = buf.find(b"\r\n\r\n", pos - 2)
            if end < 0:
                raise _Incomplete
            return bytes(body), end + 4
        if len(buf) < pos + size + 2:
            raise _Incomplete
        body += buf[pos : pos + size]
        pos += size + 2


class CannedHTTP(asyncio.Protocol):
    """One connection: parse pipelined HTTP/1.1 requests and write canned answers."""

    __slots__ = ("_buf", "_transport")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport is not an asyncio.Transport subclass, so no isinstance check here.
        self._transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        out: list[bytes] = []
        close = False
        while True:
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                break
            head = bytes(buf[:head_end]).lower()
            body_start = head_end + 4
            try:
                if b"transfer-encoding: chunked" in head:
                    body, end = _chunked_body(buf, body_start)
                else:
                    cl = head.find(b"content-length:")
                    length = 0
                    if cl >= 0:
                        eol = head.find(b"\r\n", cl)
                        length = int(head[cl + 15 : eol if eol >= 0 else None])
                    end = body_start + length
                    if len(buf) < end:
                        break
                    body = bytes(buf[body_start:end])
            except _Incomplete:
                break
            except ValueError:
                out.append(RESP_400)
                close = True
                break
            del buf[:end]
            out.append(self._answer(head, body))
            if b"connection: close" in head:
                close = True
                break
        if out and self._transport is not None:
            self._transport.write(b"".join(out) if len(out) > 1 else out[0])
            if close:
                self._transport.close()

    @staticmethod
    def _answer(head: bytes, body: bytes) -> bytes:
        line_end = head.find(b"\r\n")
        request_line = head[:line_end] if line_end >= 0 else head
        parts = request_line.split(b" ")
        if len(parts) < 2:
            return RESP_400
        method, path = parts[0], parts[1].split(b"?", 1)[0]
        if method == b"post" and path.endswith(b"/chat/completions"):
            if any(m in body for m in _STREAM_MARKERS):
                return RESP_SSE
            return RESP_JSON
        if method == b"get":
            if path in (b"/v1/models", b"/models"):
                return RESP_MODELS
            if path.startswith(b"/health"):
                return RESP_OK
        return RESP_404


def _install_loop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def _listen_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


def serve_one(host: str, port: int) -> None:
    """Run one worker until SIGTERM/SIGINT."""
    _install_loop()
    sock = _listen_socket(host, port)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop: asyncio.Future[None] = loop.create_future()

        def _on_signal() -> None:
            if not stop.done():
                stop.set_result(None)

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, _on_signal)
        server = await loop.create_server(CannedHTTP, sock=sock, backlog=4096)
        async with server:
            await stop

    asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18000)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    print(f"canned upstream on http://{args.host}:{args.port} ({args.workers} worker(s))", flush=True)
    if args.workers <= 1:
        serve_one(args.host, args.port)
        return 0
    children: list[int] = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            try:
                serve_one(args.host, args.port)
            finally:
                os._exit(0)
        children.append(pid)

    def _stop(signum: int, _frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    stopping = False
    while children:
        try:
            pid, _status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid in children:
            children.remove(pid)
        # One worker died: take the rest down so the harness notices instead of measuring half.
        if not stopping:
            stopping = True
            _stop(signal.SIGTERM, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
