"""The store-backed JWT identity resolver, the user seed policy and the composite authenticator."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from tollgate.auth.bearer import CredentialAuthenticator
from tollgate.auth.jwt.identity import Identity
from tollgate.auth.jwt.settings import JwtSettings, parse_jwt_settings
from tollgate.auth.jwt.store import StoreIdentityResolver, user_seed
from tollgate.auth.keys import KeyAuthenticator
from tollgate.auth.principal import Principal
from tollgate.errors import AuthenticationFailed, ConfigError, PermissionDenied
from tollgate.store.memory import MemoryStore
from tollgate.store.records import EntityPolicy, Organization, Team, User

ISS = "https://issuer.example.com"


def settings(**extra: Any) -> JwtSettings:
    return parse_jwt_settings({"issuers": [{"issuer": ISS, "jwks_url": f"{ISS}/jwks"}], **extra}, {})


def identity(**extra: Any) -> Identity:
    base: dict[str, Any] = dict(
        issuer=ISS, subject="alice", user_id="alice", user_email="alice@example.com", team_ids=(),
        org_id=None, client_id=None, client_credentials=False, service_id=None, service_team_id=None,
        service_org_id=None, scopes=frozenset(), roles=(), role=None, expires_at=2e9,
    )
    base.update(extra)
    return Identity(**base)


async def seed(store: MemoryStore, *records: User | Team | Organization) -> None:
    async with store.transaction() as tx:
        for r in records:
            if isinstance(r, User):
                await tx.users.insert(r)
            elif isinstance(r, Team):
                await tx.teams.insert(r)
            else:
                await tx.orgs.insert(r)


async def test_known_user_team_org_get_their_stored_policies() -> None:
    store = MemoryStore()
    await seed(
        store,
        Organization("acme", policy=EntityPolicy(max_budget=Decimal(100))),
        Team("eng", org_id="acme", policy=EntityPolicy(models=("m1",), rpm=5)),
        User("alice", role="proxy_admin_viewer", policy=EntityPolicy(tpm=1000)),
    )
    resolver = StoreIdentityResolver(settings(), store)
    p = await resolver.resolve(identity(team_ids=("unknown", "eng")))
    assert [(e.kind, e.id) for e in p.entities] == [("user", "alice"), ("team", "eng"), ("org", "acme")]
    assert p.entities[0].limits.tpm == 1000
    assert p.entities[1].models == ("m1",) and p.entities[1].limits.rpm == 5
    assert p.entities[2].budgets[0].max_budget == Decimal(100)
    assert (p.kind, p.user_id, p.team_id, p.org_id) == ("jwt", "alice", "eng", "acme")
    assert p.role == "proxy_admin_viewer"  # the stored role when the token maps none


async def test_unknown_user_without_upsert_is_401_and_unknown_team_403() -> None:
    store = MemoryStore()
    with pytest.raises(AuthenticationFailed) as info:
        await StoreIdentityResolver(settings(), store).resolve(identity())
    assert "alice" not in info.value.message
    await seed(store, User("alice"))
    with pytest.raises(PermissionDenied):
        await StoreIdentityResolver(settings(), store).resolve(identity(team_ids=("eng",)))


async def test_upsert_seeds_user_and_team_and_membership() -> None:
    store = MemoryStore()
    s = settings(user_id_upsert=True, team_id_upsert=True,
                 default_user_params={"models": ["m1"], "rpm_limit": 7},
                 default_team_params={"tpm_limit": 900, "max_budget": 20, "budget_duration": "1mo"})
    resolver = StoreIdentityResolver(s, store)
    p = await resolver.resolve(identity(team_ids=("eng",), role="proxy_admin"))
    assert p.role == "proxy_admin"
    async with store.transaction() as tx:
        user = await tx.users.get("alice")
        team = await tx.teams.get("eng")
        member = await tx.memberships.get("eng\x1falice")
    assert user is not None and user.role == "internal_user"  # the token's admin role is not stored
    assert user.email == "alice@example.com"
    assert (user.policy.models, user.policy.rpm) == (("m1",), 7)
    assert team is not None and team.policy.tpm == 900 and team.policy.max_budget == Decimal(20)
    assert member is not None
    again = await resolver.resolve(identity(team_ids=("eng",)))  # second sight: read, no conflict
    assert again.role == "internal_user" and again.team_id == "eng"


async def test_machine_client_is_a_service_in_its_mapped_team() -> None:
    store = MemoryStore()
    await seed(store, Team("billing", policy=EntityPolicy(rpm=2)))
    s = settings(machine_clients=[{"client_id": "app", "service_id": "bot", "team_id": "billing",
                                   "rpm_limit": 60}])
    p = await StoreIdentityResolver(s, store).resolve(identity(
        subject="app", user_id=None, client_id="app", client_credentials=True, service_id="bot",
        service_team_id="billing",
    ))
    assert [(e.kind, e.id) for e in p.entities] == [("service", "bot"), ("team", "billing")]
    assert p.entities[0].limits.rpm == 60 and p.entities[1].limits.rpm == 2
    assert p.user_id is None and p.team_id == "billing"


async def test_blocked_team_and_enforced_team_access_are_403() -> None:
    store = MemoryStore()
    await seed(store, User("alice"), Team("eng", policy=EntityPolicy(blocked=True)))
    with pytest.raises(PermissionDenied, match="blocked"):
        await StoreIdentityResolver(settings(), store).resolve(identity(team_ids=("eng",)))
    with pytest.raises(PermissionDenied, match="no team"):
        await StoreIdentityResolver(settings(enforce_team_based_model_access=True), store).resolve(identity())


async def test_admin_without_user_record_is_still_admin() -> None:
    p = await StoreIdentityResolver(settings(), MemoryStore()).resolve(identity(role="proxy_admin"))
    assert p.is_admin and p.entities == () and p.user_id is None


def test_user_seed_precedence() -> None:
    s = settings(default_user_params={"rpm_limit": 3})
    seeded = user_seed(s.default_user, {"models": ["a"], "rpm_limit": 9, "max_budget": 5}, 50.0, "1d")
    assert (seeded.models, seeded.rpm, seeded.max_budget) == (("a",), 3, Decimal(5))
    fallback = user_seed(s.default_user, None, 50.0, "1d")
    assert (fallback.max_budget, fallback.budget_duration) == (Decimal(50), "1d")
    with pytest.raises(ConfigError, match=r"default_internal_user_params\.models"):
        user_seed(s.default_user, {"models": "a"})


class FakeJwt:
    def __init__(self) -> None:
        self.cleared = 0
        self.seen: list[str] = []

    async def authenticate(self, token: str) -> Principal:
        self.seen.append(token)
        return Principal(kind="jwt", user_id="u")

    def invalidate_all(self) -> None:
        self.cleared += 1


async def test_composite_routes_jwts_and_invalidates_both() -> None:
    fake = FakeJwt()
    keys = KeyAuthenticator("sk-master", MemoryStore())
    auth = CredentialAuthenticator(keys, fake)  # type: ignore[arg-type]
    jwt_like = "eyJhbGciOiJSUzI1NiJ9.e30.sig"
    assert (await auth.authenticate(jwt_like)).kind == "jwt"
    assert (await auth.authenticate("sk-master")).kind == "master"
    assert fake.seen == [jwt_like]
    auth.invalidate("abc")
    assert fake.cleared == 0
    auth.invalidate_all()
    assert fake.cleared == 1
    without = CredentialAuthenticator(keys)
    with pytest.raises(AuthenticationFailed):
        await without.authenticate(jwt_like)


def test_identity_helper_matches_fields() -> None:
    # Guards the test helper against Identity growing a required field.
    assert replace(identity(), user_id="x").user_id == "x"
