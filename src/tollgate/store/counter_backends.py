"""Which counter store a config gets: in-memory without Redis, else Redis wrapped by
``redis_fail_mode``. redis-py is imported only when Redis is configured."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from urllib.parse import quote

from tollgate.config import Config
from tollgate.config.environment import REDIS_PREFIX
from tollgate.store.counters import CounterStore
from tollgate.store.memory_counters import MemoryCounterStore


def redis_url(config: Config, env: Mapping[str, str] | None = None) -> str | None:
    """The Redis URL from ``router_settings`` (LiteLLM's keys), else ``REDIS_URL``/``REDIS_HOST``."""
    router = config.router
    env = env or {}
    if router.redis_url:
        return router.redis_url
    host = router.redis_host or env.get("REDIS_HOST")
    if not host and env.get("REDIS_URL"):
        return env["REDIS_URL"]
    if not host:
        return None
    port = router.redis_port or int(env.get("REDIS_PORT") or 6379)
    password = router.redis_password or env.get("REDIS_PASSWORD")
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{auth}{host}:{port}/0"


def build_counter_store(
    config: Config,
    *,
    env: Mapping[str, str] | None = None,
    prefix: str = "tollgate",
    warn: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> CounterStore:
    """In-memory counters without Redis; otherwise Redis — with quota leases unless
    ``general_settings.counter_leases`` is off — wrapped by ``redis_fail_mode``.

    ``TOLLGATE_REDIS_PREFIX`` overrides ``prefix``, so deployments (or test runs) sharing one
    Redis keep separate counters.
    """
    url = redis_url(config, env)
    memory = MemoryCounterStore()
    if url is None:
        return memory
    from tollgate.store.leased_counters import LeasedCounterStore
    from tollgate.store.redis_counters import RedisCounterStore
    from tollgate.store.resilient_counters import ResilientCounterStore, SharedCounters

    prefix = (env or {}).get(REDIS_PREFIX) or prefix
    general = config.general
    redis = RedisCounterStore.from_url(url, prefix=prefix, lease=general.replica_lease_seconds)
    shared: SharedCounters = LeasedCounterStore(redis) if general.counter_leases else redis
    return ResilientCounterStore(shared, memory, general.redis_fail_mode, clock=clock, warn=warn)
