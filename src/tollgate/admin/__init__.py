"""Admin services: keys, users, teams, organisations, usage plans and DB deployments.

The HTTP admin API (``edge/admin/``) and the CLI (``cli/admin.py``) are thin shells over these
same services. Each method takes the acting ``Principal`` and enforces the authorisation matrix
(``matrix.py``, ``access.py``, ``key_rules.py``); each write is one store transaction that also
holds its audit entry (``journal.py``). May import ``store``, ``config``, ``auth``, ``policy``
(model access) and ``errors``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tollgate.admin.access import Clock, KeyCache, NoCache, Standing, as_stored, utcnow
from tollgate.admin.audit import AuditService
from tollgate.admin.deployments import DeploymentService, OnChange
from tollgate.admin.journal import Journal
from tollgate.admin.key_rules import NO_BOUNDS, KeyBounds
from tollgate.admin.keys import KeyService
from tollgate.admin.orgs import OrgService
from tollgate.admin.teams import TeamService
from tollgate.admin.usage_plans import UsagePlanService
from tollgate.admin.user_defaults import NO_DEFAULTS, UserDefaults
from tollgate.admin.users import UserService
from tollgate.config.sealing import NO_SEALING, Sealer
from tollgate.store import Store

__all__ = ["AdminServices", "AdminSettings", "KeyBounds", "KeyCache", "UserDefaults"]


@dataclass(frozen=True, slots=True)
class AdminSettings:
    """The config that shapes admin writes (LiteLLM's settings of the same names)."""

    key_bounds: KeyBounds = NO_BOUNDS  # litellm_settings.upperbound_key_generate_params
    user_defaults: UserDefaults = NO_DEFAULTS  # max_internal_user_budget & co.
    store_models: bool = True  # general_settings.store_model_in_db
    sealer: Sealer = NO_SEALING  # encrypts /model/new credentials (LITELLM_SALT_KEY, else the master key)


@dataclass(frozen=True, slots=True)
class AdminServices:
    store: Store
    keys: KeyService
    users: UserService
    teams: TeamService
    orgs: OrgService
    plans: UsagePlanService
    deployments: DeploymentService
    audit: AuditService
    journal: Journal  # for admin writes outside these services (chat-history sessions)

    @classmethod
    def build(
        cls,
        store: Store,
        cache: KeyCache | None = None,
        clock: Clock = utcnow,
        on_deployments_changed: OnChange | None = None,
        settings: AdminSettings = AdminSettings(),
        standing: Standing = as_stored,
        guardrails: frozenset[str] | None = None,
    ) -> AdminServices:
        """``cache`` is the authenticator (``auth.keys.KeyAuthenticator``) whose entries writes drop,
        or an ``auth.invalidation.Invalidation`` that also tells the other replicas; ``standing``
        completes info views with the current budget windows (``policy.standing``); ``guardrails``
        the configured guardrail names keys and teams may attach (None: names are not checked)."""
        cache = cache or NoCache()
        journal = Journal(store, clock)
        return cls(
            store=store,
            keys=KeyService(journal, store, cache, clock, settings.key_bounds, standing, guardrails,
                            new_users=settings.user_defaults),
            users=UserService(journal, store, cache, clock, settings.user_defaults, standing),
            teams=TeamService(journal, store, cache, clock, settings.user_defaults, standing, guardrails),
            orgs=OrgService(journal, store, cache, clock, standing),
            plans=UsagePlanService(journal, store, cache, clock),
            deployments=DeploymentService(journal, store, clock, on_deployments_changed,
                                          store_models=settings.store_models, sealer=settings.sealer),
            audit=AuditService(store, clock),
            journal=journal,
        )
