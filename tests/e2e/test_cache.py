"""The response cache end to end (issue 16): two ``tollgate serve`` replicas caching in real Redis,
driven by the official openai and anthropic SDKs and boto3. Hits in every client format and across
formats, streams stored when they end well and replayed in the client's own format, failed and cut
streams never stored, every per-request cache control, the admin routes, embeddings per input."""

from __future__ import annotations

import httpx
import pytest
import redis

from tests.e2e.cache_clients import FORMATS, ask, embed, question, upstream_calls
from tests.e2e.cache_fixtures import (
    ADMIN,
    REDIS,
    new_key,
)


@pytest.fixture(scope="module")
def base(cache_replicas: tuple[str, str]) -> str:
    return cache_replicas[0]


@pytest.fixture(scope="module")
def key(base: str) -> str:
    return new_key(base)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_repeated_question_is_answered_from_the_cache(base: str, key: str, upstream: str, fmt: str) -> None:
    text = question()
    before = upstream_calls(upstream, "gpt-cache")
    first = ask(base, key, text, fmt=fmt)
    second = ask(base, key, text, fmt=fmt)
    assert first.ok and second.ok, (first, second)
    assert first.cache_key is None
    assert second.cache_key is not None and second.cache_key.startswith("v1:")
    assert second.text == first.text and text in first.text
    assert upstream_calls(upstream, "gpt-cache") == before + 1


def test_every_client_format_hits_the_same_entry(base: str, key: str, upstream: str) -> None:
    text = question()
    before = upstream_calls(upstream, "gpt-cache")
    answers = [ask(base, key, text, fmt=fmt) for fmt in FORMATS]
    assert [a.ok for a in answers] == [True, True, True], answers
    assert answers[0].cache_key is None
    assert answers[1].cache_key == answers[2].cache_key is not None
    assert {a.text for a in answers} == {answers[0].text}
    assert upstream_calls(upstream, "gpt-cache") == before + 1
    # An alias of the model group asks the same question of the same group.
    assert ask(base, key, text, model="gpt-alias").cache_key == answers[1].cache_key


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_stream_is_stored_when_it_ends_and_replayed_as_a_stream(
    base: str, key: str, upstream: str, fmt: str
) -> None:
    text = question()
    before = upstream_calls(upstream, "gpt-cache")
    streamed = ask(base, key, text, fmt=fmt, stream=True)
    replayed = ask(base, key, text, fmt=fmt, stream=True)
    assert streamed.ok and replayed.ok, (streamed, replayed)
    assert streamed.cache_key is None and replayed.cache_key is not None
    assert replayed.text == streamed.text and text in streamed.text
    # The stored stream also answers the same question unstreamed, in another format.
    other = FORMATS[(FORMATS.index(fmt) + 1) % 3]
    assert ask(base, key, text, fmt=other).text == streamed.text
    assert upstream_calls(upstream, "gpt-cache") == before + 1


def test_an_unstreamed_answer_is_replayed_to_a_stream(base: str, key: str) -> None:
    text = question()
    plain = ask(base, key, text, fmt="anthropic")
    for fmt in FORMATS:
        replayed = ask(base, key, text, fmt=fmt, stream=True)
        assert replayed.cache_key is not None and replayed.text == plain.text, (fmt, replayed)


@pytest.mark.parametrize("model", ["gpt-drop", "gpt-fail"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_cut_or_failed_stream_is_never_stored(
    base: str, key: str, upstream: str, model: str, fmt: str
) -> None:
    upstream_model = "stream-drop-after-3" if model == "gpt-drop" else "stream-error-after-2"
    text = question()
    before = upstream_calls(upstream, upstream_model)
    first = ask(base, key, text, fmt=fmt, stream=True, model=model)
    second = ask(base, key, text, fmt=fmt, stream=True, model=model)
    assert not first.ok and not second.ok, (first, second)
    assert upstream_calls(upstream, upstream_model) == before + 2
    # The same question unstreamed is answered (the fake fails streams only) and then stored.
    assert ask(base, key, text, fmt=fmt, model=model).ok
    assert ask(base, key, text, fmt=fmt, model=model).cache_key is not None


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_cache_skips_the_read_and_stores_the_fresh_answer(
    base: str, key: str, upstream: str, fmt: str
) -> None:
    text = question()
    ask(base, key, text, fmt=fmt)
    before = upstream_calls(upstream, "gpt-cache")
    fresh = ask(base, key, text, fmt=fmt, cache={"no-cache": True})
    assert fresh.ok and fresh.cache_key is None
    assert upstream_calls(upstream, "gpt-cache") == before + 1
    assert ask(base, key, text, fmt=fmt).cache_key is not None


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_store_answers_without_storing(base: str, key: str, upstream: str, fmt: str) -> None:
    text = question()
    assert ask(base, key, text, fmt=fmt, cache={"no-store": True}).ok
    before = upstream_calls(upstream, "gpt-cache")
    assert ask(base, key, text, fmt=fmt).cache_key is None
    assert upstream_calls(upstream, "gpt-cache") == before + 1
    # no-store still reads what is stored.
    assert ask(base, key, text, fmt=fmt, cache={"no-store": True}).cache_key is not None


def test_ttl_sets_the_entry_life_in_redis(base: str, key: str, cache_prefix: str) -> None:
    text = question()
    ask(base, key, text, cache={"ttl": 30})
    hit = ask(base, key, text)
    assert hit.cache_key is not None
    client = redis.Redis(*REDIS, socket_timeout=2)
    try:
        remaining = client.pttl(f"{cache_prefix}:cache:{hit.cache_key}")
    finally:
        client.close()
    assert 0 < remaining <= 30_000


def test_s_maxage_refuses_older_entries(base: str, key: str, upstream: str) -> None:
    text = question()
    ask(base, key, text, fmt="anthropic")
    assert ask(base, key, text, fmt="anthropic", cache={"s-maxage": 3600}).cache_key is not None
    before = upstream_calls(upstream, "gpt-cache")
    assert ask(base, key, text, fmt="anthropic", cache={"s-maxage": 0}).cache_key is None
    assert upstream_calls(upstream, "gpt-cache") == before + 1


def test_a_namespace_is_a_separate_key_space(base: str, key: str) -> None:
    text = question()
    ask(base, key, text)
    first = ask(base, key, text, fmt="bedrock", cache={"namespace": "project-x"})
    second = ask(base, key, text, fmt="bedrock", cache={"namespace": "project-x"})
    assert first.cache_key is None
    assert second.cache_key is not None and second.cache_key.startswith("project-x:v1:")


def test_use_cache_false_opts_out(base: str, key: str) -> None:
    text = question()
    ask(base, key, text)
    assert ask(base, key, text, cache={"use-cache": False}).cache_key is None


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_bad_cache_control_is_a_400_in_the_clients_format(base: str, key: str, fmt: str) -> None:
    refused = ask(base, key, question(), fmt=fmt, cache={"ttl": "soon"})
    assert not refused.ok and refused.status == 400
    assert "cache.ttl" in refused.error


def test_cache_delete_and_ping_are_for_admins(base: str, key: str, upstream: str) -> None:
    text = question()
    ask(base, key, text)
    hit = ask(base, key, text)
    assert hit.cache_key is not None
    user = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{base}/cache/ping", headers=user, timeout=5).status_code == 403
    assert httpx.post(f"{base}/cache/delete", json={"keys": [hit.cache_key]}, headers=user).status_code == 403
    ping = httpx.get(f"{base}/cache/ping", headers=ADMIN, timeout=5)
    assert ping.status_code == 200 and ping.json()["cache_type"] == "redis"
    deleted = httpx.post(f"{base}/cache/delete", json={"keys": [hit.cache_key]}, headers=ADMIN, timeout=5)
    assert deleted.status_code == 200 and deleted.json() == {"status": "success", "deleted": 1}
    before = upstream_calls(upstream, "gpt-cache")
    assert ask(base, key, text).cache_key is None
    assert upstream_calls(upstream, "gpt-cache") == before + 1


def test_embeddings_are_cached_per_input(base: str, key: str, upstream: str) -> None:
    a, b, c = question(), question(), question()
    before = upstream_calls(upstream, "text-embedding-cache")
    first = embed(base, key, [a, b])
    assert "x-litellm-cache-key" not in first.headers
    partial = embed(base, key, [b, c])  # b is stored: only c goes upstream
    assert "x-litellm-cache-key" not in partial.headers
    whole = embed(base, key, [c, a])
    assert whole.headers["x-litellm-cache-key"].count(",") == 1
    assert upstream_calls(upstream, "text-embedding-cache") == before + 2
    vectors = {text: item.embedding for r, texts in ((first, [a, b]), (partial, [b, c]), (whole, [c, a]))
               for text, item in zip(texts, r.parse().data, strict=True)}
    fresh = embed(base, key, [a, b, c], cache={"no-cache": True}).parse().data
    assert [vectors[t] for t in (a, b, c)] == [item.embedding for item in fresh]
    assert partial.parse().usage.prompt_tokens < first.parse().usage.prompt_tokens
