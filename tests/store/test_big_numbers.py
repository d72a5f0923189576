"""Big numbers are data (issue 17): token limits up to 10^15 and dollar amounts up to 10^12 are
stored and read back exactly by every store, PostgreSQL included (INTEGER and NUMERIC(20, 12)
overflowed there)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from tollgate.store import Store
from tollgate.store.records import EntityPolicy, Organization, VirtualKey

NOW = datetime(2025, 3, 4, tzinfo=UTC)
TOKENS = 10**15
DOLLARS = Decimal(10**12) + Decimal("0.000000000001")


async def test_limits_and_money_at_the_accepted_maximum_round_trip(store: Store) -> None:
    policy = EntityPolicy(
        rpm=TOKENS, tpm=TOKENS, input_tpm=TOKENS, output_tpm=TOKENS, max_parallel=TOKENS,
        max_budget=DOLLARS, soft_budget=DOLLARS, spend=DOLLARS,
    )
    async with store.transaction() as tx:
        await tx.orgs.insert(Organization("big-org", policy=policy, created_at=NOW, updated_at=NOW))
        await tx.keys.insert(VirtualKey("a" * 64, "sk-...big", policy=policy, created_at=NOW))
    async with store.transaction() as tx:
        org = await tx.orgs.get("big-org")
        key = await tx.keys.get("a" * 64)
    assert org is not None and key is not None
    for got in (org.policy, key.policy):
        assert (got.rpm, got.tpm, got.input_tpm, got.output_tpm, got.max_parallel) == (TOKENS,) * 5
        assert (got.max_budget, got.soft_budget, got.spend) == (DOLLARS,) * 3
