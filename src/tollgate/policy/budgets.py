"""Budget decisions. Pure: money is ``Decimal``. A budget is ``max_budget`` dollars per
``duration``; durations and their windows are ``config.durations``'.
"""

from __future__ import annotations

from decimal import Decimal


def exceeds(spend: Decimal, reserved: Decimal, estimate: Decimal, max_budget: Decimal) -> bool:
    """Whether admitting a request of ``estimate`` dollars would pass ``max_budget``.

    Already spent-or-reserved at the limit refuses even a free request (LiteLLM refuses when
    spend ≥ max_budget); otherwise the estimate must fit in what is left.
    """
    used = spend + reserved
    return used >= max_budget or used + estimate > max_budget


def budget_exceeded_message(
    current: Decimal, max_budget: Decimal, kind: str, name: str, duration: str | None
) -> str:
    """LiteLLM's wording, plus the entity and window so the caller knows which budget refused."""
    window = f"{duration} window" if duration else "lifetime"
    return (
        f"Budget has been exceeded! Current cost: {current.normalize():f}, "
        f"Max budget: {max_budget.normalize():f} ({kind} '{name}', {window})"
    )
