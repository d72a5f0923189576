"""The managed-prompt step with a counting prompt source and an injected clock: which entry reads
the prompt, access before any read, the cache, and where the rendered request is routed."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest

from tests.polling import until
from tollgate.auth.principal import Entity, Principal
from tollgate.canonical import ChatRequest, Message, TextPart
from tollgate.config import Deployment, parse_config
from tollgate.conversations.prompt_resolver import PromptCacheSettings, PromptResolver
from tollgate.errors import ModelAccessDenied, NotFound, UnknownModel
from tollgate.providers import fake_prompts
from tollgate.routing.table import ModelTable

ENTRY = "arn:aws:bedrock:us-west-2:123456789012:prompt/*"
ARN = "arn:aws:bedrock:us-west-2:123456789012:prompt/6LE1KDKISG"
ANYONE = Principal(kind="key", key_hash="h")


def _bedrock(name: str, model: str) -> dict[str, Any]:
    return {
        "model_name": name,
        "litellm_params": {"model": f"bedrock/{model}", "aws_region_name": "us-west-2"},
    }


class Source:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str | None, str]] = []
        self.gate: asyncio.Event | None = None

    async def get_prompt(
        self, deployment: Deployment, prompt_id: str, version: str | None, region: str
    ) -> Mapping[str, Any]:
        self.calls.append((deployment.model_name, prompt_id, version, region))
        if self.gate is not None:
            await self.gate.wait()
        return fake_prompts.get_prompt(prompt_id, version, region)


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def _resolver(*entries: dict[str, Any]) -> tuple[PromptResolver, Source, Clock, ModelTable]:
    config = parse_config({"model_list": list(entries)}, env={})
    table = ModelTable(config.deployments)
    source, clock = Source(), Clock()
    settings = PromptCacheSettings(draft_ttl=60, versioned_ttl=3600)
    return PromptResolver(table, {"bedrock": source}, settings=settings, clock=clock), source, clock, table


def _request(model: str, **variables: str) -> ChatRequest:
    return ChatRequest(model, (Message("user", (TextPart("ignored"),)),), prompt_variables=variables)


async def test_the_prompt_replaces_the_messages_and_routes_to_a_configured_model() -> None:
    resolver, source, _, _ = _resolver(_bedrock(ENTRY, ENTRY), _bedrock("sonnet", fake_prompts.CLAUDE))
    rendered = await resolver.apply(ANYONE, _request(ARN, topic="fruit"))
    assert rendered.model == ARN  # access, limits and spend still name the ARN
    assert rendered.messages == (Message("user", (TextPart("Write one sentence about fruit."),)),)
    assert (rendered.temperature, rendered.max_tokens) == (0.5, 300)
    assert rendered.hints.model_group == "sonnet"
    assert source.calls == [(ENTRY, "6LE1KDKISG", None, "us-west-2")]


async def test_client_inference_settings_win_over_the_prompts() -> None:
    resolver, _, _, _ = _resolver(_bedrock(ENTRY, ENTRY), _bedrock("sonnet", fake_prompts.CLAUDE))
    request = _request(ARN, topic="fruit")
    rendered = await resolver.apply(ANYONE, replace(request, max_tokens=7))
    assert (rendered.temperature, rendered.max_tokens) == (0.5, 7)


async def test_an_unconfigured_prompt_model_runs_on_the_arn_entry() -> None:
    resolver, _, _, table = _resolver(_bedrock(ENTRY, ENTRY), _bedrock("sonnet", fake_prompts.CLAUDE))
    arn = ARN.replace("6LE1KDKISG", "NOVA0PRMPT")
    rendered = await resolver.apply(ANYONE, _request(arn, text="a long text"))
    group = rendered.hints.model_group
    assert group is not None and group not in table.names()
    (derived,) = table.deployments(group)
    assert (derived.upstream_model, derived.provider) == (fake_prompts.NOVA_LITE, "bedrock")
    assert derived.aws == table.deployments(ENTRY)[0].aws  # the ARN entry's credentials and region
    assert table.resolve(fake_prompts.NOVA_LITE) is None  # never reachable by naming the model
    assert table.resolve(group) is None
    again = await resolver.apply(ANYONE, _request(arn, text="x"))
    assert again.hints.model_group == group


async def test_an_exact_entry_beats_a_pattern() -> None:
    exact = "arn:aws:bedrock:us-west-2:123456789012:prompt/6LE1KDKISG"
    resolver, source, _, _ = _resolver(
        _bedrock(ENTRY, ENTRY), _bedrock(exact, exact), _bedrock("sonnet", fake_prompts.CLAUDE)
    )
    await resolver.apply(ANYONE, _request(f"{ARN}:2", topic="x"))
    assert source.calls[0][0] == exact


async def test_no_matching_entry_is_an_unknown_model() -> None:
    resolver, source, _, _ = _resolver(_bedrock(ENTRY, ENTRY))
    with pytest.raises(UnknownModel):
        await resolver.apply(ANYONE, _request("arn:aws:bedrock:eu-west-1:999999999999:prompt/6LE1KDKISG"))
    assert source.calls == []


async def test_access_is_checked_on_the_arn_before_the_prompt_is_read() -> None:
    resolver, source, _, _ = _resolver(_bedrock(ENTRY, ENTRY), _bedrock("sonnet", fake_prompts.CLAUDE))
    only_chat = Principal(kind="key", key_hash="h", entities=(Entity("key", "h", models=("*CHAT0PRMPT",)),))
    with pytest.raises(ModelAccessDenied):
        await resolver.apply(only_chat, _request(ARN, topic="x"))
    assert source.calls == []
    await resolver.apply(only_chat, _request(ARN.replace("6LE1KDKISG", "CHAT0PRMPT"), persona="p", topic="t"))
    assert len(source.calls) == 1


async def test_an_unknown_prompt_is_not_found() -> None:
    resolver, _, _, _ = _resolver(_bedrock(ENTRY, ENTRY))
    with pytest.raises(NotFound):
        await resolver.apply(ANYONE, _request(ARN.replace("6LE1KDKISG", "UNKNOWN000")))


async def test_drafts_are_cached_briefly_versions_longer() -> None:
    resolver, source, clock, _ = _resolver(_bedrock(ENTRY, ENTRY), _bedrock("sonnet", fake_prompts.CLAUDE))
    for _ in range(3):
        await resolver.apply(ANYONE, _request(ARN, topic="x"))
        await resolver.apply(ANYONE, _request(f"{ARN}:2", topic="x"))
    assert len(source.calls) == 2
    clock.now = 61
    await resolver.apply(ANYONE, _request(ARN, topic="x"))
    await resolver.apply(ANYONE, _request(f"{ARN}:2", topic="x"))
    assert [c[2] for c in source.calls] == [None, "2", None]
    clock.now = 3601
    await resolver.apply(ANYONE, _request(f"{ARN}:2", topic="x"))
    assert [c[2] for c in source.calls] == [None, "2", None, "2"]


async def test_concurrent_misses_share_one_read() -> None:
    resolver, source, _, _ = _resolver(_bedrock(ENTRY, ENTRY), _bedrock("sonnet", fake_prompts.CLAUDE))
    source.gate = asyncio.Event()
    tasks = [asyncio.create_task(resolver.apply(ANYONE, _request(ARN, topic=str(i)))) for i in range(5)]
    await until(lambda: source.calls, what="the first GetPrompt call")
    source.gate.set()
    rendered = await asyncio.gather(*tasks)
    assert len(source.calls) == 1
    assert {r.messages[0].parts[0].text for r in rendered} == {
        f"Write one sentence about {i}." for i in range(5)
    }


async def test_a_failed_read_is_not_cached() -> None:
    resolver, source, _, _ = _resolver(_bedrock(ENTRY, ENTRY))
    unknown = ARN.replace("6LE1KDKISG", "UNKNOWN000")
    for _ in range(2):
        with pytest.raises(NotFound):
            await resolver.apply(ANYONE, _request(unknown))
    assert len(source.calls) == 2
