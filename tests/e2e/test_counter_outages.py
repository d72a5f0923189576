"""Counters through failures (issue 13, items 8 and 9), with real processes, PostgreSQL and Redis.

Redis sits behind a pausable TCP proxy (``tcp_proxy.tcp_proxy``): a blip cuts every connection.
Nothing leaks — slots taken before a blip come back when Redis does (the settlements made during
it are retried), a killed replica's slots come back within its lease — and nothing is forgotten —
a spent budget stays spent after Redis loses its data and through an outage in the ``fallback``
and ``fail_open`` modes, because budget totals are rebuilt from the database.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from tests.e2e.servers import _wait_ready, free_port, gateway
from tests.e2e.tcp_proxy import tcp_proxy
from tests.e2e.test_enforcement import COST, Outcome, admin, config, new_key, send
from tests.e2e.test_replicas import REDIS, shared_database
from tests.polling import wait_until
from tests.services import delete_prefix, require_redis


@pytest.fixture(autouse=True)
def _redis() -> None:
    require_redis()
LEASE = 2.0  # replica_lease_seconds of these gateways: a dead replica's slots come back this fast


def outage_config(database_url: str, redis_url: str, **general: Any) -> dict[str, Any]:
    cfg = config(database_url=database_url, replica_lease_seconds=LEASE, **general)
    cfg["router_settings"] = {"redis_url": redis_url}
    cfg["model_list"].append(
        {"model_name": "fake-hang", "litellm_params": {"model": "fake/hang", "mock_latency": 60},
         "model_info": cfg["model_list"][0]["model_info"]}
    )
    return cfg


@pytest.fixture(scope="module")
def outage() -> Iterator[dict[str, Any]]:
    """Two gateways (fallback and fail_open) on one database, reaching Redis through one proxy."""
    prefix = f"tollgate-e2e-{uuid.uuid4().hex[:12]}"
    env = {"TOLLGATE_REDIS_PREFIX": prefix}
    with shared_database() as db, tcp_proxy(*REDIS) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/0"
        try:
            with (
                gateway(outage_config(db, url), env=env) as fallback,
                gateway(outage_config(db, url, redis_fail_mode="fail_open"), env=env) as fail_open,
            ):
                yield {"fallback": fallback, "fail_open": fail_open, "proxy": proxy, "prefix": prefix}
        finally:
            delete_prefix(prefix)


def token_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def slots_taken(prefix: str, key: str) -> int:
    client = redis.Redis(*REDIS, socket_timeout=2)
    try:
        value = client.get("{" + prefix + "}:slot:key:" + token_of(key))
        return int(value) if value is not None else 0
    finally:
        client.close()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    wait_until(condition, timeout=timeout, what=what)


def in_background(calls: list[Callable[[], Outcome]]) -> tuple[list[threading.Thread], list[Outcome]]:
    """Start each call in a thread; a connection cut (a killed server) becomes a failed outcome."""
    results: list[Outcome] = []

    def run(call: Callable[[], Outcome]) -> None:
        try:
            results.append(call())
        except Exception as exc:
            results.append(Outcome(False, 0, message=f"{type(exc).__name__}: {exc}"))

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for thread in threads:
        thread.start()
    return threads, results


def ready(base: str) -> bool:
    return bool(httpx.get(f"{base}/health/readiness", timeout=5).json().get("counters") == "connected")


def test_parallel_slots_come_back_after_a_redis_blip(outage: dict[str, Any]) -> None:
    base, proxy, prefix = outage["fallback"], outage["proxy"], outage["prefix"]
    key = new_key(base, max_parallel_requests=2)
    threads, results = in_background([lambda: send("openai", base, key, model="fake-slow")] * 2)
    wait_for(lambda: slots_taken(prefix, key) == 2, "both requests to hold their slot")
    proxy.cut()  # both requests settle while Redis is unreachable
    try:
        for thread in threads:
            thread.join(30)
        assert [o.ok for o in results] == [True, True], results
    finally:
        proxy.resume()
    # The settlements Redis missed are sent again once it is back: the key has both slots again.
    wait_for(lambda: slots_taken(prefix, key) == 0, "the slots to be given back")
    wait_for(lambda: ready(base), "readiness to see Redis again")
    pair = in_background([lambda: send("openai", base, key, model="fake-slow")] * 2)
    for thread in pair[0]:
        thread.join(30)
    assert [o.ok for o in pair[1]] == [True, True], pair[1]


def spend_a_lifetime_budget(base: str) -> tuple[str, Decimal]:
    """A key with a $0.02 lifetime budget, used until refused (2 requests: 0, then 0.011 < 0.02);
    returns it with its spend once that has reached the database (the batched spend writer)."""
    key = new_key(base, max_budget=0.02)
    served = 0
    while send("openai", base, key).ok:
        served += 1
        assert served < 5
    spend = served * COST
    wait_for(lambda: Decimal(str(admin(base, f"/key/info?key={key}")["info"]["spend"])) == spend,
             "the spend rows to reach the database")
    return key, spend


def test_a_spent_budget_stays_spent_after_redis_loses_its_data(outage: dict[str, Any]) -> None:
    base, prefix = outage["fallback"], outage["prefix"]
    key, spend = spend_a_lifetime_budget(base)
    delete_prefix(prefix)  # Redis restarted without persistence, or was flushed
    refused = send("openai", base, key)
    assert refused.status == 400, refused
    assert f"Budget has been exceeded! Current cost: {spend}" in refused.message


@pytest.mark.parametrize("mode", ["fallback", "fail_open"])
def test_a_spent_budget_stays_spent_through_a_redis_outage(outage: dict[str, Any], mode: str) -> None:
    base, proxy = outage[mode], outage["proxy"]
    key, _ = spend_a_lifetime_budget(base)
    proxy.cut()
    try:
        refused = send("openai", base, key)
        assert refused.status == 400, refused
        assert "Budget has been exceeded!" in refused.message
        # An unspent key is still served: the outage does not take the gateway down.
        assert send("openai", base, new_key(base, max_budget=1.0)).ok
    finally:
        proxy.resume()
    wait_for(lambda: ready(base), "readiness to see Redis again")


@contextmanager
def killable_gateway(
    cfg: dict[str, Any], env: dict[str, str]
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``tollgate serve`` whose process the test may kill -9 (``servers.gateway`` hides it)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(cfg, handle)
    log = Path(tempfile.mkstemp(prefix="tollgate-", suffix=".log")[1])
    port = free_port()
    src = str(Path(__file__).resolve().parents[2] / "src")
    full_env = {**os.environ, **env, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tollgate", "serve", "--config", handle.name, "--host", "127.0.0.1",
             "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=full_env, start_new_session=True,
        )
    try:
        _wait_ready(proc, f"http://127.0.0.1:{port}/health/liveliness", log)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.unlink(handle.name)


def test_a_killed_replicas_slots_come_back_within_its_lease() -> None:
    prefix = f"tollgate-e2e-{uuid.uuid4().hex[:12]}"
    env = {"TOLLGATE_REDIS_PREFIX": prefix}
    url = f"redis://{REDIS[0]}:{REDIS[1]}/0"
    with shared_database() as db:
        cfg = outage_config(db, url)
        try:
            with killable_gateway(cfg, env) as (doomed, process), gateway(cfg, env=env) as survivor:
                key = new_key(survivor, max_parallel_requests=2)
                threads, _ = in_background([lambda: send("openai", doomed, key, model="fake-hang")] * 2)
                wait_for(lambda: slots_taken(prefix, key) == 2, "both requests to hold their slot")
                assert send("openai", survivor, key).status == 429
                os.killpg(process.pid, signal.SIGKILL)  # no settlement, no goodbye
                process.wait()
                # The survivor's heartbeat finds the lease lapsed and gives both slots back.
                wait_for(lambda: send("openai", survivor, key).ok, "the dead replica's slots")
                assert slots_taken(prefix, key) == 0
                for thread in threads:
                    thread.join(30)
        finally:
            delete_prefix(prefix)
