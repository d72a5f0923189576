"""Onboarding with the shared examples: teams per tier, users with keys bound to them, idempotent."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from tollgate.admin import AdminServices
from tollgate.admin.onboarding import load_tiers, load_users, onboard
from tollgate.auth.keys import KeyAuthenticator
from tollgate.auth.principal import MASTER, Budget
from tollgate.store.memory import MemoryStore

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "examples"


async def test_onboard_shared_examples_is_idempotent() -> None:
    store = MemoryStore()
    services = AdminServices.build(store)
    tiers = load_tiers(EXAMPLES / "nova-tiers.yaml")
    users = load_users(EXAMPLES / "users_to_onboard.csv")
    seen: list[tuple[int, int, str]] = []
    result = await onboard(services, MASTER, tiers, users, lambda *a: seen.append(a))
    assert result.teams_created == ["tier-drafting", "tier-coding", "tier-architect"]
    assert [c["user_email"] for c in result.created] == [u.email for u in users]
    assert seen[-1] == (3, 3, "user3@example.com")

    auth = KeyAuthenticator("sk-master", store)
    p = await auth.authenticate(result.created[2]["key"])
    kinds = [e.kind for e in p.entities]
    assert kinds == ["key", "user", "team"] and p.team_id == "tier-architect"
    user, team = p.entities[1], p.entities[2]
    assert user.limits.rpm == 20 and user.budgets == (Budget(Decimal("0.05"), "1d"),)
    assert team.models == ("model-reasoning",)
    assert team.budgets == (Budget(Decimal("0.067"), "1d"), Budget(Decimal("2.00"), "1mo"))

    again = await onboard(services, MASTER, tiers, users)
    assert again.teams_created == [] and again.created == []
    assert again.skipped == [u.email for u in users]
