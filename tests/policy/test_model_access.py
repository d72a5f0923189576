"""Model access: wildcards, levels, and the status of a refusal."""

from __future__ import annotations

import pytest

from tollgate.auth.principal import Entity, Principal
from tollgate.errors import ModelAccessDenied
from tollgate.policy.access import allows, check_access, denying_entity, matches


@pytest.mark.parametrize(
    ("pattern", "model", "expected"),
    [
        ("gpt-4o", "gpt-4o", True),
        ("gpt-4o", "gpt-4o-mini", False),
        ("*", "anything", True),
        ("bedrock/*", "bedrock/anthropic.claude-3", True),
        ("bedrock/*", "openai/gpt-4o", False),
        ("claude-*", "claude-sonnet-4", True),
        ("claude-*", "my-claude-sonnet", False),
        ("*-mini", "gpt-4o-mini", True),
        ("gpt-*-mini", "gpt-4o-mini", True),
        ("gpt-*-mini", "gpt-mini", False),
        ("a*b*c", "aXbYc", True),
        ("a*b*c", "acb", False),
    ],
)
def test_wildcards(pattern: str, model: str, expected: bool) -> None:
    assert matches(pattern, model) is expected


def test_empty_list_and_special_names_allow_any() -> None:
    assert allows((), "x")
    assert allows(("all-proxy-models",), "x")
    assert allows(("all-team-models",), "x")
    assert not allows(("gpt-4o",), "x")


def principal(*entities: Entity) -> Principal:
    return Principal(kind="key", entities=entities)


def test_key_refusal_is_401_naming_model_and_level() -> None:
    key = Entity(kind="key", id="k", models=("gpt-4o",))
    with pytest.raises(ModelAccessDenied) as caught:
        check_access(principal(key), "claude-3")
    err = caught.value
    assert err.status == 401
    assert err.message == (
        "key not allowed to access model. This key can only access models=['gpt-4o']. "
        "Tried to access claude-3"
    )


def test_team_list_bounds_its_keys() -> None:
    key = Entity(kind="key", id="k", models=("*",))
    team = Entity(kind="team", id="t1", alias="research", models=("claude-*",))
    check_access(principal(key, team), "claude-sonnet")
    with pytest.raises(ModelAccessDenied) as caught:
        check_access(principal(key, team), "gpt-4o")
    assert caught.value.status == 403
    assert "team not allowed to access model" in caught.value.message
    assert "team 'research'" in caught.value.message
    assert "gpt-4o" in caught.value.message


def test_first_refusing_level_is_reported() -> None:
    key = Entity(kind="key", id="k", models=("a",))
    org = Entity(kind="org", id="o", models=("b",))
    refusing = denying_entity(principal(key, org), "c")
    assert refusing is not None
    assert refusing.kind == "key"
    assert denying_entity(principal(Entity(kind="user", id="u")), "c") is None
