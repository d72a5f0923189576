"""Soft-budget alerts: logged, and posted to the webhook without blocking the caller."""

from __future__ import annotations

import logging
from decimal import Decimal

import orjson
import pytest

from tests.polling import until
from tollgate.accounting.alerts import SoftBudgetAlerts
from tollgate.policy.ticket import SoftBudgetCrossed
from tollgate.telemetry.metrics import Metrics

EVENT = SoftBudgetCrossed("team", "t-1", Decimal("5"), Decimal("5.25"), 1_700_000_000.0)


async def test_alert_is_logged_and_posted(caplog: pytest.LogCaptureFixture) -> None:
    posted: list[tuple[str, dict[str, object]]] = []

    async def post(url: str, body: bytes) -> None:
        posted.append((url, orjson.loads(body)))

    alerts = SoftBudgetAlerts("http://127.0.0.1:9/hook", post)
    with caplog.at_level(logging.WARNING, logger="tollgate.alerts"):
        alerts(EVENT)
        await until(lambda: posted, what="the webhook posted")
    assert posted == [
        (
            "http://127.0.0.1:9/hook",
            {
                "event": "soft_budget_crossed", "entity_type": "team", "entity_id": "t-1",
                "soft_budget": "5", "spend": "5.25", "window_start": 1_700_000_000.0,
            },
        )
    ]
    assert "soft budget crossed" in caplog.text and "t-1" in caplog.text


async def test_failing_webhook_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def post(url: str, body: bytes) -> None:
        raise ConnectionError("refused")

    with caplog.at_level(logging.WARNING, logger="tollgate.alerts"):
        SoftBudgetAlerts("http://127.0.0.1:9/hook", post)(EVENT)
        await until(lambda: "refused" in caplog.text, what="the failure logged")
    assert "webhook" in caplog.text and "refused" in caplog.text


def test_without_webhook_only_logs(caplog: pytest.LogCaptureFixture) -> None:
    async def post(url: str, body: bytes) -> None:
        raise AssertionError("no webhook configured")

    with caplog.at_level(logging.WARNING, logger="tollgate.alerts"):
        SoftBudgetAlerts(None, post)(EVENT)  # no running loop: scheduling a post would raise
    assert "soft budget crossed" in caplog.text and "webhook" not in caplog.text


def test_queue_depth_gauge() -> None:
    metrics = Metrics()
    metrics.queue("claude", 3)
    assert metrics.registry.get_sample_value("tollgate_queue_depth", {"model_group": "claude"}) == 3
    metrics.queue("claude", 0)
    assert metrics.registry.get_sample_value("tollgate_queue_depth", {"model_group": "claude"}) == 0
