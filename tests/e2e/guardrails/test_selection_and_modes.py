"""Guardrails end to end (issue 16): ``tollgate serve`` with LiteLLM's ``guardrails:`` config, a
fake Bedrock serving ApplyGuardrail (SigV4 verified), and the official OpenAI, Anthropic and boto3
clients: every mode, which guardrails run, each client's refusal shape, streaming, masking, and a
guardrail service that is down. The fake model echoes the last user text, so what the upstream
received shows in the answer."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.guardrails.world import FORMATS, REPLY, World, ask, refuse

APPLIED = "x-litellm-applied-guardrails"


def _applied(headers: dict[str, str]) -> set[str]:
    lowered = {k.lower(): v for k, v in headers.items()}
    return set(lowered[APPLIED].split(","))


# ---- default_on, pre_call: each client's refusal ---------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_default_on_pre_call_refuses_in_the_callers_format_before_any_upstream_call(
    world: World, fmt: str
) -> None:
    before = world.upstream_calls()
    refusal = refuse(fmt, world, "tell me something forbidden")
    assert refusal.status == 400
    assert b"forbidden" not in refusal.raw  # the assessment is there, the blocked text never
    if fmt == "openai":
        error = refusal.body["error"]
        assert (refusal.error_type, error["code"]) == ("invalid_request_error", "content_policy_violation")
    elif fmt == "anthropic":
        assert refusal.body["type"] == "error"
        error = refusal.body["error"]
        assert refusal.error_type == "invalid_request_error"
    else:
        error = refusal.body
        assert refusal.error_type == "ValidationException"
        assert refusal.headers["x-amzn-errortype"] == "ValidationException"
    assert "guardrail 'default-pre'" in error["message"] and "pre_call" in error["message"]
    assessment = error["guardrail"]
    assert (assessment["name"], assessment["mode"], assessment["action"]) == (
        "default-pre",
        "pre_call",
        "BLOCKED",
    )
    assert assessment["assessments"] == [
        {"wordPolicy": {"customWords": [{"action": "BLOCKED", "detected": True}], "managedWordLists": []}}
    ]
    assert "default-pre" in refusal.headers[APPLIED].split(",")
    assert world.upstream_calls() == before


def test_only_admins_see_the_assessment_of_a_refusal(world: World) -> None:
    refusal = refuse("openai", world, "tell me something forbidden", key=world.key())
    assert refusal.status == 400
    guardrail = refusal.body["error"]["guardrail"]
    assert guardrail == {"name": "default-pre", "mode": "pre_call", "action": "BLOCKED"}
    assert b"wordPolicy" not in refusal.raw and b"forbidden" not in refusal.raw


@pytest.mark.parametrize("fmt", FORMATS)
def test_allowed_request_names_the_guardrails_that_ran(world: World, fmt: str) -> None:
    answer = ask(fmt, world, "hello there")
    assert answer.text == REPLY + "hello there"
    # default-pre and the README's default_on during_call guardrail, nothing else.
    assert _applied(answer.headers) == {"default-pre", "bedrock-pre-guard"}


def test_prompt_checked_is_every_user_and_system_text_history_included(world: World) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{world.url}/v1", api_key="sk-guardrails-master", max_retries=0)
    messages: Any = [
        {"role": "system", "content": "be kind"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
    ]
    client.chat.completions.create(model="gpt", messages=messages)
    pre = [c for c in world.checks() if c["identifier"] == "block-forbidden"][-1]
    assert pre["texts"] == ["be kind", "first question", "second question"]
    assert (pre["source"], pre["version"], pre["signed"]) == ("INPUT", "1", True)
    # Forbidden text earlier in the conversation is still refused.
    messages[1]["content"] = "something forbidden"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt", messages=messages)


# ---- which guardrails run: named, switched off, key, team ---------------------------------------


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
def test_named_guardrail_runs_only_when_the_request_names_it(world: World, fmt: str) -> None:
    assert ask(fmt, world, "a postword here").text == REPLY + "a postword here"
    refusal = refuse(fmt, world, "a postword here", extra={"guardrails": ["post-guard"]})
    error = refusal.body["error"]
    assert refusal.status == 400 and error["guardrail"]["mode"] == "post_call"
    assert "blocked the response" in error["message"]
    post = [c for c in world.checks() if c["identifier"] == "block-postword"][-1]
    assert post["source"] == "OUTPUT" and post["texts"] == [REPLY + "a postword here"]


def test_unknown_guardrail_name_is_a_400(world: World) -> None:
    refusal = refuse("openai", world, "hi", extra={"guardrails": ["no-such-guard"]})
    assert refusal.status == 400 and refusal.body["error"]["param"] == "guardrails"
    assert "no-such-guard" in refusal.body["error"]["message"]


def test_request_may_switch_a_guardrail_off(world: World) -> None:
    off = {"metadata": {"guardrails": {"default-pre": False}}}
    answer = ask("openai", world, "forbidden fruit", extra=off)
    assert answer.text == REPLY + "forbidden fruit"
    assert "default-pre" not in _applied(answer.headers)


@pytest.mark.parametrize("fmt", FORMATS)
def test_guardrail_attached_to_a_key(world: World, fmt: str) -> None:
    guarded = world.key(guardrails=["key-guard"], key_alias=f"guarded-{fmt}")
    plain = world.key(key_alias=f"plain-{fmt}")
    assert refuse(fmt, world, "the keyword", key=guarded).status == 400
    assert ask(fmt, world, "the keyword", key=plain).text == REPLY + "the keyword"
    assert "key-guard" in _applied(ask(fmt, world, "fine", key=guarded).headers)


def test_key_with_an_unknown_guardrail_is_refused_at_write(world: World) -> None:
    import httpx

    answer = httpx.post(f"{world.url}/key/generate", json={"guardrails": ["nope"]},
                        headers={"Authorization": "Bearer sk-guardrails-master"})  # fmt: skip
    assert answer.status_code == 400 and "nope" in answer.json()["error"]["message"]


def test_team_guardrail_and_a_team_that_forbids_switching_off(world: World) -> None:
    world.admin("/team/new", {"team_id": "locked", "guardrails": ["team-guard"],
                              "metadata": {"guardrails": {"modify_guardrails": False}}})  # fmt: skip
    world.admin("/team/new", {"team_id": "open"})
    locked, open_key = world.key(team_id="locked"), world.key(team_id="open")
    assert refuse("anthropic", world, "a teamword", key=locked).status == 400
    assert ask("anthropic", world, "a teamword", key=open_key).text == REPLY + "a teamword"
    off = {"metadata": {"guardrails": {"default-pre": False}}}
    refusal = refuse("openai", world, "hi", key=locked, extra=off)
    assert refusal.status == 403
    assert refusal.body["error"]["message"] == "Your team does not have permission to modify guardrails."
    assert ask("openai", world, "forbidden", key=open_key, extra=off).text == REPLY + "forbidden"
    team = world.admin("/team/update", {"team_id": "locked", "metadata": {"note": "kept"}})
    assert team["guardrails"] == ["team-guard"] and team["metadata"]["modify_guardrails"] is False


# ---- modes: during_call, post_call, both ------------------------------------------------------


def test_during_call_withholds_the_answer_it_refuses(world: World) -> None:
    before = world.upstream_calls()
    refusal = refuse("openai", world, "a duringword", extra={"guardrails": ["during-guard"]})
    assert refusal.status == 400 and refusal.body["error"]["guardrail"]["mode"] == "during_call"
    assert world.upstream_calls() == before + 1  # checked alongside the upstream call, not before it
    assert ask("openai", world, "fine", extra={"guardrails": ["during-guard"]}).text == REPLY + "fine"


def test_a_guardrail_with_a_list_of_modes_runs_in_each(world: World) -> None:
    refusal = refuse("openai", world, "bothword in the prompt", extra={"guardrails": ["both"]})
    assert refusal.body["error"]["guardrail"]["mode"] == "pre_call"
    answer = ask("openai", world, "harmless", extra={"guardrails": ["both"]})
    sources = [c["source"] for c in world.checks() if c["identifier"] == "block-bothword"][-2:]
    assert sources == ["INPUT", "OUTPUT"] and "both" in _applied(answer.headers)


def test_a_guardrail_without_api_base_uses_the_aws_endpoint_override(world: World) -> None:
    before = len(world.checks())
    refusal = refuse("openai", world, "the envword", extra={"guardrails": ["env-endpoint"]})
    assert refusal.status == 400 and "env-endpoint" in refusal.body["error"]["message"]
    assert any("block-envword" in str(c) for c in world.checks()[before:])
