"""Parts of the object graph the composition root builds from settings: the principal cache's
lifetime, upstream TLS, the admin settings, the JWT authenticator, the web UI and the
conversations step (chat history, managed prompts). Settings are parsed here, at start-up, so a
bad one refuses to start."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from tollgate.admin import AdminSettings, KeyBounds, UserDefaults
from tollgate.auth.bearer import fetch_via
from tollgate.auth.keys import DEFAULT_CACHE_TTL
from tollgate.config import Config, Deployment
from tollgate.config.sealing import Sealer
from tollgate.conversations import (
    Conversations,
    History,
    HistorySettings,
    PromptCacheSettings,
    PromptResolver,
)
from tollgate.conversations.prompt_resolver import PromptSource
from tollgate.providers.http import HttpClient
from tollgate.providers.table import ProviderTable
from tollgate.routing import Router
from tollgate.store import Store
from tollgate.ui.site import WebUi

if TYPE_CHECKING:
    from tollgate.auth.jwt.verifier import JwtAuthenticator
    from tollgate.providers.aws import AwsSigner


def principal_cache_ttl(config: Config) -> float:
    """Seconds a virtual key's principal is served from memory (``user_api_key_cache_ttl``)."""
    ttl = config.general.user_api_key_cache_ttl
    return DEFAULT_CACHE_TTL if ttl is None else ttl


def upstream_tls(ssl_verify: bool | str) -> bool | ssl.SSLContext:
    """``litellm_settings.ssl_verify``: ``true``/``false``, or a CA bundle file to verify against."""
    if isinstance(ssl_verify, bool):
        return ssl_verify
    return ssl.create_default_context(cafile=ssl_verify)


def admin_settings(config: Config, env: Mapping[str, str]) -> AdminSettings:
    """The settings that shape admin writes, parsed at start-up (a bad one refuses to start)."""
    lit = config.litellm
    store_models = config.general.store_model_in_db or env.get("STORE_MODEL_IN_DB", "").lower() == "true"
    return AdminSettings(
        key_bounds=KeyBounds.parse(lit.upperbound_key_generate_params),
        user_defaults=UserDefaults.parse(
            lit.default_internal_user_params, lit.max_internal_user_budget, lit.internal_user_budget_duration
        ),
        store_models=store_models,
        sealer=Sealer.from_env(env, config.master_key),
    )


def jwt_authenticator(
    config: Config, store: Store, http: HttpClient, env: Mapping[str, str]
) -> JwtAuthenticator | None:
    """``enable_jwt_auth``: JWTs verified against the configured issuers, identities from the store.
    Settings are parsed here, at start-up, so a bad ``litellm_jwtauth`` refuses to start."""
    if not config.general.enable_jwt_auth:
        return None
    from tollgate.auth.jwt.settings import parse_jwt_settings
    from tollgate.auth.jwt.store import StoreIdentityResolver, user_seed
    from tollgate.auth.jwt.verifier import build_jwt_authenticator

    settings = parse_jwt_settings(config.general.litellm_jwtauth, env)
    lit = config.litellm
    seed = user_seed(
        settings.default_user,
        lit.default_internal_user_params,
        lit.max_internal_user_budget,
        lit.internal_user_budget_duration,
    )
    resolver = StoreIdentityResolver(settings, store, user_seed=seed)
    return build_jwt_authenticator(settings, fetch_via(http), resolver)


def web_ui(
    config: Config, store: Store, http: HttpClient, clock: Callable[[], float], env: Mapping[str, str]
) -> WebUi:
    """The web UI at /ui: sign-in settings from the environment (UI_*, GENERIC_*, PROXY_*)."""
    from tollgate.auth.jwt.settings import EntityDefaults, parse_jwt_settings
    from tollgate.auth.jwt.store import user_seed
    from tollgate.auth.ui_settings import sso_settings, ui_settings

    general = config.general
    jwt = parse_jwt_settings(general.litellm_jwtauth, env) if general.enable_jwt_auth else None
    sso = sso_settings(env, jwt.fields.team_ids if jwt else None, jwt.team_id_upsert if jwt else False)
    lit = config.litellm
    seed = user_seed(EntityDefaults(), lit.default_internal_user_params, lit.max_internal_user_budget,
                     lit.internal_user_budget_duration)
    settings = ui_settings(env, config.master_key, sso)
    return WebUi.build(settings, store, http, user_seed=seed, clock=clock,
                       store_model_in_db=general.store_model_in_db)


def conversations_for(
    config: Config, store: Store, router: Router, providers: ProviderTable, clock: Callable[[], float]
) -> Conversations:
    """Chat history in the gateway's store; managed prompts read by each ARN entry's provider."""
    from tollgate.providers.bedrock_agent import BedrockPromptSource
    from tollgate.providers.fake_prompts import FakePromptSource
    from tollgate.store.memory_conversations import MemoryConversationStore
    from tollgate.store.sql import SqlStore
    from tollgate.store.sql_conversations import SqlConversationStore

    def bedrock_signer(deployment: Deployment) -> AwsSigner:
        from tollgate.providers.bedrock import BedrockProvider

        provider = providers["bedrock"]
        assert isinstance(provider, BedrockProvider)
        return provider.signer(deployment)

    general = config.general
    turns = SqlConversationStore(store.engine) if isinstance(store, SqlStore) else MemoryConversationStore()
    settings = HistorySettings(
        general.chat_history_retention_days, general.chat_history_max_turns, general.chat_history_max_tokens
    )
    cache = PromptCacheSettings(general.managed_prompt_cache_ttl, general.managed_prompt_version_cache_ttl)
    sources: dict[str, PromptSource] = {
        "bedrock": BedrockPromptSource(bedrock_signer),
        "fake": FakePromptSource(),
    }
    prompts = PromptResolver(router.table, sources, settings=cache)
    return Conversations(History(turns, settings, clock=clock), prompts)
