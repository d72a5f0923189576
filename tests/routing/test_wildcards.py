"""LiteLLM's wildcard routing in the model table: ``anthropic/*``, ``*``, several wildcards, the
most specific pattern first, the client's match filling the upstream model, ids per model."""

from __future__ import annotations

from typing import Any

from tollgate.config import parse_config
from tollgate.routing.table import MAX_SPECIALISED, ModelTable


def _table(*entries: tuple[str, str], **params: Any) -> ModelTable:
    model_list = [
        {"model_name": name, "litellm_params": {"model": model, **params}} for name, model in entries
    ]
    return ModelTable(parse_config({"model_list": model_list}, env={}).deployments)


def test_a_provider_wildcard_fills_the_upstream_model() -> None:
    table = _table(("anthropic/*", "anthropic/*"), ("gpt-4o", "openai/gpt-4o"))
    assert table.resolve("anthropic/claude-3-5-haiku-latest") == "anthropic/claude-3-5-haiku-latest"
    [dep] = table.deployments("anthropic/claude-3-5-haiku-latest")
    assert (dep.provider, dep.upstream_model, dep.litellm_model) == (
        "anthropic", "claude-3-5-haiku-latest", "anthropic/claude-3-5-haiku-latest",
    )
    assert dep.model_name == "anthropic/claude-3-5-haiku-latest"
    assert table.resolve("gpt-4o") == "gpt-4o"  # an exact group never goes through a pattern
    assert table.resolve("openai/gpt-4o") == "gpt-4o"  # nor an upstream id a group serves
    assert table.resolve("mistral/large") is None


def test_the_catch_all_and_the_most_specific_pattern_first() -> None:
    table = _table(("*", "openai/*"), ("anthropic/*", "anthropic/*"), ("anthropic/claude-3*", "bedrock/*"))
    assert table.deployments("anthropic/claude-3-opus")[0].litellm_model == "bedrock/-opus"
    assert table.deployments("anthropic/claude-4")[0].provider == "anthropic"
    [anything] = table.deployments("some-local-model")
    assert (anything.provider, anything.upstream_model) == ("openai", "some-local-model")


def test_a_fixed_model_string_serves_every_matching_name() -> None:
    table = _table(("team-a/*", "openai/gpt-4o-mini"))
    [dep] = table.deployments("team-a/anything")
    assert dep.upstream_model == "gpt-4o-mini"


def test_several_wildcards_are_filled_in_order_and_a_mismatch_takes_the_clients_name() -> None:
    table = _table(("llm/*/v*", "openai/*-v*"), ("openai/*/*", "openai/*"))
    assert table.deployments("llm/gpt/v2")[0].upstream_model == "gpt-v2"
    # Two captures for one wildcard: LiteLLM sends the client's name as the model string.
    [dep] = table.deployments("openai/org/model")
    assert (dep.provider, dep.upstream_model) == ("openai", "org/model")


def test_bare_wildcards_infer_the_provider_from_the_filled_name() -> None:
    table = _table(("*", "*"))
    assert table.deployments("claude-3-haiku")[0].provider == "anthropic"
    bedrock = table.deployments("bedrock/converse/us.amazon.nova-micro-v1:0")[0]
    assert (bedrock.provider, bedrock.upstream_model, bedrock.aws is not None) == (
        "bedrock", "us.amazon.nova-micro-v1:0", True,
    )
    assert table.deployments("cohere/command") == ()  # a provider tollgate does not speak
    assert table.resolve("cohere/command") is None


def test_ids_are_per_model_and_found_again() -> None:
    table = _table(("anthropic/*", "anthropic/*"), api_key="sk-x")
    [pattern_dep] = table.all_deployments()
    [haiku] = table.deployments("anthropic/claude-haiku")
    [opus] = table.deployments("anthropic/claude-opus")
    assert haiku.id == f"{pattern_dep.id}~anthropic/claude-haiku" != opus.id
    assert haiku.api_key == "sk-x"
    for _ in range(MAX_SPECIALISED + 1):  # push haiku out of the built names
        table.deployments(f"anthropic/m-{_}")
    assert table.deployment(haiku.id) == haiku
    assert table.deployment(f"{pattern_dep.id}~cohere/x") is None
    assert table.deployment("no-such-id") is None


def test_patterns_are_listed_as_configured() -> None:
    table = _table(("anthropic/*", "anthropic/*"), ("gpt-4o", "openai/gpt-4o"))
    assert table.names() == ["anthropic/*", "gpt-4o"]
