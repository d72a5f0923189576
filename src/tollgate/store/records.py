"""Persisted records: organisations, teams, users, memberships, virtual keys, DB deployments,
usage plans, spend-log rows (and their aggregates) and audit-log entries.

Plain frozen values shared by every store implementation (SQL and in-memory) and by ``admin``.
Every tenant entity (org, team, user, key) carries the same ``EntityPolicy`` block: allowed models,
rate limits with per-model overrides, any number of budgets plus LiteLLM's single
``max_budget``/``budget_duration``, a soft budget, its running spend, metadata and tags. Money is
``Decimal``. This module imports nothing from tollgate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

ZERO = Decimal(0)
LIMIT_NAMES = ("rpm", "tpm", "input_tpm", "output_tpm", "max_parallel")


@dataclass(frozen=True, slots=True)
class BudgetWindow:
    """``max_budget`` dollars per ``duration`` (``None`` = lifetime); ``reset_at`` ends the window."""

    max_budget: Decimal
    duration: str | None = None
    reset_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EntityPolicy:
    """What an entity allows: models, limits, budgets; plus its spend and descriptive fields."""

    models: tuple[str, ...] = ()
    rpm: int | None = None
    tpm: int | None = None
    input_tpm: int | None = None
    output_tpm: int | None = None
    max_parallel: int | None = None
    # {model: {"rpm": int, "tpm": int, "input_tpm": int, "output_tpm": int, "max_parallel": int}}
    model_limits: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    budgets: tuple[BudgetWindow, ...] = ()
    max_budget: Decimal | None = None
    budget_duration: str | None = None
    budget_reset_at: datetime | None = None
    soft_budget: Decimal | None = None
    spend: Decimal = ZERO
    metadata: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    blocked: bool = False

    def all_budgets(self) -> tuple[BudgetWindow, ...]:
        """The tollgate budgets plus LiteLLM's ``max_budget``/``budget_duration`` as one more."""
        if self.max_budget is None:
            return self.budgets
        single = BudgetWindow(self.max_budget, self.budget_duration, self.budget_reset_at)
        return (*self.budgets, single)


EMPTY_POLICY = EntityPolicy()


@dataclass(frozen=True, slots=True)
class Organization:
    id: str
    alias: str | None = None
    policy: EntityPolicy = EMPTY_POLICY
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    alias: str | None = None
    org_id: str | None = None
    policy: EntityPolicy = EMPTY_POLICY
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str | None = None
    alias: str | None = None
    role: str = "internal_user"
    org_id: str | None = None
    policy: EntityPolicy = EMPTY_POLICY
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Membership:
    team_id: str
    user_id: str
    role: str = "user"  # LiteLLM team roles: "admin" | "user"

    @property
    def id(self) -> str:
        return f"{self.team_id}\x1f{self.user_id}"


@dataclass(frozen=True, slots=True)
class VirtualKey:
    """A virtual key as stored: only ``token`` (the SHA-256 of the key), never the plaintext."""

    token: str
    key_name: str  # "sk-...abcd": enough to recognise a key, useless to an attacker
    key_alias: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    org_id: str | None = None
    expires: datetime | None = None
    policy: EntityPolicy = EMPTY_POLICY
    created_by: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def id(self) -> str:
        return self.token


@dataclass(frozen=True, slots=True)
class StoredDeployment:
    """A model added through ``/model/new``; ``litellm_params`` keeps secrets as given."""

    id: str
    model_name: str
    litellm_params: Mapping[str, Any]
    model_info: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class UsagePlan:
    """A usage plan document as posted, addressed by ``entity_type`` and ``entity_id``."""

    entity_type: str
    entity_id: str
    document: Mapping[str, Any]
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def id(self) -> str:
        return f"{self.entity_type}\x1f{self.entity_id}"


@dataclass(frozen=True, slots=True)
class SpendRow:
    """One request in the spend log; ``spend`` is exact dollars."""

    request_id: str
    started_at: datetime
    ended_at: datetime
    api_key: str | None = None  # the key hash
    key_alias: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    org_id: str | None = None
    model_group: str | None = None
    deployment_id: str | None = None
    provider_model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    spend: Decimal = ZERO
    status_code: int = 200
    error_class: str | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    client_format: str | None = None
    requested_model: str | None = None  # the model the client asked for (before aliases/fallbacks)
    attempts: int = 1
    stream: bool = False
    cache_hit: bool = False  # answered from the response cache (spend 0)
    completion_start_at: datetime | None = None  # first streamed token (TTFT = this - started_at)
    messages: Any = None  # the prompt, only with store_prompts_in_spend_logs
    response: Any = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class SpendGroup(NamedTuple):
    """Spend-log rows aggregated by ``group_by`` (and by day when asked). A named tuple, not a
    frozen dataclass like the others: a month of days per key is 30,000 groups, and a tuple is
    built from a database row in a fraction of a frozen dataclass's ``__init__``."""

    group: str | None
    day: str | None
    spend: Decimal
    requests: int
    prompt_tokens: int
    completion_tokens: int
    failed_requests: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_hits: int = 0


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One admin write: who, what route, which target, before/after (secrets already masked)."""

    id: str
    created_at: datetime
    action: str  # the route, e.g. "/key/generate"
    target_id: str | None = None
    actor_kind: str | None = None  # master | key | jwt | open | session
    actor_key: str | None = None  # the key alias, else the first characters of its hash
    actor_user_id: str | None = None
    actor_subject: str | None = None  # JWT sub
    actor_role: str | None = None
    status_code: int = 200
    before: Any = None
    after: Any = None


@dataclass(frozen=True, slots=True)
class KeyChain:
    """A virtual key with the user, team and organisation it belongs to (the org: the key's own, else
    its team's, else its user's), read together for authentication."""

    key: VirtualKey
    user: User | None = None
    team: Team | None = None
    org: Organization | None = None


SPEND_OF_RECORD_KINDS = ("key", "user", "team", "org", "proxy")


@dataclass(frozen=True, slots=True)
class SpendQuery:
    """The spend of record of one entity — ``kind`` is key (``entity_id`` its hash), user, team, org,
    or proxy (every request) — over the requests that started in ``[start, end)``; with ``start``
    None, its lifetime total (the entity's ``spend``; for the proxy, the whole spend log)."""

    kind: str
    entity_id: str
    start: datetime | None = None
    end: datetime | None = None
