"""Fixtures for the native-client end-to-end tests (anthropic SDK, boto3, LangChain, pydantic-ai):
one fake upstream that verifies SigV4 on Bedrock requests, and one gateway with deployments to it
in every upstream format. Imported into ``tests/e2e/conftest.py``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config

from tests.e2e.servers import fake_upstream, gateway
from tollgate.fakes.sigv4 import TEST_ACCESS_KEY, TEST_SECRET_KEY

NATIVE_KEY = "sk-native-master"
CLAUDE_ID = "us.anthropic.claude-3-5-sonnet-20241022-v2:0"
NOVA_ID = "amazon.nova-micro-v1:0"
ARN_ID = "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0"
TITAN_ID = "amazon.titan-embed-text-v2:0"
UPSTREAM_ONLY_ID = "us.meta.llama3-3-70b-instruct-v1:0"  # served by group "llama", never named by clients
REPLY = "Hello from tollgate's fake upstream! You said: "


def _bedrock(
    name: str, upstream: str, model: str, *, secret: str = TEST_SECRET_KEY, **extra: Any
) -> dict[str, Any]:
    params = {
        "model": f"bedrock/{model}",
        "api_base": upstream,
        "aws_access_key_id": TEST_ACCESS_KEY,
        "aws_secret_access_key": secret,
        "aws_region_name": "us-east-1",
    }
    return {"model_name": name, "litellm_params": params, **extra}


def native_config(upstream: str) -> dict[str, Any]:
    anthropic = {"model": "anthropic/claude-fake", "api_base": upstream, "api_key": "sk-ant-upstream"}
    openai = {"model": "openai/gpt-fake", "api_base": f"{upstream}/v1", "api_key": "sk-up"}
    return {
        "model_list": [
            {"model_name": "gpt-upstream", "litellm_params": openai},
            {"model_name": "claude-anthropic", "litellm_params": anthropic},
            _bedrock("claude-primary", upstream, f"converse/{CLAUDE_ID}"),
            _bedrock("nova", upstream, NOVA_ID),
            _bedrock("claude-arn", upstream, f"converse/{ARN_ID}"),
            _bedrock("llama", upstream, UPSTREAM_ONLY_ID),
            _bedrock("titan-embed", upstream, TITAN_ID, model_info={"mode": "embedding"}),
            _bedrock("bad-signature", upstream, NOVA_ID, secret="not-the-secret"),
            _bedrock("throttled", upstream, "error-429"),
            _bedrock("too-long", upstream, "error-400"),
            _bedrock("denied", upstream, "error-403"),
            {"model_name": "local-fake", "litellm_params": {"model": "fake/local"}},
        ],
        "general_settings": {"master_key": NATIVE_KEY, "database_url": "memory"},
        "router_settings": {"num_retries": 0, "disable_cooldowns": True},
        "litellm_settings": {"drop_params": True},
    }


@pytest.fixture(scope="session")
def native_upstream() -> Iterator[str]:
    with fake_upstream() as url:
        yield url


@pytest.fixture(scope="session")
def native_gateway(native_upstream: str) -> Iterator[str]:
    with gateway(native_config(native_upstream)) as url:
        yield url


def bedrock_client(endpoint: str, key: str = NATIVE_KEY) -> Any:
    """boto3 bedrock-runtime against the gateway: unsigned, with the gateway key as a bearer token."""
    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}),
    )
    add_key: Callable[..., None] = lambda request, **_: request.headers.__setitem__(  # noqa: E731
        "Authorization", f"Bearer {key}"
    )
    client.meta.events.register("request-created.*", add_key)
    return client


@pytest.fixture(scope="session")
def bedrock(native_gateway: str) -> Any:
    return bedrock_client(f"{native_gateway}/bedrock")
