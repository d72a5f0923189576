"""The request lifecycle end to end (issues 13 and 12): official SDKs against a real
``tollgate serve`` on PostgreSQL with Redis counters, in front of the fake upstream.

Nothing bypassed (passthrough and count_tokens are admitted), nothing lost (a dropped stream, a
refusal, a bad metadata value: each leaves its spend-log row and metric line), honest answers
(a cut stream ends in an error, failures report their attempts, a missing AWS credential is the
operator's 500), and limits (body size in every client format, request timeouts and retries
that may only lower the operator's, integers and nesting at parse time, enforced params).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
import yaml
from botocore.exceptions import ClientError

from tests.e2e.admin_env import postgres_database
from tests.e2e.conftest_native import TITAN_ID, bedrock_client
from tests.e2e.routing_fixtures import Gateway, fake_calls, running_gateway
from tests.e2e.servers import fake_upstream
from tollgate.fakes.sigv4 import TEST_ACCESS_KEY, TEST_SECRET_KEY

MASTER = "sk-routing-master"  # running_gateway lists models with this key
ASK = [{"role": "user", "content": "hi"}]
NO_AWS = {  # a process that must find no AWS credentials anywhere
    "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-creds",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _openai(url: str, name: str, model: str, **params: Any) -> dict[str, Any]:
    litellm = {"model": f"openai/{model}", "api_base": f"{url}/v1", "api_key": "sk-up", **params}
    return {"model_name": name, "litellm_params": litellm}


def _bedrock(url: str, name: str, model: str, creds: bool = True, **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"model": f"bedrock/{model}", "api_base": url, "aws_region_name": "us-east-1"}
    if creds:
        params.update(aws_access_key_id=TEST_ACCESS_KEY, aws_secret_access_key=TEST_SECRET_KEY)
    return {"model_name": name, "litellm_params": params, **extra}


def lifecycle_config(fake: str, slow: str, database: str) -> dict[str, Any]:
    price = {"input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002}
    return {
        "model_list": [
            {**_openai(fake, "chat", "gpt-fake"), "model_info": price},
            _openai(fake, "meta", "meta-probe"),
            _openai(fake, "cut", "stream-cut-after-3"),
            _openai(slow, "slowstream", "slowstream"),
            _openai(fake, "slowjson", "slow-3000-json", timeout=1),
            _openai(fake, "flaky", "flaky-1000-lc"),
            _openai(fake, "capped", "capped-lc", rpm=1),
            _bedrock(fake, "nova", "amazon.nova-micro-v1:0"),
            _bedrock(fake, "titan", TITAN_ID, model_info={"mode": "embedding"}),
            _bedrock(fake, "nocreds", "amazon.nova-micro-v1:0", creds=False),
            {"model_name": "claude-native",
             "litellm_params": {"model": "anthropic/claude-native-lc", "api_base": fake, "api_key": "k"}},
        ],
        "general_settings": {
            "master_key": MASTER, "database_url": database, "proxy_batch_write_at": 0.1,
            "max_request_size_mb": 1,
        },
        "router_settings": {
            "num_retries": 2, "retry_after": 0, "disable_cooldowns": True, "max_queue_wait": 120,
            "fallbacks": [{"capped": ["chat"]}], "redis_host": "127.0.0.1", "redis_port": 6379,
        },
        "litellm_settings": {"drop_params": True, "json_logs": True},
    }


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    with fake_upstream() as url:
        yield url


@pytest.fixture(scope="module")
def slow_fake() -> Iterator[str]:
    with fake_upstream("--chunk-delay", "0.4") as url:
        yield url


def _drop_redis(prefix: str) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2)
    try:
        keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(scope="module")
def gw(fake: str, slow_fake: str) -> Iterator[Gateway]:
    import redis

    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5).ping()
    except (redis.RedisError, OSError):
        pytest.skip("no Redis on 127.0.0.1:6379")
    prefix = f"tollgate-lc-{uuid.uuid4().hex[:10]}"
    with postgres_database() as database:
        from tollgate.store.sql import migrate

        asyncio.run(migrate(database))
        try:
            env = {"TOLLGATE_REDIS_PREFIX": prefix, **NO_AWS}
            with running_gateway(lifecycle_config(fake, slow_fake, database), env=env) as gateway:
                yield gateway
        finally:
            _drop_redis(prefix)


def admin(gw: Gateway, path: str, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {MASTER}"}
    answer = httpx.post(f"{gw.url}{path}", json=body, headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def new_key(gw: Gateway, **fields: Any) -> str:
    return str(admin(gw, "/key/generate", fields)["key"])


def rows(gw: Gateway, *, at_least: int = 1, **filters: str) -> list[dict[str, Any]]:
    """Spend-log rows matching ``filters``, polled until ``at_least`` are written (or 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        found: list[dict[str, Any]] = httpx.get(
            f"{gw.url}/spend/logs", params={**filters, "page_size": 1000},
            headers={"Authorization": f"Bearer {MASTER}"}, timeout=10,
        ).json()
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def oai(gw: Gateway, key: str = MASTER, timeout: float = 30) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{gw.url}/v1", max_retries=0, timeout=timeout)


def claude(gw: Gateway, key: str = MASTER) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key, base_url=gw.url, max_retries=0, timeout=30)


# ---------------------------------------------------------------------------------------------
# 13.4 passthrough is admitted
# ---------------------------------------------------------------------------------------------


def test_passthrough_and_count_tokens_need_model_access_and_budget(gw: Gateway, fake: str) -> None:
    only_chat = new_key(gw, models=["chat"])
    spent = new_key(gw, max_budget=0)
    before = fake_calls(fake)
    with pytest.raises(ClientError) as denied:
        bedrock_client(f"{gw.url}/bedrock", only_chat).invoke_model(
            modelId="titan", body=json.dumps({"inputText": "hello"})
        )
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    with pytest.raises(ClientError) as broke:
        bedrock_client(f"{gw.url}/bedrock", spent).invoke_model(
            modelId="titan", body=json.dumps({"inputText": "hello"})
        )
    assert "Budget has been exceeded" in str(broke.value)
    with pytest.raises(anthropic.AuthenticationError):
        claude(gw, only_chat).messages.count_tokens(model="claude-native", messages=ASK)  # type: ignore[arg-type]
    streamed = httpx.post(
        f"{gw.url}/bedrock/model/titan/invoke-with-response-stream", content=b'{"inputText": "x"}',
        headers={"Authorization": f"Bearer {spent}"}, timeout=10,
    )
    assert streamed.status_code == 400
    assert fake_calls(fake).get(TITAN_ID, 0) == before.get(TITAN_ID, 0)  # nothing reached the upstream
    # An admitted call is metered: its row has the tokens the upstream reported.
    answer = bedrock_client(f"{gw.url}/bedrock", MASTER).invoke_model(
        modelId="titan", body=json.dumps({"inputText": "hello world"})
    )
    request_id = answer["ResponseMetadata"]["HTTPHeaders"]["x-request-id"]
    [row] = rows(gw, request_id=request_id)
    assert (row["status_code"], row["prompt_tokens"]) == (200, 2)


# ---------------------------------------------------------------------------------------------
# 13.6 a request may lower the operator's timeout and retries, never raise them
# ---------------------------------------------------------------------------------------------


def test_a_request_cannot_raise_the_timeout(gw: Gateway) -> None:
    with pytest.raises(openai.APIStatusError) as info:  # the deployment allows 1 s; the upstream takes 3
        oai(gw).chat.completions.create(model="slowjson", messages=ASK, extra_body={"timeout": 8})  # type: ignore[arg-type]
    assert info.value.status_code == 408


def test_a_request_cannot_raise_num_retries(gw: Gateway, fake: str) -> None:
    before = fake_calls(fake).get("flaky-1000-lc", 0)
    with pytest.raises(openai.APIStatusError) as raised:
        oai(gw).chat.completions.create(model="flaky", messages=ASK, extra_body={"num_retries": 5})  # type: ignore[arg-type]
    assert fake_calls(fake)["flaky-1000-lc"] - before == 3  # the operator's num_retries: 2
    with pytest.raises(openai.APIStatusError) as lowered:
        oai(gw).chat.completions.create(model="flaky", messages=ASK, extra_body={"num_retries": 0})  # type: ignore[arg-type]
    assert fake_calls(fake)["flaky-1000-lc"] - before == 4
    # 17: each failed request's row says how many attempts it made.
    for error, attempts in ((raised, 3), (lowered, 1)):
        [row] = rows(gw, request_id=error.value.response.headers["x-request-id"])
        assert (row["status_code"], row["metadata"]["attempts"]) == (503, attempts)


# ---------------------------------------------------------------------------------------------
# 13.7 a stream the client drops is accounted, with Redis counters
# ---------------------------------------------------------------------------------------------


def test_a_dropped_stream_leaves_a_row_and_frees_its_slot(gw: Gateway) -> None:
    key = new_key(gw, max_parallel_requests=1, tpm_limit=100_000)
    auth = {"Authorization": f"Bearer {key}"}
    body = {"model": "slowstream", "messages": ASK, "stream": True}
    with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body, headers=auth, timeout=30) as answer:
        assert answer.status_code == 200
        request_id = answer.headers["x-request-id"]
        next(answer.iter_raw())  # the first event arrived; the client goes away mid-stream
    [row] = rows(gw, request_id=request_id)
    assert (row["status_code"], row["metadata"]["error_class"]) == (499, "ClientDisconnected")
    deadline = time.monotonic() + 10
    while True:  # the parallel slot is given back (settlement may finish just after the row)
        again = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "chat", "messages": ASK},
                           headers=auth, timeout=30)
        if again.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert again.status_code == 200, again.text


# ---------------------------------------------------------------------------------------------
# 13.11 / 13.16 bad values are 400s at parse time; accepted ones are always written
# ---------------------------------------------------------------------------------------------


def test_deep_metadata_is_refused_before_the_upstream(gw: Gateway, fake: str) -> None:
    before = fake_calls(fake).get("meta-probe", 0)
    deep = json.loads('{"a":' * 300 + "1" + "}" * 300)
    with pytest.raises(openai.BadRequestError, match="nested"):
        oai(gw).chat.completions.create(model="meta", messages=ASK, metadata=deep)  # type: ignore[arg-type]
    assert fake_calls(fake).get("meta-probe", 0) == before


def test_nul_characters_never_cost_a_row(gw: Gateway) -> None:
    # PostgreSQL text refuses NUL: one such value in a batch would lose the whole batch.
    key = new_key(gw)
    with pytest.raises(openai.BadRequestError) as unknown:
        oai(gw, key).chat.completions.create(model="chat\u0000", messages=ASK)  # type: ignore[arg-type]
    answer = oai(gw, key).chat.completions.with_raw_response.create(
        model="chat", messages=ASK, extra_body={"metadata": {"note\u0000": "a\u0000b"}, "tags": ["t\u0000"]}  # type: ignore[arg-type]
    )
    assert answer.status_code == 200
    [refused] = rows(gw, request_id=unknown.value.response.headers["x-request-id"])
    assert (refused["status_code"], refused["requested_model"]) == (400, "chat\ufffd")
    [row] = rows(gw, request_id=answer.headers["x-request-id"])
    assert row["metadata"]["note\ufffd"] == "a\ufffdb"
    assert row["request_tags"] == ["t\ufffd"]


def test_bad_numbers_are_400_not_500(gw: Gateway, fake: str) -> None:
    key = new_key(gw, tpm_limit=150)
    converse = {"messages": [{"role": "user", "content": [{"text": "hi"}]}],
                "inferenceConfig": {"maxTokens": -100_000_000}}
    before = fake_calls(fake).get("amazon.nova-micro-v1:0", 0)
    for _ in range(3):
        negative = httpx.post(f"{gw.url}/bedrock/model/nova/converse", json=converse,
                              headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert negative.status_code == 400 and negative.headers["x-amzn-errortype"] == "ValidationException"
    assert fake_calls(fake).get("amazon.nova-micro-v1:0", 0) == before
    for extra in ({"max_tokens": 2**64 - 1}, {"seed": 2**64}, {"max_tokens": 0}):
        with pytest.raises(openai.BadRequestError):
            oai(gw, key).chat.completions.create(model="chat", messages=ASK, extra_body=extra)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# 13.12 a stream the upstream cuts short ends in an error
# ---------------------------------------------------------------------------------------------


def test_a_cut_stream_is_an_error_for_openai_and_anthropic_clients(gw: Gateway) -> None:
    finishes: list[str | None] = []
    with pytest.raises(openai.APIError, match="ended before its end"):
        for chunk in oai(gw).chat.completions.create(model="cut", messages=ASK, stream=True):  # type: ignore[arg-type]
            finishes.extend(choice.finish_reason for choice in chunk.choices)
    assert finishes and set(finishes) == {None}  # never "stop"
    stops: list[str | None] = []
    with (
        pytest.raises(anthropic.APIStatusError, match="ended before its end"),
        claude(gw).messages.stream(model="cut", max_tokens=64, messages=ASK) as stream,  # type: ignore[arg-type]
    ):
        for event in stream:
            if event.type == "message_delta":
                stops.append(event.delta.stop_reason)
    assert stops == []
    deadline = time.monotonic() + 10
    while True:
        cut = [r for r in rows(gw) if r["model_group"] == "cut"]
        if len(cut) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [(r["status_code"], r["metadata"]["error_class"]) for r in cut] == [(502, "StreamTruncated")] * 2


# ---------------------------------------------------------------------------------------------
# 13.15 / 12 the body size limit, in every client format
# ---------------------------------------------------------------------------------------------

BIG = "x" * (1024 * 1024 + 1)  # max_request_size_mb: 1


def test_body_size_limit_in_each_client_format(gw: Gateway) -> None:
    with pytest.raises(openai.APIStatusError) as too_big:
        oai(gw).chat.completions.create(model="chat", messages=[{"role": "user", "content": BIG}])
    assert too_big.value.status_code == 413
    assert "max_request_size_mb" in too_big.value.message
    with pytest.raises(anthropic.APIStatusError) as anthropic_big:
        claude(gw).messages.create(model="chat", max_tokens=5, messages=[{"role": "user", "content": BIG}])
    assert anthropic_big.value.status_code == 413
    assert anthropic_big.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]
    with pytest.raises(ClientError) as bedrock_big:
        bedrock_client(f"{gw.url}/bedrock", MASTER).converse(
            modelId="nova", messages=[{"role": "user", "content": [{"text": BIG}]}]
        )
    assert bedrock_big.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert bedrock_big.value.response["Error"]["Code"] == "ValidationException"
    # Without a content-length (chunked), reading stops at the limit.
    pieces = [b'{"model": "chat", "messages": "', BIG.encode(), b'"}']
    chunked = httpx.post(
        f"{gw.url}/v1/chat/completions", content=iter(pieces),
        headers={"Authorization": f"Bearer {MASTER}"}, timeout=30,
    )
    assert chunked.status_code == 413
    # Admin and passthrough routes too, in their own formats.
    admin_big = httpx.post(f"{gw.url}/key/generate", json={"metadata": {"x": BIG}},
                           headers={"Authorization": f"Bearer {MASTER}"}, timeout=30)
    assert admin_big.status_code == 413 and "error" in admin_big.json()
    invoke_big = httpx.post(f"{gw.url}/bedrock/model/titan/invoke", json={"inputText": BIG},
                            headers={"Authorization": f"Bearer {MASTER}"}, timeout=30)
    assert invoke_big.status_code == 413 and invoke_big.headers["x-amzn-errortype"] == "ValidationException"
    # The refusals are accounted like any other request.
    [row] = rows(gw, request_id=too_big.value.response.headers["x-request-id"])
    assert row["status_code"] == 413


# ---------------------------------------------------------------------------------------------
# 13.17 / 12 refusals are rows and metric lines
# ---------------------------------------------------------------------------------------------


def test_refusals_are_spend_rows_and_metric_lines(gw: Gateway) -> None:
    limited = new_key(gw, rpm_limit=1)
    spent = new_key(gw, max_budget=0)
    answers: dict[str, int] = {}
    for key in (limited, limited, spent, "sk-not-a-key"):
        answer = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "chat", "messages": ASK},
                            headers={"Authorization": f"Bearer {key}"}, timeout=10)
        answers[answer.headers["x-request-id"]] = answer.status_code
    assert sorted(answers.values()) == [200, 400, 401, 429]
    for request_id, status in answers.items():
        [row] = rows(gw, request_id=request_id)
        assert row["status_code"] == status
    lines = {line["status_code"]: line for line in gw.metric_lines()}
    for status in (401, 429, 400):
        assert "error" in lines[status], lines[status]


# ---------------------------------------------------------------------------------------------
# issue 12: operations and compatibility
# ---------------------------------------------------------------------------------------------


def test_missing_aws_credentials_are_a_configuration_error(gw: Gateway) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        oai(gw).chat.completions.create(model="nocreds", messages=ASK)  # type: ignore[arg-type]
    assert info.value.status_code == 500
    assert "'nocreds'" in info.value.message and "AWS credentials" in info.value.message
    with pytest.raises(ClientError) as boto:
        bedrock_client(f"{gw.url}/bedrock", MASTER).converse(
            modelId="nocreds", messages=[{"role": "user", "content": [{"text": "hi"}]}]
        )
    assert boto.value.response["Error"]["Code"] == "InternalServerException"


def test_check_config_warns_about_missing_aws_credentials(fake: str, slow_fake: str, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(lifecycle_config(fake, slow_fake, "memory")))
    env = {**_environ(), **NO_AWS}
    done = subprocess.run(
        [sys.executable, "-m", "tollgate", "check-config", str(path)],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "deployment" in done.stderr and "'nocreds'" in done.stderr and "AWS credentials" in done.stderr


def _environ() -> dict[str, str]:
    import os

    src = str(Path(__file__).resolve().parents[2] / "src")
    return {**os.environ, "PYTHONPATH": src, "TMPDIR": tempfile.gettempdir()}


def test_openai_answers_from_bedrock_carry_an_id(gw: Gateway) -> None:
    answer = oai(gw).chat.completions.create(model="nova", messages=ASK)  # type: ignore[arg-type]
    assert answer.id
    chunks = list(oai(gw).chat.completions.create(model="nova", messages=ASK, stream=True))  # type: ignore[arg-type]
    assert chunks and all(chunk.id for chunk in chunks)


def test_a_request_at_the_rpm_cap_falls_back_instead_of_queueing(gw: Gateway) -> None:
    client = oai(gw, timeout=10)  # the queue would hold the request for max_queue_wait (120 s)
    first = client.chat.completions.with_raw_response.create(model="capped", messages=ASK)  # type: ignore[arg-type]
    assert first.headers["x-litellm-model-group"] == "capped"
    second = client.chat.completions.with_raw_response.create(model="capped", messages=ASK)  # type: ignore[arg-type]
    assert second.headers["x-litellm-model-group"] == "chat"


def test_enforced_params_from_key_metadata(gw: Gateway) -> None:
    key = new_key(gw, metadata={"enforced_params": ["user", "metadata.generation_name"]})
    client = oai(gw, key)
    with pytest.raises(openai.BadRequestError, match="param=user"):
        client.chat.completions.create(model="chat", messages=ASK)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError, match=r"param=metadata\.generation_name"):
        client.chat.completions.create(model="chat", messages=ASK, user="u1")  # type: ignore[arg-type]
    answer = client.chat.completions.create(
        model="chat", messages=ASK, user="u1", extra_body={"metadata": {"generation_name": "g"}}  # type: ignore[arg-type]
    )
    assert answer.choices[0].message.content
    spent = [r for r in rows(gw, at_least=3, api_key=key)]
    assert sorted(r["status_code"] for r in spent) == [200, 400, 400]
    assert Decimal(str(sum(r["spend"] for r in spent))) > 0
