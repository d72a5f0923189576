"""The info routes show the current budget window's spend and its real reset, never lifetime spend
against a window budget: a gateway in process on a clock that moves only when the test says so,
so a week can pass between two requests."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.e2e.test_enforcement import MASTER, config
from tests.fakes.inprocess import InProcessGateway, ManualClock, until
from tests.fakes.scripted import ScriptedTransport

WEDNESDAY_NOON = datetime(2026, 12, 2, 12, 0, tzinfo=UTC).timestamp()


async def _admin(client: httpx.AsyncClient, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await (client.get(path) if body is None else client.post(path, json=body))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _positive(amount: Awaitable[Decimal]) -> bool:
    return await amount > 0


async def _chat(client: httpx.AsyncClient, key: str) -> None:
    body = {"model": "fake-a", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
    auth = {"Authorization": f"Bearer {key}"}
    response = await client.post("/v1/chat/completions", json=body, headers=auth)
    assert response.status_code == 200, response.text


@pytest.mark.asyncio
async def test_info_routes_show_the_current_window_and_its_real_reset() -> None:
    clock = ManualClock(WEDNESDAY_NOON)
    async with InProcessGateway(config(), ScriptedTransport([]), clock=clock) as gw, gw.client(
        authorization=f"Bearer {MASTER}"
    ) as client:
        user = await _admin(client, "/user/new", {"max_budget": 5.0, "budget_duration": "30d",
                                                  "auto_create_key": False})
        team = (await _admin(client, "/team/new", {"max_budget": 5.0, "budget_duration": "1w"}))["team_id"]
        key = (await _admin(client, "/key/generate", {
            "user_id": user["user_id"], "team_id": team, "max_budget": 1.0, "budget_duration": "7d",
            "budgets": [{"max_budget": 0.5, "duration": "1d"}],
        }))["key"]

        async def lifetime() -> Decimal:
            return Decimal(str((await _admin(client, f"/key/info?key={key}"))["info"]["lifetime_spend"]))

        await _chat(client, key)
        assert await until(lambda: _positive(lifetime())), "the first request's spend never reached the key"
        cost = await lifetime()  # what one such request costs
        clock.advance(7 * 86400)  # next Wednesday noon: a new week, a new day, the same month
        await _chat(client, key)

        async def both_logged() -> bool:
            return await lifetime() == 2 * cost

        assert await until(both_logged), "the second request's spend never reached the key"
        info = (await _admin(client, f"/key/info?key={key}"))["info"]
        assert Decimal(str(info["spend"])) == cost  # this week's, not the 2 · cost of all time
        assert info["budget_reset_at"] == "2026-12-14T00:00:00+00:00"  # the Monday after
        daily = info["budgets"][0]
        assert Decimal(str(daily["spend"])) == cost
        assert daily["reset_at"] == "2026-12-10T00:00:00+00:00"
        user_info = (await _admin(client, f"/user/info?user_id={user['user_id']}"))["user_info"]
        assert user_info["budget_reset_at"] == "2027-01-01T00:00:00+00:00"  # 30d windows end on the 1st
        assert Decimal(str(user_info["spend"])) == 2 * cost  # both requests are in December
        team_info = (await _admin(client, f"/team/info?team_id={team}"))["team_info"]
        assert team_info["budget_reset_at"] == "2026-12-14T00:00:00+00:00"
        assert Decimal(str(team_info["spend"])) == cost
