"""ModelTable: groups, aliases (string and hidden), upstream ids, atomic DB swap."""

from __future__ import annotations

from tollgate.config import Deployment
from tollgate.routing.table import Alias, ModelTable, parse_aliases


def dep(id_: str, group: str, upstream: str = "m", source: str = "config") -> Deployment:
    return Deployment(
        id=id_,
        model_name=group,
        provider="bedrock",
        upstream_model=upstream,
        litellm_model=f"bedrock/converse/{upstream}",
        source=source,  # type: ignore[arg-type]
    )


def test_groups_and_upstream_id_lookup() -> None:
    table = ModelTable([dep("a", "claude", "us.anthropic.claude-x-v1:0"), dep("b", "claude", "eu.x")])
    assert [d.id for d in table.deployments("claude")] == ["a", "b"]
    assert table.resolve("claude") == "claude"
    assert table.resolve("us.anthropic.claude-x-v1:0") == "claude"
    assert table.resolve("bedrock/converse/eu.x") == "claude"
    assert table.resolve("nope") is None


def test_aliases_resolve_first_and_hidden_are_not_listed() -> None:
    aliases = parse_aliases(
        {"gpt-4": "claude", "old": "claude"},
        {"old": {"model": "claude", "hidden": True}, "broken": {"hidden": True}},
    )
    assert aliases == {"gpt-4": Alias("claude"), "old": Alias("claude", hidden=True)}
    table = ModelTable([dep("a", "claude"), dep("g", "gpt-4")], aliases)
    # An alias wins over a group of the same name, as in LiteLLM.
    assert table.resolve("gpt-4") == "claude"
    assert table.resolve("old") == "claude"
    assert table.names() == ["claude", "gpt-4"]


def test_replace_db_deployments_keeps_config_ones() -> None:
    table = ModelTable([dep("a", "claude"), dep("d1", "db-model", source="db")])
    assert table.resolve("db-model") == "db-model"
    table.replace_db_deployments([dep("d2", "claude", "other", source="db"), dep("d3", "new", source="db")])
    assert table.resolve("db-model") is None
    assert [d.id for d in table.deployments("claude")] == ["a", "d2"]
    assert table.names() == ["claude", "new"]
    assert [d.id for d in table.all_deployments()] == ["a", "d2", "d3"]
