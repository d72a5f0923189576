"""Admin request bodies, LiteLLM's field names (plus tollgate's ``budgets``, ``model_limits``,
``input_tpm_limit``/``output_tpm_limit``). Pydantic models: this is a trust boundary.

Fields LiteLLM accepts that tollgate does not act on are ignored, so LiteLLM clients keep working.
Updates apply only the fields the caller sent (``model_fields_set``). Numbers and strings are
bounded so that whatever passes here is stored by every database: token and request limits are
whole numbers in [0, 10^15], dollar amounts in [0, 10^12] with at most 12 decimals, identifiers
fit their columns, and anywhere in a body no string carries a NUL character (PostgreSQL refuses
them), no integer leaves ±2^63 and nothing nests deeper than 32 levels (the JSON columns could not
store them). A value outside these bounds is a 400 naming the field.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

UserRole = Literal["proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer"]
MAX_COUNT = 10**15  # tokens, requests, parallel requests
MAX_DOLLARS = Decimal(10**12)

Count = Annotated[int, Field(ge=0, le=MAX_COUNT, strict=False)]
CENT_FRACTION = Decimal("1e-12")  # the stored precision (NUMERIC(30, 12))
Dollars = Annotated[
    Decimal,
    Field(ge=0, le=MAX_DOLLARS, allow_inf_nan=False),
    AfterValidator(lambda d: d.quantize(CENT_FRACTION) if d.as_tuple().exponent < -12 else d),
]
Duration = Annotated[str, Field(max_length=32)]
Id = Annotated[str, Field(min_length=1, max_length=128)]
UserId = Annotated[str, Field(min_length=1, max_length=256)]
Alias = Annotated[str, Field(max_length=256)]
Email = Annotated[str, Field(max_length=320)]


INT64 = 2**63  # the JSON columns (orjson) store integers within ±2^63
MAX_DEPTH = 32  # nesting of free-form JSON (metadata, model_info, …)


def _unstorable(value: Any, path: str, depth: int = 0) -> str | None:
    """Why ``value`` (a parsed body) could not be stored, naming where; ``None`` when it can."""
    if depth > MAX_DEPTH:
        return f"{path}: nested more than {MAX_DEPTH} levels deep"
    if isinstance(value, str):
        return f"{path}: text must not contain NUL (\\u0000) characters" if "\x00" in value else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return f"{path}: integers must lie within ±2^63" if not -INT64 <= value < INT64 else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _unstorable(str(key), f"{path}.{key}", depth + 1) or _unstorable(
                item, f"{path}.{key}", depth + 1)
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _unstorable(item, f"{path}[{index}]", depth + 1)
            if found:
                return found
    return None


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="after")
    def _storable(self) -> _Body:
        # After the fields' own checks (which name the field), over what would be stored.
        problem = _unstorable(self.model_dump(mode="python"), "body")
        if problem:
            raise ValueError(problem.removeprefix("body."))
        return self


class BudgetIn(_Body):
    max_budget: Dollars
    duration: Duration | None = None


class ModelLimitsIn(_Body):
    rpm: Count | None = None
    tpm: Count | None = None
    input_tpm: Count | None = None
    output_tpm: Count | None = None
    max_parallel: Count | None = None


class PolicyFields(_Body):
    models: list[Annotated[str, Field(max_length=256)]] | None = None
    max_budget: Dollars | None = None
    budget_duration: Duration | None = None
    soft_budget: Dollars | None = None
    spend: Dollars | None = None
    tpm_limit: Count | None = None
    rpm_limit: Count | None = None
    input_tpm_limit: Count | None = None
    output_tpm_limit: Count | None = None
    max_parallel_requests: Count | None = None
    model_rpm_limit: dict[str, Count] | None = None
    model_tpm_limit: dict[str, Count] | None = None
    model_limits: dict[str, ModelLimitsIn] | None = None
    budgets: list[BudgetIn] | None = None
    metadata: dict[str, Any] | None = None
    tags: list[str] | None = None
    blocked: bool | None = None
    # Configured guardrail names run on every request of the entity (LiteLLM: keys and teams).
    guardrails: list[Annotated[str, Field(min_length=1, max_length=256)]] | None = None


class KeyFields(PolicyFields):
    key_alias: Alias | None = None
    duration: Duration | None = None
    expires: datetime | None = None
    user_id: UserId | None = None
    team_id: Id | None = None
    organization_id: Id | None = None


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
    key_alias: Alias | None = None
    duration: Duration | None = None
    new_key: Annotated[str, Field(max_length=512)] | None = None


class NewUserRequest(PolicyFields):
    user_id: UserId | None = None
    user_email: Email | None = None
    user_alias: Alias | None = None
    user_role: UserRole = "internal_user"
    teams: list[Id] | None = None
    organization_id: Id | None = None
    team_id: Id | None = None  # LiteLLM: add the user to this team (its first key belongs to it)
    auto_create_key: bool = True
    key_alias: Alias | None = None
    duration: Duration | None = None


class UpdateUserRequest(PolicyFields):
    user_id: UserId | None = None
    user_email: Email | None = None
    user_alias: Alias | None = None
    user_role: UserRole | None = None


class DeleteUsersRequest(_Body):
    user_ids: list[UserId]


class UserInfoRequest(_Body):
    """``/user/info`` with a JSON body, as the enterprise gateway's docs send it."""

    user_id: UserId | None = None
    user_ids: list[UserId] | None = None


class Member(_Body):
    role: Literal["admin", "user"] = "user"
    user_id: UserId | None = None
    user_email: Email | None = None


class NewTeamRequest(PolicyFields):
    team_id: Id | None = None
    team_alias: Alias | None = None
    organization_id: Id | None = None
    members_with_roles: list[Member] | None = None


class UpdateTeamRequest(PolicyFields):
    team_id: Id
    team_alias: Alias | None = None
    organization_id: Id | None = None


class DeleteTeamsRequest(_Body):
    team_ids: list[Id]


class TeamRef(_Body):
    team_id: Id


class MemberAddRequest(_Body):
    team_id: Id
    member: Member | list[Member]


class MemberDeleteRequest(_Body):
    team_id: Id
    user_id: UserId | None = None
    user_email: Email | None = None


class NewOrgRequest(PolicyFields):
    organization_id: Id | None = None
    organization_alias: Alias | None = None


class UpdateOrgRequest(PolicyFields):
    organization_id: Id
    organization_alias: Alias | None = None


class DeleteOrgsRequest(_Body):
    organization_ids: list[Id]


class ModelRequest(_Body):
    model_name: Alias
    litellm_params: dict[str, Any]
    model_info: dict[str, Any] | None = None


class ModelUpdateRequest(_Body):
    id: Id | None = None
    model_name: Alias | None = None
    litellm_params: dict[str, Any] | None = None
    model_info: dict[str, Any] | None = None


class ModelRef(_Body):
    id: Id


EntityType = Literal["USER", "SERVICE", "API_KEY", "DEPARTMENT", "PROJECT"]


class PlanLimits(_Body):
    rpm: Count | None = None
    tpm: Count | None = None
    input_tpm: Count | None = None
    output_tpm: Count | None = None
    max_parallel: Count | None = None


class UsagePlanRequest(_Body):
    # Unknown fields are kept: a plan document reads back exactly as it was posted.
    model_config = ConfigDict(extra="allow")

    entity_id: UserId
    entity_type: EntityType
    tenant_id: Id | None = None
    model_permissions: list[Annotated[str, Field(max_length=256)]] | None = None
    active: bool = True
    default_limits: PlanLimits | None = None
    model_limits: dict[str, PlanLimits] | None = None
    budgets: list[BudgetIn] | None = None
    metadata: dict[str, Any] | None = None


class UsagePlanRef(_Body):
    entity_id: UserId
    entity_type: EntityType | None = None
