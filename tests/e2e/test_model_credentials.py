"""Credentials of models added with /model/new are stored encrypted (LITELLM_SALT_KEY, else the
master key), on SQLite and PostgreSQL: the database holds no secret in the clear, the gateway signs
upstream requests with the decrypted ones, rows stored in plaintext (without a key) are encrypted
at the next start, and a changed key refuses to start instead of sending garbage upstream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.admin_env import database, write_config
from tests.e2e.reference.conftest import tollgate
from tests.e2e.servers import free_port, process
from tollgate.config.sealing import MARKER
from tollgate.fakes.sigv4 import TEST_ACCESS_KEY, TEST_SECRET_KEY
from tollgate.store import open_store
from tollgate.store.records import StoredDeployment

MASTER = "sk-credentials-master"
OPENAI_SECRET = "sk-openai-stored-secret"
HEADER_SECRET = "header-secret-value"
# The gateway's own AWS environment is wrong: only the model's stored credentials sign correctly.
WRONG_AWS = {"AWS_ACCESS_KEY_ID": "AKIDWRONGWRONGWRONG", "AWS_SECRET_ACCESS_KEY": "wrong-secret",
             "AWS_REGION_NAME": "us-east-1"}


def _config(master: str | None) -> dict[str, Any]:
    general: dict[str, Any] = {"store_model_in_db": True}
    if master is not None:
        general["master_key"] = master
    return {"model_list": [], "general_settings": general}


@contextmanager
def _serve(config_path: Path, env: Mapping[str, str]) -> Iterator[str]:
    port = free_port()
    args = ["serve", "--config", str(config_path), "--host", "127.0.0.1", "--port", str(port)]
    with process(args, f"http://127.0.0.1:{port}/health/liveliness", env):
        yield f"http://127.0.0.1:{port}"


def _stored(db_url: str) -> list[StoredDeployment]:
    async def read() -> list[StoredDeployment]:
        store = open_store(db_url, 1)
        try:
            async with store.transaction() as tx:
                return await tx.deployments.find()
        finally:
            await store.close()

    return asyncio.run(read())


def _add_models(url: str, upstream: str, key: str | None) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    for body in (
        {"model_name": "nova-db", "litellm_params": {
            "model": "bedrock/converse/us.amazon.nova-micro-v1:0", "aws_region_name": "us-east-1",
            "aws_access_key_id": TEST_ACCESS_KEY, "aws_secret_access_key": TEST_SECRET_KEY,
            "aws_session_token": "session-token-secret", "api_base": upstream}},
        {"model_name": "gpt-db", "litellm_params": {
            "model": "openai/gpt-4o-mini", "api_key": OPENAI_SECRET, "api_base": f"{upstream}/v1",
            "extra_headers": {"x-api-token": HEADER_SECRET}}},
    ):
        added = httpx.post(f"{url}/model/new", headers=headers, json=body, timeout=30)
        assert added.status_code == 200, added.text
        assert OPENAI_SECRET not in added.text and TEST_SECRET_KEY not in added.text


def _chat(url: str, key: str | None, model: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(f"{url}/v1/chat/completions", headers=headers, json=body, timeout=30)


def _models_answer(url: str, key: str | None) -> None:
    # A signature made with anything but the stored secret is refused by the fake Bedrock (403).
    for model in ("nova-db", "gpt-db"):
        answer = _chat(url, key, model)
        assert answer.status_code == 200, answer.text


def _assert_sealed(rows: list[StoredDeployment]) -> None:
    raw = json.dumps([dict(r.litellm_params) for r in rows])
    for secret in (TEST_SECRET_KEY, TEST_ACCESS_KEY, "session-token-secret", OPENAI_SECRET, HEADER_SECRET):
        assert secret not in raw
    params = {r.model_name: r.litellm_params for r in rows}
    assert params["nova-db"]["aws_secret_access_key"].startswith(MARKER)
    assert params["nova-db"]["model"] == "bedrock/converse/us.amazon.nova-micro-v1:0"  # shown in the clear
    assert params["nova-db"]["aws_region_name"] == "us-east-1"
    assert params["gpt-db"]["extra_headers"]["x-api-token"].startswith(MARKER)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_stored_credentials_are_encrypted_used_and_bound_to_their_key(kind: str, upstream: str) -> None:
    with database(kind) as db_url:
        env = {**WRONG_AWS, "DATABASE_URL": db_url, "LITELLM_SALT_KEY": "salt-key-one"}
        path = write_config(_config(MASTER))
        try:
            with _serve(path, env) as url:
                _add_models(url, upstream, MASTER)
                _models_answer(url, MASTER)
                info = httpx.get(f"{url}/model/info", headers={"Authorization": f"Bearer {MASTER}"}).json()
                nova = next(m for m in info["data"] if m["model_name"] == "nova-db")
                assert nova["litellm_params"]["aws_secret_access_key"] == "********"
            _assert_sealed(_stored(db_url))

            # The master key is not what encrypts them (the salt key is): changing it is harmless.
            other_master = write_config(_config("sk-another-master"))
            with _serve(other_master, env) as url:
                _models_answer(url, "sk-another-master")
            other_master.unlink()

            # Another salt key cannot decrypt them: serve refuses to start, in one line.
            refused = tollgate(["serve", "--config", str(path), "--port", str(free_port())],
                               {**env, "LITELLM_SALT_KEY": "salt-key-two"})
            assert refused.returncode == 2, refused.stderr
            [line] = refused.stderr.strip().splitlines()[-1:]
            assert line.startswith("tollgate: config error: model '")
            assert "cannot be decrypted with LITELLM_SALT_KEY" in line
            assert "Traceback" not in refused.stderr
        finally:
            path.unlink()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_plaintext_rows_are_encrypted_at_the_next_start(kind: str, upstream: str) -> None:
    with database(kind) as db_url:
        env = {**WRONG_AWS, "DATABASE_URL": db_url}
        open_path, keyed_path = write_config(_config(None)), write_config(_config(MASTER))
        try:
            # Without a salt key or a master key there is nothing to encrypt with (as tollgate stored
            # every row before encryption at rest): the credentials are stored as given.
            with _serve(open_path, env) as url:
                _add_models(url, upstream, None)
            rows = {r.model_name: r.litellm_params for r in _stored(db_url)}
            assert rows["gpt-db"]["api_key"] == OPENAI_SECRET
            # With a master key (and no salt key) the next start encrypts them, and they still work.
            with _serve(keyed_path, env) as url:
                _models_answer(url, MASTER)
            _assert_sealed(_stored(db_url))
        finally:
            open_path.unlink()
            keyed_path.unlink()
