"""Cache keys: a versioned hash of what determines an answer, scoped by tenant.

A chat key hashes the model group and the canonical request — messages, system prompt, tools and
tool choice, sampling parameters, stop sequences, response format, reasoning settings and any
fields passed through unmodelled — and leaves out what does not change the answer: the name the
client used for the group, stream or not, routing wishes, tags, metadata, the end-user id and the
cache controls themselves. Because the request is canonical, the same question asked through the
OpenAI, Anthropic or Bedrock format gives the same key. An embedding key hashes one input item
with the settings that shape its vector.

The tenant scope is in the hash, so one team can never read another team's answers: the team,
else the user, else the key (``cache_params.scope: gateway`` shares answers across tenants).
The version prefix changes whenever what goes into the hash changes, which retires old entries.
Pure; imports ``canonical`` and ``auth.principal``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson

from tollgate.auth.principal import Principal
from tollgate.canonical import EMPTY, NO_HINTS, ChatRequest, EmbeddingRequest

VERSION = "v1"
GATEWAY_SCOPE = "gateway"


def tenant_scope(principal: Principal) -> str:
    """Whose answers a request may read: its team, else its user, else its key (else the JWT
    subject, else the kind of caller, e.g. the master key)."""
    if principal.team_id:
        return f"team:{principal.team_id}"
    if principal.user_id:
        return f"user:{principal.user_id}"
    if principal.key_hash:
        return f"key:{principal.key_hash}"
    if principal.subject:
        return f"subject:{principal.subject}"
    return principal.kind


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot hash {type(value).__name__}")


def _number(value: float | None) -> float | None:
    # 1 and 1.0 mean the same temperature; JSON clients send either.
    return None if value is None else float(value)


def _digest(material: tuple[Any, ...]) -> str:
    data = orjson.dumps(material, default=_plain, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest()


def _key(namespace: str | None, digest: str) -> str:
    return f"{namespace}:{VERSION}:{digest}" if namespace else f"{VERSION}:{digest}"


def chat_key(request: ChatRequest, group: str, scope: str, namespace: str | None = None) -> str:
    canonical = replace(
        request,
        model="",
        stream=False,
        include_usage=False,
        hints=NO_HINTS,
        cache=None,
        tags=(),
        metadata=EMPTY,
        user=None,
        temperature=_number(request.temperature),
        top_p=_number(request.top_p),
        presence_penalty=_number(request.presence_penalty),
        frequency_penalty=_number(request.frequency_penalty),
        # Unmodelled fields reach only an upstream of their own format, so that format matters too.
        passthrough_dialect=request.passthrough_dialect if request.passthrough else None,
    )
    return _key(namespace, _digest((VERSION, "chat", group, scope, canonical)))


def embedding_keys(
    request: EmbeddingRequest, group: str, scope: str, namespace: str | None = None
) -> list[str]:
    """One key per input item, in order."""
    shape = (request.dimensions, request.input_type, request.passthrough)
    return [
        _key(namespace, _digest((VERSION, "embedding", group, scope, shape, item))) for item in request.inputs
    ]
