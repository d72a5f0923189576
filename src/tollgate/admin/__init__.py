"""Admin services: keys, users, teams, organisations, usage plans and DB deployments.

The HTTP admin API (``edge/admin_api.py``) and the CLI (``cli/admin.py``) are thin shells over these
same services. Each method takes the acting ``Principal`` and enforces the authorisation matrix in
``access.py``; each write is one store transaction. May import ``store``, ``config``, ``auth``
(hashing and the principal type) and ``errors``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tollgate.admin.access import Clock, KeyCache, NoCache, utcnow
from tollgate.admin.deployments import DeploymentService, OnChange
from tollgate.admin.keys import KeyService
from tollgate.admin.orgs import OrgService
from tollgate.admin.usage_plans import UsagePlanService
from tollgate.store import Store

__all__ = ["AdminServices", "KeyCache"]


@dataclass(frozen=True, slots=True)
class AdminServices:
    store: Store
    keys: KeyService
    orgs: OrgService
    plans: UsagePlanService
    deployments: DeploymentService

    @classmethod
    def build(
        cls,
        store: Store,
        cache: KeyCache | None = None,
        clock: Clock = utcnow,
        on_deployments_changed: OnChange | None = None,
        guardrails: frozenset[str] | None = None,
    ) -> AdminServices:
        """``cache`` is the authenticator (``auth.keys.KeyAuthenticator``) whose entries writes drop;
        ``guardrails`` the configured guardrail names keys and teams may attach."""
        cache = cache or NoCache()
        return cls(
            store=store,
            keys=KeyService(store, cache, clock, guardrails),
            orgs=OrgService(store, cache, clock, guardrails),
            plans=UsagePlanService(store, cache, clock),
            deployments=DeploymentService(store, clock, on_deployments_changed),
        )
