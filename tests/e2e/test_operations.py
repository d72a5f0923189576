"""Operations and compatibility end to end (issue 12): a missing AWS credential is the operator's
500 naming the deployment (and check-config says so before serving), OpenAI answers from any
upstream carry an id, a request at a deployment's rpm cap falls back instead of queueing, and a
key's enforced params are enforced. Same gateway as test_lifecycle.py (lifecycle_fixtures)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

import openai
import pytest
import yaml
from botocore.exceptions import ClientError

from tests.e2e.conftest_native import bedrock_client
from tests.e2e.lifecycle_fixtures import (
    ASK,
    MASTER,
    NO_AWS,
    lifecycle_config,
    new_key,
    oai,
    rows,
)
from tests.e2e.routing_fixtures import Gateway


def test_missing_aws_credentials_are_a_configuration_error(lc_gw: Gateway) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        oai(lc_gw).chat.completions.create(model="nocreds", messages=ASK)  # type: ignore[arg-type]
    assert info.value.status_code == 500
    assert "'nocreds'" in info.value.message and "AWS credentials" in info.value.message
    with pytest.raises(ClientError) as boto:
        bedrock_client(f"{lc_gw.url}/bedrock", MASTER).converse(
            modelId="nocreds", messages=[{"role": "user", "content": [{"text": "hi"}]}]
        )
    assert boto.value.response["Error"]["Code"] == "InternalServerException"


def test_check_config_warns_about_missing_aws_credentials(
    lc_fake: str, lc_slow_fake: str, tmp_path: Path
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(lifecycle_config(lc_fake, lc_slow_fake, "memory")))
    env = {**_environ(), **NO_AWS}
    done = subprocess.run(
        [sys.executable, "-m", "tollgate", "check-config", str(path)],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "deployment" in done.stderr and "'nocreds'" in done.stderr and "AWS credentials" in done.stderr


def _environ() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    return {**os.environ, "PYTHONPATH": src, "TMPDIR": tempfile.gettempdir()}


def test_openai_answers_from_bedrock_carry_an_id(lc_gw: Gateway) -> None:
    answer = oai(lc_gw).chat.completions.create(model="nova", messages=ASK)  # type: ignore[arg-type]
    assert answer.id
    chunks = list(oai(lc_gw).chat.completions.create(model="nova", messages=ASK, stream=True))  # type: ignore[arg-type]
    assert chunks and all(chunk.id for chunk in chunks)


def test_a_request_at_the_rpm_cap_falls_back_instead_of_queueing(lc_gw: Gateway) -> None:
    client = oai(lc_gw, timeout=10)  # the queue would hold the request for max_queue_wait (120 s)
    first = client.chat.completions.with_raw_response.create(model="capped", messages=ASK)  # type: ignore[arg-type]
    assert first.headers["x-litellm-model-group"] == "capped"
    second = client.chat.completions.with_raw_response.create(model="capped", messages=ASK)  # type: ignore[arg-type]
    assert second.headers["x-litellm-model-group"] == "chat"


def test_enforced_params_from_key_metadata(lc_gw: Gateway) -> None:
    key = new_key(lc_gw, metadata={"enforced_params": ["user", "metadata.generation_name"]})
    client = oai(lc_gw, key)
    with pytest.raises(openai.BadRequestError, match="param=user"):
        client.chat.completions.create(model="chat", messages=ASK)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError, match=r"param=metadata\.generation_name"):
        client.chat.completions.create(model="chat", messages=ASK, user="u1")  # type: ignore[arg-type]
    answer = client.chat.completions.create(
        model="chat", messages=ASK, user="u1", extra_body={"metadata": {"generation_name": "g"}}  # type: ignore[arg-type]
    )
    assert answer.choices[0].message.content
    spent = [r for r in rows(lc_gw, at_least=3, api_key=key)]
    assert sorted(r["status_code"] for r in spent) == [200, 400, 400]
    assert Decimal(str(sum(r["spend"] for r in spent))) > 0
