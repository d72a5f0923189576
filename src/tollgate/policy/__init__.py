"""Admission control: model access, budgets and rate limits (DESIGN.md §0.1, §2.13).

``Policy.admit(call, deployment_model_names)`` returns a ``Ticket`` that the gateway settles with
the real usage and cost. Decision helpers (``access``, ``budgets``, ``tokens``) are pure.
"""

from tollgate.policy.admission import Policy, proxy_entity
from tollgate.policy.limits import SoftBudgetCrossed, Ticket

__all__ = ["Policy", "SoftBudgetCrossed", "Ticket", "proxy_entity"]
