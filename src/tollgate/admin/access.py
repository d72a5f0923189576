"""Role checks the admin services share, and the seams they need (clock, key cache).

The matrix itself (route × role, field × writer) is data in ``matrix.py``; in short:

    role                    read                     write
    master key, proxy_admin everything               everything (but spend: nobody)
    proxy_admin_viewer      everything               nothing
    internal_user           own user, keys, teams    own keys, within own models and limits, only tighter
    team admin              + their team             + members (role user) of their team
    internal_user_viewer    own user, keys, teams    nothing

Every refusal is a ``PermissionDenied`` that says why.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from tollgate.admin.matrix import RouteRule, gate_roles
from tollgate.auth.principal import Principal
from tollgate.errors import PermissionDenied
from tollgate.store.records import EntityPolicy

Clock = Callable[[], datetime]
# Fills an info view with the current window's spend and real resets (policy.standing.BudgetStanding).
Standing = Callable[[dict[str, Any], str, str, EntityPolicy], Awaitable[dict[str, Any]]]


async def as_stored(view: dict[str, Any], kind: str, entity_id: str, policy: EntityPolicy) -> dict[str, Any]:
    return view


def utcnow() -> datetime:
    return datetime.now(UTC)


class KeyCache(Protocol):
    """The authenticator's principal cache; services drop entries whenever a key may have changed."""

    def invalidate(self, key_hash: str) -> None: ...

    def invalidate_all(self) -> None: ...


class NoCache:
    def invalidate(self, key_hash: str) -> None:
        return None

    def invalidate_all(self) -> None:
        return None


def role_of(actor: Principal) -> str:
    if actor.is_admin:
        return "proxy_admin"
    return actor.role or "internal_user"


def can_read_all(actor: Principal) -> bool:
    return role_of(actor) in ("proxy_admin", "proxy_admin_viewer")


def check_route(actor: Principal, route: str, rule: RouteRule) -> None:
    """The route gate: a role the matrix does not list for ``route`` is refused before the body is read."""
    role = role_of(actor)
    if role not in gate_roles(rule):
        raise PermissionDenied(f"{route} is not allowed for the {role} role ({rule.scope})")


def require_admin(actor: Principal, action: str) -> None:
    role = role_of(actor)
    if role == "proxy_admin":
        return
    raise PermissionDenied(f"{action} requires the proxy_admin role; you are {role}")


def require_read_all(actor: Principal, action: str) -> None:
    if not can_read_all(actor):
        raise PermissionDenied(
            f"{action} requires proxy_admin or proxy_admin_viewer; you are {role_of(actor)}"
        )


def require_self(actor: Principal, user_id: str | None, action: str) -> None:
    """Admins and viewers read anyone; other callers only themselves."""
    if can_read_all(actor):
        return
    if user_id is None or actor.user_id != user_id:
        raise PermissionDenied(f"{action}: you may only see your own user ({actor.user_id or 'none'})")


def require_key_writer(actor: Principal, action: str) -> str | None:
    """Admins write any key (→ None); internal users only their own (→ their user id)."""
    role = role_of(actor)
    if role == "proxy_admin":
        return None
    if role == "internal_user" and actor.user_id:
        return actor.user_id
    if role == "internal_user":
        raise PermissionDenied(f"{action}: your key belongs to no user, so it cannot manage keys")
    raise PermissionDenied(f"{action} is not allowed for the {role} role")
