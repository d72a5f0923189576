"""The composition root: ``Config`` → stores, providers, router, policy, gateway → ASGI app.

The only module that names concrete implementations (DESIGN.md §2.10). Nothing happens at
import time; ``build(config)`` assembles a fresh object graph, so tests can build many gateways
in one process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from tollgate.auth.keys import KeyAuthenticator, credential_from_headers
from tollgate.auth.principal import Principal
from tollgate.config import Config, load_config, parse_config
from tollgate.dialects import openai_chat
from tollgate.edge.app import EdgeParts, create_app, json_response
from tollgate.edge.health import Health
from tollgate.edge.inference import Inference, error_response
from tollgate.errors import GatewayError
from tollgate.gateway import Gateway
from tollgate.interim_routing import InterimRouting
from tollgate.providers import Provider
from tollgate.providers._http import HttpClient
from tollgate.providers.fake import FakeProvider
from tollgate.providers.openai_compatible import OpenAICompatible

CONFIG_ENV = "TOLLGATE_CONFIG"

DEFAULT_CONFIG = {
    "model_list": [
        {"model_name": "gpt-4o-mini", "litellm_params": {"model": "fake/gpt-4o-mini"}},
        {"model_name": "claude-sonnet", "litellm_params": {"model": "fake/claude-sonnet"}},
        {"model_name": "nova-micro", "litellm_params": {"model": "fake/nova-micro"}},
        {
            "model_name": "text-embedding-3-small",
            "litellm_params": {"model": "fake/text-embedding-3-small"},
            "model_info": {"mode": "embedding"},
        },
    ],
    "general_settings": {"master_key": "sk-1234", "database_url": "sqlite:///tollgate.db"},
}


def default_config() -> Config:
    """The embedded config of ``make run``: fake upstream models, master key ``sk-1234``."""
    return parse_config(DEFAULT_CONFIG, env=os.environ)


def build_providers(http: HttpClient) -> dict[str, Provider]:
    from tollgate.providers.anthropic import AnthropicProvider
    from tollgate.providers.bedrock import BedrockProvider

    return {
        "openai": OpenAICompatible(http),
        "anthropic": AnthropicProvider(http),
        "bedrock": BedrockProvider(http),
        "fake": FakeProvider(),
    }


class _NoAdmission:
    """TODO(integration): replaced by policy.admission.Policy."""

    async def admit(self, call: object, deployments: object) -> _NoTicket:
        return _NoTicket()


class _NoTicket:
    headers: dict[str, str] = {}  # noqa: RUF012

    async def settle(self, usage: object, cost: object) -> None:
        return None


class _NoAccounting:
    """TODO(integration): replaced by accounting."""

    def cost(self, deployment: object, usage: object) -> object:
        from decimal import Decimal

        return Decimal(0)

    def record(self, attempted: object, cost: object) -> None:
        return None


def build(config: Config, *, clock: Callable[[], float] = time.time) -> FastAPI:
    http = HttpClient()
    providers = build_providers(http)
    authenticator = KeyAuthenticator(config.master_key)
    routing = InterimRouting(config.deployments)

    async def authenticate(request: Request) -> Principal:
        return await authenticator.authenticate(credential_from_headers(request.headers))

    gateway = Gateway(
        routing=routing,
        providers=providers,
        admission=_NoAdmission(),  # type: ignore[arg-type]
        accounting=_NoAccounting(),  # type: ignore[arg-type]
        drop_params=config.litellm.drop_params,
        clock=clock,
    )

    async def list_models(request: Request) -> Response:
        try:
            await authenticate(request)
        except GatewayError as exc:
            return error_response(openai_chat.render_error, exc)
        data = [
            {"id": name, "object": "model", "created": 1677610602, "owned_by": "openai"}
            for name in routing.names()
        ]
        return json_response({"data": data, "object": "list"})

    health = Health(lambda: config.deployments, providers, authenticate)

    async def close_http() -> None:
        await http.aclose()

    parts = EdgeParts(
        inference=Inference(gateway, authenticate, clock),
        health=health,
        list_models=list_models,
        on_shutdown=[close_http],
    )
    return create_app(parts)


def config_from_env() -> Config:
    path = os.environ.get(CONFIG_ENV)
    return load_config(Path(path)) if path else default_config()


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers (``--workers N``): each worker builds its own graph."""
    return build(config_from_env())
