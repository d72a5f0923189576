"""The entity chain of a principal, built once for every way in: a virtual key (``keys.py``) and a
JWT identity (``jwt/store.py``) both turn stored records into the same ``Entity`` values, in the
same order (key or service, user, team, org), refused the same way when one is blocked.

Entities of a user, team or organisation are shared by every principal that belongs to them
(``EntityCache``): a team's thousand cached keys hold one copy of the team, so memory per cached
principal is its key's own entity plus a tuple, whatever the chain.
May import: ``auth.principal``, ``store.records``.
"""

from __future__ import annotations

from collections import OrderedDict

from tollgate.auth.principal import Budget, Entity, EntityKind, Limits, guardrail_settings
from tollgate.store.records import EntityPolicy, Organization, Team, User

Parent = User | Team | Organization


def entity_of(kind: EntityKind, entity_id: str, policy: EntityPolicy, alias: str | None = None) -> Entity:
    """The enforcement layer's view of a stored policy."""
    guardrails, locked = guardrail_settings(policy.metadata)
    return Entity(
        kind=kind,
        id=entity_id,
        models=policy.models,
        limits=Limits(policy.rpm, policy.tpm, policy.input_tpm, policy.output_tpm, policy.max_parallel),
        model_limits={
            model: Limits(v.get("rpm"), v.get("tpm"), v.get("input_tpm"), v.get("output_tpm"),
                          v.get("max_parallel"))
            for model, v in policy.model_limits.items()
        },
        budgets=tuple(Budget(b.max_budget, b.duration) for b in policy.all_budgets()),
        soft_budget=policy.soft_budget,
        alias=alias,
        guardrails=guardrails,
        guardrails_locked=locked,
    )


def blocked_parent(user: User | None, team: Team | None, org: Organization | None) -> tuple[str, str] | None:
    """The kind and id of the first blocked parent (user, team, organization), if one is."""
    for kind, record in (("user", user), ("team", team), ("organization", org)):
        if record is not None and record.policy.blocked:
            return kind, record.id
    return None


def _shape(record: Parent, alias: str | None) -> tuple[object, ...]:
    """What an entity is built from (its running ``spend`` is not: it changes every request)."""
    p = record.policy
    return (alias, p.models, p.rpm, p.tpm, p.input_tpm, p.output_tpm, p.max_parallel, p.model_limits,
            p.all_budgets(), p.soft_budget, guardrail_settings(p.metadata))


class EntityCache:
    """Parent entities by kind and id, so principals of one team share one copy of its entity.

    An entry is reused only while the record it was built from is unchanged (its policy is
    compared), so sharing never serves a stale limit. Bounded LRU.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[str, str], tuple[tuple[object, ...], Entity]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def chain(self, user: User | None, team: Team | None, org: Organization | None) -> list[Entity]:
        """The user, team and org entities (those present), in that order."""
        out: list[Entity] = []
        if user is not None:
            out.append(self._entity("user", user, user.alias))
        if team is not None:
            out.append(self._entity("team", team, team.alias))
        if org is not None:
            out.append(self._entity("org", org, org.alias))
        return out

    def _entity(self, kind: EntityKind, record: Parent, alias: str | None) -> Entity:
        key = (kind, record.id)
        shape = _shape(record, alias)
        found = self._entries.get(key)
        if found is not None and found[0] == shape:
            self._entries.move_to_end(key)
            return found[1]
        entity = entity_of(kind, record.id, record.policy, alias)
        self._entries[key] = (shape, entity)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return entity

    def clear(self) -> None:
        self._entries.clear()
