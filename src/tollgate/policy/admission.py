"""``PolicyAdmission``: admit a call (access ▸ budgets ▸ limits) and hand back its ``CounterTicket``.

Every entity of the principal's chain, plus a proxy-wide entity built from the config
(``general_settings.global_max_parallel_requests``/``max_parallel_requests`` and
``litellm_settings.max_budget``/``budget_duration``), must admit the request. The request's
``Route`` names every model group its plan may reach: the primary group must be allowed (else
``ModelAccessDenied``); a fallback group the principal may not use is left out of the ticket's
``reachable`` groups (the gateway drops it from the plan), and so is one whose per-model limits
are full. Budgets are estimated against the most expensive deployment still reachable.

All checks of one request go to the counter store as one ``CounterAdmission``, applied
all-or-nothing (one Redis script); when nothing needs counting the store is not called. A budget
total the store does not have is rebuilt from the spend of record (the database) and the
admission sent again with it: two round trips, once per entity and window. Refusals come in
chain order (key, user, team, org, proxy): budgets first, then rate limits. ``admit_cached``
admits a request the response cache answers: access, budgets and ``rpm`` only, nothing reserved.
May import: ``call``, ``auth``, ``canonical``, ``config``, ``errors``, ``store``, ``policy``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from decimal import Decimal

from tollgate.auth.principal import Budget, Entity, Limits, Principal
from tollgate.call import Call, Destination, Route
from tollgate.canonical import ChatRequest
from tollgate.config import Config, Price
from tollgate.config.durations import parse_duration
from tollgate.errors import ConfigError, GatewayError
from tollgate.policy.access import check_access
from tollgate.policy.budgets import BudgetLine, budget_refusal, spend_query
from tollgate.policy.limits import Amounts, rate_headers, slot_refusal, window_refusal
from tollgate.policy.plans import Plan, Planner
from tollgate.policy.ticket import CounterTicket, SoftBudgetCrossed
from tollgate.policy.tokens import estimate_input_tokens
from tollgate.store.counters import (
    AdmissionResult,
    CounterAdmission,
    CounterStore,
    CounterStoreUnavailable,
    Reservation,
    WindowCheck,
    from_nano,
    to_nano,
)
from tollgate.store.records import SpendQuery

_ZERO = Decimal(0)
SpendOfRecord = Callable[[Sequence[SpendQuery]], Awaitable[Sequence[Decimal]]]


class PolicyAdmission:
    """Admission control. ``price_for(deployment_id)`` prices candidates; ``resolve(name)`` is the
    routing table's name → model group; ``spend_of_record`` reads budget totals from the database."""

    def __init__(
        self,
        store: CounterStore,
        *,
        price_for: Callable[[str], Price],
        resolve: Callable[[str], str | None] = lambda name: name,
        spend_of_record: SpendOfRecord | None = None,
        clock: Callable[[], float] = time.time,
        default_output_tokens: int = 1024,
        expected_output_tokens: int = 256,
        strict_budgets: bool = False,
        proxy: Entity | None = None,
        on_soft_budget: Callable[[SoftBudgetCrossed], None] | None = None,
        warn: Callable[[str], None] | None = None,
        window_seconds: int = 60,
    ) -> None:
        self._store = store
        self._price_for = price_for
        self._resolve = resolve
        self._spend_of_record = spend_of_record
        self._clock = clock
        self._default_output = default_output_tokens
        self._expected_output = expected_output_tokens
        self._strict = strict_budgets
        self._proxy = proxy if proxy is not None and _has_controls(proxy) else None
        self._on_soft_budget = on_soft_budget
        self._warn = warn
        self._window_seconds = window_seconds
        self._planner = Planner(resolve=resolve, price_for=price_for, strict=strict_budgets)

    @classmethod
    def from_config(
        cls,
        config: Config,
        store: CounterStore,
        *,
        price_for: Callable[[str], Price],
        resolve: Callable[[str], str | None] = lambda name: name,
        spend_of_record: SpendOfRecord | None = None,
        clock: Callable[[], float] = time.time,
        on_soft_budget: Callable[[SoftBudgetCrossed], None] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> PolicyAdmission:
        general = config.general
        return cls(
            store, price_for=price_for, resolve=resolve, spend_of_record=spend_of_record, clock=clock,
            default_output_tokens=general.default_output_tokens,
            expected_output_tokens=general.expected_output_tokens,
            strict_budgets=general.budget_admission == "strict", proxy=proxy_entity(config),
            on_soft_budget=on_soft_budget, warn=warn,
        )

    async def admit(self, call: Call, route: Route | None = None) -> CounterTicket:
        """Admit ``call`` or raise ModelAccessDenied / BudgetExceeded / RateLimited (see module)."""
        principal = call.principal
        destinations = route.destinations if route is not None and route.destinations else (
            Destination(call.model, call.model),
        )
        primary = destinations[0]
        check_access(principal, primary.name, primary.group)
        now = self._clock()
        plan = self._plan(principal, destinations, now)
        if not plan.counted:
            return CounterTicket(primary=plan.primary, reachable=plan.reachable)
        request = call.request
        input_tokens = route.input_tokens if route is not None else estimate_input_tokens(request)
        max_output = 0
        if isinstance(request, ChatRequest):
            max_output = request.max_tokens if request.max_tokens is not None else self._default_output
        expected_output = min(max_output, self._expected_output)
        amounts = Amounts(input_tokens, expected_output)
        window_amounts = tuple(amounts.of(spec.metric) for spec in plan.windows)
        estimate = plan.worst_case(input_tokens, max_output) if plan.prices else _ZERO
        cost = to_nano(estimate, round_up=True) if estimate else 0
        member = os.urandom(16).hex()
        admission = CounterAdmission(
            now, member,
            budgets=plan.budget_checks,
            windows=tuple(
                WindowCheck(spec.key, spec.limit, amount, spec.group)
                for spec, amount in zip(plan.windows, window_amounts, strict=True)
            ),
            slots=plan.slot_checks,
            reservations=tuple(Reservation(key, cost) for key in plan.reserve_keys) if cost else (),
            cost=cost,
            window_seconds=self._window_seconds,
        )
        result = await self._run(admission, plan.lines)
        if not result.admitted:
            self._refuse(result, plan, estimate)
        dropped = result.dropped
        return CounterTicket(
            store=self._store,
            clock=self._clock,
            member=member,
            bucket=int(now),
            windows=plan.windows,
            amounts=window_amounts,
            dropped=dropped,
            spends=plan.targets,
            via=result.via,
            window_seconds=self._window_seconds,
            headers=rate_headers(plan.windows, window_amounts, result.used),
            primary=plan.primary,
            reachable=frozenset(d.group for i, d in enumerate(plan.reach) if i not in dropped),
            input_estimate=input_tokens,
            output_reserve=expected_output,
            estimated_cost=estimate,
            on_soft_budget=self._on_soft_budget,
            warn=self._warn,
        )

    async def admit_cached(self, call: Call, route: Route | None = None) -> CounterTicket:
        """Admit a request the response cache answers (docs/cache.md), on its route's first
        destination. Model access is checked and an exhausted budget still refuses (checked with
        amount 0), but nothing is reserved: the request counts once in every ``rpm`` window (its
        group's per-model ones too) and takes no tokens, no budget reservation and no parallel
        slot, as nothing is sent upstream. Its ticket has nothing to settle but the store's
        record of the admission."""
        principal = call.principal
        destinations = route.destinations[:1] if route is not None and route.destinations else (
            Destination(call.model, call.model),
        )
        primary = destinations[0]
        check_access(principal, primary.name, primary.group)
        now = self._clock()
        plan = self._plan(principal, destinations, now)
        windows = tuple(spec for spec in plan.windows if spec.metric == "rpm")
        if not plan.budget_checks and not windows:
            return CounterTicket(primary=plan.primary, reachable=plan.reachable)
        member = os.urandom(16).hex()
        admission = CounterAdmission(
            now, member, budgets=plan.budget_checks,
            windows=tuple(WindowCheck(spec.key, spec.limit, 1, spec.group) for spec in windows),
            window_seconds=self._window_seconds,
        )
        result = await self._run(admission, plan.lines)
        if not result.admitted:
            if result.failed == "window":
                raise window_refusal(windows[result.index], result.current, result.retry_after,
                                     self._window_seconds)
            self._refuse(result, plan, _ZERO)
        amounts = (1,) * len(windows)
        return CounterTicket(
            store=self._store, clock=self._clock, member=member, bucket=int(now), windows=windows,
            amounts=amounts, via=result.via, window_seconds=self._window_seconds,
            headers=rate_headers(windows, amounts, result.used), primary=plan.primary,
            reachable=plan.reachable, warn=self._warn,
        )

    def _plan(self, principal: Principal, destinations: tuple[Destination, ...], now: float) -> Plan:
        entities = principal.entities if self._proxy is None else (*principal.entities, self._proxy)
        return self._planner.plan(principal, destinations, entities, now)

    async def _run(self, admission: CounterAdmission, lines: tuple[BudgetLine, ...]) -> AdmissionResult:
        try:
            result = await self._store.admit(admission)
            if result.failed != "missing":
                return result
            seeds = await self._seeds([lines[i] for i in result.missing])
            budgets = list(admission.budgets)
            for index, seed in zip(result.missing, seeds, strict=True):
                budgets[index] = replace(budgets[index], seed=seed)
            result = await self._store.admit(replace(admission, budgets=tuple(budgets)))
        except CounterStoreUnavailable as exc:
            raise GatewayError(f"rate-limit store unavailable: {exc}", status=503) from exc
        if result.failed == "missing":
            raise GatewayError("budget totals could not be rebuilt; retry", status=503, retry_after=1.0)
        return result

    async def _seeds(self, lines: list[BudgetLine]) -> list[int]:
        """The spend of record of each line, in nano-dollars (0 where the database has none)."""
        queries = [spend_query(line) for line in lines]
        asked = [q for q in queries if q is not None]
        if not asked or self._spend_of_record is None:
            return [0] * len(lines)
        try:
            found = iter(await self._spend_of_record(asked))
        except Exception as exc:
            # Guessing would re-admit a spent budget; without the database nobody can know it.
            raise GatewayError(
                f"budget totals unavailable: the database could not be read ({type(exc).__name__})",
                status=503, retry_after=5.0,
            ) from exc
        return [to_nano(next(found)) if q is not None else 0 for q in queries]

    def _refuse(self, result: AdmissionResult, plan: Plan, estimate: Decimal) -> None:
        if result.failed == "budget":
            raise budget_refusal(
                plan.lines[result.index], from_nano(result.current), from_nano(result.reserved), estimate,
                self._strict,
            )
        if result.failed == "window":
            window = plan.windows[result.index]
            raise window_refusal(window, result.current, result.retry_after, self._window_seconds)
        raise slot_refusal(plan.slots[result.index], result.current)


def _has_controls(entity: Entity) -> bool:
    return bool(
        entity.budgets or entity.soft_budget is not None or not entity.limits.empty or entity.model_limits
    )


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
