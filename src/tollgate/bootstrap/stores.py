"""The shared stores as the composition root sets them up: the database prepared before serving,
connections checked (``check-config --check-connections``), readiness's database check, the
Redis-shared routing state, key-cache invalidation and response cache, and the refresher of
database models."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from tollgate.admin.deployments import seal_database
from tollgate.auth.invalidation import Invalidation, LocalCache, redis_invalidation
from tollgate.background import cancel_and_wait
from tollgate.bootstrap.parts import admin_settings
from tollgate.cache import CacheObserver, ResponseCache
from tollgate.config import Config
from tollgate.config.environment import DISABLE_SCHEMA_UPDATE, REDIS_PREFIX, is_set
from tollgate.errors import StoreUnavailable
from tollgate.routing import MemoryDeploymentState, RedisDeploymentState
from tollgate.routing.cooldowns import DeploymentState
from tollgate.store import Store, database_url, prepare
from tollgate.store.cache import open_cache_store
from tollgate.store.counter_backends import redis_url

log = logging.getLogger("tollgate")
DB_MODEL_REFRESH_SECONDS = 5.0  # how soon /model/new on one replica is served by the others
DB_CHECK_TIMEOUT = 1.5  # readiness waits this long for the database (edge/health.py bounds all checks)


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


def key_cache(config: Config, env: Mapping[str, str], local: LocalCache) -> Invalidation:
    """Drops cached principals in ``local`` and, through Redis pub/sub, on every replica (the CLI
    passes a no-op ``local``: it only tells the running servers)."""
    return redis_invalidation(local, redis_url(config, env), channel=f"{redis_prefix(env)}:auth:invalidate")


def redis_prefix(env: Mapping[str, str]) -> str:
    """Every Redis key and channel starts with this (``TOLLGATE_REDIS_PREFIX``, default
    ``tollgate``), so deployments or test runs sharing one Redis stay apart."""
    return env.get(REDIS_PREFIX) or "tollgate"


def deployment_state(config: Config, env: Mapping[str, str]) -> DeploymentState:
    """Cooldowns, in-flight counts and usage shared across replicas when Redis is configured."""
    url = redis_url(config, env)
    if url is None:
        return MemoryDeploymentState()
    import redis
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    prefix = f"{redis_prefix(env)}:routing"
    return RedisDeploymentState(client, prefix=prefix, errors=(redis.RedisError, OSError))


class Refresher:
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
        await cancel_and_wait(self._task)




def response_cache(config: Config, env: Mapping[str, str], observer: CacheObserver) -> ResponseCache:
    """``litellm_settings.cache``: the response cache, on Redis (shared by every replica using the
    same Redis and ``TOLLGATE_REDIS_PREFIX``) or in this process (``type: local``)."""
    if not config.litellm.cache:
        return ResponseCache.disabled()
    params = config.litellm.cache_params
    store = open_cache_store(params, redis_fallback=redis_url(config, env), prefix=redis_prefix(env))
    return ResponseCache(store, params, observer=observer)


def database_check(store: Store, db_url: str) -> Callable[[], Awaitable[tuple[bool, str]]]:
    async def check() -> tuple[bool, str]:
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

    return check
