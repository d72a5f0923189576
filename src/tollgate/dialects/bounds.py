"""Bounds every client body must respect, whatever its dialect, checked once at parse time so a
request the gateway accepts can always be rendered upstream and written to the spend log.

* JSON nesting at most ``MAX_DEPTH`` levels (orjson refuses to write more than 255, PostgreSQL
  JSON columns and the spend log's spill file must take every accepted ``metadata``);
* integers within a signed 64-bit range (Redis counters, SQL ``BIGINT`` columns);
* token counts (``max_tokens`` and the like) between 1 and ``MAX_TOKENS``: a negative or huge
  one would turn the admission reservation into nonsense.

Pure; imports ``errors`` only.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from tollgate.errors import InvalidRequest

MAX_DEPTH = 64
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_TOKENS = 2**31 - 1  # no model has a context anywhere near this


_LONG_NUMBER = re.compile(rb"\d{19}")  # 2**63 has 19 digits: shorter integers always fit


def load_json(body: bytes) -> Any:
    """``orjson.loads`` plus the bounds above; ``InvalidRequest`` for anything else."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    # Scans in C decide whether the Python walk is needed at all: fewer brackets than the depth
    # limit cannot nest deeper than it, and no 19-digit run means no integer out of range.
    deep = body.count(b"{") + body.count(b"[") > MAX_DEPTH
    large = _LONG_NUMBER.search(body) is not None
    if deep or large:
        check_bounds(data, integers=large)
    return data


def check_bounds(data: Any, *, integers: bool = True) -> None:
    """``InvalidRequest`` if ``data`` nests deeper than ``MAX_DEPTH`` or (with ``integers``) holds an
    integer outside the 64-bit range. Iterative, so a hostile depth cannot exhaust the stack."""
    if type(data) is not dict and type(data) is not list:
        if integers and type(data) is int:
            _check_int(data)
        return
    stack: list[tuple[Any, int]] = [(data, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        value, depth = pop()
        if depth > MAX_DEPTH:
            raise InvalidRequest(
                f"The request body is nested more than {MAX_DEPTH} levels deep.", param="body"
            )
        for item in value.values() if type(value) is dict else value:
            kind = type(item)
            if kind is dict or kind is list:
                push((item, depth + 1))
            elif integers and kind is int:
                _check_int(item)


def _check_int(value: int) -> None:
    if not INT64_MIN <= value <= INT64_MAX:
        raise InvalidRequest("The request body has an integer outside the 64-bit range.")


def token_count(value: object, param: str) -> int | None:
    """An optional token count: ``None``, or an integer in ``1..MAX_TOKENS``."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_TOKENS:
        raise InvalidRequest(
            f"Invalid value for '{param}': expected an integer from 1 to {MAX_TOKENS}.", param=param
        )
    return value
