"""Keys and teams carrying guardrails: stored in the entity's metadata, checked against the
configured names, never dropped by other writes, and not removable by the key's own user."""

from __future__ import annotations

import pytest

from tollgate.admin import AdminServices
from tollgate.admin.requests import (
    GenerateKeyRequest,
    NewTeamRequest,
    NewUserRequest,
    UpdateKeyRequest,
    UpdateTeamRequest,
)
from tollgate.auth.keys import KeyAuthenticator
from tollgate.auth.principal import MASTER, Principal
from tollgate.errors import InvalidRequest, PermissionDenied
from tollgate.store.memory import MemoryStore

KNOWN = frozenset({"pii", "topics"})


async def test_team_guardrails_and_lock_reach_the_principal() -> None:
    store = MemoryStore()
    admin = AdminServices.build(store, guardrails=KNOWN)
    body = {
        "team_id": "t",
        "guardrails": ["topics"],
        "metadata": {"guardrails": {"modify_guardrails": False}},
    }
    team = await admin.teams.new_team(MASTER, NewTeamRequest.model_validate(body))
    assert team["guardrails"] == ["topics"] and team["metadata"] == {
        "guardrails": ["topics"],
        "modify_guardrails": False,
    }
    team = await admin.teams.update_team(MASTER, UpdateTeamRequest(team_id="t", metadata={"owner": "sec"}))
    assert team["metadata"] == {"owner": "sec", "guardrails": ["topics"], "modify_guardrails": False}
    key = await admin.keys.generate(MASTER, GenerateKeyRequest(team_id="t", guardrails=["pii"]))
    principal = await KeyAuthenticator("sk-master", store).authenticate(key["key"])
    key_entity, team_entity = principal.entities
    assert (key_entity.guardrails, key_entity.guardrails_locked) == (("pii",), False)
    assert (team_entity.guardrails, team_entity.guardrails_locked) == (("topics",), True)


async def test_unknown_names_are_refused_at_write() -> None:
    admin = AdminServices.build(MemoryStore(), guardrails=KNOWN)
    with pytest.raises(InvalidRequest, match="unknown guardrail 'nope'"):
        await admin.keys.generate(MASTER, GenerateKeyRequest(guardrails=["nope"]))
    with pytest.raises(InvalidRequest, match="unknown guardrail 'nope'"):
        await admin.teams.new_team(MASTER, NewTeamRequest(team_id="t", metadata={"guardrails": ["nope"]}))
    with pytest.raises(InvalidRequest, match=r"metadata\.modify_guardrails"):
        await admin.teams.new_team(MASTER, NewTeamRequest(team_id="t", metadata={"modify_guardrails": "no"}))


async def test_a_keys_own_user_may_add_guardrails_but_not_remove_them() -> None:
    admin = AdminServices.build(MemoryStore(), guardrails=KNOWN)
    user = await admin.users.new_user(MASTER, NewUserRequest(user_id="u", auto_create_key=False))
    assert user["user_id"] == "u"
    key = await admin.keys.generate(MASTER, GenerateKeyRequest(user_id="u", guardrails=["pii"]))
    me = Principal(kind="key", user_id="u", role="internal_user")
    added = await admin.keys.update(me, UpdateKeyRequest(key=key["key"], guardrails=["pii", "topics"]))
    assert added["guardrails"] == ["pii", "topics"]
    with pytest.raises(PermissionDenied, match="only a proxy admin may remove guardrails"):
        await admin.keys.update(me, UpdateKeyRequest(key=key["key"], metadata={"guardrails": []}))
    kept = await admin.keys.update(me, UpdateKeyRequest(key=key["key"], metadata={"note": "x"}))
    assert kept["guardrails"] == ["pii", "topics"]
    removed = await admin.keys.update(MASTER, UpdateKeyRequest(key=key["key"], guardrails=[]))
    assert removed["guardrails"] is None
