"""Admin request bodies, LiteLLM's field names (plus tollgate's ``budgets``, ``model_limits``,
``input_tpm_limit``/``output_tpm_limit``). Pydantic models: this is a trust boundary.

Fields LiteLLM accepts that tollgate does not act on are ignored, so LiteLLM clients keep working.
Updates apply only the fields the caller sent (``model_fields_set``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

UserRole = Literal["proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class BudgetIn(_Body):
    max_budget: Decimal = Field(ge=0)
    duration: str | None = None


class ModelLimitsIn(_Body):
    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)
    input_tpm: int | None = Field(default=None, ge=0)
    output_tpm: int | None = Field(default=None, ge=0)
    max_parallel: int | None = Field(default=None, ge=0)


class PolicyFields(_Body):
    models: list[str] | None = None
    max_budget: Decimal | None = Field(default=None, ge=0)
    budget_duration: str | None = None
    soft_budget: Decimal | None = Field(default=None, ge=0)
    spend: Decimal | None = Field(default=None, ge=0)
    tpm_limit: int | None = Field(default=None, ge=0)
    rpm_limit: int | None = Field(default=None, ge=0)
    input_tpm_limit: int | None = Field(default=None, ge=0)
    output_tpm_limit: int | None = Field(default=None, ge=0)
    max_parallel_requests: int | None = Field(default=None, ge=0)
    model_rpm_limit: dict[str, int] | None = None
    model_tpm_limit: dict[str, int] | None = None
    model_limits: dict[str, ModelLimitsIn] | None = None
    budgets: list[BudgetIn] | None = None
    metadata: dict[str, Any] | None = None
    tags: list[str] | None = None
    blocked: bool | None = None
    # Configured guardrail names run on every request of the entity (LiteLLM: keys and teams).
    guardrails: list[Annotated[str, Field(min_length=1, max_length=256)]] | None = None


class KeyFields(PolicyFields):
    key_alias: str | None = None
    duration: str | None = None
    expires: datetime | None = None
    user_id: str | None = None
    team_id: str | None = None
    organization_id: str | None = None


class GenerateKeyRequest(KeyFields):
    key: str | None = None  # a caller-chosen key value, as LiteLLM allows


class UpdateKeyRequest(KeyFields):
    key: str


class DeleteKeysRequest(_Body):
    keys: list[str] | None = None
    key_aliases: list[str] | None = None


class KeyRef(_Body):
    key: str


class RegenerateKeyRequest(PolicyFields):
    key: str | None = None
    key_alias: str | None = None
    duration: str | None = None
    new_key: str | None = None


class NewUserRequest(PolicyFields):
    user_id: str | None = None
    user_email: str | None = None
    user_alias: str | None = None
    user_role: UserRole = "internal_user"
    teams: list[str] | None = None
    organization_id: str | None = None
    team_id: str | None = None  # LiteLLM: add the user to this team (its first key belongs to it)
    auto_create_key: bool = True
    key_alias: str | None = None
    duration: str | None = None


class UpdateUserRequest(PolicyFields):
    user_id: str | None = None
    user_email: str | None = None
    user_alias: str | None = None
    user_role: UserRole | None = None


class DeleteUsersRequest(_Body):
    user_ids: list[str]


class Member(_Body):
    role: Literal["admin", "user"] = "user"
    user_id: str | None = None
    user_email: str | None = None


class NewTeamRequest(PolicyFields):
    team_id: str | None = None
    team_alias: str | None = None
    organization_id: str | None = None
    members_with_roles: list[Member] | None = None


class UpdateTeamRequest(PolicyFields):
    team_id: str
    team_alias: str | None = None
    organization_id: str | None = None


class DeleteTeamsRequest(_Body):
    team_ids: list[str]


class TeamRef(_Body):
    team_id: str


class MemberAddRequest(_Body):
    team_id: str
    member: Member | list[Member]


class MemberDeleteRequest(_Body):
    team_id: str
    user_id: str | None = None
    user_email: str | None = None


class NewOrgRequest(PolicyFields):
    organization_id: str | None = None
    organization_alias: str | None = None


class UpdateOrgRequest(PolicyFields):
    organization_id: str
    organization_alias: str | None = None


class DeleteOrgsRequest(_Body):
    organization_ids: list[str]


class ModelRequest(_Body):
    model_name: str
    litellm_params: dict[str, Any]
    model_info: dict[str, Any] | None = None


class ModelUpdateRequest(_Body):
    id: str | None = None
    model_name: str | None = None
    litellm_params: dict[str, Any] | None = None
    model_info: dict[str, Any] | None = None


class ModelRef(_Body):
    id: str


EntityType = Literal["USER", "SERVICE", "API_KEY", "DEPARTMENT", "PROJECT"]


class PlanLimits(_Body):
    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)
    input_tpm: int | None = Field(default=None, ge=0)
    output_tpm: int | None = Field(default=None, ge=0)
    max_parallel: int | None = Field(default=None, ge=0)


class UsagePlanRequest(BaseModel):
    # Unknown fields are kept: a plan document reads back exactly as it was posted.
    model_config = ConfigDict(extra="allow")

    entity_id: str
    entity_type: EntityType
    tenant_id: str | None = None
    model_permissions: list[str] | None = None
    active: bool = True
    default_limits: PlanLimits | None = None
    model_limits: dict[str, PlanLimits] | None = None
    budgets: list[BudgetIn] | None = None
    metadata: dict[str, Any] | None = None


class UsagePlanRef(_Body):
    entity_id: str
    entity_type: EntityType | None = None
