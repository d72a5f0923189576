"""The typed sections of a LiteLLM config: ``router_settings``, ``general_settings``,
``litellm_settings``.

Each is a frozen pydantic model (config is a trust boundary). Fields tollgate acts on are typed,
so a wrong type refuses to start with the key path. Keys LiteLLM documents but tollgate does
not act on are listed in ``ACCEPTED`` so they load silently; any other key is kept and reported
once by ``unknown_keys`` as a warning naming its path.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tollgate.config.cache import CacheParams, cache_param_findings

KNOWN_TOP_LEVEL = frozenset(
    {
        "model_list",
        "router_settings",
        "general_settings",
        "litellm_settings",
        "environment_variables",
        "guardrails",
        "credential_list",
        "include",
        "files_settings",
        "assistant_settings",
        "mcp_servers",
        "mcp_tools",
        "search_tools",
        "callback_settings",
        "finetune_settings",
        "vector_store_registry",
        "prompts",
        "tiers",
    }
)

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
    default_output_tokens: int = 1024  # reservation when a request sets no max tokens
    alerting: list[str] = Field(default_factory=list)
    alert_to_webhook_url: dict[str, Any] = Field(default_factory=dict)
    soft_budget_webhook_url: str | None = None
    health_check_details: bool = True


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
    default_key_generate_params: dict[str, Any] = Field(default_factory=dict)
    model_group_alias: dict[str, str | dict[str, Any]] = Field(default_factory=dict)
    context_window_fallbacks: list[dict[str, list[str]]] = Field(default_factory=list)
    fallbacks: list[dict[str, list[str]]] = Field(default_factory=list)
    default_fallbacks: list[str] = Field(default_factory=list)
    content_policy_fallbacks: list[dict[str, list[str]]] = Field(default_factory=list)


# Keys LiteLLM documents that tollgate accepts without acting on them (no warning).
ACCEPTED: dict[str, frozenset[str]] = {
    "router_settings": frozenset(
        {
            "redis_db",
            "cache_responses",
            "cache_kwargs",
            "set_verbose",
            "debug_level",
            "provider_budget_config",
            "model_group_retry_policy",
            "polling_interval",
            "default_priority",
            "caching_groups",
            "client_ttl",
            "optional_pre_call_checks",
            "enable_tag_filtering",
            "tag_filtering_match_any",
            "router_general_settings",
            "default_max_parallel_requests",
            "assistants_config",
            "alerting_config",
        }
    ),
    "general_settings": frozenset(
        {
            "disable_master_key_return",
            "disable_reset_budget",
            "disable_adding_master_key_hash_to_db",
            "enforce_user_param",
            "allowed_routes",
            "admin_only_routes",
            "key_management_system",
            "use_azure_key_vault",
            "use_google_kms",
            "custom_auth",
            "custom_key_generate",
            "background_health_checks",
            "health_check_interval",
            "alerting_threshold",
            "alert_types",
            "allow_user_auth",
            "proxy_budget_rescheduler_min_time",
            "proxy_budget_rescheduler_max_time",
            "infer_model_from_keys",
            "ui_access_mode",
            "public_routes",
            "allowed_ips",
            "use_x_forwarded_for",
            "enable_oauth2_auth",
            "pass_through_endpoints",
            "otel",
            "service_account_settings",
            "user_header_name",
            "litellm_key_header_name",
            "disable_retry_on_max_parallel_request_limit_error",
            "allow_requests_on_db_unavailable",
            "use_redis_transaction_buffer",
            "database_connection_pool_timeout",
            "disable_prisma_schema_update",
            "supported_db_objects",
            "enable_public_model_hub",
            "forward_client_headers_to_llm_api",
            "disable_responses_id_security",
            "reject_clientside_metadata_tags",
            "always_include_stream_usage",
            "max_request_size_mb",
            "max_response_size_mb",
            "mcp_client_side_auth_header_name",
            "store_model_in_db_cache",
            "spend_report_frequency",
        }
    ),
    "litellm_settings": frozenset(
        {
            "telemetry",
            "turn_off_message_logging",
            "redact_user_api_key_info",
            "redact_messages_in_exceptions",
            "modify_params",
            "enable_preview_features",
            "disable_end_user_cost_tracking",
            "key_generation_settings",
            "service_callback",
            "cache_control_injection_points",
            "force_ipv4",
            "ssl_verify",
            "json_logs_config",
            "default_max_internal_user_budget",
            "disable_add_transform_inline_image_block",
            "enable_json_schema_validation",
            "enforced_params",
            "allowed_fails",
            "cooldown_time",
            "num_retries_per_request",
            "public_teams",
            "success_callback_params",
            "return_response_headers",
            "disable_token_counter",
            "global_disable_no_log_param",
            "use_chat_completions_url_for_anthropic_messages",
            "langfuse_default_tags",
            "default_redis_batch_cache_expiry",
            "max_user_budget",
            "log_raw_request_response",
            "allow_dynamic_callback_disabling",
            "disable_hf_tokenizer_download",
            "guardrails",
            "add_function_to_prompt",
            "aws_session_name",
            "drop_params_config",
        }
    ),
}


def unknown_keys(section: BaseModel) -> list[str]:
    """Keys of a section that tollgate neither models nor knows LiteLLM to document."""
    name = {
        RouterSettings: "router_settings",
        GeneralSettings: "general_settings",
        LitellmSettings: "litellm_settings",
    }.get(type(section), "")
    extras = section.model_extra or {}
    found = sorted(key for key in extras if key not in ACCEPTED.get(name, frozenset()))
    if isinstance(section, LitellmSettings):
        found += cache_param_findings(section.cache_params)
    return found
