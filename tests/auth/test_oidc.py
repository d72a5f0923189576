"""JWT/OIDC authentication against a real local issuer (discovery + JWKS on loopback)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.auth.oidc_issuer import LocalIssuer, b64url, hmac_token, http_fetch, serve_issuer, unsigned_token
from tollgate.auth.jwt.jwks import JwksCache, cache_ttl
from tollgate.auth.jwt.settings import parse_jwt_settings
from tollgate.auth.jwt.verifier import (
    Identity,
    JwtAuthenticator,
    StaticIdentityResolver,
    build_jwt_authenticator,
    looks_like_jwt,
)
from tollgate.auth.principal import Principal
from tollgate.errors import AuthenticationFailed, ConfigError, PermissionDenied


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with serve_issuer() as iss:
        yield iss


def config(issuer: LocalIssuer, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "issuer": issuer.url,
        "audience": "tollgate",
        "jwks_url": f"{issuer.url}/jwks",
        "user_email_jwt_field": "email",
        "team_ids_jwt_field": "groups",
    }
    entry.update(extra.pop("issuer_extra", {}))
    return {"issuers": [entry], **extra}


def authenticator(
    issuer: LocalIssuer, clock: Clock | None = None, env: Mapping[str, str] | None = None, **extra: Any
) -> JwtAuthenticator:
    settings = parse_jwt_settings(config(issuer, **extra), env or {})
    return build_jwt_authenticator(settings, http_fetch, clock=clock or Clock())


async def refused(auth: JwtAuthenticator, token: str, status: int, reason: str) -> None:
    with pytest.raises((AuthenticationFailed, PermissionDenied)) as info:
        await auth.authenticate(token)
    assert info.value.status == status
    assert reason in info.value.message
    for segment in token.split("."):
        if len(segment) > 8:
            assert segment not in info.value.message


# --- routing between virtual keys and JWTs -------------------------------------------------


def test_looks_like_jwt(issuer: LocalIssuer) -> None:
    assert looks_like_jwt(issuer.mint(issuer.claims(sub="u1")))
    assert not looks_like_jwt("sk-1234567890abcdef")
    assert not looks_like_jwt("sk-abc.def.ghi")
    assert not looks_like_jwt("abc.def.ghi")  # header is not JSON
    assert not looks_like_jwt(b64url(b'{"typ":"JWT"}') + ".e30.sig")  # no alg
    assert not looks_like_jwt(b64url(b'{"alg":"RSA-OAEP"}') + ".a.b.c.d")  # JWE: five parts
    assert looks_like_jwt(b64url(b'{"alg":"none"}') + ".e30.")  # looks like one; the verifier refuses


# --- accepted tokens and their principals ---------------------------------------------------


async def test_user_token_maps_to_user_team_principal(issuer: LocalIssuer) -> None:
    auth = authenticator(issuer, org_id_jwt_field="org")
    claims = issuer.claims(sub="alice", email="alice@example.com", groups=["eng", "ml"], org="acme")
    token = issuer.mint(claims)
    principal = await auth.authenticate(token)
    assert principal.kind == "jwt"
    chain = [(e.kind, e.id) for e in principal.entities]
    assert chain == [("user", "alice"), ("team", "eng"), ("org", "acme")]
    assert (principal.user_id, principal.team_id, principal.org_id) == ("alice", "eng", "acme")
    assert principal.role is None
    assert principal.metadata["team_ids"] == ("eng", "ml")
    assert principal.metadata["user_email"] == "alice@example.com"


async def test_admin_scope_and_role_mappings(issuer: LocalIssuer) -> None:
    auth = authenticator(
        issuer, roles_jwt_field="realm_access.roles",
        role_mappings=[{"role": "viewer", "internal_role": "proxy_admin_viewer"}],
    )
    admin_token = issuer.mint(issuer.claims(sub="root", scope="openid litellm_proxy_admin"))
    admin = await auth.authenticate(admin_token)
    assert admin.role == "proxy_admin" and admin.is_admin
    viewer = await auth.authenticate(issuer.mint(issuer.claims(sub="v", realm_access={"roles": ["viewer"]})))
    assert viewer.role == "proxy_admin_viewer" and not viewer.is_admin


async def test_cognito_client_credentials_token_becomes_service_in_team(issuer: LocalIssuer) -> None:
    auth = authenticator(
        issuer,
        issuer_extra={"audience": "6q2client"},
        machine_clients=[{"client_id": "6q2client", "service_id": "billing-bot", "team_id": "billing",
                          "models": ["gpt-4o-mini"], "rpm_limit": 60}],
    )
    # Cognito access tokens: no aud, client_id claim, sub == client id, token_use access.
    claims = issuer.claims(sub="6q2client", client_id="6q2client", token_use="access",
                           scope="tollgate/invoke", aud=None)
    principal = await auth.authenticate(issuer.mint(claims))
    service, team = principal.entities
    assert (service.kind, service.id, service.models, service.limits.rpm) == (
        "service", "billing-bot", ("gpt-4o-mini",), 60)
    assert (team.kind, team.id) == ("team", "billing")
    assert principal.user_id is None and principal.team_id == "billing"
    assert principal.subject == "6q2client"


async def test_defaults_and_team_default(issuer: LocalIssuer) -> None:
    auth = authenticator(
        issuer, team_id_default="everyone",
        default_user_params={"models": ["m1"], "tpm_limit": 1000, "max_budget": 5, "budget_duration": "1d"},
    )
    principal = await auth.authenticate(issuer.mint(issuer.claims(sub="bob")))
    user, team = principal.entities
    assert (user.models, user.limits.tpm, str(user.budgets[0].max_budget), user.budgets[0].duration) == (
        ("m1",), 1000, "5", "1d")
    assert team.id == "everyone"


async def test_env_single_issuer_and_ec_keys(issuer: LocalIssuer) -> None:
    issuer.add_key("ec-1", ec.generate_private_key(ec.SECP256R1()))
    env = {"JWT_PUBLIC_KEY_URL": f"https://unused.example/jwks, {issuer.url}/jwks",
           "JWT_AUDIENCE": "api://tollgate", "JWT_ISSUER": issuer.url}
    settings = parse_jwt_settings({}, env)
    assert settings.issuers[0].jwks_urls == ("https://unused.example/jwks", f"{issuer.url}/jwks")

    async def fetch(url: str) -> tuple[int, Mapping[str, str], bytes]:
        if url.startswith("https://unused.example"):
            raise OSError("unreachable")
        return await http_fetch(url)

    auth = build_jwt_authenticator(settings, fetch)
    token = issuer.mint(issuer.claims(sub="eve", aud="api://tollgate"), kid="ec-1")
    principal = await auth.authenticate(token)
    assert principal.user_id == "eve"


async def test_jwks_discovered_from_issuer(issuer: LocalIssuer) -> None:
    auth = authenticator(issuer, issuer_extra={"jwks_url": None})
    assert (await auth.authenticate(issuer.mint(issuer.claims(sub="d")))).user_id == "d"
    assert issuer.jwks_hits == 1


# --- attacks and invalid tokens -------------------------------------------------------------


async def test_alg_none_refused(issuer: LocalIssuer) -> None:
    token = unsigned_token(issuer.claims(sub="x"), {"alg": "none", "kid": "key-1"})
    await refused(authenticator(issuer), token, 401, "algorithm is not allowed")
    mixed_case = unsigned_token(issuer.claims(sub="x"), {"alg": "None", "kid": "key-1"})
    await refused(authenticator(issuer), mixed_case, 401, "algorithm is not allowed")
    with pytest.raises(ConfigError, match="'none'"):
        authenticator(issuer, algorithms=["RS256", "none"])


async def test_hs256_with_public_key_pem_refused(issuer: LocalIssuer) -> None:
    token = hmac_token(issuer.claims(sub="x"), issuer.public_pem(), "key-1")
    await refused(authenticator(issuer), token, 401, "algorithm is not allowed")
    # Even with HS256 allowed, an RSA JWK can never act as an HMAC secret.
    hs_allowed = authenticator(issuer, algorithms=["RS256", "HS256"])
    await refused(hs_allowed, token, 401, "signature does not verify")


async def test_expired_and_not_yet_valid_refused(issuer: LocalIssuer) -> None:
    auth = authenticator(issuer)
    now = int(time.time())
    await refused(auth, issuer.mint(issuer.claims(sub="x", exp=now - 120)), 401, "expired")
    await refused(auth, issuer.mint(issuer.claims(sub="x", nbf=now + 300)), 401, "not valid yet")
    await refused(auth, issuer.mint(issuer.claims(sub="x", iat=now + 300)), 401, "not valid yet")
    await refused(auth, issuer.mint(issuer.claims(sub="x", exp=None)), 401, "lacks the 'exp' claim")
    # Within the leeway (30 s by default) a just-expired token still passes.
    assert (await auth.authenticate(issuer.mint(issuer.claims(sub="y", exp=now - 5)))).user_id == "y"


async def test_wrong_issuer_and_audience_refused(issuer: LocalIssuer) -> None:
    auth = authenticator(issuer)
    await refused(auth, issuer.mint(issuer.claims(sub="x", iss="https://evil.example")), 401, "not trusted")
    await refused(auth, issuer.mint(issuer.claims(sub="x", aud="someone-else")), 401, "another audience")
    await refused(auth, issuer.mint(issuer.claims(sub="x", aud=None)), 401, "another audience")
    many = issuer.mint(issuer.claims(sub="x", aud=["a", "tollgate"]))
    assert (await auth.authenticate(many)).user_id == "x"


async def test_unknown_kid_and_tampered_payload_refused(issuer: LocalIssuer) -> None:
    auth = authenticator(issuer)
    stranger = issuer.mint(issuer.claims(sub="x"), kid="nope", key=ec_key())
    await refused(auth, stranger, 401, "signing key is not published")
    good = issuer.mint(issuer.claims(sub="alice"))
    head, _, sig = good.split(".")
    payload = b64url(json.dumps(issuer.claims(sub="root", scope="litellm_proxy_admin")).encode())
    forged = f"{head}.{payload}.{sig}"
    await refused(auth, forged, 401, "signature does not verify")


async def test_second_unconfigured_issuer_refused(issuer: LocalIssuer) -> None:
    with serve_issuer() as other:
        auth = authenticator(issuer)
        await refused(auth, other.mint(other.claims(sub="x")), 401, "not trusted")
        # The other issuer's key, claiming to be ours: same kid, wrong key.
        await refused(auth, other.mint(issuer.claims(sub="x")), 401, "signature does not verify")


async def test_jku_and_x5u_headers_ignored(issuer: LocalIssuer) -> None:
    fetched: list[str] = []

    async def fetch(url: str) -> tuple[int, Mapping[str, str], bytes]:
        fetched.append(url)
        return await http_fetch(url)

    with serve_issuer() as attacker:
        settings = parse_jwt_settings(config(issuer), {})
        auth = build_jwt_authenticator(settings, fetch)
        token = attacker.mint(issuer.claims(sub="x"), kid="attacker",
                              key=attacker.keys["key-1"],
                              headers={"jku": f"{attacker.url}/jwks", "x5u": f"{attacker.url}/cert"})
        await refused(auth, token, 401, "signing key is not published")
    assert all(url.startswith(issuer.url) for url in fetched) and fetched
    assert attacker.jwks_hits == 0


async def test_missing_required_scope_is_403(issuer: LocalIssuer) -> None:
    auth = authenticator(issuer, required_scopes=["tollgate/invoke"])
    await refused(auth, issuer.mint(issuer.claims(sub="x", scope="openid")), 403, "tollgate/invoke")
    ok = await auth.authenticate(issuer.mint(issuer.claims(sub="x", scp=["tollgate/invoke"])))
    assert ok.user_id == "x"


async def test_email_domain_and_team_enforcement_are_403(issuer: LocalIssuer) -> None:
    auth = authenticator(
        issuer, user_allowed_email_domain="example.com", enforce_team_based_model_access=True
    )
    outsider = issuer.mint(issuer.claims(sub="x", email="x@evil.com", groups=["t"]))
    await refused(auth, outsider, 403, "@example.com")
    await refused(auth, issuer.mint(issuer.claims(sub="x", email="x@example.com")), 403, "names no team")
    ok = await auth.authenticate(issuer.mint(issuer.claims(sub="x", email="x@EXAMPLE.com", groups=["t"])))
    assert ok.team_id == "t"


# --- JWKS caching, rotation, transport ------------------------------------------------------


async def test_key_rotation_and_rate_limited_unknown_kid_refresh(issuer: LocalIssuer) -> None:
    clock = Clock()
    auth = authenticator(issuer, clock=clock)
    await auth.authenticate(issuer.mint(issuer.claims(sub="a")))
    assert issuer.jwks_hits == 1
    # A flood of made-up kids right after a fetch: no refetch inside the 30 s interval.
    for i in range(20):
        fake = issuer.mint(issuer.claims(sub="x"), kid=f"bogus-{i}", key=ec_key())
        await refused(auth, fake, 401, "signing key is not published")
    assert issuer.jwks_hits == 1
    issuer.rotate("key-2")
    fresh = issuer.mint(issuer.claims(sub="b"), kid="key-2")
    await refused(auth, fresh, 401, "signing key is not published")  # still within the interval
    clock.t += 31
    assert (await auth.authenticate(fresh)).user_id == "b"  # unknown kid → one refetch, no restart
    assert issuer.jwks_hits == 2
    for i in range(5):
        fake = issuer.mint(issuer.claims(sub="x"), kid=f"again-{i}", key=ec_key())
        await refused(auth, fake, 401, "signing key is not published")
    assert issuer.jwks_hits == 2


async def test_cache_control_max_age_honoured(issuer: LocalIssuer) -> None:
    clock = Clock()
    issuer.cache_control = "public, max-age=120"
    auth = authenticator(issuer, clock=clock, principal_cache_ttl=0.0)
    await auth.authenticate(issuer.mint(issuer.claims(sub="a")))
    clock.t += 100
    await auth.authenticate(issuer.mint(issuer.claims(sub="b")))
    assert issuer.jwks_hits == 1
    clock.t += 30
    await auth.authenticate(issuer.mint(issuer.claims(sub="c")))
    assert issuer.jwks_hits == 2


def test_cache_ttl_parsing() -> None:
    assert cache_ttl({"Cache-Control": "public, max-age=3600"}, 600, 30) == 3600
    assert cache_ttl({"cache-control": "max-age=5"}, 600, 30) == 30  # floor
    assert cache_ttl({"cache-control": "max-age=999999999"}, 600, 30) == 86_400
    assert cache_ttl({"cache-control": "no-store"}, 600, 30) == 30
    assert cache_ttl({}, 600, 30) == 600


def test_plain_http_to_non_loopback_refused_unless_allowed() -> None:
    raw = {"issuers": [{"issuer": "https://idp.example", "jwks_url": "http://idp.example/jwks"}]}
    with pytest.raises(ConfigError, match="https://"):
        parse_jwt_settings(raw, {})
    with pytest.raises(ConfigError, match="https://"):
        parse_jwt_settings({}, {"JWT_PUBLIC_KEY_URL": "http://10.0.0.5/jwks"})
    assert parse_jwt_settings({**raw, "allow_insecure_http": True}, {}).issuers[0].jwks_urls == (
        "http://idp.example/jwks",)
    assert parse_jwt_settings({}, {"JWT_PUBLIC_KEY_URL": "http://[::1]:8080/jwks"}).issuers[0].issuer is None


async def test_discovered_http_jwks_uri_refused() -> None:
    fetched: list[str] = []

    async def fetch(url: str) -> tuple[int, Mapping[str, str], bytes]:
        fetched.append(url)
        doc = {"issuer": "https://idp.example", "jwks_uri": "http://idp.example/jwks"}
        return 200, {}, json.dumps(doc).encode()

    cache = JwksCache(fetch)
    uri = await cache.jwks_uri("https://idp.example")
    assert uri == "http://idp.example/jwks"
    assert await cache.keys_for((uri,), "k") == []
    assert fetched == ["https://idp.example/.well-known/openid-configuration"]


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match="no issuer"):
        parse_jwt_settings({}, {})
    with pytest.raises(ConfigError, match=r"issuers\[0\].issuer"):
        parse_jwt_settings({"issuers": [{"audience": "x"}]}, {})
    with pytest.raises(ConfigError, match="algorithms"):
        parse_jwt_settings({"algorithms": ["XX1"]}, {"JWT_PUBLIC_KEY_URL": "https://a/jwks"})
    with pytest.raises(ConfigError, match=r"role_mappings\[0\]"):
        parse_jwt_settings({"role_mappings": [{"role": "r", "internal_role": "god"}]},
                           {"JWT_PUBLIC_KEY_URL": "https://a/jwks"})


# --- the hot path ---------------------------------------------------------------------------


class CountingResolver:
    def __init__(self, inner: StaticIdentityResolver) -> None:
        self.inner = inner
        self.calls = 0

    async def resolve(self, identity: Identity) -> Principal:
        self.calls += 1
        return await self.inner.resolve(identity)


async def test_cached_token_skips_verification_until_exp(issuer: LocalIssuer) -> None:
    clock, wall = Clock(), Clock()
    wall.t = time.time()
    settings = parse_jwt_settings(config(issuer, leeway=0), {})
    resolver = CountingResolver(StaticIdentityResolver(settings))
    auth = build_jwt_authenticator(settings, http_fetch, resolver, clock=clock, now=wall)
    token = issuer.mint(issuer.claims(sub="a", exp=int(wall.t) + 100))
    first = await auth.authenticate(token)
    issuer.rotate("key-9")  # even a rotated-away key does not matter for a cached token
    assert await auth.authenticate(token) is first
    assert resolver.calls == 1
    clock.t += 61  # principal TTL: re-resolved from the cached verification
    assert (await auth.authenticate(token)).user_id == "a"
    assert resolver.calls == 2
    assert issuer.jwks_hits == 1
    # Past exp the cache no longer answers: the token is verified again (and the JWKS, past its
    # max-age, no longer holds the rotated-away key).
    wall.t += 101
    clock.t += 400
    await refused(auth, token, 401, "signing key is not published")
    assert issuer.jwks_hits == 2
