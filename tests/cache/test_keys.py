"""Cache keys: the same question in any client format gives one key; anything that changes the
answer gives another; the tenant scope and the namespace are part of it; the version prefixes it."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from tollgate.auth.principal import Principal
from tollgate.cache.keys import VERSION, chat_key, embedding_keys, tenant_scope
from tollgate.canonical import (
    CacheControls,
    ChatRequest,
    EmbeddingRequest,
    Message,
    ResponseFormat,
    RouteHints,
    TextPart,
    Tool,
)
from tollgate.dialects.anthropic import messages as anthropic_messages
from tollgate.dialects.bedrock import converse as bedrock_converse
from tollgate.dialects.openai import chat as openai_chat

BASE = ChatRequest(model="gpt", messages=(Message("user", (TextPart("hello"),)),), max_tokens=50)


def key(
    request: ChatRequest = BASE, group: str = "g", scope: str = "team:a", namespace: str | None = None
) -> str:
    return chat_key(request, group, scope, namespace)


def test_the_same_question_in_every_client_format_has_one_key() -> None:
    openai = openai_chat.parse_request(
        orjson.dumps({"model": "gpt", "messages": [{"role": "system", "content": "be brief"},
                                                   {"role": "user", "content": "hello"}],
                      "max_tokens": 50, "temperature": 1, "stop": ["x"], "user": "end-user-1",
                      "metadata": {"tags": ["t"]}, "cache": {"ttl": 5}})
    )
    anthropic = anthropic_messages.parse_request(
        orjson.dumps({"model": "claude", "system": "be brief", "max_tokens": 50, "temperature": 1.0,
                      "stop_sequences": ["x"], "stream": True,
                      "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]})
    )
    bedrock = bedrock_converse.parse_request(
        orjson.dumps({"system": [{"text": "be brief"}],
                      "messages": [{"role": "user", "content": [{"text": "hello"}]}],
                      "inferenceConfig": {"maxTokens": 50, "temperature": 1, "stopSequences": ["x"]}}),
        model="us.anthropic.claude",
    )
    assert key(openai) == key(anthropic) == key(bedrock)
    assert key(openai).startswith(f"{VERSION}:")


@pytest.mark.parametrize(
    "changed",
    [
        replace(BASE, messages=(Message("user", (TextPart("hello!"),)),)),
        replace(BASE, system=(TextPart("be brief"),)),
        replace(BASE, max_tokens=51),
        replace(BASE, temperature=0.5),
        replace(BASE, top_p=0.9),
        replace(BASE, stop=("x",)),
        replace(BASE, seed=1),
        replace(BASE, tools=(Tool("weather"),)),
        replace(BASE, response_format=ResponseFormat("json_object")),
        replace(BASE, passthrough={"logprobs": True}, passthrough_dialect="openai"),
    ],
)
def test_what_changes_the_answer_changes_the_key(changed: ChatRequest) -> None:
    assert key(changed) != key()


@pytest.mark.parametrize(
    "same",
    [
        replace(BASE, model="alias-of-the-group"),
        replace(BASE, stream=True, include_usage=True),
        replace(BASE, hints=RouteHints(fallbacks=("other",), num_retries=2)),
        replace(BASE, cache=CacheControls(no_store=True, ttl=5)),
        replace(BASE, tags=("a",), metadata={"run": 1}, user="someone"),
        replace(BASE, passthrough_dialect="bedrock"),  # nothing passed through: the format is moot
    ],
)
def test_what_does_not_change_the_answer_keeps_the_key(same: ChatRequest) -> None:
    assert key(same) == key()


def test_group_scope_and_namespace_separate_keys() -> None:
    assert len({key(), key(group="other"), key(scope="team:b"), key(namespace="ns")}) == 4
    assert key(namespace="ns").startswith(f"ns:{VERSION}:")


@pytest.mark.parametrize(
    ("principal", "scope"),
    [
        (Principal(kind="key", key_hash="h", user_id="u", team_id="t"), "team:t"),
        (Principal(kind="key", key_hash="h", user_id="u"), "user:u"),
        (Principal(kind="key", key_hash="h"), "key:h"),
        (Principal(kind="jwt", subject="svc"), "subject:svc"),
        (Principal(kind="master"), "master"),
    ],
)
def test_the_tenant_scope_is_the_team_else_the_user_else_the_key(principal: Principal, scope: str) -> None:
    assert tenant_scope(principal) == scope


def test_embedding_keys_are_per_input_item() -> None:
    request = EmbeddingRequest(model="e", inputs=("a", "b", "a"))
    keys = embedding_keys(request, "g", "team:a")
    assert keys[0] == keys[2] != keys[1]
    assert embedding_keys(EmbeddingRequest(model="x", inputs=("b",)), "g", "team:a") == [keys[1]]
    assert embedding_keys(replace(request, dimensions=8), "g", "team:a")[0] != keys[0]
    assert embedding_keys(replace(request, encoding_format="base64"), "g", "team:a") == keys
    assert embedding_keys(request, "g", "team:b")[0] != keys[0]
