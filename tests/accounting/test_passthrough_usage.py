"""PassthroughUsage: a passthrough call becomes the same ``Attempted`` + cost the gateway records."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from tollgate.accounting.ledger import Ledger
from tollgate.accounting.passthrough_usage import PassthroughUsage, client_format
from tollgate.accounting.pricing import Pricer, load_bundled_table
from tollgate.auth.principal import Principal
from tollgate.call import Attempted
from tollgate.canonical import ChatRequest, Usage
from tollgate.config import Deployment, parse_config
from tollgate.errors import UpstreamError

PRINCIPAL = Principal(kind="key", key_hash="h1", team_id="t1")


def _deployment() -> Deployment:
    info = {"input_cost_per_token": 0.000002, "output_cost_per_token": 0.00001}
    config = parse_config(
        {
            "model_list": [
                {
                    "model_name": "claude",
                    "litellm_params": {"model": "bedrock/anthropic.claude-x", "aws_region_name": "us-east-1"},
                    "model_info": info,
                }
            ]
        },
        env={},
    )
    return config.deployments[0]


def _record(usage: Usage | None, status: int, route: str) -> list[tuple[Attempted, Decimal]]:
    seen: list[tuple[Attempted, Decimal]] = []
    ledger = Ledger(Pricer(load_bundled_table()), [lambda attempted, cost: seen.append((attempted, cost))])
    sink = PassthroughUsage(ledger, clock=lambda: 107.5)
    asyncio.run(
        sink.record(PRINCIPAL, _deployment(), usage, status, route=route, request_id="r1", started=100.0)
    )
    return seen


def test_success_is_priced_and_recorded() -> None:
    [(attempted, cost)] = _record(Usage(input_tokens=10, output_tokens=4), 200, "bedrock_invoke")
    assert cost == Decimal("0.00006")
    assert attempted.call.principal is PRINCIPAL
    assert attempted.call.request == ChatRequest(model="claude", messages=())
    assert attempted.call.client_format == "bedrock"
    assert attempted.call.request_id == "r1"
    assert attempted.model_group == "claude"
    assert attempted.deployment is not None and attempted.deployment.model_name == "claude"
    assert (attempted.status, attempted.error, attempted.attempts) == (200, None, 1)
    assert (attempted.started, attempted.ended) == (100.0, 107.5)


def test_upstream_error_is_recorded_free_with_its_status() -> None:
    [(attempted, cost)] = _record(None, 429, "anthropic/v1/messages/batches")
    assert cost == Decimal(0)
    assert attempted.status == 429
    assert isinstance(attempted.error, UpstreamError) and attempted.error.status == 429
    assert attempted.call.client_format == "anthropic"


def test_client_format() -> None:
    assert client_format("bedrock_invoke") == "bedrock"
    assert client_format("anthropic/v1/files") == "anthropic"
