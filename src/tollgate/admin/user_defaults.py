"""What a user gets for the policy fields it was created without: LiteLLM's
``default_internal_user_params``, ``max_internal_user_budget`` and ``internal_user_budget_duration``,
applied however the user comes to exist (``/user/new``, onboarding, a new team member).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from tollgate.admin.policies import apply_fields
from tollgate.admin.requests import NewUserRequest, PolicyFields
from tollgate.errors import ConfigError
from tollgate.store.records import EMPTY_POLICY, EntityPolicy, User


@dataclass(frozen=True, slots=True)
class UserDefaults:
    """What a new user gets for the policy fields it was created without (``seed``)."""

    params: Mapping[str, Any] = field(default_factory=dict)  # default_internal_user_params
    max_budget: Any = None  # max_internal_user_budget
    budget_duration: str | None = None  # internal_user_budget_duration

    @classmethod
    def parse(cls, params: Mapping[str, Any], max_budget: Any, budget_duration: str | None) -> UserDefaults:
        known = {k: v for k, v in params.items() if k in PolicyFields.model_fields}
        try:
            PolicyFields.model_validate({**known, "max_budget": max_budget,
                                         "budget_duration": budget_duration})
        except ValidationError as exc:
            raise ConfigError(f"litellm_settings: internal user defaults: {exc.errors()[0]['msg']}") from None
        return cls(known, max_budget, budget_duration)

    def seed(self, body: PolicyFields, role: str) -> PolicyFields:
        if role == "proxy_admin":
            return body
        sent = body.model_fields_set
        fill = {k: v for k, v in self.params.items() if k not in sent or getattr(body, k) in (None, [])}
        has_budget = fill.get("max_budget") is not None or body.max_budget is not None or body.budgets
        if role == "internal_user" and not has_budget and self.max_budget is not None:
            fill["max_budget"] = self.max_budget
            if "budget_duration" not in sent and self.budget_duration is not None:
                fill["budget_duration"] = self.budget_duration
        return type(body).model_validate({**body.model_dump(exclude_unset=True), **fill}) if fill else body

    def new_user(self, user_id: str | None, email: str | None, now: datetime) -> User:
        """A user created on the way (a team member named by id or email, a key's ``user_id``):
        an internal user with these defaults, as ``/user/new`` would make it."""
        seeded = self.seed(NewUserRequest(), "internal_user")
        return new_member(user_id, email, apply_fields(EMPTY_POLICY, seeded, now), now)


NO_DEFAULTS = UserDefaults()


def new_member(user_id: str | None, email: str | None, policy: EntityPolicy, now: Any) -> User:
    return User(user_id or str(uuid.uuid4()), email, policy=policy, created_at=now, updated_at=now)


