"""The typed sections of a LiteLLM config: ``router_settings``, ``general_settings``,
``litellm_settings``.

Each is a frozen pydantic model (config is a trust boundary). Fields tollgate acts on are typed,
so a wrong type refuses to start with the key path (``cache_params`` is its own model,
``config/cache.py``). Which other keys are accepted without being enforced, and how each is
reported, is ``config/compat.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tollgate.config.cache import CacheParams

RoutingStrategy = Literal[
    "simple-shuffle",
    "least-busy",
    "usage-based-routing",
    "usage-based-routing-v2",
    "latency-based-routing",
    "cost-based-routing",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


class RouterSettings(_Section):
    routing_strategy: RoutingStrategy = "simple-shuffle"
    routing_strategy_args: dict[str, Any] = Field(default_factory=dict)
    num_retries: int | None = None
    retry_after: float = 0.0
    timeout: float | None = None
    stream_timeout: float | None = None
    fallbacks: list[dict[str, list[str]]] = Field(default_factory=list)
    context_window_fallbacks: list[dict[str, list[str]]] = Field(default_factory=list)
    content_policy_fallbacks: list[dict[str, list[str]]] = Field(default_factory=list)
    default_fallbacks: list[str] = Field(default_factory=list)
    allowed_fails: int = 3
    cooldown_time: float = 5.0
    disable_cooldowns: bool = False
    enable_pre_call_checks: bool = False
    enable_pre_call_check: bool = False
    model_group_alias: dict[str, str | dict[str, Any]] = Field(default_factory=dict)
    retry_policy: dict[str, int] = Field(default_factory=dict)
    allowed_fails_policy: dict[str, int] = Field(default_factory=dict)
    redis_host: str | None = None
    redis_port: int | None = None
    redis_password: str | None = None
    redis_url: str | None = None
    max_queue_wait: float = 10.0  # tollgate: how long a saturated request may wait for capacity
    max_queue_size: int = 1000


class GeneralSettings(_Section):
    master_key: str | None = None
    database_url: str | None = None
    database_connection_pool_limit: int = 10
    database_connection_timeout: float = 60.0
    store_model_in_db: bool = False
    max_parallel_requests: int | None = None
    global_max_parallel_requests: int | None = None
    request_timeout: float | None = None
    enable_jwt_auth: bool = False
    litellm_jwtauth: dict[str, Any] = Field(default_factory=dict)
    disable_spend_logs: bool = False
    store_prompts_in_spend_logs: bool = False
    proxy_batch_write_at: float = 1.0  # seconds between spend-log flushes (LiteLLM's name)
    spend_log_batch_size: int = 500
    spend_log_spill_dir: str | None = None  # crash-safety file of unwritten spend rows
    maximum_spend_logs_retention_period: str | None = None
    redis_fail_mode: Literal["fallback", "fail_open", "fail_closed"] = "fallback"
    default_output_tokens: int = 1024  # a request's max output when it sets no max tokens
    # tollgate (docs/enforcement.md): output tokens a token-limit reservation expects (capped by the
    # request's max), budget admission rule, and how long a dead replica's slots stay taken.
    expected_output_tokens: int = Field(default=256, ge=0)
    budget_admission: Literal["litellm", "strict"] = "litellm"
    replica_lease_seconds: float = Field(default=15.0, gt=0)
    # Quota leases per replica on Redis (docs/enforcement.md, "Quota leases"); off: every counted
    # request makes its own round trips to Redis.
    counter_leases: bool = True
    alerting: list[str] = Field(default_factory=list)
    alert_to_webhook_url: dict[str, Any] = Field(default_factory=dict)
    soft_budget_webhook_url: str | None = None
    health_check_details: bool = True
    # LiteLLM's switch for schema updates on start (as the DISABLE_SCHEMA_UPDATE variable).
    disable_prisma_schema_update: bool = False
    # How long a virtual key's principal is cached (LiteLLM's name; default 60 s).
    user_api_key_cache_ttl: float | None = Field(default=None, ge=0)
    # Request bodies above this many MB get 413 (LiteLLM's key); unset: DEFAULT_MAX_REQUEST_MB.
    max_request_size_mb: float | None = Field(default=None, gt=0)
    enforced_params: list[str] = Field(default_factory=list)  # params every request must carry
    # Chat history and managed prompts (docs/conversations.md); None: no limit.
    chat_history_retention_days: float | None = Field(default=30.0, gt=0)
    chat_history_max_turns: int | None = Field(default=50, ge=1)
    chat_history_max_tokens: int | None = Field(default=None, ge=1)
    managed_prompt_cache_ttl: float = Field(default=60.0, ge=0)  # seconds; the working draft
    managed_prompt_version_cache_ttl: float = Field(default=3600.0, ge=0)  # numbered versions


class LitellmSettings(_Section):
    drop_params: bool = False
    request_timeout: float | None = None
    json_logs: bool = False
    set_verbose: bool = False
    num_retries: int | None = None
    callbacks: list[str] | str | None = None
    success_callback: list[str] | None = None
    failure_callback: list[str] | None = None
    cache: bool = False  # the response cache (docs/cache.md)
    cache_params: CacheParams = Field(default_factory=CacheParams)
    max_budget: float | None = None
    budget_duration: str | None = None
    max_internal_user_budget: float | None = None
    internal_user_budget_duration: str | None = None
    default_internal_user_params: dict[str, Any] = Field(default_factory=dict)
    default_team_settings: list[dict[str, Any]] = Field(default_factory=list)
    max_end_user_budget: float | None = None
    upperbound_key_generate_params: dict[str, Any] = Field(default_factory=dict)
    # /metrics names keys, teams and users: it asks for an admin or viewer key unless set to false.
    require_auth_for_metrics_endpoint: bool = True
    default_key_generate_params: dict[str, Any] = Field(default_factory=dict)
    model_group_alias: dict[str, str | dict[str, Any]] = Field(default_factory=dict)
    context_window_fallbacks: list[dict[str, list[str]]] = Field(default_factory=list)
    fallbacks: list[dict[str, list[str]]] = Field(default_factory=list)
    default_fallbacks: list[str] = Field(default_factory=list)
    content_policy_fallbacks: list[dict[str, list[str]]] = Field(default_factory=list)
    # Verify upstream TLS certificates; a string is a CA bundle file (LiteLLM's meaning).
    ssl_verify: bool | str = True

    @field_validator("ssl_verify")
    @classmethod
    def _ca_bundle_exists(cls, value: bool | str) -> bool | str:
        if isinstance(value, str) and not Path(value).is_file():
            raise ValueError("must be true, false or the path of a CA bundle file")
        return value
