"""The provider table: name → where its class lives, built on first use.

An explicit table (as uvicorn's ``HTTP_PROTOCOLS``) rather than a registry filled at import
time; and lazy, so a gateway without Bedrock deployments never imports botocore. Deployments
added at run time (``/model/new``) may name any provider here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from tollgate.providers import Provider
from tollgate.providers.http import HttpClient

PROVIDERS: Mapping[str, str] = {
    "openai": "tollgate.providers.openai_compatible:OpenAICompatible",
    "anthropic": "tollgate.providers.anthropic:AnthropicProvider",
    "bedrock": "tollgate.providers.bedrock:BedrockProvider",
    "fake": "tollgate.providers.fake:FakeProvider",
}


class ProviderTable(Mapping[str, Provider]):
    def __init__(self, http: HttpClient, env: Mapping[str, str]) -> None:
        self._http = http
        self._env = env
        self._built: dict[str, Provider] = {}

    def __getitem__(self, name: str) -> Provider:
        provider = self._built.get(name)
        if provider is None:
            module, _, attr = PROVIDERS[name].partition(":")
            provider = getattr(importlib.import_module(module), attr)(self._http, self._env)
            self._built[name] = provider
        return provider

    def __iter__(self) -> Iterator[str]:
        return iter(PROVIDERS)

    def __len__(self) -> int:
        return len(PROVIDERS)

    async def aclose(self) -> None:
        for provider in self._built.values():
            await provider.aclose()
