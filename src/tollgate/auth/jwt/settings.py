"""JWT/OIDC settings: ``general_settings.litellm_jwtauth`` plus LiteLLM's ``JWT_*`` env vars, parsed once.

``parse_jwt_settings(litellm_jwtauth, env)`` validates everything at start-up (raising
``ConfigError`` naming the field) into a frozen ``JwtSettings``, so the per-request path reads plain
attributes. Every field is documented in docs/jwt.md. Pure: the environment is passed in.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from tollgate.auth.principal import NO_LIMITS, Budget, Limits, Role
from tollgate.errors import ConfigError

DEFAULT_ALGORITHMS = ("RS256", "ES256", "PS256")
# Everything PyJWT can verify with a key from a JWKS; "none" is never accepted.
KNOWN_ALGORITHMS = frozenset(
    {
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
        "ES256", "ES256K", "ES384", "ES512", "EdDSA",
        "HS256", "HS384", "HS512",
    }
)
# Where issuers put the OAuth client id: Cognito/RFC 9068 client_id, OIDC azp, Okta cid, Entra v1 appid.
DEFAULT_CLIENT_ID_FIELDS = ("client_id", "azp", "cid", "appid")

_ROLE_NAMES: dict[str, Role | None] = {
    "proxy_admin": "proxy_admin",
    "litellm_proxy_admin": "proxy_admin",
    "proxy_admin_viewer": "proxy_admin_viewer",
    "litellm_proxy_admin_viewer": "proxy_admin_viewer",
    "internal_user": "internal_user",
    "internal_user_viewer": "internal_user_viewer",
    "team": None,  # LiteLLM's "team" role: no proxy role, access comes from the team itself
}


@dataclass(frozen=True, slots=True)
class ClaimFields:
    """Which claims carry what; names may be dotted paths (``resource_access.app.roles``)."""

    user_id: str | None = "sub"
    user_email: str | None = None
    team_id: str | None = None
    team_ids: str | None = None
    org_id: str | None = None
    roles: str | None = None


@dataclass(frozen=True, slots=True)
class IssuerSettings:
    issuer: str | None  # None: the unpinned JWT_PUBLIC_KEY_URL entry (any iss its keys signed)
    audiences: tuple[str, ...] = ()  # empty: aud not checked
    jwks_urls: tuple[str, ...] = ()  # empty: discovered from {issuer}/.well-known/openid-configuration
    fields: ClaimFields = ClaimFields()
    required_scopes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EntityDefaults:
    """Models, limits and budgets given to an identity the token names (seed values on upsert)."""

    models: tuple[str, ...] = ()
    limits: Limits = NO_LIMITS
    budgets: tuple[Budget, ...] = ()


@dataclass(frozen=True, slots=True)
class MachineClient:
    """A client-credentials OAuth client acting as a service identity inside a team."""

    client_id: str
    service_id: str
    team_id: str | None = None
    org_id: str | None = None
    role: Role | None = None
    defaults: EntityDefaults = EntityDefaults()


@dataclass(frozen=True, slots=True)
class RoleMapping:
    role: str  # a value found in the roles claim
    internal_role: Role | None


@dataclass(frozen=True, slots=True)
class JwtSettings:
    issuers: tuple[IssuerSettings, ...]
    fields: ClaimFields = ClaimFields()
    admin_jwt_scope: str = "litellm_proxy_admin"
    user_id_upsert: bool = False
    team_id_upsert: bool = False
    enforce_team_based_model_access: bool = False
    team_id_default: str | None = None
    user_allowed_email_domain: str | None = None
    role_mappings: tuple[RoleMapping, ...] = ()
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway: float = 30.0
    required_claims: tuple[str, ...] = ("exp",)
    required_scopes: tuple[str, ...] = ()
    client_id_fields: tuple[str, ...] = DEFAULT_CLIENT_ID_FIELDS
    machine_clients: Mapping[str, MachineClient] = field(default_factory=dict)
    default_user: EntityDefaults = EntityDefaults()
    default_team: EntityDefaults = EntityDefaults()
    public_key_ttl: float = 600.0
    jwks_min_refresh_interval: float = 30.0
    allow_insecure_http: bool = False
    token_cache_size: int = 10_000
    principal_cache_ttl: float = 60.0


def parse_jwt_settings(raw: Mapping[str, Any] | None, env: Mapping[str, str]) -> JwtSettings:
    """``raw`` is ``general_settings.litellm_jwtauth``; ``env`` supplies ``JWT_PUBLIC_KEY_URL`` & co."""
    cfg = dict(raw or {})
    fields = _claim_fields(cfg, ClaimFields(), "litellm_jwtauth")
    allow_http = _bool(cfg, "allow_insecure_http", False)
    required_scopes = _str_tuple(cfg, "required_scopes")
    issuers = [
        _issuer(item, fields, required_scopes, allow_http, f"litellm_jwtauth.issuers[{i}]")
        for i, item in enumerate(_list(cfg, "issuers"))
    ]
    env_urls = tuple(u.strip() for u in env.get("JWT_PUBLIC_KEY_URL", "").split(",") if u.strip())
    env_issuer = env.get("JWT_ISSUER", "").strip() or None
    if env_urls or env_issuer:
        for url in env_urls:
            check_jwks_url(url, allow_http, "JWT_PUBLIC_KEY_URL")
        audience = env.get("JWT_AUDIENCE", "").strip()
        issuers.append(
            IssuerSettings(
                issuer=env_issuer,
                audiences=tuple(a.strip() for a in audience.split(",") if a.strip()),
                jwks_urls=env_urls,
                fields=fields,
                required_scopes=required_scopes,
            )
        )
    if not issuers:
        raise ConfigError(
            "enable_jwt_auth is on but no issuer is configured: set JWT_PUBLIC_KEY_URL "
            "(and JWT_ISSUER, JWT_AUDIENCE) or general_settings.litellm_jwtauth.issuers"
        )
    if sum(1 for i in issuers if i.issuer is None) > 1:
        raise ConfigError("only one JWT issuer may be left unpinned (JWT_ISSUER unset)")
    algorithms = _str_tuple(cfg, "algorithms") or DEFAULT_ALGORITHMS
    for alg in algorithms:
        if alg not in KNOWN_ALGORITHMS:
            raise ConfigError(f"litellm_jwtauth.algorithms: {alg!r} is not a supported JWT algorithm")
    machine_clients: dict[str, MachineClient] = {}
    for i, item in enumerate(_list(cfg, "machine_clients")):
        client = _machine_client(item, f"litellm_jwtauth.machine_clients[{i}]")
        machine_clients[client.client_id] = client
    return JwtSettings(
        issuers=tuple(issuers),
        fields=fields,
        admin_jwt_scope=_str(cfg, "admin_jwt_scope") or "litellm_proxy_admin",
        user_id_upsert=_bool(cfg, "user_id_upsert", False),
        team_id_upsert=_bool(cfg, "team_id_upsert", False),
        enforce_team_based_model_access=_bool(cfg, "enforce_team_based_model_access", False),
        team_id_default=_str(cfg, "team_id_default"),
        user_allowed_email_domain=_str(cfg, "user_allowed_email_domain"),
        role_mappings=tuple(_role_mapping(m, f"litellm_jwtauth.role_mappings[{i}]")
                            for i, m in enumerate(_list(cfg, "role_mappings"))),
        algorithms=algorithms,
        leeway=_number(cfg, "leeway", 30.0),
        required_claims=_str_tuple(cfg, "required_claims") or ("exp",),
        required_scopes=required_scopes,
        client_id_fields=_str_tuple(cfg, "client_id_jwt_fields") or DEFAULT_CLIENT_ID_FIELDS,
        machine_clients=machine_clients,
        default_user=_defaults(cfg.get("default_user_params"), "litellm_jwtauth.default_user_params"),
        default_team=_defaults(cfg.get("default_team_params"), "litellm_jwtauth.default_team_params"),
        public_key_ttl=_number(cfg, "public_key_ttl", 600.0),
        jwks_min_refresh_interval=_number(cfg, "jwks_min_refresh_interval", 30.0),
        allow_insecure_http=allow_http,
        token_cache_size=int(_number(cfg, "token_cache_size", 10_000)),
        principal_cache_ttl=_number(cfg, "principal_cache_ttl", 60.0),
    )


def check_jwks_url(url: str, allow_http: bool, where: str) -> None:
    """HTTPS only, except plain http to a loopback host or when ``allow_insecure_http`` is set."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and (allow_http or is_loopback(parts.hostname)):
        return
    raise ConfigError(
        f"{where}: key URLs must use https:// (plain http:// only for loopback hosts or with "
        "litellm_jwtauth.allow_insecure_http: true)"
    )


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _issuer(
    raw: Any, fields: ClaimFields, scopes: tuple[str, ...], allow_http: bool, where: str
) -> IssuerSettings:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping")
    cfg = dict(raw)
    issuer = _str(cfg, "issuer", where)
    if not issuer:
        raise ConfigError(f"{where}.issuer is required")
    urls = _str_tuple(cfg, "jwks_url", where) + _str_tuple(cfg, "jwks_urls", where)
    for url in urls:
        check_jwks_url(url, allow_http, f"{where}.jwks_url")
    if not urls:
        check_jwks_url(issuer, allow_http, f"{where}.issuer (used for discovery)")
    return IssuerSettings(
        issuer=issuer,
        audiences=_str_tuple(cfg, "audience", where),
        jwks_urls=urls,
        fields=_claim_fields(cfg, fields, where),
        required_scopes=_str_tuple(cfg, "required_scopes", where) or scopes,
    )


def _claim_fields(cfg: Mapping[str, Any], base: ClaimFields, where: str) -> ClaimFields:
    def pick(name: str, current: str | None) -> str | None:
        return _str(cfg, name, where) if name in cfg else current

    return ClaimFields(
        user_id=pick("user_id_jwt_field", base.user_id),
        user_email=pick("user_email_jwt_field", base.user_email),
        team_id=pick("team_id_jwt_field", base.team_id),
        team_ids=pick("team_ids_jwt_field", base.team_ids),
        org_id=pick("org_id_jwt_field", base.org_id),
        roles=pick("roles_jwt_field", base.roles),
    )


def _machine_client(raw: Any, where: str) -> MachineClient:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping")
    client_id = _str(raw, "client_id", where)
    if not client_id:
        raise ConfigError(f"{where}.client_id is required")
    role = _str(raw, "role", where)
    return MachineClient(
        client_id=client_id,
        service_id=_str(raw, "service_id", where) or client_id,
        team_id=_str(raw, "team_id", where),
        org_id=_str(raw, "org_id", where),
        role=_role(role, f"{where}.role") if role else None,
        defaults=_defaults(raw, where),
    )


def _role_mapping(raw: Any, where: str) -> RoleMapping:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping")
    role, internal = _str(raw, "role", where), _str(raw, "internal_role", where)
    if not role or not internal:
        raise ConfigError(f"{where} needs both role and internal_role")
    return RoleMapping(role=role, internal_role=_role(internal, f"{where}.internal_role"))


def _role(name: str, where: str) -> Role | None:
    if name not in _ROLE_NAMES:
        raise ConfigError(f"{where}: unknown role {name!r} (one of {', '.join(_ROLE_NAMES)})")
    return _ROLE_NAMES[name]


def _defaults(raw: Any, where: str) -> EntityDefaults:
    if raw is None:
        return EntityDefaults()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping")
    limits = Limits(
        rpm=_opt_int(raw, "rpm_limit", where) or _opt_int(raw, "rpm", where),
        tpm=_opt_int(raw, "tpm_limit", where) or _opt_int(raw, "tpm", where),
        max_parallel=_opt_int(raw, "max_parallel_requests", where),
    )
    budgets: tuple[Budget, ...] = ()
    if raw.get("max_budget") is not None:
        try:
            amount = Decimal(str(raw["max_budget"]))
        except InvalidOperation:
            raise ConfigError(f"{where}.max_budget must be a number") from None
        budgets = (Budget(amount, _str(raw, "budget_duration", where)),)
    return EntityDefaults(models=_str_tuple(raw, "models", where), limits=limits, budgets=budgets)


def _list(cfg: Mapping[str, Any], name: str) -> list[Any]:
    value = cfg.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"litellm_jwtauth.{name} must be a list")
    return value


def _str(cfg: Mapping[str, Any], name: str, where: str = "litellm_jwtauth") -> str | None:
    value = cfg.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}.{name} must be a string")
    return value


def _str_tuple(cfg: Mapping[str, Any], name: str, where: str = "litellm_jwtauth") -> tuple[str, ...]:
    """A list of strings, or one string (comma-separated, as LiteLLM's env vars are)."""
    value = cfg.get(name)
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{where}.{name} must be a string or a list of strings")


def _bool(cfg: Mapping[str, Any], name: str, default: bool) -> bool:
    value = cfg.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(f"litellm_jwtauth.{name} must be true or false")
    return value


def _number(cfg: Mapping[str, Any], name: str, default: float) -> float:
    value = cfg.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"litellm_jwtauth.{name} must be a non-negative number")
    return float(value)


def _opt_int(cfg: Mapping[str, Any], name: str, where: str) -> int | None:
    value = cfg.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}.{name} must be an integer")
    return value
