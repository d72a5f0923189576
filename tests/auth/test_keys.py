"""KeyAuthenticator: master key, open mode, virtual keys with their entity chain, cache and invalidation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tollgate.auth.keys import KeyAuthenticator, hash_key
from tollgate.auth.principal import MASTER, OPEN, Budget, Limits
from tollgate.errors import AuthenticationFailed
from tollgate.store.memory import MemoryStore
from tollgate.store.records import BudgetWindow, EntityPolicy, Organization, Team, User, VirtualKey

NOW = datetime(2025, 1, 1, tzinfo=UTC)


async def _seed(store: MemoryStore, expires: datetime | None = None) -> None:
    async with store.transaction() as tx:
        await tx.orgs.insert(Organization("o1", policy=EntityPolicy(max_budget=Decimal(100))))
        await tx.teams.insert(Team("t1", org_id="o1", policy=EntityPolicy(models=("m1",))))
        await tx.users.insert(User("u1", role="proxy_admin_viewer", policy=EntityPolicy(rpm=5)))
        await tx.keys.insert(
            VirtualKey(
                hash_key("sk-one"),
                "sk-...-one",
                "alias",
                "u1",
                "t1",
                expires=expires,
                policy=EntityPolicy(
                    tpm=9,
                    model_limits={"m1": {"rpm": 2}},
                    budgets=(BudgetWindow(Decimal("0.5"), "1d"),),
                    max_budget=Decimal(3),
                    budget_duration="1mo",
                    soft_budget=Decimal(1),
                ),
            )
        )


async def test_master_open_and_missing() -> None:
    assert await KeyAuthenticator(None).authenticate(None) is OPEN
    auth = KeyAuthenticator("sk-master", MemoryStore())
    assert await auth.authenticate("sk-master") is MASTER
    with pytest.raises(AuthenticationFailed, match="no API key"):
        await auth.authenticate(None)
    with pytest.raises(AuthenticationFailed, match="invalid"):
        await auth.authenticate("sk-other")


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_master_key_never_opens_the_gateway(empty: str) -> None:
    with pytest.raises(ValueError, match="master_key is empty"):
        KeyAuthenticator(empty)


async def test_virtual_key_principal_carries_the_chain() -> None:
    store = MemoryStore()
    await _seed(store)
    p = await KeyAuthenticator("sk-master", store).authenticate("sk-one")
    assert (p.kind, p.key_hash, p.key_alias, p.user_id, p.team_id, p.org_id, p.role) == (
        "key",
        hash_key("sk-one"),
        "alias",
        "u1",
        "t1",
        "o1",
        "proxy_admin_viewer",
    )
    key, user, team, org = p.entities
    assert key.limits == Limits(tpm=9) and key.model_limits == {"m1": Limits(rpm=2)}
    assert key.budgets == (Budget(Decimal("0.5"), "1d"), Budget(Decimal(3), "1mo"))
    assert key.soft_budget == Decimal(1)
    assert user.limits.rpm == 5 and team.models == ("m1",) and org.budgets == (Budget(Decimal(100)),)


async def test_cache_serves_until_invalidated_or_expired() -> None:
    store = MemoryStore()
    await _seed(store)
    clock = [0.0]
    auth = KeyAuthenticator("sk-master", store, cache_ttl=60, clock=lambda: clock[0])
    await auth.authenticate("sk-one")
    async with store.transaction() as tx:
        await tx.keys.delete([hash_key("sk-one")])
    assert (await auth.authenticate("sk-one")).key_alias == "alias"  # served from the cache
    clock[0] = 61
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate("sk-one")
    await _seed(MemoryStore())
    store2 = MemoryStore()
    await _seed(store2)
    auth2 = KeyAuthenticator("sk-master", store2, clock=lambda: 0.0)
    await auth2.authenticate("sk-one")
    async with store2.transaction() as tx:
        await tx.keys.delete([hash_key("sk-one")])
    auth2.invalidate(hash_key("sk-one"))
    with pytest.raises(AuthenticationFailed):
        await auth2.authenticate("sk-one")


async def test_expired_key_is_refused_with_reason() -> None:
    store = MemoryStore()
    await _seed(store, expires=NOW)
    auth = KeyAuthenticator("sk-master", store, now=lambda: NOW + timedelta(seconds=1))
    with pytest.raises(AuthenticationFailed, match="expired"):
        await auth.authenticate("sk-one")
