"""Soft-budget alerts: when an entity's spend crosses its ``soft_budget`` (once per window, even
across replicas — the counter store decides), log it and, if configured, POST it to
``general_settings.soft_budget_webhook_url`` without holding up the request that crossed it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import orjson

from tollgate.policy.ticket import SoftBudgetCrossed

log = logging.getLogger("tollgate.alerts")

Post = Callable[[str, bytes], Awaitable[None]]


class SoftBudgetAlerts:
    def __init__(self, webhook_url: str | None, post: Post) -> None:
        self._url = webhook_url
        self._post = post
        self._pending: set[asyncio.Task[None]] = set()

    def __call__(self, event: SoftBudgetCrossed) -> None:
        payload = {
            "event": "soft_budget_crossed",
            "entity_type": event.entity_kind,
            "entity_id": event.entity_id,
            "soft_budget": str(event.soft_budget),
            "spend": str(event.spend),
            "window_start": event.window_start,
        }
        log.warning("soft budget crossed: %s", orjson.dumps(payload).decode())
        if self._url:
            task = asyncio.get_running_loop().create_task(self._send(self._url, orjson.dumps(payload)))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _send(self, url: str, body: bytes) -> None:
        try:
            await self._post(url, body)
        except Exception as exc:
            log.warning("soft budget webhook to %s failed: %s", url, exc)
