"""Store-backed JWT identities: a verified token's user, team and organisation read from the store.

``StoreIdentityResolver`` gives a JWT caller the same entity chain a virtual key of that user/team
would get (user → team → org, with the models, limits and budgets stored for them), creating
unknown users and teams on first sight when ``user_id_upsert``/``team_id_upsert`` are on and
refusing them otherwise. A client-credentials token becomes a ``service`` entity (limits from its
``machine_clients`` entry) inside its mapped team. ``JwtAuthenticator`` caches the result per token
for ``principal_cache_ttl`` seconds and drops it on admin writes (``invalidate_all``).

Refusals never quote claim values: the token's contents are the caller's, not ours to echo.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from tollgate.auth.chain import EntityCache, blocked_parent
from tollgate.auth.jwt.identity import Identity
from tollgate.auth.jwt.settings import EntityDefaults, JwtSettings, MachineClient
from tollgate.auth.principal import Entity, Principal, Role
from tollgate.errors import AuthenticationFailed, ConfigError, Conflict, PermissionDenied
from tollgate.store import Store, StoreTx
from tollgate.store.records import EntityPolicy, Membership, Organization, Team, User

R = TypeVar("R", User, Team)
_PREFIX = "Authentication Error: "
_STORED_ROLES: dict[str, Role] = {
    "proxy_admin": "proxy_admin",
    "proxy_admin_viewer": "proxy_admin_viewer",
    "internal_user": "internal_user",
    "internal_user_viewer": "internal_user_viewer",
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


def policy_of(defaults: EntityDefaults) -> EntityPolicy:
    """``default_*_params`` as a stored policy (one budget becomes LiteLLM's ``max_budget``)."""
    budget = defaults.budgets[0] if defaults.budgets else None
    return EntityPolicy(
        models=defaults.models,
        rpm=defaults.limits.rpm,
        tpm=defaults.limits.tpm,
        max_parallel=defaults.limits.max_parallel,
        max_budget=budget.max_budget if budget else None,
        budget_duration=budget.duration if budget else None,
    )


def user_seed(
    jwt_defaults: EntityDefaults,
    internal_user_params: Mapping[str, Any] | None = None,
    max_internal_user_budget: float | None = None,
    internal_user_budget_duration: str | None = None,
) -> EntityPolicy:
    """The policy an upserted JWT user starts with.

    ``litellm_jwtauth.default_user_params`` wins field by field over
    ``litellm_settings.default_internal_user_params``, which wins over
    ``max_internal_user_budget``/``internal_user_budget_duration``. Raises ``ConfigError``.
    """
    where = "litellm_settings.default_internal_user_params"
    params = dict(internal_user_params or {})
    base = EntityPolicy(
        models=_models(params.get("models"), where),
        rpm=_int(params, "rpm_limit", where),
        tpm=_int(params, "tpm_limit", where),
        max_parallel=_int(params, "max_parallel_requests", where),
        max_budget=_money(params.get("max_budget"), f"{where}.max_budget"),
        budget_duration=_text(params, "budget_duration", where),
    )
    if base.max_budget is None and max_internal_user_budget is not None:
        amount = _money(max_internal_user_budget, "litellm_settings.max_internal_user_budget")
        base = replace(base, max_budget=amount, budget_duration=internal_user_budget_duration)
    top = policy_of(jwt_defaults)
    return replace(
        base,
        models=top.models or base.models,
        rpm=top.rpm if top.rpm is not None else base.rpm,
        tpm=top.tpm if top.tpm is not None else base.tpm,
        max_parallel=top.max_parallel if top.max_parallel is not None else base.max_parallel,
        max_budget=top.max_budget if top.max_budget is not None else base.max_budget,
        budget_duration=top.budget_duration if top.max_budget is not None else base.budget_duration,
    )


class StoreIdentityResolver:
    """``IdentityResolver`` over the store; see the module docstring for the rules."""

    def __init__(
        self,
        settings: JwtSettings,
        store: Store,
        *,
        user_seed: EntityPolicy | None = None,
        team_seed: EntityPolicy | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._settings = settings
        self._store = store
        self._user_seed = user_seed if user_seed is not None else policy_of(settings.default_user)
        self._team_seed = team_seed if team_seed is not None else policy_of(settings.default_team)
        self._clock = clock
        self._parents = EntityCache()

    async def resolve(self, identity: Identity) -> Principal:
        s = self._settings
        machine = s.machine_clients.get(identity.client_id or "") if identity.service_id else None
        team_ids = self._team_candidates(identity)
        async with self._store.transaction() as tx:
            user = await tx.users.get(identity.user_id) if identity.user_id else None
            team = await _first_team(tx, team_ids)
        if identity.user_id is not None and user is None:
            if s.user_id_upsert:
                user = await self._upsert_user(identity)
            elif identity.role != "proxy_admin":
                raise AuthenticationFailed(
                    _PREFIX + "the token's user is not known to this proxy (user_id_upsert is off)."
                )
        if team is None and team_ids:
            if not s.team_id_upsert:
                raise PermissionDenied(
                    "none of the token's teams is known to this proxy (team_id_upsert is off)."
                )
            team = await self._upsert_team(team_ids[0])
        if user is not None and team is not None and (s.user_id_upsert or s.team_id_upsert):
            await self._ensure_member(team.id, user.id)
        org_id = identity.service_org_id or identity.org_id or (team.org_id if team else None) or (
            user.org_id if user else None
        )
        org: Organization | None = None
        if org_id is not None:
            async with self._store.transaction() as tx:
                org = await tx.orgs.get(org_id)
        blocked = blocked_parent(user, team, org)
        if blocked is not None:  # the id is not named: it may come from the token's claims
            raise PermissionDenied(f"this token's {blocked[0]} is blocked.")
        role = identity.role if identity.role is not None else _STORED_ROLES.get(user.role) if user else None
        if s.enforce_team_based_model_access and team is None and role != "proxy_admin":
            raise PermissionDenied("the token names no team, and team-based model access is enforced.")
        entities = self._entities(identity, machine, user, team, org)
        if not entities and role != "proxy_admin":
            raise AuthenticationFailed(
                _PREFIX + "the JWT names no user, team or client this proxy can identify."
            )
        return Principal(
            kind="jwt",
            entities=tuple(entities),
            user_id=user.id if user else None,
            team_id=team.id if team else None,
            org_id=org_id,
            role=role,
            subject=identity.subject or identity.client_id,
            metadata={
                "issuer": identity.issuer,
                "user_email": identity.user_email or (user.email if user else None),
                "client_id": identity.client_id,
                "service_id": identity.service_id,
                "team_ids": identity.team_ids,
                "scopes": tuple(sorted(identity.scopes)),
            },
        )

    def _team_candidates(self, identity: Identity) -> tuple[str, ...]:
        if identity.service_team_id is not None:
            return (identity.service_team_id,)
        if identity.team_ids:
            return identity.team_ids
        default = self._settings.team_id_default
        return (default,) if default else ()

    def _entities(
        self, identity: Identity, machine: MachineClient | None, user: User | None, team: Team | None,
        org: Organization | None,
    ) -> list[Entity]:
        entities: list[Entity] = []
        if identity.service_id is not None:
            d = machine.defaults if machine else EntityDefaults()
            entities.append(Entity(kind="service", id=identity.service_id, models=d.models, limits=d.limits,
                                   budgets=d.budgets))
        return entities + self._parents.chain(user, team, org)

    async def _upsert_user(self, identity: Identity) -> User:
        assert identity.user_id is not None
        now = self._clock()
        # A token's admin role is applied per request, never written down: revoking the scope at
        # the issuer must revoke it here too.
        stored_role = "internal_user_viewer" if identity.role == "internal_user_viewer" else "internal_user"
        policy = replace(self._user_seed, metadata={"created_by": "jwt", "issuer": identity.issuer})
        user = User(id=identity.user_id, email=identity.user_email, role=stored_role, org_id=identity.org_id,
                    policy=policy, created_at=now, updated_at=now)
        return await self._insert(user, lambda tx: tx.users.insert(user), lambda tx: tx.users.get(user.id))

    async def _upsert_team(self, team_id: str) -> Team:
        now = self._clock()
        team = Team(id=team_id, policy=replace(self._team_seed, metadata={"created_by": "jwt"}),
                    created_at=now, updated_at=now)
        return await self._insert(team, lambda tx: tx.teams.insert(team), lambda tx: tx.teams.get(team_id))

    async def _ensure_member(self, team_id: str, user_id: str) -> None:
        member = Membership(team_id, user_id)
        try:
            async with self._store.transaction() as tx:
                if await tx.memberships.get(member.id) is None:
                    await tx.memberships.insert(member)
        except Conflict:
            pass  # a concurrent first request added it

    async def _insert(
        self, record: R, insert: Callable[[StoreTx], Awaitable[None]],
        reread: Callable[[StoreTx], Awaitable[R | None]],
    ) -> R:
        """Insert, or — when a concurrent first request won the race — read the winner's row."""
        try:
            async with self._store.transaction() as tx:
                await insert(tx)
            return record
        except Conflict:
            async with self._store.transaction() as tx:
                found = await reread(tx)
            if found is None:
                raise
            return found


async def _first_team(tx: StoreTx, team_ids: tuple[str, ...]) -> Team | None:
    for team_id in team_ids:
        team = await tx.teams.get(team_id)
        if team is not None:
            return team
    return None


def _models(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{where}.models must be a list of model names")


def _int(params: Mapping[str, Any], name: str, where: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}.{name} must be an integer")
    return value


def _text(params: Mapping[str, Any], name: str, where: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}.{name} must be a string")
    return value


def _money(value: Any, where: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigError(f"{where} must be a number")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{where} must be a number") from None


__all__ = ["StoreIdentityResolver", "policy_of", "user_seed"]
