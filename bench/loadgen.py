"""Load generators: wrk (rps, latency, errors) and a small asyncio client for streaming TTFB."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import CHAT_BODY, CHAT_PATH, MASTER_KEY, WRK_SCRIPTS, log


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    log("wrk not found: apt-get install -y wrk")
    install = ["apt-get", "install", "-y", "wrk"]
    if subprocess.run(install, stdout=subprocess.DEVNULL, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], stdout=subprocess.DEVNULL, check=False)
        subprocess.run(install, stdout=subprocess.DEVNULL, check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is still missing after apt-get install -y wrk")
    return found


_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _latency_ms(text: str, pct: str) -> float | None:
    m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    return float(m.group(1)) * _UNIT_MS[m.group(2)] if m else None


def parse_wrk(text: str) -> dict[str, float]:
    """rps, p50_ms, p99_ms, requests, errors from ``wrk --latency`` output."""
    out: dict[str, float] = {}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", text):
        out["rps"] = float(m.group(1))
    if m := re.search(r"(\d+) requests in", text):
        out["requests"] = float(m.group(1))
    for pct in ("50", "99"):
        if (v := _latency_ms(text, pct)) is not None:
            out[f"p{pct}_ms"] = v
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        errors += sum(int(g) for g in m.groups())
    out["errors"] = float(errors)
    return out


def wrk_script(mode: str, key: str) -> Path:
    """The wrk script of ``mode``, sending ``key`` instead of the master key if they differ."""
    if key == MASTER_KEY:
        return WRK_SCRIPTS[mode]
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"tollgate-bench-{mode}-{digest}.lua"
    text = WRK_SCRIPTS[mode].read_text().replace(f"Bearer {MASTER_KEY}", f"Bearer {key}")
    path.write_text(text)
    return path


def run_wrk(
    wrk: str, port: int, mode: str, conc: int, seconds: float, key: str = MASTER_KEY
) -> tuple[dict[str, float], str]:
    threads = 1 if conc == 1 else 2
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{conc}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(wrk_script(mode, key)),
        f"http://127.0.0.1:{port}{CHAT_PATH}",
    ]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    return parse_wrk(res.stdout), res.stdout + res.stderr


async def _ttfb_once(port: int, payload: bytes, key: str) -> tuple[float, float, int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        request = (
            f"POST {CHAT_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        ).encode() + payload
        t0 = time.perf_counter()
        writer.write(request)
        buf = b""
        first: float | None = None
        while chunk := await reader.read(65536):
            buf += chunk
            if first is None:
                head_end = buf.find(b"\r\n\r\n")
                if head_end >= 0 and b"data:" in buf[head_end:]:
                    first = time.perf_counter() - t0
        total = time.perf_counter() - t0
        status = int(buf[9:12]) if buf.startswith(b"HTTP/1.") else 0
        if first is None or status != 200:
            raise RuntimeError(f"bad streaming answer (status {status}): {buf[:200]!r}")
        return first, total, status
    finally:
        writer.close()


async def _ttfb(port: int, samples: int, key: str) -> list[tuple[float, float]]:
    payload = json.dumps({**CHAT_BODY, "stream": True}).encode()
    out = []
    for _ in range(samples):
        first, total, _status = await asyncio.wait_for(_ttfb_once(port, payload, key), timeout=15)
        out.append((first, total))
    return out


def measure_ttfb(port: int, samples: int, key: str = MASTER_KEY) -> dict[str, float]:
    """Sequential streaming requests on fresh connections: median/p90 TTFB and total, in ms."""
    pairs = asyncio.run(_ttfb(port, samples, key))
    firsts = sorted(p[0] * 1000 for p in pairs)
    totals = sorted(p[1] * 1000 for p in pairs)
    return {
        "ttfb_p50_ms": statistics.median(firsts),
        "ttfb_p90_ms": firsts[int(len(firsts) * 0.9) - 1],
        "total_p50_ms": statistics.median(totals),
    }
