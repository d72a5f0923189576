"""The ``cache`` object of a request body (LiteLLM's per-request response-cache controls), parsed
the same way for every client format: ``{"no-cache": true}``, ``{"no-store": true}``,
``{"ttl": 300}``, ``{"s-maxage": 60}``, ``{"namespace": "team-a"}``, ``{"use-cache": true}``.

SDKs send it through ``extra_body``. It is a gateway control: the dialects model it so it never
reaches an upstream. Pure; imports ``canonical`` and ``errors`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tollgate.canonical import CacheControls
from tollgate.errors import InvalidRequest

FIELD = "cache"
_FLAGS = {"no-cache": "no_cache", "no-store": "no_store", "use-cache": "use_cache"}
_SECONDS = {"ttl": "ttl", "s-maxage": "s_maxage"}
_KNOWN = ", ".join(sorted([*_FLAGS, *_SECONDS, "namespace"]))


def _refuse(param: str, expected: str) -> InvalidRequest:
    return InvalidRequest(f"'{param}' must be {expected}", param=param)


def parse_cache_controls(raw: object, param: str = FIELD) -> CacheControls | None:
    """``None`` when the body has no ``cache`` object; a 400 naming the field when it is wrong."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise _refuse(param, f"an object with any of: {_KNOWN}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"{param}.{key}"
        if key in _FLAGS:
            if not isinstance(value, bool):
                raise _refuse(where, "true or false")
            values[_FLAGS[key]] = value
        elif key in _SECONDS:
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise _refuse(where, "a number of seconds (0 or more)")
            values[_SECONDS[key]] = float(value)
        elif key == "namespace":
            if not isinstance(value, str) or not value or len(value) > 200:
                raise _refuse(where, "a non-empty string of at most 200 characters")
            values["namespace"] = value
        else:
            raise InvalidRequest(f"'{where}' is not a cache control (known: {_KNOWN})", param=where)
    return CacheControls(**values)
