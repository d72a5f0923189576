"""Guardrails end to end, continued: streaming, masking, a guardrail service that is down, what is
recorded (spend log, metric), the guardrail routes, and Bedrock's own guardrailConfig."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest_native import bedrock_client
from tests.e2e.guardrails.world import FORMATS, MASTER, REPLY, World, ask, refuse
from tests.polling import wait_until

ADMIN = {"Authorization": f"Bearer {MASTER}"}


# ---- streams ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_stream_refused_before_it_starts_is_a_plain_400(world: World, fmt: str) -> None:
    refusal = refuse(fmt, world, "something forbidden", stream=True)
    assert refusal.status == 400
    assert refusal.error_type in ("invalid_request_error", "ValidationException")


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
def test_stream_post_call_checks_the_whole_answer_before_the_first_byte(world: World, fmt: str) -> None:
    refusal = refuse(fmt, world, "a postword", stream=True, extra={"guardrails": ["post-guard"]})
    assert refusal.status == 400  # buffered: the refusal is still a plain error, not a cut stream
    assert refusal.body["error"]["guardrail"]["mode"] == "post_call"
    row = _spend_row(world, refusal.headers["x-request-id"])  # accounted as the refusal it became
    assert (row["status_code"], row["stream"]) == (400, True) and row["completion_tokens"] > 0
    answer = ask(fmt, world, "all good", stream=True, extra={"guardrails": ["post-guard"]})
    assert answer.text == REPLY + "all good"


@pytest.mark.parametrize("fmt", FORMATS)
def test_stream_passes_with_the_applied_header(world: World, fmt: str) -> None:
    answer = ask(fmt, world, "stream me", stream=True)
    assert answer.text == REPLY + "stream me"
    headers = {k.lower(): v for k, v in answer.headers.items()}
    assert "default-pre" in headers["x-litellm-applied-guardrails"].split(",")


def test_stream_during_call_refusal_is_a_plain_400(world: World) -> None:
    refusal = refuse("anthropic", world, "duringword", stream=True, extra={"guardrails": ["during-guard"]})
    assert refusal.status == 400 and refusal.body["error"]["guardrail"]["mode"] == "during_call"
    assert _spend_row(world, refusal.headers["x-request-id"])["status_code"] == 400


# ---- masking ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
def test_masked_prompt_is_what_goes_upstream(world: World, fmt: str, stream: bool) -> None:
    answer = ask(fmt, world, "write to ada@example.com", stream=stream, extra={"guardrails": ["pii-mask"]})
    assert answer.text == REPLY + "write to {EMAIL}"  # the upstream echoed the masked text


@pytest.mark.parametrize("stream", [False, True])
def test_masking_for_boto3_through_a_key(world: World, stream: bool) -> None:
    key = world.key(guardrails=["pii-mask"], key_alias=f"pii-bedrock-{stream}")
    answer = ask("bedrock", world, "mail bob@example.org", key=key, stream=stream)
    assert answer.text == REPLY + "mail {EMAIL}"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
def test_masked_answer_is_what_comes_back(world: World, fmt: str, stream: bool) -> None:
    answer = ask(fmt, world, "ada@example.com", stream=stream, extra={"guardrails": ["pii-mask-out"]})
    assert answer.text == REPLY + "{EMAIL}"
    checked = [c for c in world.checks() if c["identifier"] == "anonymize-email"][-1]
    assert checked["source"] == "OUTPUT" and checked["texts"] == [REPLY + "ada@example.com"]


# ---- guardrail service down --------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
def test_a_failing_guardrail_fails_closed_with_503(world: World, fmt: str) -> None:
    before = world.upstream_calls()
    refusal = refuse(fmt, world, "hello", extra={"guardrails": ["down"]})
    assert refusal.status == 503
    message = refusal.body["error"]["message"]
    assert "guardrail 'down'" in message and "ServiceUnavailableException" in message
    assert world.upstream_calls() == before


def test_a_failing_guardrail_fails_closed_for_boto3_too(world: World) -> None:
    key = world.key(guardrails=["down"], key_alias="down-bedrock")
    refusal = refuse("bedrock", world, "hello", key=key)
    assert refusal.status == 503 and refusal.error_type == "ServiceUnavailableException"


def test_a_hung_guardrail_times_out_and_fails_closed(world: World) -> None:
    refusal = refuse("openai", world, "hello", extra={"guardrails": ["hung"]})
    assert refusal.status == 503 and "timed out after 0.5s" in refusal.body["error"]["message"]


def test_fail_open_lets_the_request_through_and_records_it(world: World) -> None:
    answer = ask("openai", world, "hello open", extra={"guardrails": ["down-open"]})
    assert answer.text == REPLY + "hello open"
    row = _spend_row(world, answer.headers["x-request-id"])
    run = next(r for r in row["metadata"]["guardrail_information"] if r["guardrail_name"] == "down-open")
    assert (run["guardrail_status"], run["unreachable_fallback"]) == (
        "guardrail_failed_to_respond",
        "fail_open",
    )


# ---- what is recorded -------------------------------------------------------------------------


def _spend_row(world: World, request_id: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        rows = httpx.get(f"{world.url}/spend/logs", params={"request_id": request_id}, headers=ADMIN).json()
        return rows[0] if rows else None

    return wait_until(found, what=f"the spend row of {request_id}")


def test_every_intervention_is_in_the_spend_log_and_the_metric(world: World) -> None:
    refusal = refuse("openai", world, "forbidden again")
    row = _spend_row(world, refusal.headers["x-request-id"])
    assert row["status_code"] == 400 and b"forbidden" not in httpx.Response(200, json=row).content
    run = next(r for r in row["metadata"]["guardrail_information"] if r["guardrail_name"] == "default-pre")
    assert (run["guardrail_mode"], run["guardrail_status"], run["guardrail_action"]) == (
        "pre_call", "guardrail_intervened", "BLOCKED",
    )  # fmt: skip
    masked = ask("openai", world, "ada@example.com", extra={"guardrails": ["pii-mask"]})
    masked_row = _spend_row(world, masked.headers["x-request-id"])
    pii = next(
        r for r in masked_row["metadata"]["guardrail_information"] if r["guardrail_name"] == "pii-mask"
    )
    assert (pii["guardrail_action"], pii["masked_entity_count"], pii["masking_applied"]) == (
        "ANONYMIZED",
        1,
        True,
    )
    metrics = httpx.get(f"{world.url}/metrics", headers=ADMIN).text
    assert (
        'tollgate_guardrail_checks_total{guardrail="default-pre",mode="pre_call",outcome="blocked"}'
        in metrics
    )
    assert (
        'tollgate_guardrail_checks_total{guardrail="pii-mask",mode="pre_call",outcome="anonymized"}'
        in metrics
    )


def test_a_refusal_after_the_answer_still_costs_what_the_upstream_used(world: World) -> None:
    refusal = refuse("openai", world, "a postword", extra={"guardrails": ["post-guard"]})
    row = _spend_row(world, refusal.headers["x-request-id"])
    assert row["status_code"] == 400 and row["completion_tokens"] > 0 and row["spend"] > 0


# ---- /guardrails/list and /guardrails/apply_guardrail ------------------------------------------


def test_guardrails_list_without_credentials(world: World) -> None:
    key = world.key(key_alias="lister")
    listed = httpx.get(f"{world.url}/guardrails/list", headers={"Authorization": f"Bearer {key}"})
    assert listed.status_code == 200
    guards = {g["guardrail_name"]: g for g in listed.json()["guardrails"]}
    assert guards["default-pre"]["litellm_params"]["mode"] == "pre_call"
    assert guards["default-pre"]["litellm_params"]["default_on"] is True
    assert "aws_secret_access_key" not in listed.text and "aws_access_key_id" not in listed.text
    assert httpx.get(f"{world.url}/guardrails/list").status_code == 401


def test_apply_guardrail_without_a_model_call(world: World) -> None:
    before = world.upstream_calls()

    def apply(body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{world.url}/guardrails/apply_guardrail", json=body, headers=ADMIN)

    masked = apply({"guardrail_name": "pii-mask", "text": "reach me at ada@example.com"})
    assert masked.json() == {"response_text": "reach me at {EMAIL}"}
    assert apply({"guardrail_name": "default-pre", "text": "ok"}).json() == {"response_text": "ok"}
    blocked = apply({"guardrail_name": "default-pre", "text": "forbidden"})
    assert blocked.status_code == 400 and blocked.json()["error"]["guardrail"]["action"] == "BLOCKED"
    output = apply({"guardrail_name": "post-guard", "text": "postword", "input_type": "response"})
    assert output.status_code == 400 and world.checks()[-1]["source"] == "OUTPUT"
    assert apply({"guardrail_name": "nope", "text": "x"}).status_code == 400
    assert world.upstream_calls() == before


# ---- Bedrock's own guardrailConfig -------------------------------------------------------------


def test_bedrock_guardrail_config_from_the_request_and_its_trace(world: World) -> None:
    bedrock = bedrock_client(f"{world.url}/bedrock", MASTER)
    config = {"guardrailIdentifier": "block-nativeword", "guardrailVersion": "1", "trace": "enabled"}
    messages = [{"role": "user", "content": [{"text": "a nativeword"}]}]
    answer = bedrock.converse(modelId="nova", messages=messages, guardrailConfig=config)
    assert answer["stopReason"] == "guardrail_intervened"
    trace = answer["trace"]["guardrail"]["inputAssessment"]["block-nativeword"]
    assert trace["wordPolicy"]["customWords"][0]["action"] == "BLOCKED"
    stream = bedrock.converse_stream(modelId="nova", messages=messages, guardrailConfig=config)
    events = list(stream["stream"])
    assert events[-2]["messageStop"]["stopReason"] == "guardrail_intervened"
    assert "block-nativeword" in events[-1]["metadata"]["trace"]["guardrail"]["inputAssessment"]


def test_bedrock_guardrail_config_from_the_deployment(world: World) -> None:
    bedrock = bedrock_client(f"{world.url}/bedrock", MASTER)
    answer = bedrock.converse(
        modelId="nova-guarded", messages=[{"role": "user", "content": [{"text": "nativeword"}]}]
    )
    assert answer["stopReason"] == "guardrail_intervened" and "guardrail" in answer["trace"]
    import openai

    client = openai.OpenAI(base_url=f"{world.url}/v1", api_key=MASTER, max_retries=0)
    reply = client.chat.completions.create(
        model="nova-guarded", messages=[{"role": "user", "content": "nativeword"}]
    )
    assert reply.choices[0].finish_reason == "content_filter"  # no Bedrock trace for an OpenAI client
