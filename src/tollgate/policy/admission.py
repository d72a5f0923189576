"""``PolicyAdmission``: admit a call (access ▸ budgets ▸ limits) and hand back its ``CounterTicket``.

Every entity of the principal's chain, plus a proxy-wide entity built from the config
(``general_settings.global_max_parallel_requests``/``max_parallel_requests`` and
``litellm_settings.max_budget``/``budget_duration``), must admit the request. All budget,
window and slot checks of one request go to the counter store as one ``CounterAdmission``, applied
all-or-nothing (one Redis script); when no entity has limits or budgets the store is not called.
Budget refusals come first, then rate limits, in chain order (key, user, team, org, proxy).
May import: ``call``, ``auth``, ``canonical``, ``config``, ``errors``, ``store.counters``, ``policy``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from decimal import Decimal

from tollgate.auth.principal import Budget, Entity, Limits
from tollgate.call import Call
from tollgate.canonical import ChatRequest
from tollgate.config import Config, Price
from tollgate.config.durations import Duration, Window, parse_duration, window_at
from tollgate.errors import BudgetExceeded, ConfigError, GatewayError
from tollgate.policy.access import check_access
from tollgate.policy.budgets import budget_exceeded_message
from tollgate.policy.limits import (
    CounterTicket,
    SlotSpec,
    SoftBudgetCrossed,
    SpendTarget,
    WindowSpec,
    entity_key,
    rate_headers,
    slot_refusal,
    slot_specs,
    window_refusal,
    window_specs,
)
from tollgate.policy.tokens import estimate_input_tokens
from tollgate.store.counters import (
    BudgetCheck,
    CounterAdmission,
    CounterStore,
    CounterStoreUnavailable,
    Reservation,
    SlotCheck,
    WindowCheck,
    from_nano,
    to_nano,
)

RESERVATION_TTL = 3600  # an in-flight cost reservation left by a crashed replica expires after this


class PolicyAdmission:
    """Admission control. ``price_for(name)`` prices each candidate deployment name."""

    def __init__(
        self,
        store: CounterStore,
        *,
        price_for: Callable[[str], Price],
        clock: Callable[[], float] = time.time,
        default_output_tokens: int = 1024,
        proxy: Entity | None = None,
        on_soft_budget: Callable[[SoftBudgetCrossed], None] | None = None,
        warn: Callable[[str], None] | None = None,
        budget_anchor: float = 0.0,
        window_seconds: int = 60,
        slot_lease: float = 900.0,
    ) -> None:
        self._store = store
        self._price_for = price_for
        self._clock = clock
        self._default_output = default_output_tokens
        self._proxy = proxy if proxy is not None and _has_controls(proxy) else None
        self._on_soft_budget = on_soft_budget
        self._warn = warn
        self._anchor = budget_anchor
        self._window_seconds = window_seconds
        self._slot_lease = slot_lease
        self._durations: dict[str, Duration] = {}
        # The current window of each budget duration: recomputed only when ``now`` leaves it
        # (calendar-month windows need datetime arithmetic, too slow to redo per request).
        self._windows: dict[str | None, Window] = {}

    @classmethod
    def from_config(
        cls,
        config: Config,
        store: CounterStore,
        *,
        price_for: Callable[[str], Price],
        clock: Callable[[], float] = time.time,
        on_soft_budget: Callable[[SoftBudgetCrossed], None] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> PolicyAdmission:
        return cls(
            store, price_for=price_for, clock=clock,
            default_output_tokens=config.general.default_output_tokens,
            proxy=proxy_entity(config), on_soft_budget=on_soft_budget, warn=warn,
        )

    async def admit(self, call: Call, deployment_ids: Sequence[str] = ()) -> CounterTicket:
        """Admit ``call`` or raise ModelAccessDenied / BudgetExceeded / RateLimited.

        ``deployment_ids`` are the candidate deployments' ids, as ``price_for`` knows
        them; the budget estimate uses the most expensive one.
        """
        model = call.model
        check_access(call.principal, model)
        entities = call.principal.entities
        if self._proxy is not None:
            entities = (*entities, self._proxy)
        if not any(_has_controls(entity, model) for entity in entities):
            return CounterTicket()  # nothing reserved: settle is a no-op
        request = call.request
        input_tokens = estimate_input_tokens(request)
        output_tokens = 0
        if isinstance(request, ChatRequest):
            max_tokens = request.max_tokens
            output_tokens = max_tokens if max_tokens is not None else self._default_output
        now = self._clock()
        budgeted = [entity for entity in entities if entity.budgets]
        estimate = Decimal(0)
        if budgeted:
            estimate = self._estimate(deployment_ids, input_tokens, output_tokens)
        estimate_nano = to_nano(estimate, round_up=True)
        budget_checks, budget_refs, reservations = self._budget_checks(budgeted, now, estimate_nano)
        windows: list[WindowSpec] = []
        slots: list[SlotSpec] = []
        for entity in entities:
            windows += window_specs(entity, model, input_tokens, output_tokens)
            slots += slot_specs(entity, model)
        member = os.urandom(16).hex()
        admission = CounterAdmission(
            now, member,
            budgets=tuple(budget_checks),
            windows=tuple(WindowCheck(s.key, s.limit, s.amount) for s in windows),
            slots=tuple(SlotCheck(s.key, s.limit) for s in slots),
            reservations=tuple(reservations),
            window_seconds=self._window_seconds,
            slot_lease=self._slot_lease,
        )
        try:
            result = await self._store.admit(admission)
        except CounterStoreUnavailable as exc:
            raise GatewayError(f"rate-limit store unavailable: {exc}", status=503) from exc
        if not result.admitted:
            if result.failed == "budget":
                entity, budget = budget_refs[result.index]
                raise BudgetExceeded(
                    budget_exceeded_message(
                        from_nano(result.current), budget.max_budget, entity.kind,
                        entity.alias or entity.id, budget.duration,
                    ),
                    code="budget_exceeded",
                )
            if result.failed == "window":
                raise window_refusal(windows[result.index], result.current, result.retry_after)
            raise slot_refusal(slots[result.index], result.current)
        tracked = [entity for entity in entities if entity.budgets or entity.soft_budget is not None]
        return CounterTicket(
            store=self._store,
            clock=self._clock,
            member=member,
            bucket=int(now),
            windows=tuple(windows),
            slots=tuple(s.key for s in slots),
            releases=tuple(reservations),
            spends=(lambda at: self._spend_targets(tracked, at)) if tracked else None,
            via=result.via,
            window_seconds=self._window_seconds,
            headers=rate_headers(windows, result.used),
            input_estimate=input_tokens,
            output_reserve=output_tokens,
            estimated_cost=estimate,
            on_soft_budget=self._on_soft_budget,
            warn=self._warn,
        )

    async def admit_cached(self, call: Call) -> CounterTicket:
        """Admit a request the response cache answers (docs/cache.md). Model access is checked and
        an exhausted budget still refuses, but nothing is reserved: the request counts once in
        every ``rpm`` window and uses no tokens, no budget and no parallel slot, as nothing is
        sent upstream. The ticket has nothing to settle."""
        model = call.model
        check_access(call.principal, model)
        entities = call.principal.entities
        if self._proxy is not None:
            entities = (*entities, self._proxy)
        now = self._clock()
        budgets, budget_refs, _ = self._budget_checks([e for e in entities if e.budgets], now, 0)
        windows = [s for e in entities for s in window_specs(e, model, 0, 0) if s.metric == "rpm"]
        if not budgets and not windows:
            return CounterTicket()
        admission = CounterAdmission(
            now, os.urandom(16).hex(), budgets=tuple(budgets),
            windows=tuple(WindowCheck(s.key, s.limit, s.amount) for s in windows),
            window_seconds=self._window_seconds,
        )
        try:
            result = await self._store.admit(admission)
        except CounterStoreUnavailable as exc:
            raise GatewayError(f"rate-limit store unavailable: {exc}", status=503) from exc
        if result.failed == "budget":
            entity, budget = budget_refs[result.index]
            raise BudgetExceeded(
                budget_exceeded_message(
                    from_nano(result.current), budget.max_budget, entity.kind,
                    entity.alias or entity.id, budget.duration,
                ),
                code="budget_exceeded",
            )
        if not result.admitted:
            raise window_refusal(windows[result.index], result.current, result.retry_after)
        return CounterTicket(headers=rate_headers(windows, result.used))

    def _estimate(self, names: Sequence[str], input_tokens: int, output_tokens: int) -> Decimal:
        highest = Decimal(0)
        for name in names:
            price = self._price_for(name)
            cost = input_tokens * (price.input or Decimal(0)) + output_tokens * (price.output or Decimal(0))
            highest = max(highest, cost)
        return highest

    def _budget_checks(
        self, entities: list[Entity], now: float, amount: int
    ) -> tuple[list[BudgetCheck], list[tuple[Entity, Budget]], list[Reservation]]:
        checks: list[BudgetCheck] = []
        refs: list[tuple[Entity, Budget]] = []
        reservations: list[Reservation] = []
        for entity in entities:
            reserve_key = f"r:{entity_key(entity)}"
            for budget in entity.budgets:
                spend_key, _ = self._spend_key(entity, budget.duration, now)
                checks.append(BudgetCheck(spend_key, reserve_key, to_nano(budget.max_budget), amount))
                refs.append((entity, budget))
            if amount:
                reservations.append(Reservation(reserve_key, amount, RESERVATION_TTL))
        return checks, refs, reservations

    def _window(self, duration: str | None, now: float) -> Window:
        window = self._windows.get(duration)
        if window is None or not window.start <= now < window.end:
            window = self._windows[duration] = window_at(self._duration(duration), now, self._anchor)
        return window

    def _spend_key(self, entity: Entity, duration: str | None, now: float) -> tuple[str, Window]:
        window = self._window(duration, now)
        start = "0" if window.lifetime else str(int(window.start))
        return f"s:{entity_key(entity)}:{duration or 'life'}:{start}", window

    def _duration(self, text: str | None) -> Duration | None:
        if text is None:
            return None
        parsed = self._durations.get(text)
        if parsed is None:
            parsed = self._durations[text] = parse_duration(text, "budget_duration")
        return parsed

    def _spend_targets(self, entities: list[Entity], now: float) -> list[SpendTarget]:
        targets: list[SpendTarget] = []
        for entity in entities:
            seen: set[str] = set()
            # The soft budget is measured in the entity's first budget window (lifetime if none).
            durations = [b.duration for b in entity.budgets] or [None]
            for position, duration in enumerate(durations):
                key, window = self._spend_key(entity, duration, now)
                if key in seen:
                    continue
                seen.add(key)
                soft = entity.soft_budget if position == 0 else None
                start = 0.0 if window.lifetime else window.start
                targets.append(SpendTarget(entity, key, window.ttl(now), start, soft))
        return targets


def _has_controls(entity: Entity, model: str | None = None) -> bool:
    if entity.budgets or entity.soft_budget is not None or not entity.limits.empty:
        return True
    if not entity.model_limits:
        return False
    if model is None:
        return True
    per_model = entity.model_limits.get(model)
    return per_model is not None and not per_model.empty


def proxy_entity(config: Config) -> Entity:
    """The proxy-wide entity: a global concurrency cap and the proxy's own budget."""
    general, litellm = config.general, config.litellm
    parallel = general.global_max_parallel_requests or general.max_parallel_requests
    budgets: tuple[Budget, ...] = ()
    if litellm.max_budget is not None:
        if litellm.budget_duration is not None:
            parse_duration(litellm.budget_duration, "litellm_settings.budget_duration", error=ConfigError)
        budgets = (Budget(Decimal(str(litellm.max_budget)), litellm.budget_duration),)
    return Entity(kind="proxy", id="proxy", limits=Limits(max_parallel=parallel), budgets=budgets)
