"""From verified JWT claims to an ``Identity``, and from an ``Identity`` to a ``Principal``.

``identity_from_claims`` applies the configured claim mapping (user, email, teams, org, roles,
scopes, client id; machine clients). ``IdentityResolver`` is the seam to the store;
``StaticIdentityResolver`` is the config-only resolver: it trusts the token's names and gives the
entities the configured defaults, which suits deployments without a database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tollgate.auth.jwt.settings import ClaimFields, EntityDefaults, JwtSettings, MachineClient
from tollgate.auth.principal import Entity, EntityKind, Principal, Role
from tollgate.errors import AuthenticationFailed, PermissionDenied

_RANK: dict[Role, int] = {
    "proxy_admin": 4,
    "proxy_admin_viewer": 3,
    "internal_user": 2,
    "internal_user_viewer": 1,
}


@dataclass(frozen=True, slots=True)
class Identity:
    """What a verified token says about its bearer, after the configured claim mapping."""

    issuer: str | None
    subject: str | None
    user_id: str | None
    user_email: str | None
    team_ids: tuple[str, ...]  # team_id_jwt_field first, then team_ids_jwt_field, deduplicated
    org_id: str | None
    client_id: str | None
    client_credentials: bool  # a machine token (OAuth client-credentials grant), not a person
    service_id: str | None  # set when a machine_clients entry matched client_id
    service_team_id: str | None
    service_org_id: str | None
    scopes: frozenset[str]
    roles: tuple[str, ...]
    role: Role | None  # from the admin scope, role_mappings or the machine client entry
    expires_at: float  # exp, epoch seconds
    claims: Mapping[str, Any] = field(default_factory=dict)


class IdentityResolver(Protocol):
    """Turns a verified ``Identity`` into the ``Principal`` whose entity chain policy enforces.

    ``StaticIdentityResolver`` builds entities from the token and config alone. A store-backed
    resolver must: look up the user (``identity.user_id``), the team (first of
    ``identity.team_ids`` the user belongs to, or ``identity.service_team_id``), the organisation
    and, for ``identity.service_id``, a service record; when a record is missing, create it seeded
    with ``JwtSettings.default_user``/``default_team`` if ``user_id_upsert``/``team_id_upsert``
    is on, else raise ``AuthenticationFailed`` (unknown user) or ``PermissionDenied`` (unknown
    team); refuse blocked records with ``PermissionDenied``; apply
    ``enforce_team_based_model_access`` (no team → ``PermissionDenied`` unless admin); and return
    ``Principal(kind="jwt", ...)`` with entities most specific first (service/user, team, org)
    built with ``chain.entity_of``. Results are cached by ``JwtAuthenticator`` for
    ``principal_cache_ttl`` seconds, so admin edits show up within that time (or call
    ``JwtAuthenticator.invalidate_all``).
    """

    async def resolve(self, identity: Identity) -> Principal: ...


def claim(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by name, or by dotted path into nested objects (``resource_access.app.roles``)."""
    if path in claims:
        return claims[path]  # names with dots (Auth0's namespaced URLs) are claims themselves
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _as_str(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _as_strs(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str) and v)
    return ()


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    # RFC 8693/9068 "scope" is space-separated; Okta and Entra use "scp" (list or string).
    found: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(v for v in value if isinstance(v, str))
    return frozenset(found)


def _is_client_credentials(claims: Mapping[str, Any], client_id: str | None, user_id: str | None) -> bool:
    if client_id is None:
        return False
    username = claims.get("preferred_username")
    return (
        claims.get("sub") == client_id  # Cognito, Okta, Auth0 (sub = "<client>@clients")
        or claims.get("sub") == f"{client_id}@clients"
        or claims.get("idtyp") == "app"  # Entra ID app-only tokens
        or claims.get("gty") == "client-credentials"  # Auth0
        or (isinstance(username, str) and username.startswith("service-account-"))  # Keycloak
        or user_id is None
    )


def _best_role(roles: list[Role | None]) -> Role | None:
    best: Role | None = None
    for role in roles:
        if role is not None and (best is None or _RANK[role] > _RANK[best]):
            best = role
    return best


def identity_from_claims(claims: Mapping[str, Any], settings: JwtSettings, fields: ClaimFields) -> Identity:
    user_id = _as_str(claim(claims, fields.user_id)) if fields.user_id else None
    teams: list[str] = []
    if fields.team_id:
        teams.extend(_as_strs(claim(claims, fields.team_id))[:1])
    if fields.team_ids:
        teams.extend(_as_strs(claim(claims, fields.team_ids)))
    client_id = next((c for c in (_as_str(claims.get(f)) for f in settings.client_id_fields) if c), None)
    client_credentials = _is_client_credentials(claims, client_id, user_id)
    machine: MachineClient | None = None
    if client_credentials and client_id is not None:
        machine = settings.machine_clients.get(client_id)
    scopes = _scopes(claims)
    roles = _as_strs(claim(claims, fields.roles)) if fields.roles else ()
    role_candidates: list[Role | None] = [m.internal_role for m in settings.role_mappings if m.role in roles]
    if settings.admin_jwt_scope in scopes:
        role_candidates.append("proxy_admin")
    if machine is not None:
        role_candidates.append(machine.role)
    exp = claims.get("exp")
    iss = claims.get("iss")
    return Identity(
        issuer=iss if isinstance(iss, str) else None,
        subject=_as_str(claims.get("sub")),
        user_id=None if client_credentials else user_id,
        user_email=_as_str(claim(claims, fields.user_email)) if fields.user_email else None,
        team_ids=tuple(dict.fromkeys(teams)),
        org_id=_as_str(claim(claims, fields.org_id)) if fields.org_id else None,
        client_id=client_id,
        client_credentials=client_credentials,
        service_id=machine.service_id if machine else (client_id if client_credentials else None),
        service_team_id=machine.team_id if machine else None,
        service_org_id=machine.org_id if machine else None,
        scopes=scopes,
        roles=roles,
        role=_best_role(role_candidates),
        expires_at=float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else 0.0,
        claims=claims,
    )


def _entity(kind: EntityKind, entity_id: str, defaults: EntityDefaults) -> Entity:
    return Entity(kind=kind, id=entity_id, models=defaults.models, limits=defaults.limits,
                  budgets=defaults.budgets)


class StaticIdentityResolver:
    """Config-only: entities named by the token, with ``default_*_params`` as their policy.

    A client-credentials token becomes a ``service`` entity (its ``machine_clients`` entry's
    service id, team, org and limits; an unmapped client is a service named by its client id).
    A person becomes a ``user`` entity. The first team named (or ``team_id_default``) is the team
    in the chain; all of them are in ``metadata["team_ids"]``.
    """

    def __init__(self, settings: JwtSettings) -> None:
        self._settings = settings

    async def resolve(self, identity: Identity) -> Principal:
        s = self._settings
        machine = s.machine_clients.get(identity.client_id or "") if identity.service_id else None
        entities: list[Entity] = []
        if identity.service_id is not None:
            defaults = machine.defaults if machine else EntityDefaults()
            entities.append(_entity("service", identity.service_id, defaults))
        elif identity.user_id is not None:
            entities.append(_entity("user", identity.user_id, s.default_user))
        team_id = identity.service_team_id or next(iter(identity.team_ids), None) or s.team_id_default
        if team_id is not None:
            entities.append(_entity("team", team_id, s.default_team))
        org_id = identity.service_org_id or identity.org_id
        if org_id is not None:
            entities.append(_entity("org", org_id, EntityDefaults()))
        if not entities:
            raise AuthenticationFailed(
                "Authentication Error: the JWT names no user, team or client this proxy can identify."
            )
        if s.enforce_team_based_model_access and team_id is None and identity.role != "proxy_admin":
            raise PermissionDenied("the token names no team, and team-based model access is enforced.")
        return Principal(
            kind="jwt",
            entities=tuple(entities),
            user_id=identity.user_id,
            team_id=team_id,
            org_id=org_id,
            role=identity.role,
            subject=identity.subject or identity.client_id,
            metadata={
                "issuer": identity.issuer,
                "user_email": identity.user_email,
                "client_id": identity.client_id,
                "service_id": identity.service_id,
                "team_ids": identity.team_ids,
                "scopes": tuple(sorted(identity.scopes)),
            },
        )
