"""The audit log of admin writes: who did it, which route, which target, before/after.

Entries are written by ``journal.Journal`` in the write's own transaction, for API and CLI writes
alike. What they store is already a response view (deployments redacted by their allow-list,
``config.redaction``); ``mask`` is the last line: any string under a secret-looking name keeps only
a short prefix, and a plaintext key becomes its hash. ``AuditService.list`` serves
``GET /audit/logs`` to admins and viewers.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tollgate.admin.access import Clock, require_read_all, utcnow
from tollgate.auth.principal import Principal
from tollgate.store import Store
from tollgate.store.records import AuditEntry

SECRET_WORDS = ("key", "secret", "password", "token", "credential", "authorization")
NOT_SECRET = frozenset({"key_alias", "key_name", "keys", "key_type", "api_key_hash"})


def mask(value: Any, name: str = "") -> Any:
    """A JSON-able copy with secret-looking string fields reduced to a prefix."""
    lowered = name.lower()
    if isinstance(value, str) and lowered not in NOT_SECRET and any(w in lowered for w in SECRET_WORDS):
        return value[:6] + "…" if len(value) > 6 else "…"
    if isinstance(value, Mapping):
        return {str(k): mask(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(v, name) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return mask(asdict(value), name)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def safe_id(value: Any) -> str:
    """Plaintext keys never reach the audit log: they are stored as their hash."""
    from tollgate.auth.keys import hash_key

    text = str(value)
    return hash_key(text) if text.startswith("sk-") else text[:256]


def actor_key(actor: Principal) -> str | None:
    if actor.kind == "master":
        return "master_key"
    if actor.key_alias:
        return actor.key_alias
    return actor.key_hash[:12] if actor.key_hash else None


def entry(
    actor: Principal, action: str, target: str | None, before: Any, after: Any, status: int, now: datetime
) -> AuditEntry:
    return AuditEntry(
        id=secrets.token_hex(16),
        created_at=now,
        action=action,
        target_id=target,
        actor_kind=actor.kind,
        actor_key=actor_key(actor),
        actor_user_id=actor.user_id,
        actor_subject=actor.subject,
        actor_role="proxy_admin" if actor.is_admin else actor.role,
        status_code=status,
        before=mask(before),
        after=mask(after),
    )


def view(e: AuditEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "updated_at": e.created_at.isoformat(),
        "changed_by": e.actor_user_id or e.actor_subject or e.actor_key,
        "changed_by_api_key": e.actor_key,
        "action": e.action,
        "object_id": e.target_id,
        "actor": {
            "kind": e.actor_kind, "key": e.actor_key, "user_id": e.actor_user_id,
            "subject": e.actor_subject, "role": e.actor_role,
        },
        "status_code": e.status_code,
        "before_value": e.before,
        "updated_values": e.after,
    }


class AuditService:
    def __init__(self, store: Store, clock: Clock = utcnow) -> None:
        self._store = store
        self.clock = clock

    async def list(
        self,
        actor: Principal,
        filters: Mapping[str, str],
        *,
        start: datetime | None,
        end: datetime | None,
        page: int,
        page_size: int,
    ) -> dict[str, Any]:
        require_read_all(actor, "/audit/logs")
        rows = await self._store.audit_logs(
            filters, start=start, end=end, limit=page_size + 1, offset=(page - 1) * page_size
        )
        return {
            "audit_logs": [view(e) for e in rows[:page_size]],
            "page": page,
            "page_size": page_size,
            "has_more": len(rows) > page_size,
        }
