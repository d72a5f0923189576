"""Per-process-tree CPU time and RSS from ``/proc``, plus the box facts the report records."""

from __future__ import annotations

import contextlib
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    cpu_ticks: int  # utime + stime
    child_ticks: int  # cutime + cstime: reaped children
    rss_bytes: int


def read_stat(pid: int) -> ProcStat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    rest = raw[raw.rfind(b")") + 2 :].split()
    return ProcStat(
        pid=pid,
        ppid=int(rest[1]),
        cpu_ticks=int(rest[11]) + int(rest[12]),
        child_ticks=int(rest[13]) + int(rest[14]),
        rss_bytes=int(rest[21]) * PAGE_SIZE,
    )


def process_tree(root: int) -> list[ProcStat]:
    """The root and all its live descendants."""
    stats: dict[int, ProcStat] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = read_stat(int(entry))
            if st is not None:
                stats[st.pid] = st
    if root not in stats:
        return []
    children: dict[int, list[int]] = {}
    for st in stats.values():
        children.setdefault(st.ppid, []).append(st.pid)
    out: list[ProcStat] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        out.append(stats[pid])
        todo.extend(children.get(pid, ()))
    return out


def tree_cpu_seconds(root: int) -> float:
    tree = process_tree(root)
    ticks = sum(st.cpu_ticks for st in tree)
    # Children that already exited and were reaped are folded into their parents' cutime/cstime.
    ticks += sum(st.child_ticks for st in tree)
    return ticks / CLK_TCK


def settle(root: int, limit: float = 5.0) -> None:
    """Wait until the server is idle, so a backlog left by the last run is not billed to the next."""
    deadline = time.monotonic() + limit
    last = tree_cpu_seconds(root)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = tree_cpu_seconds(root)
        if now - last <= 0.021:  # at most two clock ticks in 200 ms (10% of a core): idle
            return
        last = now


def tree_rss_mb(root: int) -> tuple[float, int]:
    tree = process_tree(root)
    return sum(st.rss_bytes for st in tree) / 2**20, len(tree)


def loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"
