"""Chat history end to end, with the AWS GenAI Gateway's client shapes: the official openai,
anthropic and boto3 (unsigned, gateway key as a bearer token) SDKs against ``tollgate serve``,
on SQLite and on PostgreSQL. The ``transcript`` models answer with the conversation the upstream
received, so each test sees exactly what was sent."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import httpx
import openai
import pytest
from botocore.exceptions import ClientError

from tests.e2e.conversations_env import MAX_TURNS, REPLY, Env, env_fixture  # noqa: F401
from tests.polling import wait_until

ENABLE = {"enable_history": True}


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def _converse_user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"text": text}]}]


def _start(env: Env, text: str, who: str = "alice", model: str = "transcript") -> str:
    answer = env.openai(who).chat.completions.create(model=model, messages=_user(text), extra_body=ENABLE)
    session_id: str = answer.model_extra["session_id"]  # type: ignore[index]
    return session_id


def _continue(env: Env, session_id: str, text: str, who: str = "alice", model: str = "transcript") -> str:
    answer = env.openai(who).chat.completions.create(
        model=model, messages=_user(text), extra_body={"session_id": session_id}
    )
    return answer.choices[0].message.content or ""


def _converse_text(answer: dict[str, Any]) -> str:
    return "".join(block.get("text", "") for block in answer["output"]["message"]["content"])


def test_openai_whole_answers_start_and_continue_a_session(env: Env) -> None:
    client = env.openai()
    raw = client.chat.completions.with_raw_response.create(
        model="transcript", messages=_user("one"), extra_body=ENABLE
    )
    first = raw.parse()
    session_id = first.model_extra["session_id"]  # type: ignore[index]
    assert raw.headers["x-session-id"] == session_id
    assert first.choices[0].message.content == "user: one"
    raw = client.chat.completions.with_raw_response.create(
        model="transcript", messages=_user("two"), extra_body={"session_id": session_id}
    )
    second = raw.parse()
    assert second.model_extra["session_id"] == session_id  # type: ignore[index]
    assert second.choices[0].message.content == "user: one\nassistant: user: one\nuser: two"
    assert env.history(session_id) == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "user: one"},
        {"role": "user", "content": "two"},
        {"role": "assistant", "content": "user: one\nassistant: user: one\nuser: two"},
    ]
    # History is input like any other: the upstream was asked for it, and it is billed as such.
    assert second.usage is not None and first.usage is not None
    assert second.usage.prompt_tokens > first.usage.prompt_tokens
    request_id = raw.headers["x-request-id"]
    logs = wait_until(lambda: env.admin("GET", "/spend/logs", params={"request_id": request_id}).json(),
                      timeout=15, what="the spend row")
    assert logs[0]["prompt_tokens"] == second.usage.prompt_tokens
    plain = client.chat.completions.create(model="transcript", messages=_user("alone"))
    assert "session_id" not in (plain.model_extra or {})


def test_openai_streams_name_the_session_on_the_first_chunk(env: Env) -> None:
    client = env.openai()
    chunks = list(
        client.chat.completions.create(
            model="transcript", messages=_user("one"), stream=True, extra_body=ENABLE
        )
    )
    session_id = getattr(chunks[0], "session_id", None)
    assert session_id
    assert all(getattr(chunk, "session_id", None) is None for chunk in chunks[1:])
    stream = client.chat.completions.create(
        model="transcript", messages=_user("two"), stream=True, extra_body={"session_id": session_id}
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "user: one\nassistant: user: one\nuser: two"
    assert [m["content"] for m in env.history(session_id)] == ["one", "user: one", "two", text]


def test_boto3_converse_and_converse_stream(env: Env) -> None:
    client = env.bedrock()
    first = client.converse(
        modelId="bedrock-transcript", messages=_converse_user("one"), additionalModelRequestFields=ENABLE
    )
    session_id = first["ResponseMetadata"]["HTTPHeaders"]["x-session-id"]
    second = client.converse(
        modelId="bedrock-transcript",
        messages=_converse_user("two"),
        additionalModelRequestFields={"session_id": session_id},
    )
    assert second["ResponseMetadata"]["HTTPHeaders"]["x-session-id"] == session_id
    assert _converse_text(second) == "user: one\nassistant: user: one\nuser: two"
    streamed = client.converse_stream(
        modelId="bedrock-transcript",
        messages=_converse_user("three"),
        additionalModelRequestFields={"session_id": session_id},
    )
    assert streamed["ResponseMetadata"]["HTTPHeaders"]["x-session-id"] == session_id
    events = list(streamed["stream"])
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert text.endswith("user: three")
    fresh = client.converse_stream(
        modelId="bedrock-transcript", messages=_converse_user("new"), additionalModelRequestFields=ENABLE
    )
    list(fresh["stream"])
    assert fresh["ResponseMetadata"]["HTTPHeaders"]["x-session-id"] not in (None, session_id)
    history = env.post("/bedrock/chat-history", {"session_id": session_id}).json()
    assert history["system"] == []
    assert history["messages"][:2] == [
        {"role": "user", "content": [{"text": "one"}]},
        {"role": "assistant", "content": [{"text": "user: one"}]},
    ]
    assert history["messages"][-1] == {"role": "assistant", "content": [{"text": text}]}


def test_anthropic_clients_use_the_body_or_metadata(env: Env) -> None:
    client = env.anthropic()
    first = client.messages.create(
        model="transcript", max_tokens=200, messages=_user("one"), extra_body=ENABLE
    )
    session_id = first.model_extra["session_id"]  # type: ignore[index]
    second = client.messages.create(
        model="transcript",
        max_tokens=200,
        messages=_user("two"),
        metadata={"user_id": "someone", "session_id": session_id},  # type: ignore[typeddict-unknown-key]
    )
    assert second.content[0].text == "user: one\nassistant: user: one\nuser: two"  # type: ignore[union-attr]
    with client.messages.stream(
        model="transcript", max_tokens=200, messages=_user("three"), extra_body={"session_id": session_id}
    ) as stream:
        text = "".join(stream.text_stream)
    assert text.endswith("user: three")
    assert len(env.history(session_id)) == 6


def test_a_session_continues_across_dialects(env: Env) -> None:
    started = env.bedrock().converse(
        modelId="bedrock-transcript",
        messages=_converse_user("via bedrock"),
        additionalModelRequestFields=ENABLE,
    )
    session_id = started["ResponseMetadata"]["HTTPHeaders"]["x-session-id"]
    assert _continue(env, session_id, "via openai") == (
        "user: via bedrock\nassistant: user: via bedrock\nuser: via openai"
    )
    answer = env.anthropic().messages.create(
        model="transcript",
        max_tokens=500,
        messages=_user("via anthropic"),
        extra_body={"session_id": session_id},
    )
    assert answer.content[0].text.splitlines()[-1] == "user: via anthropic"  # type: ignore[union-attr]
    last = env.bedrock().converse(
        modelId="bedrock-transcript",
        messages=_converse_user("back on bedrock"),
        additionalModelRequestFields={"session_id": session_id},
    )
    lines = _converse_text(last).splitlines()
    # Answers quote earlier transcripts, so lines repeat; the first appearances keep the order.
    assert list(dict.fromkeys(line for line in lines if line.startswith("user: via"))) == [
        "user: via bedrock",
        "user: via openai",
        "user: via anthropic",
    ]
    assert lines[-1] == "user: back on bedrock"


def test_history_routes_and_session_ids(env: Env) -> None:
    client = env.openai()
    answer = client.chat.completions.create(
        model="transcript",
        messages=[{"role": "system", "content": "be brief"}, *_user("hi")],
        extra_body=ENABLE,
    )
    session_id = answer.model_extra["session_id"]  # type: ignore[index]
    assert _continue(env, session_id, "again").splitlines()[0] == "system: be brief"  # the system stays
    assert env.history(session_id)[0] == {"role": "system", "content": "be brief"}
    converse = env.post("/bedrock/chat-history", {"session_id": session_id}).json()
    assert converse["system"] == [{"text": "be brief"}]
    assert [m["role"] for m in converse["messages"]] == ["user", "assistant", "user", "assistant"]
    ids = env.post("/session-ids", {}).json()["session_ids"]
    assert session_id in ids
    assert session_id not in env.post("/session-ids", {}, "alice2").json()["session_ids"]  # the calling key's
    assert session_id not in env.post("/session-ids", {}, "bob").json()["session_ids"]
    assert env.history(session_id, "alice2") == env.history(session_id)  # but its user's other keys may read
    missing = env.post("/chat-history", {})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "session_id"


def test_refusals_leak_nothing_and_never_reach_the_upstream(env: Env) -> None:
    session_id = _start(env, "secret-word")
    before = env.upstream_calls().get("transcript", 0)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        _continue(env, session_id, "let me in", who="bob")
    assert "secret-word" not in refused.value.response.text
    request_id = refused.value.response.headers["x-request-id"]
    rows = wait_until(lambda: env.admin("GET", "/spend/logs", params={"request_id": request_id}).json(),
                      timeout=15, what="the refusal's spend row")
    assert (rows[0]["status_code"], rows[0]["spend"]) == (403, 0)  # accounted like every refusal
    with pytest.raises(ClientError) as bedrock_refused:
        env.bedrock("bob").converse(
            modelId="bedrock-transcript",
            messages=_converse_user("let me in"),
            additionalModelRequestFields={"session_id": session_id},
        )
    assert bedrock_refused.value.response["Error"]["Code"] == "AccessDeniedException"
    with pytest.raises(anthropic.PermissionDeniedError):
        env.anthropic("bob").messages.create(
            model="transcript", max_tokens=10, messages=_user("x"), extra_body={"session_id": session_id}
        )
    for path in ("/chat-history", "/bedrock/chat-history"):
        response = env.post(path, {"session_id": session_id}, "bob")
        assert response.status_code == 403
        assert "secret-word" not in response.text
        assert env.post(path, {"session_id": session_id}, None).status_code == 401
        assert env.post(path, {"session_id": "no-such-session"}).status_code == 404
    assert (
        env.post("/bedrock/chat-history", {"session_id": session_id}, "bob").headers["x-amzn-errortype"]
        == "AccessDeniedException"
    )
    with pytest.raises(openai.NotFoundError):
        _continue(env, "no-such-session", "x")
    with pytest.raises(ClientError) as unknown:
        env.bedrock().converse(
            modelId="bedrock-transcript",
            messages=_converse_user("x"),
            additionalModelRequestFields={"session_id": "no-such-session"},
        )
    assert unknown.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert env.upstream_calls().get("transcript", 0) == before
    assert "secret-word" in _continue(env, session_id, "me too", who="alice2")  # the same user's key


def test_failed_requests_store_nothing(env: Env) -> None:
    sessions_before = env.post("/session-ids", {}).json()["session_ids"]
    with pytest.raises(openai.APIStatusError):
        _start(env, "doomed", model="broken")
    assert env.post("/session-ids", {}).json()["session_ids"] == sessions_before
    session_id = _start(env, "kept")
    with pytest.raises(openai.APIStatusError):
        _continue(env, session_id, "lost", model="broken")
    stream = env.openai().chat.completions.create(
        model="cut", messages=_user("cut short"), stream=True, extra_body={"session_id": session_id}
    )
    with pytest.raises(openai.APIError):
        list(stream)
    assert [m["content"] for m in env.history(session_id)] == ["kept", "user: kept"]


def test_concurrent_continuations_are_ordered_by_completion(env: Env) -> None:
    """Each continuation sends the exchanges recorded before it started; exchanges are recorded
    when their answers complete, so a slow one lands after a quick one that overtook it, and
    neither is lost."""
    session_id = _start(env, "zero")
    held_before = env.upstream_calls().get(env.held, 0)
    slow: dict[str, str] = {}
    thread = threading.Thread(
        target=lambda: slow.update(text=_continue(env, session_id, "from A", model="held")), daemon=True
    )
    thread.start()
    wait_until(lambda: env.upstream_calls().get(env.held, 0) > held_before, timeout=15,
               what="request A at the upstream")
    quick = _continue(env, session_id, "from B")
    assert quick == "user: zero\nassistant: user: zero\nuser: from B"
    env.release()
    thread.join(30)
    assert slow["text"] == "user: zero\nassistant: user: zero\nuser: from A"  # its snapshot had no B
    assert [m["content"] for m in env.history(session_id)] == [
        "zero",
        "user: zero",
        "from B",
        quick,
        "from A",
        slow["text"],
    ]
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda i: _continue(env, session_id, f"burst {i}", model="gpt-fake"), range(6)))
    burst = env.history(session_id)[6:]
    assert len(burst) == 12
    for question, answer in zip(burst[::2], burst[1::2], strict=True):
        assert answer["content"] == REPLY + question["content"]
    assert sorted(q["content"] for q in burst[::2]) == [f"burst {i}" for i in range(6)]


def test_history_counts_toward_the_callers_rate_limits(env: Env) -> None:
    """A continuation is admitted on its whole input: the stored turns are estimated with it and
    reserved in the caller's windows while it runs, so the next request finds the window full."""
    session_id = _start(env, "a" * 300, model="gpt-fake")  # by a key without limits
    limited = env.openai("alice_tpm")  # the same user's key, at most TPM_LIMIT tokens a minute
    before = env.upstream_calls().get(env.held_for_limits, 0)
    answered: dict[str, str] = {}

    def continuation() -> None:
        answer = limited.chat.completions.create(
            model="held-limits", messages=_user("x"), max_tokens=1, extra_body={"session_id": session_id}
        )
        answered["text"] = answer.choices[0].message.content or ""

    thread = threading.Thread(target=continuation, daemon=True)
    thread.start()
    wait_until(lambda: env.upstream_calls().get(env.held_for_limits, 0) > before, timeout=15,
               what="the continuation at the upstream")
    # In flight, it holds the estimate of the history and "x" (an estimate of "x" alone would not).
    with pytest.raises(openai.RateLimitError):
        limited.chat.completions.create(model="gpt-fake", messages=_user("y"), max_tokens=1)
    env.release("limits")
    thread.join(30)
    assert answered["text"]  # answered, once released (max_tokens=1: a word)
    with pytest.raises(openai.RateLimitError):  # its usage, history included, fills the window
        limited.chat.completions.create(
            model="gpt-fake", messages=_user("z"), max_tokens=1, extra_body={"session_id": session_id}
        )
    assert len(env.history(session_id)) == 4  # the refused continuation recorded nothing


def test_only_the_newest_turns_go_upstream(env: Env) -> None:
    session_id = _start(env, "m1", model="gpt-fake")
    for text in ("m2", "m3", "m4"):
        _continue(env, session_id, text, model="gpt-fake")
    lines = _continue(env, session_id, "m5").splitlines()
    kept = [f"m{i}" for i in range(5 - MAX_TURNS, 5)]
    assert lines == [line for text in kept for line in (f"user: {text}", f"assistant: {REPLY}{text}")] + [
        "user: m5"
    ]
    assert len(env.history(session_id)) == 10  # the whole conversation is still stored


def test_sessions_past_retention_are_gone(env: Env) -> None:
    session_id = _start(env, "old news")
    env.age_session(session_id, 31)  # chat_history_retention_days defaults to 30
    with pytest.raises(openai.NotFoundError):
        _continue(env, session_id, "still there?")
    assert env.post("/chat-history", {"session_id": session_id}).status_code == 404
    assert session_id not in env.post("/session-ids", {}).json()["session_ids"]


def test_admins_list_read_and_delete_sessions(env: Env) -> None:
    session_id = _start(env, "for the admin")
    listed = env.admin("GET", "/chat-history/session/list", params={"key": env.keys["alice"]}).json()
    assert session_id in [s["session_id"] for s in listed["sessions"]]
    info = env.admin("GET", "/chat-history/session/info", params={"session_id": session_id}).json()
    assert info["messages"][0] == {"role": "user", "content": "for the admin"}
    assert info["exchanges"] == 1
    alice = {"Authorization": f"Bearer {env.keys['alice']}"}
    assert httpx.get(f"{env.url}/chat-history/session/list", headers=alice).status_code == 403
    assert (
        httpx.post(
            f"{env.url}/chat-history/session/delete", json={"session_ids": [session_id]}, headers=alice
        ).status_code
        == 403
    )
    deleted = env.admin("POST", "/chat-history/session/delete", json={"session_ids": [session_id, "nope"]})
    assert deleted.json() == {"deleted": [session_id]}
    with pytest.raises(openai.NotFoundError):
        _continue(env, session_id, "anyone?")
