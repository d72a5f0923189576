"""Bedrock managed prompts end to end: a prompt ARN as the model, from boto3 (``converse`` and
``converse_stream`` with ``promptVariables``) and from the openai SDK (``messages=[]`` and
``extra_body={"promptVariables": …}``), on SQLite and PostgreSQL. The gateway reads the prompt
from the fake upstream with botocore's ``bedrock-agent`` client (``AWS_ENDPOINT_URL_BEDROCK_AGENT``,
SigV4 checked by the fake) and sends it to the prompt's model through the normal pipeline."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import openai
import pytest
from botocore.exceptions import ClientError

from tests.e2e.conversations_env import ENTRY, PROMPT, REPLY, Env, env_fixture  # noqa: F401
from tests.polling import wait_until
from tollgate.accounting.pricing import load_bundled_table
from tollgate.providers.fake_prompts import CLAUDE, NOVA_LITE

VARIABLES = {"topic": {"text": "fruit"}}
RENDERED = "Write one sentence about fruit."


def _arn(prompt_id: str, version: str | None = None) -> str:
    arn = PROMPT.replace("6LE1KDKISG", prompt_id)
    return f"{arn}:{version}" if version else arn


def _converse_text(answer: dict[str, Any]) -> str:
    return "".join(block.get("text", "") for block in answer["output"]["message"]["content"])


def _stream_text(events: Any) -> str:
    return "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)


def _prompt(
    env: Env, model: str, variables: dict[str, Any] | None = None, who: str = "alice", **extra: Any
) -> Any:
    body = {"promptVariables": VARIABLES if variables is None else variables}
    return env.openai(who).chat.completions.create(model=model, messages=[], extra_body=body, **extra)


def test_boto3_converse_and_converse_stream_with_a_prompt_arn(env: Env) -> None:
    before = env.upstream_calls().get(CLAUDE, 0)
    answer = env.bedrock().converse(modelId=PROMPT, promptVariables=VARIABLES)
    assert _converse_text(answer) == REPLY + RENDERED
    assert env.upstream_calls()[CLAUDE] == before + 1  # the prompt's model, configured as claude-bedrock
    streamed = env.bedrock().converse_stream(modelId=f"{PROMPT}:2", promptVariables=VARIABLES)
    assert _stream_text(streamed["stream"]) == REPLY + RENDERED


def test_openai_clients_name_the_prompt_as_the_model(env: Env) -> None:
    answer = _prompt(env, _arn("6LE1KDKISG", "1"))
    assert answer.choices[0].message.content == REPLY + "Name one fruit."  # version 1's template
    assert answer.model == _arn("6LE1KDKISG", "1")
    chunks = list(_prompt(env, _arn("6LE1KDKISG", "2"), stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == REPLY + RENDERED


def test_chat_prompts_render_their_system_and_messages(env: Env) -> None:
    variables = {"persona": {"text": "pirate"}, "topic": {"text": "ships"}}
    answer = _prompt(env, _arn("TRNSCRIPT0"), variables)
    assert answer.choices[0].message.content == (
        "system: You are a pirate.\nuser: Tell me about ships.\nassistant: Gladly.\nuser: Be brief."
    )


def test_variables_must_match_the_template_before_any_model_call(env: Env) -> None:
    before = env.upstream_calls().get(CLAUDE, 0)
    with pytest.raises(openai.BadRequestError) as wrong:
        _prompt(env, PROMPT, {"colour": {"text": "red"}})
    message = wrong.value.response.json()["error"]["message"]
    assert "missing ['topic']" in message and "not in the template ['colour']" in message
    with pytest.raises(ClientError) as none:
        env.bedrock().converse(modelId=PROMPT)
    assert none.value.response["Error"]["Code"] == "ValidationException"
    assert "['topic']" in none.value.response["Error"]["Message"]
    with pytest.raises(openai.BadRequestError):  # variables for a model that is not a prompt
        env.openai().chat.completions.create(
            model="gpt-fake",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"promptVariables": VARIABLES},
        )
    assert env.upstream_calls().get(CLAUDE, 0) == before


def test_unknown_prompts_and_unconfigured_arns(env: Env) -> None:
    with pytest.raises(openai.NotFoundError) as unknown:
        _prompt(env, _arn("UNKNOWN000"), {})
    assert "UNKNOWN000" in unknown.value.response.json()["error"]["message"]
    with pytest.raises(ClientError) as boto_unknown:
        env.bedrock().converse(modelId=_arn("UNKNOWN000"))
    assert boto_unknown.value.response["Error"]["Code"] == "ResourceNotFoundException"
    elsewhere = "arn:aws:bedrock:eu-west-1:999999999999:prompt/6LE1KDKISG"
    with pytest.raises(openai.BadRequestError, match="Invalid model name"):
        _prompt(env, elsewhere)


def test_key_models_match_the_arn_before_the_prompt_is_read(env: Env) -> None:
    assert _prompt(env, PROMPT, who="limited").choices[0].message.content == REPLY + RENDERED
    assert _prompt(env, f"{PROMPT}:2", who="limited").choices[0].message.content == REPLY + RENDERED
    reads = env.upstream_calls().get("GetPrompt:CHAT0PRMPT", 0)
    with pytest.raises(openai.AuthenticationError, match="not allowed to access model"):
        _prompt(env, _arn("CHAT0PRMPT"), {"persona": {"text": "a"}, "topic": {"text": "b"}}, who="limited")
    assert env.upstream_calls().get("GetPrompt:CHAT0PRMPT", 0) == reads
    with pytest.raises(openai.AuthenticationError):
        env.openai("limited").chat.completions.create(
            model="gpt-fake", messages=[{"role": "user", "content": "x"}]
        )


def _spend_row(env: Env, request_id: str) -> dict[str, Any]:
    rows = wait_until(lambda: env.admin("GET", "/spend/logs", params={"request_id": request_id}).json(),
                      timeout=15, what="the spend row")
    row: dict[str, Any] = rows[0]
    return row


def _cost(model: str, row: dict[str, Any]) -> float:
    price = load_bundled_table().lookup(model)
    assert price is not None and price.input and price.output
    return float(
        Decimal(row["prompt_tokens"]) * price.input + Decimal(row["completion_tokens"]) * price.output
    )


def test_spend_is_the_prompt_models_and_names_the_arn(env: Env) -> None:
    client = env.openai()
    raw = client.chat.completions.with_raw_response.create(
        model=PROMPT, messages=[], extra_body={"promptVariables": VARIABLES}
    )
    row = _spend_row(env, raw.headers["x-request-id"])
    assert (row["requested_model"], row["model_group"], row["model"]) == (
        PROMPT,
        "claude-bedrock",
        f"bedrock/{CLAUDE}",
    )
    assert row["prompt_tokens"] == raw.parse().usage.prompt_tokens  # type: ignore[union-attr]
    assert row["spend"] == _cost(CLAUDE, row) > 0
    # A prompt model no deployment serves runs on the ARN entry's deployment, priced as itself.
    before = env.upstream_calls().get(NOVA_LITE, 0)
    raw = client.chat.completions.with_raw_response.create(
        model=_arn("NOVA0PRMPT"), messages=[], extra_body={"promptVariables": {"text": {"text": "a story"}}}
    )
    assert raw.parse().choices[0].message.content == REPLY + "Summarise: a story"
    assert env.upstream_calls()[NOVA_LITE] == before + 1
    row = _spend_row(env, raw.headers["x-request-id"])
    assert (row["requested_model"], row["model_group"]) == (_arn("NOVA0PRMPT"), f"{ENTRY} -> {NOVA_LITE}")
    assert row["model"] == f"bedrock/{NOVA_LITE}"
    assert row["spend"] == _cost(NOVA_LITE, row) > 0
    assert f"{ENTRY} -> {NOVA_LITE}" not in [m.id for m in client.models.list()]


def test_a_prompt_version_is_read_once(env: Env) -> None:
    reads = env.upstream_calls().get("GetPrompt:PLAIN00000", 0)
    for _ in range(3):
        assert _prompt(env, _arn("PLAIN00000", "1"), {}).choices[0].message.content == REPLY + "Say hello."
    assert env.upstream_calls()["GetPrompt:PLAIN00000"] == reads + 1


def test_a_prompt_can_start_a_chat_history_session(env: Env) -> None:
    started = env.bedrock().converse(
        modelId=PROMPT, promptVariables=VARIABLES, additionalModelRequestFields={"enable_history": True}
    )
    session_id = started["ResponseMetadata"]["HTTPHeaders"]["x-session-id"]
    follow_up = env.bedrock().converse(
        modelId="bedrock-transcript",
        messages=[{"role": "user", "content": [{"text": "shorter, please"}]}],
        additionalModelRequestFields={"session_id": session_id},
    )
    assert _converse_text(follow_up).splitlines() == [
        f"user: {RENDERED}",
        f"assistant: {REPLY}{RENDERED}",
        "user: shorter, please",
    ]
