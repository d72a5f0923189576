"""The command-line steps of the reference documents, run as their users run them: the example
configs through ``tollgate check-config``, the README config snippets as printed, LiteLLM's image
command (``--config /app/config.yaml --num_workers 2 --run_gunicorn``) with the guide's
environment, bulk onboarding from the tier file and CSV, and the fake LLM load-testing server."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
import yaml

from tests.e2e.admin_env import database
from tests.e2e.reference.conftest import (
    DATABASES,
    UPSTREAM_ENV,
    Served,
    _process,
    bearer,
    chat_body,
    fixture,
    load,
    on_loopback,
    served,
    tollgate,
)
from tests.e2e.servers import fake_upstream, free_port

EXAMPLE_ENV = {
    "LITELLM_ADMIN_KEY": "sk-admin-example",
    "LITELLM_MASTER_KEY": "sk-master-example",
    "DATABASE_URL": "postgresql://litellm:secret@localhost:5432/litellm",
    "OPENAI_API_KEY": "sk-openai-example",
    "ANTHROPIC_API_KEY": "sk-ant-example",
    "REDIS_HOST": "127.0.0.1",
    "REDIS_PORT": "6379",
    "REDIS_PASSWORD": "redis",
}
GROUPS = {
    "document-processing.yaml": (3, ["claude-fallback", "claude-fast", "claude-primary"]),
    "litellm_config.yaml": (3, ["claude-fallback", "claude-fast", "claude-primary"]),
    "multi-provider.yaml": (7, ["anthropic.claude-3-haiku-20240307-v1:0", "claude-3-5-sonnet-20240620-v1:0",
                                "gpt-4o", "titan-embed"]),
    "nova-tiers.yaml": (0, []),
    "tiers.yaml": (0, []),
    "genai-gateway-snippets.yaml": (7, ["anthropic.claude-3-5-sonnet-20240620-v1:0",
                                        "anthropic.claude-3-haiku-20240307-v1:0",
                                        "claude-3-5-sonnet-20240620-v1:0", "gpt-4o"]),
}


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_check_config_loads_the_documents_configs(name: str) -> None:
    result = tollgate(["check-config", str(fixture(name))], EXAMPLE_ENV)
    assert result.returncode == 0, result.stderr
    count, groups = GROUPS[name]
    listed = ", ".join(groups)
    assert result.stdout.strip() == f"ok: {count} deployments in {len(groups)} model groups: {listed}".strip()
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("name", "variable"), [
    ("document-processing.yaml", "LITELLM_ADMIN_KEY"),
    ("multi-provider.yaml", "OPENAI_API_KEY"),
])
def test_check_config_names_a_missing_environment_variable(name: str, variable: str) -> None:
    env = {k: v for k, v in EXAMPLE_ENV.items() if k != variable}
    result = tollgate(["check-config", str(fixture(name))], env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], result.stderr


# The AWS GenAI Gateway README's config snippets, exactly as printed.
README_SNIPPETS = {
    "one model name, three deployments": """
model_list:
  - model_name: claude-3-5-sonnet-20240620-v1:0
    litellm_params:
      model: bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0
  - model_name: claude-3-5-sonnet-20240620-v1:0
    litellm_params:
      model: bedrock/anthropic.claude-3-haiku-20240307-v1:0
  - model_name: claude-3-5-sonnet-20240620-v1:0
    litellm_params:
      model: anthropic/claude-3-5-sonnet-20240620
""",
    "tpm and rpm per deployment": """
model_list:
  - model_name: claude-3-5-sonnet-20240620-v1:0
    tpm: 100000
    rpm: 1000
    litellm_params:
      model: bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0
  - model_name: claude-3-5-sonnet-20240620-v1:0
    tpm: 200000
    rpm: 2000
    litellm_params:
      model: bedrock/anthropic.claude-3-haiku-20240307-v1:0
  - model_name: claude-3-5-sonnet-20240620-v1:0
    tpm: 300000
    rpm: 3000
    litellm_params:
      model: anthropic/claude-3-5-sonnet-20240620
""",
    "routing strategy": """
router_settings:
  routing_strategy: usage-based-routing-v2
  enable_pre_call_check: true
""",
    "context window fallbacks": """
router_settings:
    context_window_fallbacks: [{"anthropic.claude-3-5-sonnet-20240620-v1:0": ["gemini-1.5-pro"]}]
""",
    "fallbacks": """
router_settings:
    fallbacks: [{"gpt-4o": ["anthropic.claude-3-5-sonnet-20240620-v1:0"]}]
""",
    "default fallbacks": """
router_settings:
  default_fallbacks: ["anthropic.claude-3-haiku-20240307-v1:0"]
""",
}
# As printed, the A/B snippet indents litellm_params deeper than model_name: not valid YAML.
AB_SNIPPET_AS_PRINTED = """- model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      weight: 9
- model_name: gpt-4o
    litellm_params:
      model: bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0
      weight: 1
"""


@pytest.mark.parametrize("snippet", sorted(README_SNIPPETS))
def test_readme_config_snippets_load(snippet: str, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(README_SNIPPETS[snippet])
    result = tollgate(["check-config", str(path)], EXAMPLE_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: ")


def test_the_ab_snippet_as_printed_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(AB_SNIPPET_AS_PRINTED)
    result = tollgate(["check-config", str(path)])
    assert result.returncode == 2
    assert result.stderr.strip() == f"tollgate: config error: {path}: not valid YAML at line 2, column 19: " \
        "mapping values are not allowed here"


@pytest.fixture(params=DATABASES)
def database_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """``DATABASE_URL`` of a fresh, empty database (the image's environment names it)."""
    with database(request.param) as db_url:
        yield {"DATABASE_URL": db_url}


def test_litellm_image_command_serves_the_guide_config(
    database_env: dict[str, str], upstream: str, tmp_path: Path
) -> None:
    # The guide's Dockerfile bakes the config in at /app/config.yaml; here it is a temporary file.
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(on_loopback(load("litellm_config.yaml"), upstream)))
    port, health_port = free_port(), free_port()
    env = {**UPSTREAM_ENV, **database_env, "LITELLM_ADMIN_KEY": "sk-image-admin", "PORT": str(port),
           "SEPARATE_HEALTH_APP": "1", "SEPARATE_HEALTH_PORT": str(health_port)}
    # Like LiteLLM, serve creates the schema on first start (no `tollgate migrate` step).
    # CMD ["--config", "/app/config.yaml", "--num_workers", "2", "--run_gunicorn"]
    command = ["--config", str(config_path), "--num_workers", "2", "--run_gunicorn"]
    with _process(command, f"http://127.0.0.1:{port}/health/readiness", env):
        assert httpx.get(f"http://127.0.0.1:{health_port}/health", timeout=10).status_code == 200
        for _ in range(4):  # spread over both workers
            reply = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=30,
                               headers=bearer("sk-image-admin"), json=chat_body("claude-fast", "ping"))
            assert reply.status_code == 200, reply.text
        # The container HEALTHCHECK (no curl in the image): exit 0 while the gateway answers.
        assert tollgate(["healthcheck"], env).returncode == 0


@dataclass
class Onboarding:
    """``tollgate onboard --tiers T --users U --config F``, run against the gateway's database."""

    tiers: str
    users: str
    created: list[dict[str, Any]] = field(default_factory=list)  # the JSON lines it printed
    log: str = ""

    def __call__(self, config_path: Path, env: Mapping[str, str]) -> None:
        result = tollgate(["onboard", "--tiers", str(fixture(self.tiers)), "--users",
                           str(fixture(self.users)), "--config", str(config_path)], env)
        assert result.returncode == 0, result.stderr
        self.created = [orjson.loads(line) for line in result.stdout.splitlines() if line.strip()]
        self.log = result.stderr


Onboarded = tuple[Served, Onboarding, Onboarding]


@pytest.fixture(scope="module", params=DATABASES)
def onboarded(request: pytest.FixtureRequest, upstream: str) -> Iterator[Onboarded]:
    tier_models = {"model-cheap": "us.amazon.nova-micro-v1:0", "model-balanced": "us.amazon.nova-lite-v1:0",
                   "model-reasoning": "us.amazon.nova-pro-v1:0"}
    config = on_loopback({
        "model_list": [{"model_name": name, "litellm_params": {"model": f"bedrock/converse/{model_id}",
                                                               "aws_region_name": "us-east-1"}}
                       for name, model_id in tier_models.items()],
        "general_settings": {"master_key": "sk-onboard-master"},
    }, upstream)
    examples = Onboarding("nova-tiers.yaml", "users_to_onboard.csv")
    readme = Onboarding("tiers.yaml", "enterprise_users_to_onboard.csv")

    def both(path: Path, env: Mapping[str, str]) -> None:
        examples(path, env)
        readme(path, env)

    with served(config, request.param, before=both) as gw:
        yield gw, examples, readme


def test_bulk_onboarding_creates_tier_teams_users_and_keys(onboarded: Onboarded) -> None:
    gw, examples, readme = onboarded
    assert [c["user_email"] for c in examples.created] == [
        "user1@example.com", "user2@example.com", "user3@example.com"]
    assert "teams created: 3, users created: 3, skipped: 0" in examples.log
    # The README's tier file and CSV name the same tiers and people: nothing is created twice.
    assert readme.created == []
    assert "teams created: 0, users created: 0, skipped: 3" in readme.log
    tier_model = {"tier-drafting": "model-cheap", "tier-coding": "model-balanced",
                  "tier-architect": "model-reasoning"}
    for created in examples.created:
        for model in tier_model.values():
            status = httpx.post(f"{gw.url}/v1/chat/completions", headers=bearer(created["key"]),
                                json=chat_body(model), timeout=30).status_code
            assert status == (200 if model == tier_model[created["team_id"]] else 403)


def test_each_tier_has_a_daily_budget_and_a_monthly_cap(onboarded: Onboarded) -> None:
    gw, _, _ = onboarded
    expected = {"tier-drafting": (0.017, 0.5), "tier-coding": (0.033, 1.0), "tier-architect": (0.067, 2.0)}
    for team_id, (daily, monthly) in expected.items():
        info = httpx.get(f"{gw.url}/team/info", params={"team_id": team_id},
                         headers=bearer("sk-onboard-master"))
        assert info.status_code == 200, info.text
        budgets = {(b["max_budget"], b["duration"]) for b in info.json()["team_info"]["budgets"]}
        assert budgets == {(daily, "1d"), (monthly, "1mo")}


def test_a_csv_row_overrides_budget_and_rpm(onboarded: Onboarded) -> None:
    gw, examples, _ = onboarded
    user3 = next(c for c in examples.created if c["user_email"] == "user3@example.com")
    info = httpx.get(f"{gw.url}/user/info", params={"user_id": user3["user_id"]},
                     headers=bearer("sk-onboard-master")).json()["user_info"]
    assert info["rpm_limit"] == 20
    assert {(b["max_budget"], b["duration"]) for b in info["budgets"]} == {(0.05, "1d")}


def test_fake_llm_load_testing_server() -> None:
    # The README's fake server answers /model/{model_id}/converse, /chat/completions and
    # /v1/chat/completions after 1–3 s (chunks 0.2–0.8 s apart); shorter ranges keep this fast.
    with fake_upstream("--latency", "0.05-0.2", "--chunk-delay", "0.01-0.05") as url:
        converse = httpx.post(f"{url}/model/any-model-id/converse", timeout=30,
                              json={"messages": [{"role": "user", "content": [{"text": "hi"}]}]})
        assert converse.status_code == 200
        assert converse.json()["output"]["message"]["role"] == "assistant"
        assert httpx.post(f"{url}/chat/completions", json=chat_body("x"), timeout=30).status_code == 200
        client = openai.OpenAI(api_key="unused", base_url=f"{url}/v1", max_retries=0)
        stream = client.chat.completions.create(
            model="x", messages=[{"role": "user", "content": "one two"}], stream=True
        )
        chunks = list(stream)
        assert len(chunks) > 2
        assert json.loads(chunks[0].model_dump_json())["object"] == "chat.completion.chunk"
