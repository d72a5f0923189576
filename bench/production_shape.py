"""The production shape of issue 17, shared by the ``production`` scenario, its Redis round-trip
count and the ``production`` profile: the config (priced deployment, PostgreSQL spend log, Redis
counters) and the org → team → user → key chain, every entity limited and budgeted far out of
reach, created through the admin API as an operator would."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from common import CHAT_BODY, MASTER_KEY
from scenarios import REDIS_HOST, admin

IN_PRICE, OUT_PRICE = "0.000001", "0.000002"
# Far out of reach of any bench run, yet realistic magnitudes (budget totals live in Redis as
# integer nano-dollars).
LIMITS: dict[str, Any] = {
    "rpm_limit": 100_000_000,
    "tpm_limit": 2_000_000_000,
    "max_parallel_requests": 100_000,
    "budgets": [{"max_budget": 100_000, "duration": "1d"}, {"max_budget": 1_000_000, "duration": "1mo"}],
}
SSE_BODY = {**CHAT_BODY, "stream": True, "stream_options": {"include_usage": True}}


def production_config(
    upstream_port: int, database_url: str, redis_port: int, spend_logs: bool, leases: bool = True
) -> dict[str, Any]:
    general: dict[str, Any] = {"master_key": MASTER_KEY, "database_url": database_url}
    if not spend_logs:
        general["disable_spend_logs"] = True
    if not leases:
        general["counter_leases"] = False
    return {
        "model_list": [
            {
                "model_name": "bench-model",
                "litellm_params": {
                    "model": "openai/bench-model",
                    "api_base": f"http://127.0.0.1:{upstream_port}/v1",
                    "api_key": "sk-upstream",
                },
                "model_info": {"input_cost_per_token": IN_PRICE, "output_cost_per_token": OUT_PRICE},
            }
        ],
        "general_settings": general,
        "router_settings": {"redis_host": REDIS_HOST, "redis_port": redis_port},
    }


def production_key(port: int, tag: str = "bench") -> str:
    """Org → team → user (a member of the team) → key; every entity limited and budgeted."""
    org = admin(port, "/organization/new", {"organization_alias": f"{tag}-org", **LIMITS})
    org_id = org["organization_id"]
    team = admin(port, "/team/new", {"team_alias": f"{tag}-team", "organization_id": org_id, **LIMITS})
    user = admin(
        port,
        "/user/new",
        {"user_id": f"{tag}-user", "organization_id": org_id, "auto_create_key": False, **LIMITS},
    )
    admin(port, "/team/member_add", {"team_id": team["team_id"], "member": {"user_id": user["user_id"]}})
    key = admin(
        port,
        "/key/generate",
        {"key_alias": f"{tag}-key", "user_id": user["user_id"], "team_id": team["team_id"], **LIMITS},
    )
    return str(key["key"])


def write_config(tmp: Path, name: str, config: dict[str, Any]) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


def migrate(cmd: list[str], config: Path, env: dict[str, str]) -> None:
    subprocess.run(
        [*cmd, "migrate", "--config", str(config)], env=env, check=True, capture_output=True, timeout=120
    )
