"""Routing: model groups, deployment choice, cooldowns, retries, fallbacks and the capacity queue.

The gateway builds a ``Router`` (usually ``Router.from_config``), asks it for a ``Plan`` per
request and hands ``Router.run`` an ``attempt(deployment, attempt_number)`` callable. Imports
``canonical``, ``config`` and ``errors`` only; never providers.
"""

from tollgate.routing.cooldowns import (
    DeploymentState,
    DeploymentStats,
    MemoryDeploymentState,
    RedisDeploymentState,
)
from tollgate.routing.plan import Outcome, Plan
from tollgate.routing.queue import RequestQueue
from tollgate.routing.router import Router
from tollgate.routing.table import Alias, ModelTable, parse_aliases

__all__ = [
    "Alias",
    "DeploymentState",
    "DeploymentStats",
    "MemoryDeploymentState",
    "ModelTable",
    "Outcome",
    "Plan",
    "RedisDeploymentState",
    "RequestQueue",
    "Router",
    "parse_aliases",
]
