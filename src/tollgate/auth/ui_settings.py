"""Web UI sign-in settings, read from the environment with LiteLLM's variable names.

``UI_USERNAME`` (default ``admin``) and ``UI_PASSWORD`` sign in the proxy admin; without
``UI_PASSWORD`` the master key is the password (LiteLLM's rule). ``GENERIC_CLIENT_ID``,
``GENERIC_CLIENT_SECRET``, ``GENERIC_AUTHORIZATION_ENDPOINT``, ``GENERIC_TOKEN_ENDPOINT`` and
``GENERIC_USERINFO_ENDPOINT`` switch on SSO (OIDC authorization code + PKCE); ``PROXY_BASE_URL``
is the public address the identity provider redirects back to (``{PROXY_BASE_URL}/sso/callback``),
``PROXY_ADMIN_ID`` the user id that gets the proxy_admin role, ``ALLOWED_EMAIL_DOMAINS`` a comma
list of domains allowed to sign in. Pure: the environment is passed in; bad values raise
``ConfigError`` naming the variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tollgate.errors import ConfigError

SSO_REQUIRED = (
    "GENERIC_CLIENT_ID", "GENERIC_AUTHORIZATION_ENDPOINT", "GENERIC_TOKEN_ENDPOINT",
    "GENERIC_USERINFO_ENDPOINT",
)


@dataclass(frozen=True, slots=True)
class SsoSettings:
    client_id: str
    client_secret: str | None
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    scope: str = "openid email profile"
    user_id_attribute: str = "preferred_username"
    email_attribute: str = "email"
    role_attribute: str = "role"
    groups_attribute: str = "groups"
    allowed_email_domains: tuple[str, ...] = ()
    team_id_upsert: bool = False


@dataclass(frozen=True, slots=True)
class UiSettings:
    username: str
    password: str | None  # None: password sign-in is impossible (no UI_PASSWORD, no master key)
    session_secret: str
    idle_seconds: int
    max_seconds: int
    proxy_admin_id: str | None
    base_url: str | None  # PROXY_BASE_URL, without a trailing slash
    sso: SsoSettings | None
    open_access: bool  # no master key: the API (and so the UI) lets everyone in, as LiteLLM does


def _seconds(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise ConfigError(f"{name}: '{raw}' is not a positive number of seconds")
    return int(raw)


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def sso_settings(env: Mapping[str, str], team_ids_field: str | None = None,
                 team_id_upsert: bool = False) -> SsoSettings | None:
    """``None`` unless SSO is configured; ``team_ids_field`` comes from ``litellm_jwtauth``'s
    ``team_ids_jwt_field`` so a groups claim maps to teams the same way for SSO and JWTs."""
    present = [n for n in SSO_REQUIRED if env.get(n)]
    if not present:
        return None
    missing = [n for n in SSO_REQUIRED if not env.get(n)]
    if missing:
        raise ConfigError(
            f"SSO is half configured: {', '.join(present)} set but {', '.join(missing)} missing"
        )
    for name in SSO_REQUIRED[1:]:
        if not env[name].startswith(("https://", "http://")):
            raise ConfigError(f"{name}: '{env[name]}' is not an http(s) URL")
    domains = tuple(d.strip().lower().lstrip("@") for d in env.get("ALLOWED_EMAIL_DOMAINS", "").split(",")
                    if d.strip())
    return SsoSettings(
        client_id=env["GENERIC_CLIENT_ID"],
        client_secret=env.get("GENERIC_CLIENT_SECRET") or None,
        authorization_endpoint=env["GENERIC_AUTHORIZATION_ENDPOINT"],
        token_endpoint=env["GENERIC_TOKEN_ENDPOINT"],
        userinfo_endpoint=env["GENERIC_USERINFO_ENDPOINT"],
        scope=env.get("GENERIC_SCOPE") or "openid email profile",
        user_id_attribute=env.get("GENERIC_USER_ID_ATTRIBUTE") or "preferred_username",
        email_attribute=env.get("GENERIC_USER_EMAIL_ATTRIBUTE") or "email",
        role_attribute=env.get("GENERIC_USER_ROLE_ATTRIBUTE") or "role",
        groups_attribute=team_ids_field or env.get("GENERIC_USER_GROUPS_ATTRIBUTE") or "groups",
        allowed_email_domains=domains,
        team_id_upsert=team_id_upsert or _flag(env, "GENERIC_TEAM_ID_UPSERT"),
    )


def ui_settings(env: Mapping[str, str], master_key: str | None, sso: SsoSettings | None) -> UiSettings:
    password = env.get("UI_PASSWORD") or master_key
    secret = env.get("UI_SESSION_SECRET") or master_key or ""
    base = env.get("PROXY_BASE_URL") or None
    if base is not None and not base.startswith(("https://", "http://")):
        raise ConfigError(f"PROXY_BASE_URL: '{base}' is not an http(s) URL")
    return UiSettings(
        username=env.get("UI_USERNAME") or "admin",
        password=password,
        session_secret=secret,
        idle_seconds=_seconds(env, "UI_SESSION_IDLE_SECONDS", 3600),
        max_seconds=_seconds(env, "UI_SESSION_MAX_SECONDS", 12 * 3600),
        proxy_admin_id=env.get("PROXY_ADMIN_ID") or None,
        base_url=base.rstrip("/") if base else None,
        sso=sso,
        open_access=master_key is None,
    )


__all__ = ["SsoSettings", "UiSettings", "sso_settings", "ui_settings"]
