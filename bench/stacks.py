"""Summarise py-spy's collapsed stacks (``py-spy record --format raw``) into the tables an engineer
optimises from: where the CPU goes by package, module and function (self time: the frame on top;
inclusive: the frame anywhere in the stack), and which tollgate code the cost sits under.

    .venv/bin/python bench/stacks.py bench/results/stacks-tollgate-production-json.txt [--top 40]

Percentages are of all samples py-spy took of non-idle threads (a thread waiting in epoll is
idle and not sampled), over every process recorded (``--subprocesses``: the workers).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_SITE = re.compile(r".*/(?:site|dist)-packages/")
_STDLIB = re.compile(r".*/lib/python3\.\d+/")
# Frames every stack starts with: process start-up, the worker supervisor, the event loop.
SCAFFOLD = frozenset(
    {"asyncio", "uvloop", "multiprocessing", "runpy", "<string>", "threading", "selectors", "<native>"}
)


@dataclass(frozen=True)
class Frame:
    func: str
    module: str  # dotted, e.g. tollgate.policy.admission, asyncio.base_events, <native>

    @property
    def package(self) -> str:
        """tollgate.<subpackage> for tollgate, else the top-level package."""
        parts = self.module.split(".")
        if parts[0] == "tollgate" and len(parts) > 2:
            return ".".join(parts[:2])
        return parts[0]

    def __str__(self) -> str:
        return f"{self.module}:{self.func}"


SCAFFOLD_MODULES = ("uvicorn._subprocess", "uvicorn.supervisors", "uvicorn.server", "uvicorn._compat")


# Request phases, by a marker frame on the stack; the first phase whose marker is present wins
# (so a settlement in its own shielded task is "settlement" even without Gateway._finish above it).
PHASES = (
    ("spend-log writer (SpendLog._flush_loop → SqlStore.record_spend)", "SpendLog._flush_loop"),
    ("spend spill file (SpendLog._spill_loop)", "SpendLog._spill_loop"),
    ("auth (Inference._auth)", "Inference._auth"),
    ("admission (Gateway._admit: Policy.admit, Redis EVALSHA)", "Gateway._admit"),
    ("settlement (Ticket.settle, Redis EVALSHA; its own task)", "CounterStore.settle"),
    ("upstream call (Router.run → provider → aiohttp)", "Router.run"),
    ("accounting (Gateway._finish: settle, ledger, metrics, spend row)", "Gateway._finish"),
    ("relay / render (Gateway._relay, inference._encode)", "Gateway._relay"),
    ("request parse (openai_request.parse_request)", "parse_request"),
    ("response write (Response.__call__ → uvicorn send)", "Response.__call__"),
    ("rest of Inference._chat", "Inference._chat"),
    ("rest of HotPaths (dispatch)", "HotPaths.__call__"),
    ("redis-py send task (wait_for; no tollgate frame)", "AbstractConnection._send_packed_command"),
    ("uvicorn HTTP protocol (no tollgate frame)", "httptools_impl"),
    ("aiohttp protocol callbacks (no tollgate frame)", "aiohttp."),
    ("SQLAlchemy / asyncpg (no tollgate frame)", "sqlalchemy."),
)


def phase_of(frames: list[Frame]) -> str:
    names = [str(f) for f in frames]
    for label, marker in PHASES:
        if any(marker in n for n in names):
            return label
    return "other (event loop, GC, …)"


def scaffold(frame: Frame) -> bool:
    return frame.package in SCAFFOLD or frame.module.startswith(SCAFFOLD_MODULES)


def module_of(path: str) -> str:
    path = _SITE.sub("", path)
    path = _STDLIB.sub("", path)
    path = re.sub(r"^.*/src/(tollgate/)", r"\1", path)
    path = path.removesuffix(".py").removesuffix("/__init__")
    if path.startswith("/") or not path:
        return f"<native>{Path(path).name and ':' + Path(path).name}"
    return path.strip("/").replace("/", ".")


def parse_frame(text: str) -> Frame | None:
    m = _FRAME.match(text.strip())
    if m is None:
        return None  # process / thread labels
    return Frame(m.group("func"), module_of(m.group("file")))


def parse(text: str) -> list[tuple[list[Frame], int]]:
    out: list[tuple[list[Frame], int]] = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f for f in (parse_frame(part) for part in stack.split(";")) if f is not None]
        if frames:
            out.append((frames, int(count)))
    return out


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}"


def _table(title: str, head: str, rows: Iterable[tuple[str, ...]]) -> list[str]:
    cols = head.count("|") - 1
    return [
        "",
        f"### {title}",
        "",
        head,
        "|" + "---|" * (cols - 1) + "---:|",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def summarise(text: str, title: str = "py-spy profile", top: int = 40) -> str:
    samples = parse(text)
    total = sum(n for _, n in samples) or 1
    self_pkg: Counter[str] = Counter()
    self_mod: Counter[str] = Counter()
    self_fn: Counter[Frame] = Counter()
    incl_fn: Counter[Frame] = Counter()
    incl_mod: Counter[str] = Counter()
    incl_pkg: Counter[str] = Counter()
    under: Counter[str] = Counter()  # innermost tollgate frame, or the library when there is none
    under_mod: Counter[str] = Counter()
    phases: Counter[str] = Counter()
    for frames, n in samples:
        phases[phase_of(frames)] += n
        leaf = frames[-1]
        self_pkg[leaf.package] += n
        self_mod[leaf.module] += n
        self_fn[leaf] += n
        for f in set(frames):
            incl_fn[f] += n
        for m in {f.module for f in frames}:
            incl_mod[m] += n
        for p in {f.package for f in frames}:
            incl_pkg[p] += n
        mine = [f for f in frames if f.module.startswith("tollgate.")]
        if mine:
            under[str(mine[-1])] += n
            under_mod[mine[-1].module] += n
        else:
            # A task the event loop runs for a library (e.g. redis-py's wait_for task, uvicorn's
            # protocol callbacks): billed to the first frame past the process/loop scaffolding.
            outer = next((f for f in frames if not scaffold(f)), leaf)
            under[f"(no tollgate frame) {outer}"] += n
            under_mod[f"(no tollgate frame) {outer.module}"] += n
    out = [f"## {title}", "", f"{total} samples of busy threads (all processes recorded)."]
    out += _table(
        "Cost by request phase (the first marker frame of `PHASES` on the stack)",
        "| phase | % |",
        ((p, _pct(n, total)) for p, n in phases.most_common()),
    )
    out += _table(
        "Self time by package (the code on top of the stack)",
        "| package | self % | inclusive % |",
        ((p, _pct(n, total), _pct(incl_pkg[p], total)) for p, n in self_pkg.most_common(25)),
    )
    out += _table(
        "Cost by the innermost tollgate module on the stack (library time billed to its tollgate caller)",
        "| tollgate module | % |",
        ((m, _pct(n, total)) for m, n in under_mod.most_common(top)),
    )
    out += _table(
        "Cost by the innermost tollgate function on the stack",
        "| tollgate function | % |",
        ((f, _pct(n, total)) for f, n in under.most_common(top)),
    )
    tollgate_incl = [(m, n) for m, n in incl_mod.most_common() if m.startswith("tollgate.")]
    out += _table(
        "Inclusive time by tollgate module (anywhere on the stack)",
        "| tollgate module | inclusive % |",
        ((m, _pct(n, total)) for m, n in tollgate_incl[:top]),
    )
    tollgate_fns = [(f, n) for f, n in incl_fn.most_common() if f.module.startswith("tollgate.")]
    out += _table(
        "Inclusive time by tollgate function",
        "| function | inclusive % | self % |",
        ((str(f), _pct(n, total), _pct(self_fn[f], total)) for f, n in tollgate_fns[:top]),
    )
    out += _table(
        "Self time by function (all code)",
        "| function | self % | inclusive % |",
        ((str(f), _pct(n, total), _pct(incl_fn[f], total)) for f, n in self_fn.most_common(top)),
    )
    out += _table(
        "Self time by module (all code)",
        "| module | self % |",
        ((m, _pct(n, total)) for m, n in self_mod.most_common(top)),
    )
    return "\n".join([*out, ""])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stacks", type=Path, help="py-spy record --format raw output")
    ap.add_argument("--top", type=int, default=40)
    args = ap.parse_args()
    print(summarise(args.stacks.read_text(), title=f"py-spy: {args.stacks.name}", top=args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
