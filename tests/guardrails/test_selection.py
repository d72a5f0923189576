"""Which guardrails run: default_on, attached to the chain, named; switched off unless a team forbids."""

from __future__ import annotations

import pytest

from tollgate.auth.principal import Entity, Principal
from tollgate.canonical import GuardrailChoice
from tollgate.config import GuardrailConfig
from tollgate.errors import GuardrailUnavailable, InvalidRequest, PermissionDenied
from tollgate.guardrails.selection import LOCKED, select

CONFIGURED = [
    GuardrailConfig("always", "id", "1", ("pre_call",), default_on=True),
    GuardrailConfig("key-g", "id", "1", ("pre_call",)),
    GuardrailConfig("team-g", "id", "1", ("post_call",)),
    GuardrailConfig("asked", "id", "1", ("during_call",)),
]


def _principal(key: tuple[str, ...] = (), team: tuple[str, ...] = (), locked: bool = False) -> Principal:
    return Principal(
        kind="key",
        entities=(
            Entity("key", "k", guardrails=key),
            Entity("team", "t", guardrails=team, guardrails_locked=locked),
        ),
    )


def _names(chosen: tuple[GuardrailConfig, ...]) -> list[str]:
    return [g.name for g in chosen]


def test_default_on_attached_and_named_in_config_order() -> None:
    choice = GuardrailChoice(named=("asked",))
    assert _names(select(CONFIGURED, _principal(("key-g",), ("team-g",)), choice)) == [
        "always", "key-g", "team-g", "asked",
    ]  # fmt: skip
    assert _names(select(CONFIGURED, _principal(), GuardrailChoice())) == ["always"]


def test_switched_off_unless_a_team_forbids_it() -> None:
    off = GuardrailChoice(switched_off=("always", "team-g"))
    assert _names(select(CONFIGURED, _principal(team=("team-g",)), off)) == []
    with pytest.raises(PermissionDenied) as info:
        select(CONFIGURED, _principal(team=("team-g",), locked=True), off)
    assert info.value.message == LOCKED
    # A lock on the key (not a team) does not bind: the permission is a team's.
    key_locked = Principal(kind="key", entities=(Entity("key", "k", guardrails_locked=True),))
    assert _names(select(CONFIGURED, key_locked, off)) == []


def test_unknown_names_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="unknown guardrail 'nope'"):
        select(CONFIGURED, _principal(), GuardrailChoice(named=("nope",)))
    with pytest.raises(GuardrailUnavailable, match="'gone' attached to team 't' is not configured"):
        select(CONFIGURED, _principal(team=("gone",)), GuardrailChoice())
