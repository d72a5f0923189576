"""``run.py --scenarios``: tollgate-only variants measured beside plain tollgate (1 worker, master
key, no limits), each checking a performance claim of the issues:

  vkey          a virtual key from POST /key/generate instead of the master key (≥ 0.90 × plain)
  limits-mem    a key in a team in an org, with rpm/tpm/parallel/budget limits far out of reach;
                counters in memory
  limits-redis  the same, counters (and routing state) in Redis at 127.0.0.1:6379 (≥ 0.85 × mem)
  routing3      three deployments behind the model name, usage-based-routing (≥ 0.95 × plain)
  spend-pg      spend logs in a fresh PostgreSQL database (≥ 0.95 × spend-off, the same config
                with ``disable_spend_logs: true``); afterwards spend rows = requests answered
  cache         the response cache on Redis: requests that opt out, miss and hit, on one server
                (bench/cache_scenario.py); the note gives the added p50 of a miss and of a hit
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pg
from cache_scenario import CACHE_MODES, CACHE_SETTINGS, LatencyProbe, cache_notes
from common import MASTER_KEY, log
from measure import ServerResult, Settings, Setup, run_one
from servers import Server, free_port, tollgate_argv

EXTRAS = ("vkey", "limits-mem", "limits-redis", "routing3", "spend-pg", "cache")
HUGE = 10**12  # limits no bench run comes near
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


@dataclass
class Variant:
    name: str
    reference: str | None = None  # the row its claim is measured against
    target: float | None = None  # minimum rps ratio to the reference the issue asks for
    general: dict[str, Any] = field(default_factory=dict)
    router: dict[str, Any] = field(default_factory=dict)
    deployments: int = 1
    env: dict[str, str] = field(default_factory=dict)
    setup: Setup | None = None
    postgres: bool = False
    litellm: dict[str, Any] = field(default_factory=dict)
    modes: tuple[str, ...] = ()  # wrk modes instead of the run's --modes


@dataclass
class ScenarioRun:
    results: list[ServerResult]
    variants: dict[str, Variant]
    notes: list[str]


def admin(port: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}
        conn.request("POST", path, body=json.dumps(body).encode(), headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        raise RuntimeError(f"POST {path} answered {resp.status}: {raw[:300]!r}")
    answer: dict[str, Any] = json.loads(raw)
    return answer


def virtual_key(server: Server) -> str:
    return str(admin(server.port, "/key/generate", {"key_alias": "bench"})["key"])


def limited_key(server: Server) -> str:
    """Org → team → key, every limit set and far out of reach, so each request checks them all."""
    limits = {"rpm_limit": HUGE, "tpm_limit": HUGE, "max_budget": HUGE}
    org = admin(server.port, "/organization/new", {"organization_alias": "bench-org", "max_budget": HUGE})
    team = admin(
        server.port,
        "/team/new",
        {"team_alias": "bench-team", "organization_id": org["organization_id"], **limits},
    )
    key = admin(
        server.port,
        "/key/generate",
        {
            "key_alias": "bench-limited",
            "team_id": team["team_id"],
            "max_parallel_requests": 1_000_000,
            "budgets": [{"max_budget": HUGE, "duration": "1d"}],
            **limits,
        },
    )
    return str(key["key"])


def variants(names: list[str]) -> list[Variant]:
    """Plain first, then the chosen extras (spend-pg brings its spend-off reference)."""
    unknown = [n for n in names if n not in EXTRAS]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {', '.join(unknown)}; known: base, {', '.join(EXTRAS)}")
    redis = {"redis_host": REDIS_HOST, "redis_port": REDIS_PORT}
    prefix = {"TOLLGATE_REDIS_PREFIX": f"bench-{os.urandom(4).hex()}"}
    table = {
        "vkey": [Variant("vkey", "plain", 0.90, setup=virtual_key)],
        "limits-mem": [Variant("limits-mem", "plain", None, setup=limited_key)],
        "limits-redis": [
            Variant("limits-redis", "limits-mem", 0.85, router=redis, env=prefix, setup=limited_key)
        ],
        "routing3": [
            Variant(
                "routing3", "plain", 0.95, router={"routing_strategy": "usage-based-routing"}, deployments=3
            )
        ],
        "spend-pg": [
            Variant("spend-off", "plain", None, general={"disable_spend_logs": True}),
            Variant("spend-pg", "spend-off", 0.95, postgres=True),
        ],
        "cache": [
            Variant(
                "cache", env={"TOLLGATE_REDIS_PREFIX": f"bench-cache-{os.urandom(4).hex()}"},
                litellm=CACHE_SETTINGS, modes=CACHE_MODES, setup=LatencyProbe(),
            )
        ],
    }
    out = [Variant("plain")]
    for name in EXTRAS:  # a fixed order, so references run before the rows that need them
        if name in names:
            out.extend(table[name])
    return out


def config_for(v: Variant, upstream_port: int) -> dict[str, Any]:
    params = {
        "model": "openai/bench-model",
        "api_base": f"http://127.0.0.1:{upstream_port}/v1",
        "api_key": "sk-upstream",
    }
    model_list: list[dict[str, Any]] = [{"model_name": "bench-model", "litellm_params": params}]
    if v.deployments > 1:
        model_list = [
            {
                "model_name": "bench-model",
                "litellm_params": {**params, "tpm": HUGE, "rpm": HUGE},
                "model_info": {"id": f"bench-{i}"},
            }
            for i in range(v.deployments)
        ]
    config: dict[str, Any] = {
        "model_list": model_list,
        "general_settings": {"master_key": MASTER_KEY, **v.general},
    }
    if v.router:
        config["router_settings"] = dict(v.router)
    if v.litellm:
        config["litellm_settings"] = dict(v.litellm)
    return config


def run_scenarios(
    s: Settings,
    names: list[str],
    cmd: list[str],
    env: dict[str, str],
    upstream_port: int,
    tmp: Path,
) -> ScenarioRun:
    run = ScenarioRun([], {}, [])
    for v in variants(names):
        run.variants[v.name] = v
        result = ServerResult(f"tollgate {v.name}", "scenario", 1)
        run.results.append(result)
        try:
            run_variant(s, v, result, cmd, env, upstream_port, tmp, run.notes)
        except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
            result.error = f"{result.error or ''}\n{exc}".strip()
            log(f"{result.name}: FAILED: {exc}")
    return run


def run_variant(
    s: Settings,
    v: Variant,
    result: ServerResult,
    cmd: list[str],
    env: dict[str, str],
    upstream_port: int,
    tmp: Path,
    notes: list[str],
) -> None:
    home = tmp / f"scenario-{v.name}"  # its own SQLite file beside its config
    home.mkdir()
    config = config_for(v, upstream_port)
    database: str | None = None
    if v.postgres:
        database, url = pg.create_database()
        config["general_settings"]["database_url"] = url
    path = home / "config.yaml"
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    run_env = {**env, **v.env}
    try:
        if v.postgres:
            subprocess.run(
                [*cmd, "migrate", "--config", str(path)],
                env=run_env,
                check=True,
                capture_output=True,
                timeout=120,
            )
        port = free_port()
        setup: Callable[[Server], str] | None = v.setup
        settings = replace(s, modes=list(v.modes)) if v.modes else s
        run_one(settings, result, tollgate_argv(cmd, path, port, 1), port, run_env, home, setup)
        if v.modes == CACHE_MODES and not result.error:
            notes.extend(cache_notes(result, setup if isinstance(setup, LatencyProbe) else None))
        if database is not None and not result.error:
            # run_one stopped the server with SIGTERM: its spend log has flushed.
            rows, total = pg.spend_figures(database)
            extra = rows - result.sent
            if extra == 0:
                verdict = "equal"
            elif 0 < extra <= result.unseen_max:
                verdict = (
                    f"{extra} more rows, within the {result.unseen_max} requests that can be in flight when "
                    "the wrk runs stop (answered and logged, not counted by wrk)"
                )
            else:
                verdict = f"MISMATCH by {extra}"
            notes.append(
                f"spend-pg: {rows} spend rows in PostgreSQL, {result.sent} requests answered to the bench "
                f"(probe + warm-up + measured wrk runs + TTFB samples): {verdict}; summed spend {total}"
            )
    finally:
        if database is not None:
            pg.drop_database(database)
        if "TOLLGATE_REDIS_PREFIX" in v.env:
            clear_redis(v.env["TOLLGATE_REDIS_PREFIX"])


def clear_redis(prefix: str) -> None:
    """Delete the keys this run left under its prefix (best effort: needs redis-cli)."""
    cli = shutil.which("redis-cli")
    if cli is None:
        return
    base = [cli, "-h", REDIS_HOST, "-p", str(REDIS_PORT)]
    keys: list[str] = []
    # Routing state is "<prefix>:routing:…"; counters are "{<prefix>}:…" (a cluster hash tag).
    for pattern in (f"{prefix}*", "{" + prefix + "}*"):
        found = subprocess.run(
            [*base, "--scan", "--pattern", pattern], capture_output=True, text=True, check=False
        )
        keys += found.stdout.split()
    for i in range(0, len(keys), 500):
        subprocess.run([*base, "DEL", *keys[i : i + 500]], capture_output=True, check=False)
