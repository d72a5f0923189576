"""Who a web UI session is: the ``Principal`` behind a session cookie, and the user an SSO
sign-in becomes.

The password admin is a proxy admin (as the master key is), known as ``PROXY_ADMIN_ID`` when that
is set. An SSO session is its user record, read on every request, so a role change, a block or a
deletion applies at once: the principal carries the user's (and organisation's) models, limits
and budgets, which is what the playground's requests are admitted against. ``upsert_sso_user``
creates the user on first sign-in (seeded like a JWT user), keeps email and role in step with the
identity provider, and adds the user to the teams its groups claim names (creating them only
with ``team_id_upsert``). May import ``store`` and ``auth``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from tollgate.auth.chain import entity_of
from tollgate.auth.principal import Entity, Principal, Role
from tollgate.auth.sessions import Session
from tollgate.auth.sso import SsoIdentity
from tollgate.errors import AuthenticationFailed, Conflict, PermissionDenied
from tollgate.store import Store
from tollgate.store.records import EMPTY_POLICY, EntityPolicy, Membership, Team, User

_ROLES: dict[str, Role] = {
    "proxy_admin": "proxy_admin", "proxy_admin_viewer": "proxy_admin_viewer",
    "internal_user": "internal_user", "internal_user_viewer": "internal_user_viewer",
}


class SessionPrincipals:
    def __init__(self, store: Store, proxy_admin_id: str | None) -> None:
        self._store = store
        self._proxy_admin_id = proxy_admin_id

    async def principal(self, session: Session) -> Principal:
        if session.is_password_admin:
            return Principal(kind="session", role="proxy_admin", user_id=self._proxy_admin_id,
                             subject=session.subject, metadata={"ui_session": session.sid})
        assert session.user_id is not None
        async with self._store.transaction() as tx:
            user = await tx.users.get(session.user_id)
            org = await tx.orgs.get(user.org_id) if user is not None and user.org_id else None
        if user is None:
            raise AuthenticationFailed("Authentication Error: your user no longer exists; sign in again.")
        for kind, record in (("user", user), ("organization", org)):
            if record is not None and record.policy.blocked:
                raise PermissionDenied(f"your {kind} is blocked.")
        role = "proxy_admin" if user.id == self._proxy_admin_id else _ROLES.get(user.role, "internal_user")
        entities: list[Entity] = [entity_of("user", user.id, user.policy, user.alias)]
        if org is not None:
            entities.append(entity_of("org", org.id, org.policy, org.alias))
        return Principal(kind="session", entities=tuple(entities), user_id=user.id, org_id=user.org_id,
                         role=role, subject=session.subject,
                         metadata={"ui_session": session.sid, "user_email": user.email})


async def upsert_sso_user(
    store: Store,
    identity: SsoIdentity,
    *,
    seed: EntityPolicy = EMPTY_POLICY,
    proxy_admin_id: str | None,
    team_id_upsert: bool,
    now: Callable[[], datetime],
) -> User:
    """The signed-in person's user record, created or brought up to date."""
    role = "proxy_admin" if identity.user_id == proxy_admin_id else identity.role
    moment = now()
    async with store.transaction() as tx:
        user = await tx.users.get(identity.user_id)
        if user is None:
            policy = replace(seed, metadata={**seed.metadata, "created_by": "sso"})
            user = User(identity.user_id, identity.email, role=role or "internal_user", policy=policy,
                        created_at=moment, updated_at=moment)
            try:
                await tx.users.insert(user)
            except Conflict:
                raise AuthenticationFailed(
                    "Authentication Error: another user already has your email; ask an admin to merge them."
                ) from None
        else:
            changes: dict[str, Any] = {}
            if identity.email and identity.email != user.email:
                changes["email"] = identity.email
            if role is not None and role != user.role:
                changes["role"] = role
            if changes:
                user = replace(user, updated_at=moment, **changes)
                await tx.users.replace(user)
        for team_id in identity.groups:
            team = await tx.teams.get(team_id)
            if team is None:
                if not team_id_upsert:
                    continue
                team = Team(team_id, policy=replace(EMPTY_POLICY, metadata={"created_by": "sso"}),
                            created_at=moment, updated_at=moment)
                await tx.teams.insert(team)
            if await tx.memberships.get(f"{team.id}\x1f{user.id}") is None:
                await tx.memberships.insert(Membership(team.id, user.id))
    return user


__all__ = ["SessionPrincipals", "upsert_sso_user"]
