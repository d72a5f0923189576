"""End to end: a Bedrock InvokeModel passthrough call is metered like any other request — a
spend-log row at GET /spend/logs with the usage read from the upstream's token-count headers,
priced from ``model_info``, and a Prometheus request count."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.e2e.conftest_native import NATIVE_KEY, TITAN_ID, bedrock_client, native_config
from tests.e2e.servers import gateway
from tests.polling import wait_until

HEADERS = {"Authorization": f"Bearer {NATIVE_KEY}"}
IN_PRICE = Decimal("0.000002")


@pytest.fixture(scope="module")
def metered_gateway(native_upstream: str) -> Iterator[str]:
    config: dict[str, Any] = native_config(native_upstream)
    for entry in config["model_list"]:
        if entry["model_name"] == "titan-embed":
            entry["model_info"] = {"mode": "embedding", "input_cost_per_token": float(IN_PRICE)}
    config["general_settings"]["proxy_batch_write_at"] = 0.2
    with gateway(config) as url:
        yield url


def _logs(url: str, request_id: str) -> list[dict[str, Any]]:
    def found() -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = httpx.get(
            f"{url}/spend/logs", params={"request_id": request_id}, headers=HEADERS
        ).json()
        return rows

    return wait_until(found, what=f"the spend row of {request_id}")


def test_bedrock_invoke_passthrough_writes_a_spend_row(metered_gateway: str) -> None:
    bedrock = bedrock_client(f"{metered_gateway}/bedrock")
    resp = bedrock.invoke_model(modelId="titan-embed", body=json.dumps({"inputText": "hello world"}))
    assert json.loads(resp["body"].read())["inputTextTokenCount"] == 2
    request_id = resp["ResponseMetadata"]["HTTPHeaders"]["x-request-id"]

    logs = _logs(metered_gateway, request_id)
    assert len(logs) == 1
    row = logs[0]
    assert row["model_group"] == "titan-embed"
    assert row["model"] == f"bedrock/{TITAN_ID}"
    assert row["prompt_tokens"] == 2
    assert row["completion_tokens"] == 0
    assert Decimal(str(row["spend"])) == 2 * IN_PRICE
    assert row["metadata"]["client_format"] == "bedrock"

    metrics = httpx.get(f"{metered_gateway}/metrics", headers=HEADERS).text
    assert 'model_group="titan-embed"' in metrics


def test_failed_passthrough_is_logged_without_spend(metered_gateway: str) -> None:
    resp = httpx.post(
        f"{metered_gateway}/bedrock/model/throttled/invoke", content=b"{}", headers=HEADERS, timeout=10
    )
    assert resp.status_code == 429
    logs = _logs(metered_gateway, resp.headers["x-request-id"])
    assert len(logs) == 1
    assert logs[0]["model_group"] == "throttled"
    assert Decimal(str(logs[0]["spend"])) == 0
