"""The composition root: ``Config`` → stores, providers, router, policy, gateway → ASGI app.

The only package that names concrete implementations (DESIGN.md §2.10). Nothing happens at
import time; ``build(config)`` assembles a fresh object graph, so tests can build many gateways
in one process. ``stores`` sets up the shared stores, ``parts`` builds parts from settings,
``demo`` is the embedded config.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

if TYPE_CHECKING:
    from fastapi import APIRouter

from tollgate.accounting.alerts import SoftBudgetAlerts
from tollgate.accounting.ledger import Ledger
from tollgate.accounting.observability import Observability
from tollgate.accounting.pricing import Pricer, load_bundled_table
from tollgate.admin import AdminServices
from tollgate.auth.bearer import CredentialAuthenticator, credential_from_headers
from tollgate.auth.keys import DEFAULT_LOAD_TIMEOUT, KeyAuthenticator
from tollgate.auth.principal import Principal
from tollgate.bootstrap.demo import DEFAULT_CONFIG, default_config
from tollgate.bootstrap.parts import (
    admin_settings,
    conversations_for,
    jwt_authenticator,
    principal_cache_ttl,
    upstream_tls,
    web_ui,
)
from tollgate.bootstrap.stores import (
    Refresher,
    check_connections,
    database_check,
    deployment_state,
    key_cache,
    prepare_database,
    redis_prefix,
    response_cache,
)
from tollgate.config import Config, Price, load_config
from tollgate.config.environment import CONFIG, read_environment, server_root_path
from tollgate.conversations.retention import RetentionPurge
from tollgate.dialects.openai import chat as openai_chat
from tollgate.edge.app import EdgeParts, create_app, json_response
from tollgate.edge.conversations import ChatHistoryRoutes
from tollgate.edge.guardrails import guardrail_routes
from tollgate.edge.health import Health
from tollgate.edge.inference import Admittance, Inference, error_response
from tollgate.edge.limits import RequestLimits
from tollgate.edge.metrics import metrics_route
from tollgate.edge.passthrough import Passthrough
from tollgate.errors import GatewayError
from tollgate.gateway import Gateway
from tollgate.guardrails import Guardrails
from tollgate.policy.access import denying_entity
from tollgate.policy.admission import PolicyAdmission
from tollgate.policy.standing import BudgetStanding
from tollgate.providers.http import AiohttpTransport, HttpClient, Transport
from tollgate.providers.table import ProviderTable
from tollgate.routing import Router
from tollgate.store import database_url, open_store
from tollgate.store.counter_backends import build_counter_store
from tollgate.telemetry.metrics import MeteredAdmission
from tollgate.telemetry.tracing import Tracing, build_tracing

log = logging.getLogger("tollgate")

__all__ = [
    "DEFAULT_CONFIG",
    "admin_settings",
    "app_from_env",
    "build",
    "check_connections",
    "config_from_env",
    "default_config",
    "key_cache",
    "prepare_database",
    "redis_prefix",
]

def build(
    config: Config,
    *,
    clock: Callable[[], float] = time.time,
    tracing: Tracing | None = None,
    env: Mapping[str, str] | None = None,
    transport: Transport | None = None,
    served: bool = False,
) -> ASGIApp:
    """``tracing``: a test's own; by default OpenTelemetry when the config asks for it. ``env``: the
    environment snapshot (read now when not given). ``transport``: the upstream HTTP transport
    (aiohttp unless a test scripts its upstreams). ``served``: the app is the process's own
    (``tollgate serve``), not one of a test's."""
    env = read_environment() if env is None else env
    if tracing is None:
        tracing = build_tracing(config, env, log.warning)
    http = HttpClient(transport or AiohttpTransport(verify_tls=upstream_tls(config.litellm.ssl_verify)))
    providers = ProviderTable(http, env)
    db_url = database_url(config, env)
    store = open_store(
        db_url,
        pool_size=config.general.database_connection_pool_limit,
        timeout=config.general.database_connection_timeout,
    )
    authenticator = CredentialAuthenticator(
        KeyAuthenticator(
            config.master_key,
            store,
            cache_ttl=principal_cache_ttl(config),
            load_timeout=min(config.general.database_connection_timeout, DEFAULT_LOAD_TIMEOUT),
        ),
        jwt_authenticator(config, store, http, env),
    )
    observability = Observability.build(config, store, db_url, env)
    router = Router.from_config(
        config, state=deployment_state(config, env), clock=clock, on_queue_depth=observability.metrics.queue
    )

    async def reload_db_models() -> None:
        router.table.replace_db_deployments(await admin.deployments.stored())

    # Admin writes drop cached principals here and, through Redis pub/sub, on every replica.
    invalidation = key_cache(config, env, authenticator)
    guardrails = Guardrails.build(config.guardrails, http, env, on_run=observability.metrics.guardrail)
    counters = build_counter_store(config, env=env, warn=log.warning)
    standing = BudgetStanding(counters, store.spend_of_record, clock)
    admin = AdminServices.build(
        store, cache=invalidation, on_deployments_changed=reload_db_models,
        settings=admin_settings(config, env), standing=standing.annotate, guardrails=guardrails.names,
    )
    pricer = Pricer(load_bundled_table(), warn=log.warning)

    def price_for(deployment_id: str) -> Price:
        deployment = router.table.deployment(deployment_id)
        return pricer.price_for_deployment(deployment) if deployment is not None else Price()

    async def post_webhook(url: str, body: bytes) -> None:
        await http.post(url, body, {"content-type": "application/json"}, timeout=10.0, provider="webhook")

    alerts = SoftBudgetAlerts(config.general.soft_budget_webhook_url, post_webhook)
    policy = PolicyAdmission.from_config(
        config, counters, price_for=price_for, resolve=router.table.resolve,
        spend_of_record=store.spend_of_record, clock=clock, on_soft_budget=alerts, warn=log.warning,
    )

    ui = web_ui(config, store, http, clock, env)

    async def authenticate(request: Request) -> Principal:
        credential = credential_from_headers(request.headers)
        if credential is None:  # a browser signed in to the web UI: its session cookie
            signed_in = await ui.gate.principal(request)
            if signed_in is not None:
                return signed_in
        return await authenticator.authenticate(credential)

    ledger = Ledger(pricer, observability.sinks)
    conversations = conversations_for(config, store, router, providers, clock)
    purge = RetentionPurge(conversations.history)
    cache = response_cache(config, env, observability.metrics)
    gateway = Gateway(
        router=router,
        providers=providers,
        admission=MeteredAdmission(policy, observability.metrics),
        accounting=ledger,
        drop_params=config.litellm.drop_params,
        clock=clock,
        tracing=tracing,
        guardrails=guardrails,
        conversations=conversations,
        cache=cache,
    )

    async def list_models(request: Request) -> Response:
        try:
            principal = await authenticate(request)
        except GatewayError as exc:
            return error_response(openai_chat.render_error, exc)
        # Only the models this caller may use, as LiteLLM's /models does for a key.
        data = [
            {"id": name, "object": "model", "created": 1677610602, "owned_by": "openai"}
            for name in router.table.names()
            if denying_entity(principal, name) is None
        ]
        return json_response({"data": data, "object": "list"})

    health = Health(router.table.all_deployments, providers, authenticate)

    health.add_check("db", database_check(store, db_url))
    counters_check = getattr(counters, "health_check", None)
    if counters_check is not None:  # Redis-backed counters: readiness reports the fail mode
        health.add_check("counters", counters_check)

    refresher = Refresher(reload_db_models)
    counters_start = getattr(counters, "start", None)  # Redis: the replica lease and settlement retries

    async def close() -> None:
        await purge.stop()
        await refresher.stop()
        await invalidation.stop()
        await providers.aclose()
        await http.aclose()
        await cache.close()
        await store.close()
        closer = getattr(counters, "close", None)
        if closer is not None:
            await closer()
        if tracing.enabled:
            await asyncio.to_thread(tracing.shutdown)  # flushes the spans still batched

    def admin_routers() -> list[APIRouter]:
        from tollgate.edge.admin import admin_router  # FastAPI loads on the first admin request
        from tollgate.edge.admin.cache import cache_router
        from tollgate.edge.admin.chat_history import chat_history_router

        return [
            admin_router(admin, authenticate, router.table.all_deployments),
            chat_history_router(conversations.history, admin.journal, authenticate),
            cache_router(cache, admin.journal, authenticate),
            ui.router(admin, authenticate),
        ]

    limits = RequestLimits.from_config(config)
    admittance = Admittance(gateway, authenticate, limits, clock)
    parts = EdgeParts(
        inference=Inference(admittance, tracing),
        health=health,
        list_models=list_models,
        extra_routes=[
            *ChatHistoryRoutes(conversations.history, authenticate).routes(),
            *Passthrough(admittance, router.deployments, providers).routes(),
            metrics_route(
                observability.metrics,
                authenticate if config.litellm.require_auth_for_metrics_endpoint else None,
            ),
            *guardrail_routes(guardrails, authenticate),
            *ui.routes(),
        ],
        routers=admin_routers,
        on_startup=[refresher.start, invalidation.start, purge.start, *observability.on_startup,
                    *([counters_start] if counters_start is not None else [])],
        # Settlements still running for cancelled requests finish before the stores close.
        on_shutdown=[gateway.drain, *observability.on_shutdown, close],
        max_body_bytes=limits.max_body_bytes,
        root_path=server_root_path(env),
        freeze_heap=served,
    )
    return create_app(parts)


def config_from_env(env: Mapping[str, str]) -> Config:
    path = env.get(CONFIG)
    return load_config(Path(path), env=env) if path else default_config(env)


def app_from_env() -> ASGIApp:
    """Factory for uvicorn workers (``--workers N``): each worker builds its own graph."""
    env = read_environment()
    return build(config_from_env(env), env=env, served=True)
