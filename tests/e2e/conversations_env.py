"""The gateway the chat-history and managed-prompt end-to-end tests share (one per test module and
database): ``tollgate serve`` on SQLite or a fresh PostgreSQL database, in front of the fake
upstream, which also answers Bedrock's ``GetPrompt`` (reached through botocore's standard
``AWS_ENDPOINT_URL_BEDROCK_AGENT``). Keys: three of user alice (one with a tokens-per-minute
limit), one of bob, one limited to a prompt."""

from __future__ import annotations

import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.e2e.admin_env import database, run_tollgate, write_config
from tests.e2e.conftest import openai_deployment
from tests.e2e.conftest_native import _bedrock, bedrock_client
from tests.e2e.servers import gateway
from tollgate.providers.fake_prompts import CLAUDE

MASTER = "sk-conversations-master"
ENTRY = "arn:aws:bedrock:us-west-2:123456789012:prompt/*"
PROMPT = "arn:aws:bedrock:us-west-2:123456789012:prompt/6LE1KDKISG"
MAX_TURNS = 3
TPM_LIMIT = 100
REPLY = "Hello from tollgate's fake upstream! You said: "


@dataclass
class Env:
    url: str
    upstream: str
    db_url: str
    held: str  # the model whose upstream calls wait for POST /_fake/release/<tag>
    tag: str  # (a released tag stays released: ``held_for_limits`` has a tag of its own)
    keys: dict[str, str]
    clients: dict[str, Any] = field(default_factory=dict)

    def openai(self, who: str = "alice") -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url, api_key=self.keys[who], max_retries=0)

    def bedrock(self, who: str = "alice") -> Any:
        client = self.clients.get(who)  # a boto3 client costs a few hundred ms to build
        if client is None:
            client = self.clients[who] = bedrock_client(f"{self.url}/bedrock", self.keys[who])
        return client

    def anthropic(self, who: str = "alice") -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.url, api_key=self.keys[who], max_retries=0)

    def post(self, path: str, body: object, who: str | None = "alice") -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[who]}"} if who else {}
        return httpx.post(f"{self.url}{path}", json=body, headers=headers, timeout=30)

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {MASTER}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def upstream_calls(self) -> dict[str, int]:
        calls: dict[str, int] = httpx.get(f"{self.upstream}/_fake/calls", timeout=10).json()
        return calls

    @property
    def held_for_limits(self) -> str:
        """The upstream model of the ``held-limits`` deployment, released by ``release("limits")``."""
        return f"transcript-held-{self.tag}limits"

    def release(self, which: str = "") -> None:
        httpx.post(f"{self.upstream}/_fake/release/{self.tag}{which}", timeout=10).raise_for_status()

    def history(self, session_id: str, who: str = "alice") -> list[dict[str, Any]]:
        response = self.post("/chat-history", {"session_id": session_id}, who)
        response.raise_for_status()
        messages: list[dict[str, Any]] = response.json()["messages"]
        return messages

    def age_session(self, session_id: str, days: int) -> None:
        """Move a session's last activity ``days`` into the past, in the database itself."""
        if self.db_url.startswith("sqlite"):
            with sqlite3.connect(self.db_url.removeprefix("sqlite:///")) as conn:
                moved = conn.execute(
                    "UPDATE tollgate_chat_sessions SET updated_at = datetime(updated_at, ?) WHERE id = ?",
                    (f"-{days} days", session_id),
                ).rowcount
        else:
            sql = (
                f"UPDATE tollgate_chat_sessions SET updated_at = updated_at - interval '{days} days' "
                f"WHERE id = '{session_id}' RETURNING id"
            )
            name = self.db_url.rsplit("/", 1)[1]
            result = subprocess.run(
                ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", name, "-qtAc", sql],
                check=True,
                capture_output=True,
                text=True,
                timeout=30,
            )
            moved = result.stdout.split().count(session_id)
        assert moved == 1


def _config(upstream: str, db_url: str, held: str) -> dict[str, Any]:
    entry = _bedrock(ENTRY, upstream, ENTRY)
    entry["litellm_params"]["aws_region_name"] = "us-west-2"
    return {
        "model_list": [
            openai_deployment("gpt-fake", upstream, "gpt-fake"),
            openai_deployment("transcript", upstream, "transcript"),
            openai_deployment("held", upstream, held),
            openai_deployment("held-limits", upstream, f"{held}limits"),
            openai_deployment("broken", upstream, "error-500"),
            openai_deployment("cut", upstream, "stream-error-after-3"),
            _bedrock("bedrock-transcript", upstream, "transcript"),
            _bedrock("claude-bedrock", upstream, CLAUDE),
            entry,
        ],
        "general_settings": {
            "master_key": MASTER,
            "database_url": db_url,
            "chat_history_max_turns": MAX_TURNS,
            "proxy_batch_write_at": 0.2,
        },
        "router_settings": {"num_retries": 0, "disable_cooldowns": True},
    }


def _keys(url: str) -> dict[str, str]:
    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(
            f"{url}{path}", json=body, headers={"Authorization": f"Bearer {MASTER}"}, timeout=30
        )
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    alice = post("/user/new", {"user_id": f"alice-{uuid.uuid4().hex[:6]}"})
    bob = post("/user/new", {"user_id": f"bob-{uuid.uuid4().hex[:6]}"})
    return {
        "alice": alice["key"],
        "alice2": post("/key/generate", {"user_id": alice["user_id"]})["key"],
        "alice_tpm": post("/key/generate", {"user_id": alice["user_id"], "tpm_limit": TPM_LIMIT})["key"],
        "bob": bob["key"],
        "limited": post("/key/generate", {"models": [f"{PROMPT}*"]})["key"],
        "master": MASTER,
    }


@pytest.fixture(name="env", scope="module", params=["sqlite", "postgres"])
def env_fixture(request: pytest.FixtureRequest, upstream: str) -> Iterator[Env]:
    tag = uuid.uuid4().hex[:12]
    held = f"transcript-held-{tag}"
    with database(request.param) as db_url:
        config = _config(upstream, db_url, held)
        path = write_config(config)
        try:
            migrated = run_tollgate(["migrate", "--config", str(path)])
            assert migrated.returncode == 0, migrated.stderr
        finally:
            path.unlink()
        with gateway(config, env={"AWS_ENDPOINT_URL_BEDROCK_AGENT": upstream}) as url:
            yield Env(url, upstream, db_url, held, tag, _keys(url))
