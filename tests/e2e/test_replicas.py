"""Two ``tollgate serve`` replicas sharing Redis counters and one database (issue 6, scenario 4).

A burst split across both replicas is admitted exactly as one process would admit it: ``rpm``,
``max_parallel`` and budgets (with in-flight reservations) hold across the pair. The database is
a fresh PostgreSQL database when one answers on 127.0.0.1:5432 (always in CI), else one SQLite
file both open; the Redis keys get a per-run prefix (``TOLLGATE_REDIS_PREFIX``) and are deleted
afterwards.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import redis

from tests.e2e.cache_fixtures import metric
from tests.e2e.servers import gateway
from tests.e2e.test_enforcement import (
    COST,
    ESTIMATE,
    MASTER,
    Outcome,
    admin,
    burst,
    config,
    new_key,
    send,
    warm,
)
from tests.polling import wait_until
from tests.services import CI, delete_prefix, postgres_database, postgres_reachable, require_redis

REDIS = ("127.0.0.1", 6379)


@pytest.fixture(autouse=True, scope="module")
def _redis() -> None:
    require_redis()


@contextmanager
def shared_database() -> Iterator[str]:
    """A fresh PostgreSQL database, or (outside CI) a SQLite file when PostgreSQL is not there."""
    if postgres_reachable() or CI:
        with postgres_database("tollgate_e2e") as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{Path(folder) / 'shared.db'}"


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"tollgate-e2e-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def replicas(prefix: str) -> Iterator[tuple[str, str]]:
    env = {"TOLLGATE_REDIS_PREFIX": prefix, "REDIS_URL": f"redis://{REDIS[0]}:{REDIS[1]}/0"}
    with shared_database() as db:
        cfg = config(database_url=db)
        # One replica finds Redis in router_settings, the other in REDIS_URL: both must agree.
        routed = {**cfg, "router_settings": {"redis_host": REDIS[0], "redis_port": REDIS[1]}}
        try:
            with (
                gateway(routed, env={"TOLLGATE_REDIS_PREFIX": prefix}) as first,
                gateway(cfg, env=env) as second,
            ):
                yield first, second
        finally:
            delete_prefix(prefix)


def split(n: int, bases: tuple[str, str], fmt: str, key: str, model: str) -> list[Outcome]:
    """``n`` simultaneous requests, alternating between the replicas."""
    targets = iter([bases[i % 2] for i in range(n)])
    for base in bases:
        warm(fmt, base, key)
    return burst(n, lambda: send(fmt, next(targets), key, model=model))


def test_both_replicas_see_the_same_keys_and_redis(replicas: tuple[str, str]) -> None:
    first, second = replicas
    key = new_key(first)
    assert send("openai", second, key).ok
    for base in replicas:
        ready = httpx.get(f"{base}/health/readiness")
        assert ready.status_code == 200
        assert ready.json()["counters"] == "connected"


@pytest.mark.parametrize("fmt", ["openai", "bedrock"])
def test_rpm_holds_across_replicas(replicas: tuple[str, str], fmt: str) -> None:
    limit = 4
    key = new_key(replicas[0], rpm_limit=limit)
    outcomes = split(3 * limit, replicas, fmt, key, "fake-a")
    assert sum(o.ok for o in outcomes) == limit, outcomes
    assert all(o.status == 429 for o in outcomes if not o.ok)


def test_max_parallel_holds_across_replicas(replicas: tuple[str, str]) -> None:
    key = new_key(replicas[1], max_parallel_requests=2)
    outcomes = split(6, replicas, "anthropic", key, "fake-slow")
    assert sum(o.ok for o in outcomes) == 2, outcomes
    refused = [o for o in outcomes if not o.ok]
    assert all(o.status == 429 and "Max parallel" in o.message for o in refused)
    # Both slots are released on settlement, whichever replica admitted them.
    assert send("anthropic", replicas[0], key).ok
    assert send("anthropic", replicas[1], key).ok


def test_budget_holds_across_replicas(replicas: tuple[str, str]) -> None:
    budget = ESTIMATE * 3 + ESTIMATE / 2  # admitted while reservations are below: 0, E, 2E, 3E
    key = new_key(replicas[0], max_budget=float(budget))
    outcomes = split(12, replicas, "openai", key, "fake-slow")
    admitted = sum(o.ok for o in outcomes)
    assert admitted == 4, outcomes
    refused = [o for o in outcomes if not o.ok]
    assert all(o.status == 429 and "held by requests in flight" in o.message for o in refused), refused
    # The spend both replicas recorded lands in the shared database, within the budget.
    def spend() -> Decimal:
        return Decimal(str(admin(replicas[1], f"/key/info?key={key}")["info"]["spend"]))

    wait_until(lambda: spend() == admitted * COST, what="both replicas' spend recorded")
    assert spend() == 4 * COST
    assert spend() < budget + ESTIMATE
    # Settled spend is shared too: 4·COST < budget admits one more, 5·COST ≥ budget refuses.
    assert send("openai", replicas[1], key).ok is (budget > 4 * COST)
    assert send("openai", replicas[0], key).ok is (budget > 5 * COST)


def test_quota_leases_serve_a_busy_key_and_redis_ends_up_counting_exactly(
    replicas: tuple[str, str], prefix: str
) -> None:
    """A key far from its limits, busy on both replicas, is served from quota leases
    (docs/enforcement.md): both replicas admit from leases, and once the leases of the seconds
    that have passed are given back, Redis' window holds exactly the requests made."""
    n = 400
    key = new_key(replicas[0], rpm_limit=1_000_000, tpm_limit=100_000_000, max_parallel_requests=10_000)
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(lambda i: send("openai", replicas[i % 2], key), range(n)))
    assert all(o.ok for o in outcomes), [o for o in outcomes if not o.ok][:3]
    for base in replicas:
        assert metric(base, "tollgate_counted_admissions_total", MASTER, counted_in="lease") > 0
    client = redis.Redis(host=REDIS[0], port=REDIS[1], decode_responses=True)
    try:
        assert client.hlen("{" + prefix + "}:lease-seq") == 2  # both replicas leased
        token = hashlib.sha256(key.encode()).hexdigest()
        requests = "{" + prefix + "}:v2:w:key:" + token + ":req"

        def counted() -> int:
            return int(client.hget(requests, "_t") or 0)

        assert counted() >= n  # leased units are counted before they are used, never after
        wait_until(lambda: counted() == n, what="unused window leases given back")
    finally:
        client.close()
