"""May this principal use this model? Pure functions over the ``Principal``'s entity chain.

Every entity of the chain must allow the model, so a team's list bounds its keys' lists. An
empty list allows any model. A model is allowed when the list allows the name the client used or
the model group that name resolves to (an alias, or a Bedrock upstream id, of an allowed group
reaches only that group's deployments). Patterns use ``*`` as a wildcard for any run of characters
(``bedrock/*``, ``claude-*``, ``*``); LiteLLM's special names ``all-proxy-models`` and
``all-team-models`` allow any model at that level (a key's ``all-team-models`` is still bounded
by its team's own list, which is checked in turn). A key's refusal is a 401, as LiteLLM's
"key not allowed to access model"; any other level's is a 403.
May import: ``auth.principal``, ``errors``.
"""

from __future__ import annotations

from collections.abc import Sequence

from tollgate.auth.principal import Entity, Principal
from tollgate.errors import ModelAccessDenied

_ANY = frozenset({"*", "all-proxy-models", "all-team-models"})


def matches(pattern: str, model: str) -> bool:
    """Whether ``model`` matches ``pattern``, where ``*`` stands for any run of characters."""
    if "*" not in pattern:
        return pattern == model
    pieces = pattern.split("*")
    first, last = pieces[0], pieces[-1]
    if not model.startswith(first) or not model.endswith(last):
        return False
    if len(first) + len(last) > len(model):
        return False
    position = len(first)
    end = len(model) - len(last)
    for piece in pieces[1:-1]:
        found = model.find(piece, position, end)
        if found < 0:
            return False
        position = found + len(piece)
    return True


def allows(models: Sequence[str], model: str) -> bool:
    """Whether an entity's ``models`` list admits ``model`` (an empty list admits any)."""
    if not models:
        return True
    return any(pattern in _ANY or matches(pattern, model) for pattern in models)


def denying_entity(principal: Principal, model: str, group: str | None = None) -> Entity | None:
    """The first entity of the chain (most specific first) that allows neither ``model`` nor the
    ``group`` it resolves to."""
    for entity in principal.entities:
        if not entity.models or allows(entity.models, model):
            continue
        if group is None or group == model or not allows(entity.models, group):
            return entity
    return None


def check_access(principal: Principal, model: str, group: str | None = None) -> None:
    """Raise ``ModelAccessDenied`` naming the model and the refusing level, or return."""
    entity = denying_entity(principal, model, group)
    if entity is None:
        return
    level = entity.kind
    allowed = list(entity.models)
    name = entity.alias or entity.id
    message = (
        f"{level} not allowed to access model. This {level} can only access models={allowed}. "
        f"Tried to access {model}"
    )
    if entity.kind != "key":
        message += f" ({level} '{name}')"
    raise ModelAccessDenied(
        message, status=401 if entity.kind == "key" else 403, param="model", code="model_access_denied"
    )
