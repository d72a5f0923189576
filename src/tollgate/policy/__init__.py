"""Admission control: model access, budgets and rate limits (DESIGN.md §0.1, §2.13).

``PolicyAdmission.admit(call, route)`` returns a ``CounterTicket`` that the gateway settles with
the real usage and cost. Decision helpers (``access``, ``budgets``, ``limits``, ``tokens``) are pure.
"""

from tollgate.policy.admission import PolicyAdmission, proxy_entity
from tollgate.policy.ticket import CounterTicket, SoftBudgetCrossed

__all__ = ["CounterTicket", "PolicyAdmission", "SoftBudgetCrossed", "proxy_entity"]
