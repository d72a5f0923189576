"""The composition root: ``Config`` → stores, providers, router, policy, gateway → ASGI app.

The only module that names concrete implementations (DESIGN.md §2.10). Nothing happens at
import time; ``build(config)`` assembles a fresh object graph, so tests can build many gateways
in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

if TYPE_CHECKING:
    from fastapi import APIRouter

    from tollgate.auth.jwt.verifier import JwtAuthenticator

from tollgate.accounting.alerts import SoftBudgetAlerts
from tollgate.accounting.ledger import Ledger
from tollgate.accounting.observability import Observability
from tollgate.accounting.pricing import Pricer, load_bundled_table
from tollgate.admin import AdminServices, AdminSettings, KeyBounds, UserDefaults
from tollgate.admin.deployments import seal_database
from tollgate.auth.bearer import CredentialAuthenticator, credential_from_headers, fetch_via
from tollgate.auth.invalidation import Invalidation, LocalCache, redis_invalidation
from tollgate.auth.keys import DEFAULT_CACHE_TTL, DEFAULT_LOAD_TIMEOUT, KeyAuthenticator
from tollgate.auth.principal import Principal
from tollgate.config import Config, Price, load_config, parse_config
from tollgate.config.environment import (
    CONFIG,
    DISABLE_SCHEMA_UPDATE,
    REDIS_PREFIX,
    is_set,
    read_environment,
    server_root_path,
)
from tollgate.config.sealing import Sealer
from tollgate.dialects.openai import chat as openai_chat
from tollgate.edge.app import EdgeParts, create_app, json_response
from tollgate.edge.health import Health
from tollgate.edge.inference import Admittance, Inference, error_response
from tollgate.edge.limits import RequestLimits
from tollgate.edge.metrics import metrics_route
from tollgate.edge.passthrough import Passthrough
from tollgate.errors import GatewayError, StoreUnavailable
from tollgate.gateway import Gateway
from tollgate.policy.access import denying_entity
from tollgate.policy.admission import PolicyAdmission
from tollgate.policy.standing import BudgetStanding
from tollgate.providers.http import AiohttpTransport, HttpClient, Transport
from tollgate.providers.table import ProviderTable
from tollgate.routing import MemoryDeploymentState, RedisDeploymentState, Router
from tollgate.routing.cooldowns import DeploymentState
from tollgate.store import Store, database_url, open_store, prepare
from tollgate.store.counter_backends import build_counter_store, redis_url
from tollgate.telemetry.metrics import MeteredAdmission
from tollgate.telemetry.tracing import Tracing, build_tracing
from tollgate.ui.site import WebUi

log = logging.getLogger("tollgate")
DB_MODEL_REFRESH_SECONDS = 5.0  # how soon /model/new on one replica is served by the others
DB_CHECK_TIMEOUT = 1.5  # readiness waits this long for the database (edge/health.py bounds all checks)

# Demo prices, so spend shows up in /spend/logs and /key/info (USD per token).
_DEMO_PRICE = {"input_cost_per_token": "0.000001", "output_cost_per_token": "0.000002"}

DEFAULT_CONFIG = {
    "model_list": [
        {
            "model_name": "gpt-4o-mini",
            "litellm_params": {"model": "fake/gpt-4o-mini"},
            "model_info": _DEMO_PRICE,
        },
        {
            "model_name": "claude-sonnet",
            "litellm_params": {"model": "fake/claude-sonnet"},
            "model_info": _DEMO_PRICE,
        },
        {
            "model_name": "nova-micro",
            "litellm_params": {"model": "fake/nova-micro"},
            "model_info": _DEMO_PRICE,
        },
        {
            "model_name": "text-embedding-3-small",
            "litellm_params": {"model": "fake/text-embedding-3-small"},
            "model_info": {"mode": "embedding", "input_cost_per_token": "0.00000002"},
        },
    ],
    # No database_url: DATABASE_URL if set (the container image sets one in its data volume),
    # else store.DEFAULT_DATABASE_URL in the working directory.
    "general_settings": {"master_key": "sk-1234"},
}


def default_config(env: Mapping[str, str]) -> Config:
    """The embedded config of ``make run``: fake upstream models, master key ``sk-1234``."""
    return parse_config(DEFAULT_CONFIG, env=env)


async def prepare_database(config: Config, env: Mapping[str, str]) -> None:
    """Run before serving (once, in the parent of the workers): see ``store.prepare``."""
    url = database_url(config, env)
    if url == "memory":
        log.warning("database_url is 'memory': keys, teams and spend live only as long as this process")
        return
    update = not (config.general.disable_prisma_schema_update or is_set(env, DISABLE_SCHEMA_UPDATE))
    log.info("%s", await prepare(url, update_schema=update))
    await seal_database(url, admin_settings(config, env).sealer)  # credentials of /model/new models


async def check_connections(config: Config, env: Mapping[str, str]) -> list[str]:
    """``check-config --check-connections``: one line per store the config uses, or
    ``StoreUnavailable`` for the first one that cannot be reached."""
    from tollgate.store.connectivity import masked
    from tollgate.store.migrations import HEAD
    from tollgate.store.schema import read_revision

    lines = []
    url = database_url(config, env)
    if url == "memory":
        lines.append("database: memory (nothing to connect to)")
    else:
        revision = await read_revision(url)
        if revision is None:
            state = "empty: `tollgate serve` or `tollgate migrate` creates the schema"
        else:
            state = f"schema at revision {revision}" + (" (current)" if revision == HEAD else f", {HEAD} due")
        lines.append(f"database {masked(url)}: reachable, {state}")
    redis = redis_url(config, env)
    if redis is not None:
        await _ping_redis(redis)
        lines.append(f"redis {masked(redis)}: reachable")
    return lines


async def _ping_redis(url: str) -> None:
    import redis.asyncio
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import RedisError

    from tollgate.store.connectivity import masked, unavailable_reason

    client = redis.asyncio.Redis.from_url(
        url, socket_timeout=3, socket_connect_timeout=3, retry=Retry(NoBackoff(), 0)
    )
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        detail = f"cannot reach Redis at {masked(url)}: {unavailable_reason(exc) or exc}"
        raise StoreUnavailable(detail, detail=detail) from exc
    finally:
        await client.aclose()


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


def key_cache(config: Config, env: Mapping[str, str], local: LocalCache) -> Invalidation:
    """Drops cached principals in ``local`` and, through Redis pub/sub, on every replica (the CLI
    passes a no-op ``local``: it only tells the running servers)."""
    return redis_invalidation(local, redis_url(config, env), channel=f"{redis_prefix(env)}:auth:invalidate")


def redis_prefix(env: Mapping[str, str]) -> str:
    """Every Redis key and channel starts with this (``TOLLGATE_REDIS_PREFIX``, default
    ``tollgate``), so deployments or test runs sharing one Redis stay apart."""
    return env.get(REDIS_PREFIX) or "tollgate"


def _deployment_state(config: Config, env: Mapping[str, str]) -> DeploymentState:
    """Cooldowns, in-flight counts and usage shared across replicas when Redis is configured."""
    url = redis_url(config, env)
    if url is None:
        return MemoryDeploymentState()
    import redis
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    prefix = f"{redis_prefix(env)}:routing"
    return RedisDeploymentState(client, prefix=prefix, errors=(redis.RedisError, OSError))


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


def build(
    config: Config,
    *,
    clock: Callable[[], float] = time.time,
    tracing: Tracing | None = None,
    env: Mapping[str, str] | None = None,
    transport: Transport | None = None,
) -> ASGIApp:
    """``tracing``: a test's own; by default OpenTelemetry when the config asks for it. ``env``: the
    environment snapshot (read now when not given). ``transport``: the upstream HTTP transport
    (aiohttp unless a test scripts its upstreams)."""
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
        config, state=_deployment_state(config, env), clock=clock, on_queue_depth=observability.metrics.queue
    )

    async def reload_db_models() -> None:
        router.table.replace_db_deployments(await admin.deployments.stored())

    # Admin writes drop cached principals here and, through Redis pub/sub, on every replica.
    invalidation = key_cache(config, env, authenticator)
    counters = build_counter_store(config, env=env, warn=log.warning)
    standing = BudgetStanding(counters, store.spend_of_record, clock)
    admin = AdminServices.build(
        store, cache=invalidation, on_deployments_changed=reload_db_models,
        settings=admin_settings(config, env), standing=standing.annotate,
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
    gateway = Gateway(
        router=router,
        providers=providers,
        admission=MeteredAdmission(policy, observability.metrics),
        accounting=ledger,
        drop_params=config.litellm.drop_params,
        clock=clock,
        tracing=tracing,
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

    async def database_check() -> tuple[bool, str]:
        """Readiness: one indexed read through the store (LiteLLM reports ``db: connected``). An
        unreachable database leaves the replica ready: it serves cached keys, and every replica
        shares the outage, so taking them all out of the load balancer would only add to it."""
        degraded = "serving cached keys, database writes answer 503"
        try:
            async with asyncio.timeout(DB_CHECK_TIMEOUT):
                async with store.transaction() as tx:
                    await tx.keys.get("readiness-probe")
        except TimeoutError:
            return True, f"unreachable (no answer within {DB_CHECK_TIMEOUT:g}s): {degraded}"
        except StoreUnavailable as exc:
            return True, f"unreachable ({exc.detail}): {degraded}"
        except Exception as exc:  # reachable but failing (a missing table): not ready
            return False, f"error ({type(exc).__name__})"
        return True, "memory" if db_url == "memory" else "connected"

    health.add_check("db", database_check)
    counters_check = getattr(counters, "health_check", None)
    if counters_check is not None:  # Redis-backed counters: readiness reports the fail mode
        health.add_check("counters", counters_check)

    refresher = _Refresher(reload_db_models)
    counters_start = getattr(counters, "start", None)  # Redis: the replica lease and settlement retries

    async def close() -> None:
        await refresher.stop()
        await invalidation.stop()
        await providers.aclose()
        await http.aclose()
        await store.close()
        closer = getattr(counters, "close", None)
        if closer is not None:
            await closer()
        if tracing.enabled:
            await asyncio.to_thread(tracing.shutdown)  # flushes the spans still batched

    def admin_routers() -> list[APIRouter]:
        from tollgate.edge.admin import admin_router  # FastAPI loads on the first admin request

        return [
            admin_router(admin, authenticate, router.table.all_deployments),
            ui.router(admin, authenticate),
        ]

    limits = RequestLimits.from_config(config)
    admittance = Admittance(gateway, authenticate, limits, clock)
    parts = EdgeParts(
        inference=Inference(admittance, tracing),
        health=health,
        list_models=list_models,
        extra_routes=[
            *Passthrough(admittance, router.deployments, providers).routes(),
            metrics_route(
                observability.metrics,
                authenticate if config.litellm.require_auth_for_metrics_endpoint else None,
            ),
            *ui.routes(),
        ],
        routers=admin_routers,
        on_startup=[refresher.start, invalidation.start, *observability.on_startup,
                    *([counters_start] if counters_start is not None else [])],
        # Settlements still running for cancelled requests finish before the stores close.
        on_shutdown=[gateway.drain, *observability.on_shutdown, close],
        max_body_bytes=limits.max_body_bytes,
        root_path=server_root_path(env),
    )
    return create_app(parts)


class _Refresher:
    """Reloads DB-stored deployments at start and then periodically, so a /model/new answered
    by another replica is served here within ``DB_MODEL_REFRESH_SECONDS``."""

    def __init__(self, reload: Callable[[], Awaitable[None]]) -> None:
        self._reload = reload
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._reload()
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(DB_MODEL_REFRESH_SECONDS)
            try:
                await self._reload()
            except Exception:
                log.warning("could not reload database models; keeping the current ones", exc_info=True)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def config_from_env(env: Mapping[str, str]) -> Config:
    path = env.get(CONFIG)
    return load_config(Path(path), env=env) if path else default_config(env)


def app_from_env() -> ASGIApp:
    """Factory for uvicorn workers (``--workers N``): each worker builds its own graph."""
    env = read_environment()
    return build(config_from_env(env), env=env)
