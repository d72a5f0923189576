"""Which LiteLLM config keys tollgate acts on, and the report of those it does not.

No setting is silently ignored. Every key of a LiteLLM config falls in one of four classes:

* acted on: a typed field of a section model (``config/sections.py``) or of a deployment;
* accepted, not enforced (``NOT_ENFORCED``): a key LiteLLM documents that tollgate reads without
  acting on it; reported with its path whenever it asks for something (any value but ``null``,
  ``false``, ``0`` or empty);
* met by design (``BY_DESIGN``): LiteLLM settings whose purpose tollgate already fulfils
  whatever their value (``telemetry``: tollgate sends none); not reported;
* unknown: anything else; reported as ignored, so a typo is seen at once.

The report is printed at start and by ``tollgate check-config``; docs/litellm-compat.md is the
same classification for readers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tollgate.config.cache import CacheParams, cache_param_findings

FUTURE = "planned, not built yet"
NO_PLUGINS = "tollgate loads no Python plugins"
LOG_LEVEL = "use `tollgate serve --log-level DEBUG`"
OLD_GUARDRAILS = "LiteLLM's old guardrail format; use the top-level guardrails list"

# Top-level sections: what tollgate does with each.
TOP_LEVEL_ACTED = frozenset(
    {
        "model_list",
        "router_settings",
        "general_settings",
        "litellm_settings",
        "environment_variables",
        "credential_list",
        "include",
        "guardrails",
    }
)
TOP_LEVEL_NOT_ENFORCED: Mapping[str, str] = {
    "files_settings": "no files API",
    "assistant_settings": "no assistants API",
    "mcp_servers": "no MCP gateway",
    "mcp_tools": "no MCP gateway",
    "search_tools": "no search API",
    "callback_settings": NO_PLUGINS,
    "finetune_settings": "no fine-tuning API",
    "vector_store_registry": "no vector store API",
    "prompts": "no prompt management",
    "tiers": "tiers become usage plans through `tollgate onboard`, not through the config",
}

NOT_ENFORCED: Mapping[str, Mapping[str, str]] = {
    "router_settings": {
        "redis_db": "counters use database 0 of the configured Redis",
        "cache_responses": "LiteLLM's router-level cache; use litellm_settings.cache",
        "cache_kwargs": "LiteLLM's router-level cache; use litellm_settings.cache_params",
        "caching_groups": "answers are cached per model group",
        "set_verbose": LOG_LEVEL,
        "debug_level": LOG_LEVEL,
        "provider_budget_config": "budgets apply to keys, users, teams, organisations and the proxy",
        "model_group_retry_policy": "use retry_policy",
        "polling_interval": "queued requests are woken, not polled",
        "default_priority": "requests are served in arrival order",
        "optional_pre_call_checks": "only enable_pre_call_checks (context window) is applied",
        "enable_tag_filtering": "no tag-based routing",
        "tag_filtering_match_any": "no tag-based routing",
        "router_general_settings": "SDK-only setting",
        "default_max_parallel_requests": "set max_parallel_requests on keys, teams or the proxy",
        "assistants_config": "no assistants API",
        "alerting_config": "SDK-only setting",
        "max_fallbacks": "every listed fallback is tried once",
        "default_litellm_params": "requests are sent as the client wrote them",
        "deployment_affinity_ttl_seconds": "no deployment affinity",
        "ignore_invalid_deployments": "an invalid deployment refuses start-up",
        "guardrail_list": OLD_GUARDRAILS,
        "search_tools": "no search API",
    },
    "general_settings": {
        "alerting": "only soft_budget_webhook_url alerts are sent",
        "alerting_threshold": "no Slack/e-mail alerting",
        "alert_types": "no Slack/e-mail alerting",
        "alerting_args": "no Slack/e-mail alerting",
        "alert_to_webhook_url": "only soft_budget_webhook_url alerts are sent",
        "spend_report_frequency": "no spend reports are sent; query /spend/* instead",
        "background_health_checks": "/health probes on request",
        "health_check_interval": "/health probes on request",
        "disable_reset_budget": "budget windows always roll over",
        "disable_spend_updates": "use disable_spend_logs",
        "enforce_user_param": "the `user` field is optional",
        "reject_clientside_metadata_tags": "client metadata never changes budgets",
        "allowed_routes": "routes are authorised by role",
        "admin_only_routes": "routes are authorised by role",
        "public_routes": "routes are authorised by role",
        "key_management_system": "secrets come from the environment (os.environ/...)",
        "key_management_settings": "secrets come from the environment (os.environ/...)",
        "use_azure_key_vault": "secrets come from the environment (os.environ/...)",
        "use_google_kms": "secrets come from the environment (os.environ/...)",
        "custom_auth": NO_PLUGINS,
        "custom_key_generate": NO_PLUGINS,
        "custom_sso": NO_PLUGINS,
        "allowed_ips": "filter by address in front of the gateway",
        "use_x_forwarded_for": "filter by address in front of the gateway",
        "enable_oauth2_auth": "use enable_jwt_auth",
        "enable_oauth2_proxy_auth": "use enable_jwt_auth",
        "oauth2_config_mappings": "use enable_jwt_auth",
        "pass_through_endpoints": "only the built-in /bedrock and /anthropic passthrough routes exist",
        "use_client_credentials_pass_through_routes": "passthrough always authenticates the virtual key",
        "otel": 'use litellm_settings.callbacks: ["otel"]',
        "service_account_settings": "no service-account key settings",
        "user_header_name": "the user comes from the key or the JWT",
        "litellm_key_header_name": "keys are read from Authorization, x-api-key and api-key",
        "allow_requests_on_db_unavailable": "cached keys are served through an outage, unknown keys never",
        "infer_model_from_keys": "models come from model_list and /model/new",
        "supported_db_objects": "only models are stored in the database",
        "enable_public_model_hub": "no model hub",
        "forward_client_headers_to_llm_api": "client headers are not forwarded upstream",
        "forward_openai_org_id": "client headers are not forwarded upstream",
        "always_include_stream_usage": "streams carry usage when the client asks for it",
        "max_response_size_mb": "responses are not size-limited",
        "mcp_client_side_auth_header_name": "no MCP gateway",
        "user_mcp_management_mode": "no MCP gateway",
        "store_model_in_db_cache": "database models are reloaded every few seconds",
        "completion_model": "the request's model is always used",
        "embedding_model": "the request's model is always used",
        "image_generation_model": "no image API",
        "moderation_model": "no moderation API",
        "default_team_disabled": "personal keys are allowed",
        "allow_client_side_credentials": "clients never send upstream credentials",
        "allow_user_auth": "deprecated in LiteLLM",
        "ui_access_mode": "the UI follows the API's roles",
        "maximum_spend_logs_retention_interval": "old spend rows are purged hourly",
    },
    "litellm_settings": {
        "guardrails": OLD_GUARDRAILS,
        "set_verbose": LOG_LEVEL,
        "failure_callback": NO_PLUGINS,
        "service_callback": NO_PLUGINS,
        "service_callbacks": NO_PLUGINS,
        "success_callback_params": NO_PLUGINS,
        "langfuse_default_tags": NO_PLUGINS,
        "json_logs_config": "json_logs has one format",
        "turn_off_message_logging": "prompts are stored only with store_prompts_in_spend_logs",
        "redact_user_api_key_info": "logs carry key aliases, never keys",
        "redact_messages_in_exceptions": "error messages never carry prompts",
        "modify_params": "requests are sent as the client wrote them",
        "default_team_settings": "team settings come from /team/new",
        "default_key_generate_params": "key defaults come from /key/generate",
        "max_end_user_budget": "no end-user (customer) budgets",
        "disable_end_user_cost_tracking": "no end-user (customer) tracking",
        "disable_end_user_cost_tracking_prometheus_only": "no end-user (customer) tracking",
        "key_generation_settings": "key generation is authorised by role",
        "cache_control_injection_points": "prompts are sent as the client wrote them",
        "force_ipv4": "the resolver's address order is used",
        "enable_json_schema_validation": "structured output is left to the upstream",
        "enable_key_alias_format_validation": "key aliases are free text",
        "allowed_fails": "set it in router_settings",
        "cooldown_time": "set it in router_settings",
        "num_retries_per_request": "use router_settings.num_retries",
        "public_teams": "teams are joined through /team/member_add",
        "return_response_headers": "upstream headers are not returned",
        "disable_token_counter": "input tokens are estimated locally, never downloaded",
        "global_disable_no_log_param": "no per-request no-log switch",
        "default_redis_batch_cache_expiry": FUTURE,
        "max_user_budget": "use max_internal_user_budget",
        "log_raw_request_response": "raw upstream bodies are not logged",
        "allow_dynamic_callback_disabling": NO_PLUGINS,
        "add_function_to_prompt": "tools are sent to the upstream as tools",
        "aws_session_name": "set aws_session_name per deployment",
        "drop_params_config": "use drop_params",
        "default_max_internal_user_budget": "use max_internal_user_budget",
        "mcp_aliases": "no MCP gateway",
    },
}

BY_DESIGN: Mapping[str, Mapping[str, str]] = {
    "router_settings": {
        "client_ttl": "upstream connections are pooled per host and kept alive",
    },
    "general_settings": {
        "disable_master_key_return": "the master key is never returned",
        "disable_adding_master_key_hash_to_db": "the master key is never stored",
        "disable_retry_on_max_parallel_request_limit_error": "the gateway's own limits are never retried",
        "proxy_budget_rescheduler_min_time": "budget windows roll over exactly, with no rescheduler",
        "proxy_budget_rescheduler_max_time": "budget windows roll over exactly, with no rescheduler",
        "proxy_batch_polling_interval": "no batches API to poll",
        "use_redis_transaction_buffer": "each replica batches its own spend writes",
        "database_connection_pool_timeout": "database_connection_timeout bounds the wait",
        "disable_responses_id_security": "no /responses API",
        "litellm_license": "tollgate needs no licence",
    },
    "litellm_settings": {
        "telemetry": "tollgate sends no telemetry",
        "disable_hf_tokenizer_download": "no tokenizer is ever downloaded",
        "use_chat_completions_url_for_anthropic_messages": "/v1/messages is translated by tollgate itself",
        "disable_add_transform_inline_image_block": "Fireworks-only setting",
        "disable_copilot_system_to_assistant": "Copilot-only setting",
        "enable_preview_features": "no preview switches",
    },
}

# Callback names tollgate acts on: "otel" traces, "prometheus" is /metrics (always on).
CALLBACKS = frozenset({"otel", "prometheus"})


def not_enforced(path: str, why: str) -> str:
    return (
        f"config: '{path}' is accepted, not enforced ({why})"
        if why
        else (f"config: '{path}' is accepted, not enforced")
    )


def unknown(path: str) -> str:
    return f"config: unknown key '{path}' is ignored"


def asks_for_something(value: object) -> bool:
    """Whether a setting's value requests behaviour (``false``, ``0``, empty and ``null`` do not)."""
    return (
        value is not None
        and value is not False
        and value != 0
        and value != ""
        and value != []
        and (value != {})
    )


def report_top_level(raw: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for key, value in raw.items():
        if key in TOP_LEVEL_ACTED:
            continue
        why = TOP_LEVEL_NOT_ENFORCED.get(key)
        if why is None:
            out.append(unknown(key))
        elif asks_for_something(value):
            out.append(not_enforced(key, why))
    return out


def report_section(name: str, raw: Mapping[str, Any], typed: Iterable[str]) -> list[str]:
    """Findings for one settings section; ``typed`` are the fields tollgate models."""
    acted = frozenset(typed)
    skipped = NOT_ENFORCED.get(name, {})
    silent = BY_DESIGN.get(name, {})
    out: list[str] = []
    for key, value in raw.items():
        if key in skipped:
            if asks_for_something(value):
                out.append(not_enforced(f"{name}.{key}", skipped[key]))
        elif key not in acted and key not in silent:
            out.append(unknown(f"{name}.{key}"))
    return out


def report_callbacks(raw: Mapping[str, Any]) -> list[str]:
    """``callbacks`` / ``success_callback`` entries tollgate does not run (class paths, vendors).

    Any ``callbacks`` value also switches on the JSON metric line per request (the shape LiteLLM
    users' CloudWatch metric callbacks produce), which the finding says."""
    out: list[str] = []
    for key in ("callbacks", "success_callback"):
        value = raw.get(key)
        names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        for i, name in enumerate(names):
            if isinstance(name, str) and name.strip().lower() in CALLBACKS:
                continue
            path = f"litellm_settings.{key}" if isinstance(value, str) else f"litellm_settings.{key}[{i}]"
            why = NO_PLUGINS
            if key == "callbacks":
                why += "; a JSON metric line is printed per request instead, see docs/observability.md"
            out.append(f"config: '{path}' = {name!r} is accepted, not enforced ({why})")
    return out


def report_cache_params(params: CacheParams) -> list[str]:
    """``litellm_settings.cache_params`` entries the response cache does not act on (unknown keys,
    call types tollgate does not know)."""
    return [unknown(f"litellm_settings.{path}") for path in cache_param_findings(params)]
