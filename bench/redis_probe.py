"""A counting TCP proxy in front of Redis: how many round trips (and commands) each phase of a
request costs, for the ``production`` scenario.

Put it between tollgate and Redis (``router_settings.redis_port`` = the probe's port). It forwards
bytes both ways untouched and parses the client side's RESP command arrays. A *round trip* is the
group of commands one connection sends before Redis answers (a pipeline or one command); each is
given a phase from its commands (``classify``):

  admission     EVALSHA/EVAL of the admission script (``store/redis_counters.py``)
  settlement    EVALSHA/EVAL of the settlement script
  routing       commands on ``<prefix>:routing:*`` keys (``routing/cooldowns.py``)
  invalidation  PUBLISH/SUBSCRIBE on ``<prefix>:auth:invalidate`` (``auth/invalidation.py``)
  auth          any other key under ``<prefix>:auth:``
  script-load   SCRIPT LOAD/EXISTS (redis-py registers the Lua scripts lazily)
  health        PING
  connection    HELLO, CLIENT, SELECT, INFO (connection set-up)
  other:<CMD>   anything else

It runs its own event loop in a daemon thread of the bench driver, so it costs the gateway
nothing but the extra loopback hop: use it for counting, never while timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

Command = list[bytes]


def _script_shas() -> dict[str, str]:
    """sha1 of tollgate's admission and settlement scripts → phase (empty if not importable)."""
    try:
        from tollgate.store import redis_counters as rc
    except ImportError:
        return {}
    out: dict[str, str] = {}
    for phase, name in (("admission", "_ADMIT"), ("settlement", "_SETTLE")):
        script = getattr(rc, name, None)
        if isinstance(script, str):
            out[hashlib.sha1(script.encode()).hexdigest()] = phase
    return out


def command_phase(cmd: Command, prefix: str, shas: dict[str, str]) -> str:
    name = cmd[0].decode(errors="replace").upper() if cmd else "?"
    args = [a.decode(errors="replace") for a in cmd[1:3]]
    if name in ("EVALSHA", "EVAL") and args:
        body = args[0] if name == "EVALSHA" else hashlib.sha1(cmd[1]).hexdigest()
        return shas.get(body.lower(), f"script {body[:8]}")
    if name == "SCRIPT":
        return "script-load"
    if name == "PING":
        return "health"
    if name in ("HELLO", "CLIENT", "SELECT", "INFO", "AUTH"):
        return "connection"
    if name in ("PUBLISH", "SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE") and args:
        return "invalidation" if args[0].startswith(f"{prefix}:auth:") else f"other:{name}"
    key = args[0] if args else ""
    if key.startswith(f"{prefix}:routing:"):
        return "routing"
    if key.startswith((f"{prefix}:auth:", "{" + prefix + "}:auth:")):
        return "auth"
    return f"other:{name}"


def classify(batch: list[Command], prefix: str, shas: dict[str, str]) -> str:
    """The phase of one round trip: its commands' phases, joined if they differ."""
    phases = sorted({command_phase(cmd, prefix, shas) for cmd in batch})
    return "+".join(phases)


class RespCommands:
    """Incremental parser of the client → server stream (RESP arrays of bulk strings)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Command]:
        self._buf += data
        out: list[Command] = []
        while True:
            parsed = self._one()
            if parsed is None:
                return out
            out.append(parsed)

    def _one(self) -> Command | None:
        buf = self._buf
        if not buf:
            return None
        end = buf.find(b"\r\n")
        if end < 0:
            return None
        if buf[0:1] != b"*":  # an inline command (redis-cli, telnet): one line
            line = bytes(buf[:end])
            del buf[: end + 2]
            return line.split()
        count = int(buf[1:end])
        pos = end + 2
        parts: Command = []
        for _ in range(count):
            end = buf.find(b"\r\n", pos)
            if end < 0:
                return None
            size = int(buf[pos + 1 : end])
            start = end + 2
            if len(buf) < start + size + 2:
                return None
            parts.append(bytes(buf[start : start + size]))
            pos = start + size + 2
        del buf[:pos]
        return parts


@dataclass
class Tally:
    """Round trips and commands per phase (a snapshot can be subtracted from a later one).
    Plain dicts, not Counters, so ``dataclasses.asdict`` turns them into JSON as they are."""

    round_trips: dict[str, int] = field(default_factory=dict)
    commands: dict[str, int] = field(default_factory=dict)
    names: dict[str, int] = field(default_factory=dict)  # command names, e.g. EVALSHA, HINCRBY

    def copy(self) -> Tally:
        return Tally(dict(self.round_trips), dict(self.commands), dict(self.names))

    def __sub__(self, other: Tally) -> Tally:
        def minus(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
            return {k: v - b.get(k, 0) for k, v in a.items() if v - b.get(k, 0) > 0}

        return Tally(
            minus(self.round_trips, other.round_trips),
            minus(self.commands, other.commands),
            minus(self.names, other.names),
        )


class RedisProbe:
    """``start()`` → the port to point tollgate at; ``snapshot()`` → a ``Tally`` so far."""

    def __init__(self, prefix: str, host: str = "127.0.0.1", port: int = 6379) -> None:
        self._prefix = prefix
        self._target = (host, port)
        self._shas = _script_shas()
        self._tally = Tally()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.port = 0

    def start(self) -> int:
        self._thread = threading.Thread(target=self._run, name="redis-probe", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("redis probe did not start")
        return self.port

    def snapshot(self) -> Tally:
        with self._lock:
            return self._tally.copy()

    def stop(self) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    def _record(self, batch: list[Command]) -> None:
        phase = classify(batch, self._prefix, self._shas)
        with self._lock:
            t = self._tally
            t.round_trips[phase] = t.round_trips.get(phase, 0) + 1
            t.commands[phase] = t.commands.get(phase, 0) + len(batch)
            for cmd in batch:
                name = cmd[0].decode(errors="replace").upper() if cmd else "?"
                t.names[name] = t.names.get(name, 0) + 1

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self._server = server
        self.port = int(server.sockets[0].getsockname()[1])
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            with contextlib.suppress(Exception):
                loop.run_until_complete(server.wait_closed())
            loop.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*self._target)
        except OSError:
            client_w.close()
            return
        parser = RespCommands()
        pending: list[Command] = []

        async def upstream() -> None:
            while data := await client_r.read(65536):
                pending.extend(parser.feed(data))
                server_w.write(data)
                await server_w.drain()
            server_w.close()

        async def downstream(done: Callable[[list[Command]], None]) -> None:
            while data := await server_r.read(65536):
                if pending:
                    done(list(pending))
                    pending.clear()
                client_w.write(data)
                await client_w.drain()
            client_w.close()

        tasks = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream(self._record))]
        with contextlib.suppress(Exception):
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for writer in (client_w, server_w):
            with contextlib.suppress(Exception):
                writer.close()
