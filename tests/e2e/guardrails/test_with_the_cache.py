"""Guardrails and the response cache together, end to end: an answer cached for one key is never a
way around another key's guardrails. pre_call runs before the cache is looked up, and a cached
answer still gets the during_call and post_call checks; the blocked request is refused, the
upstream is not asked. One ``tollgate serve`` with the in-process cache (``type: local``), its own
fake Bedrock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.e2e.guardrails.world import MASTER, REPLY, World, ask, guardrails_config
from tests.e2e.servers import fake_upstream, gateway


@pytest.fixture(scope="module")
def cached() -> Iterator[World]:
    with fake_upstream() as upstream:
        config = guardrails_config(upstream, "memory")
        config["litellm_settings"] = {"cache": True, "cache_params": {"type": "local"}}
        with gateway(config) as url:
            yield World(url, upstream)


def _keys(world: World, guard: str) -> tuple[str, str]:
    """Two keys of one user (so they share cached answers): one plain, one carrying ``guard``."""
    user = world.admin("/user/new", {"auto_create_key": False})["user_id"]
    return world.key(user_id=user), world.key(user_id=user, guardrails=[guard])


def _refused(world: World, text: str, key: str, **kwargs: Any) -> openai.APIStatusError:
    client = openai.OpenAI(base_url=f"{world.url}/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(
            model="gpt", messages=[{"role": "user", "content": text}], **kwargs
        )
    return refused.value


@pytest.mark.parametrize(
    ("guard", "text"),
    [
        ("key-guard", "a keyword to block"),  # pre_call: before the lookup
        ("during-guard", "a duringword to block"),  # during_call: on the hit's prompt
        ("post-guard", "a postword to block"),  # post_call: on the hit's answer
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_a_cached_answer_does_not_pass_another_keys_guardrails(
    cached: World, guard: str, text: str, stream: bool
) -> None:
    plain, guarded = _keys(cached, guard)
    text = f"{text} ({'stream' if stream else 'whole'})"
    first = ask("openai", cached, text, key=plain, stream=stream)
    assert first.text == REPLY + text
    again = ask("openai", cached, text, key=plain, stream=stream)
    assert again.text == first.text and "x-litellm-cache-key" in again.headers  # a hit
    before = cached.upstream_calls()
    refusal = _refused(cached, text, guarded, stream=stream)
    assert refusal.status_code == 400 and guard in refusal.message
    assert cached.upstream_calls() == before


def test_the_master_key_is_answered_from_the_cache(cached: World) -> None:
    text = "nothing to block here"
    ask("openai", cached, text, key=MASTER)
    assert "x-litellm-cache-key" in ask("openai", cached, text, key=MASTER).headers
