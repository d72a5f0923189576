"""``Attempted`` → ``SpendRow``, and the JSON-lines form of a row used by the spill file.

Pure: no I/O. Money travels as its decimal string so a replayed row is exactly the row written.
A row must be writable whatever the request carried, or it would block its whole batch: text the
client chose loses NUL characters (PostgreSQL refuses them) and ``metadata`` that cannot be
written, or is larger than ``MAX_METADATA_BYTES``, is replaced by a note saying so.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from tollgate.call import Attempted
from tollgate.canonical import ChatRequest, TextPart, Usage
from tollgate.store.records import SpendRow

_DATES = ("started_at", "ended_at", "completion_start_at")
# Tags have their own column; guardrail results are the gateway's to write, never the client's.
_NOT_CLIENT_METADATA = frozenset({"tags", "guardrail_information"})
MAX_METADATA_BYTES = 64 * 1024
_NUL = "\x00"


def _text(value: str | None) -> str | None:
    return value.replace(_NUL, "\ufffd") if value is not None and _NUL in value else value


def _json_text(value: Any) -> Any:
    """``value`` with every NUL in its strings (keys too) replaced."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, Mapping):
        return {_text(str(k)): _json_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_text(v) for v in value]
    return value


def _metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    if not metadata:
        return {}
    try:
        encoded = orjson.dumps(metadata, default=_default)
    except (TypeError, orjson.JSONEncodeError) as exc:
        return {"_not_stored": f"metadata cannot be written: {exc}"}
    if len(encoded) > MAX_METADATA_BYTES:
        return {"_not_stored": f"metadata of {len(encoded)} bytes is above {MAX_METADATA_BYTES}"}
    cleaned: dict[str, Any] = _json_text(metadata) if b"\\u0000" in encoded else dict(metadata)
    return cleaned


def _moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def tags_of(attempted: Attempted) -> tuple[str, ...]:
    """Call tags, request tags and ``metadata.tags``, in that order, without repeats."""
    request = attempted.call.request
    tags: list[str] = [*attempted.call.tags, *request.tags]
    extra = request.metadata.get("tags")
    if isinstance(extra, list):
        tags.extend(t for t in extra if isinstance(t, str))
    return tuple(dict.fromkeys(t.replace(_NUL, "\ufffd") for t in tags))


def _prompt(request: object) -> list[dict[str, Any]] | None:
    if not isinstance(request, ChatRequest):
        return None
    out: list[dict[str, Any]] = []
    if request.system:
        out.append({"role": "system", "content": _text(" ".join(p.text for p in request.system))})
    for message in request.messages:
        text = " ".join(p.text for p in message.parts if isinstance(p, TextPart))
        out.append({"role": message.role, "content": _text(text)})
    return out


def spend_row(attempted: Attempted, cost: Decimal, *, store_prompts: bool = False) -> SpendRow:
    call = attempted.call
    principal = call.principal
    usage = attempted.usage or Usage()
    deployment = attempted.deployment
    metadata = _metadata({k: v for k, v in call.request.metadata.items() if k not in _NOT_CLIENT_METADATA})
    if call.guardrails.runs:  # LiteLLM's spend-log field for what each guardrail did
        metadata["guardrail_information"] = list(call.guardrails.runs)
    return SpendRow(
        request_id=call.request_id,
        started_at=datetime.fromtimestamp(attempted.started, UTC),
        ended_at=datetime.fromtimestamp(attempted.ended, UTC),
        api_key=principal.key_hash,
        key_alias=_text(principal.key_alias),
        user_id=_text(principal.user_id),
        team_id=_text(principal.team_id),
        org_id=_text(principal.org_id),
        model_group=_text(attempted.model_group or call.model),
        deployment_id=deployment.id if deployment is not None else None,
        provider_model=deployment.litellm_model if deployment is not None else None,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        spend=cost,
        status_code=attempted.status,
        error_class=type(attempted.error).__name__ if attempted.error is not None else None,
        tags=tags_of(attempted),
        metadata=metadata,
        client_format=call.client_format,
        requested_model=_text(call.model),
        attempts=attempted.attempts,
        stream=attempted.stream,
        cache_hit=attempted.cache_hit,
        completion_start_at=_moment(attempted.first_token_at),
        messages=_prompt(call.request) if store_prompts else None,
    )


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"not serialisable: {type(value).__name__}")


def encode(row: SpendRow) -> bytes:
    """One JSON line (with the trailing newline)."""
    values = {name: getattr(row, name) for name in SpendRow.__dataclass_fields__}
    return orjson.dumps(values, default=_default, option=orjson.OPT_APPEND_NEWLINE)


def decode(line: bytes) -> SpendRow:
    values: dict[str, Any] = orjson.loads(line)
    for name in _DATES:
        if values.get(name) is not None:
            values[name] = datetime.fromisoformat(values[name])
    values["spend"] = Decimal(values["spend"])
    values["tags"] = tuple(values.get("tags") or ())
    known = SpendRow.__dataclass_fields__
    return SpendRow(**{k: v for k, v in values.items() if k in known})
