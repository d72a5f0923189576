"""A request's route as admission sees it: the model group its model resolves to, then each
fallback group (per-request, configured, context-window, content-policy and default), each with
its deployments. Fallbacks admission does not let the principal reach (no access, or their
per-model limits full) are then dropped from the plan, so routing never tries them."""

from __future__ import annotations

from dataclasses import replace

from tollgate.call import Call, Destination, Route
from tollgate.canonical import NO_HINTS, ChatRequest
from tollgate.policy.tokens import estimate_input_tokens
from tollgate.routing import Plan, Router
from tollgate.routing.table import ModelTable


def plan_route(router: Router, call: Call, *, stream: bool = False) -> tuple[Plan, Route]:
    """Plan the request (resolving aliases; ``UnknownModel`` here) and the route admission checks.
    The input estimate is the edge's (``call.input_tokens``) when it made one."""
    request = call.request
    estimate = call.input_tokens if call.input_tokens is not None else estimate_input_tokens(request)
    hints = request.hints if isinstance(request, ChatRequest) else NO_HINTS
    plan = router.plan(request.model, hints, estimate, stream=stream)
    table = router.table

    def destination(name: str, group: str) -> Destination:
        return Destination(name, group, tuple(d.id for d in table.deployments(group)))

    destinations = [destination(request.model, plan.group)]
    chains = (plan.fallbacks, plan.context_window_fallbacks, plan.content_policy_fallbacks)
    for name in dict.fromkeys(n for chain in chains for n in chain):
        group = table.resolve(name)
        if group is not None:
            destinations.append(destination(name, group))
    return plan, Route(tuple(destinations), estimate)


def within_reach(plan: Plan, table: ModelTable, reachable: frozenset[str]) -> Plan:
    """``plan`` without the fallbacks whose groups are not ``reachable``."""

    def kept(chain: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(n for n in chain if table.resolve(n) in reachable)

    return replace(
        plan, fallbacks=kept(plan.fallbacks),
        context_window_fallbacks=kept(plan.context_window_fallbacks),
        content_policy_fallbacks=kept(plan.content_policy_fallbacks),
    )
