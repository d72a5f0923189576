"""The ``Principal``: an authenticated caller and the chain of entities whose policies apply.

Every request resolves to one (DESIGN.md §0.1 "Usage plans"). Each ``Entity`` of the chain (key,
user, team, organisation, service, and the proxy itself) may restrict models, carry rate limits
(with per-model overrides) and any number of budgets; a request is admitted only if every entity
admits it. These are plain values: ``policy`` decides on them, ``store`` records produce them.

An entity may also attach guardrails (run on every request of the chain) and, for a team, forbid
its members from switching guardrails off; both live in the stored policy's metadata, read by
``guardrail_settings``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

EntityKind = Literal["key", "user", "team", "org", "service", "proxy", "end_user"]
Role = Literal["proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-minute rate limits and a concurrency cap; ``None`` means unlimited."""

    rpm: int | None = None
    tpm: int | None = None
    input_tpm: int | None = None
    output_tpm: int | None = None
    max_parallel: int | None = None

    @property
    def empty(self) -> bool:
        return (
            self.rpm is None
            and self.tpm is None
            and self.input_tpm is None
            and self.output_tpm is None
            and self.max_parallel is None
        )


NO_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Budget:
    """``max_budget`` dollars per ``duration`` ("1d", "7d", "1mo", …; ``None`` = lifetime)."""

    max_budget: Decimal
    duration: str | None = None


@dataclass(frozen=True, slots=True, weakref_slot=True)
class Entity:
    kind: EntityKind
    id: str
    models: tuple[str, ...] = ()  # allowed model names/aliases/wildcards; empty = any
    limits: Limits = NO_LIMITS
    model_limits: Mapping[str, Limits] = field(default_factory=dict)
    budgets: tuple[Budget, ...] = ()
    soft_budget: Decimal | None = None
    alias: str | None = None
    guardrails: tuple[str, ...] = ()  # guardrail names attached to this entity
    guardrails_locked: bool = False  # members may not switch guardrails off per request
    # Admission's compiled share of this entity (policy/plans.py): a cache, not part of its value,
    # kept here so that it lives exactly as long as the entity.
    parts: dict[Any, Any] = field(default_factory=dict, init=False, compare=False, repr=False)


@dataclass(frozen=True, slots=True, weakref_slot=True)
class Principal:
    kind: Literal["master", "key", "jwt", "open", "session"]  # session: a web UI sign-in
    entities: tuple[Entity, ...] = ()  # most specific first: key, user, team, org, proxy
    key_hash: str | None = None
    key_alias: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    org_id: str | None = None
    role: Role | None = None
    subject: str | None = None  # JWT sub / client id
    metadata: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    # Admission plans per route (policy/plans.py): a cache, not part of the principal's value, kept
    # here so that they live exactly as long as the principal (the principal cache bounds them).
    plans: dict[Any, Any] = field(default_factory=dict, init=False, compare=False, repr=False)

    @property
    def is_admin(self) -> bool:
        return self.kind in ("master", "open") or self.role == "proxy_admin"


MASTER = Principal(kind="master", role="proxy_admin")
OPEN = Principal(kind="open", role="proxy_admin")  # no master key configured: LiteLLM lets everyone in


def guardrail_settings(metadata: Mapping[str, Any]) -> tuple[tuple[str, ...], bool]:
    """(attached guardrail names, locked) from an entity's metadata: ``guardrails`` is the list of
    names (LiteLLM's storage for keys and teams); ``modify_guardrails: false`` — or LiteLLM's
    ``guardrails: {"modify_guardrails": false}`` — forbids switching guardrails off."""
    raw = metadata.get("guardrails")
    names = tuple(n for n in raw if isinstance(n, str)) if isinstance(raw, list) else ()
    nested = raw.get("modify_guardrails") if isinstance(raw, Mapping) else None
    return names, metadata.get("modify_guardrails") is False or nested is False
