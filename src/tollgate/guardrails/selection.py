"""Which guardrails run for a request. Pure.

Every ``default_on`` guardrail; every guardrail attached to an entity of the caller's chain (the
key, its user, team or organisation: ``/key/generate|update`` and ``/team/new|update`` take
``guardrails: [...]``); every guardrail the request names (body ``guardrails``, or
``metadata.guardrails: {name: true}``). A request may switch guardrails off
(``metadata.guardrails: {name: false}``, LiteLLM's per-request control) unless a team of its chain
forbids it (``modify_guardrails: false``): then it is refused with 403, as LiteLLM does. The
chosen guardrails run in the order of the config.
"""

from __future__ import annotations

from collections.abc import Sequence

from tollgate.auth.principal import Principal
from tollgate.canonical import GuardrailChoice
from tollgate.config import GuardrailConfig
from tollgate.errors import GuardrailUnavailable, InvalidRequest, PermissionDenied

LOCKED = "Your team does not have permission to modify guardrails."


def select(
    configured: Sequence[GuardrailConfig], principal: Principal, choice: GuardrailChoice
) -> tuple[GuardrailConfig, ...]:
    known = {g.name for g in configured}
    unknown = [name for name in (*choice.named, *choice.switched_off) if name not in known]
    if unknown:
        available = ", ".join(sorted(known)) or "none are configured"
        raise InvalidRequest(
            f"unknown guardrail {', '.join(repr(n) for n in unknown)} (available: {available})",
            param="guardrails",
        )
    wanted = {g.name for g in configured if g.default_on}
    for entity in principal.entities:
        missing = [name for name in entity.guardrails if name not in known]
        if missing:
            # A guardrail an admin attached is gone from the config: refuse rather than run unguarded.
            raise GuardrailUnavailable(
                f"guardrail {', '.join(repr(n) for n in missing)} attached to {entity.kind} "
                f"'{entity.alias or entity.id}' is not configured on this gateway"
            )
        wanted.update(entity.guardrails)
    wanted.update(choice.named)
    if choice.switched_off:
        if any(e.guardrails_locked for e in principal.entities if e.kind == "team"):
            raise PermissionDenied(LOCKED)
        wanted.difference_update(choice.switched_off)
    return tuple(g for g in configured if g.name in wanted)
