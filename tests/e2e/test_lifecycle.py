"""The request lifecycle end to end (issue 13, and issue 12's body-size and refusal items):
official SDKs against a real ``tollgate serve`` on PostgreSQL with Redis counters, in front of
the fake upstream (fixtures: lifecycle_fixtures.py).

Nothing bypassed (passthrough and count_tokens are admitted), nothing lost (a dropped stream, a
refusal, a bad metadata value: each leaves its spend-log row and metric line), honest answers
(a cut stream ends in an error, failures report their attempts, a missing AWS credential is the
operator's 500), and limits (body size in every client format, request timeouts and retries
that may only lower the operator's, integers and nesting at parse time, enforced params).
"""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest_native import bedrock_client
from tests.e2e.lifecycle_fixtures import (
    ASK,
    MASTER,
    claude,
    new_key,
    oai,
    rows,
)
from tests.e2e.routing_fixtures import Gateway, fake_calls
from tests.polling import wait_until

# ---------------------------------------------------------------------------------------------
# 13.4 passthrough is admitted
# ---------------------------------------------------------------------------------------------


def test_passthrough_and_count_tokens_need_model_access_and_budget(lc_gw: Gateway, lc_fake: str) -> None:
    only_chat = new_key(lc_gw, models=["chat"])
    spent = new_key(lc_gw, max_budget=0)
    before = fake_calls(lc_fake)
    with pytest.raises(ClientError) as denied:
        bedrock_client(f"{lc_gw.url}/bedrock", only_chat).invoke_model(
            modelId="titan", body=json.dumps({"inputText": "hello"})
        )
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    with pytest.raises(ClientError) as broke:
        bedrock_client(f"{lc_gw.url}/bedrock", spent).invoke_model(
            modelId="titan", body=json.dumps({"inputText": "hello"})
        )
    assert "Budget has been exceeded" in str(broke.value)
    with pytest.raises(anthropic.AuthenticationError):
        claude(lc_gw, only_chat).messages.count_tokens(model="claude-native", messages=ASK)  # type: ignore[arg-type]
    streamed = httpx.post(
        f"{lc_gw.url}/bedrock/model/titan/invoke-with-response-stream", content=b'{"inputText": "x"}',
        headers={"Authorization": f"Bearer {spent}"}, timeout=10,
    )
    assert streamed.status_code == 400
    # Anthropic's native passthrough: the same refusals, in Anthropic's error format.
    native = f"{lc_gw.url}/anthropic/v1/messages"
    native_body = {"model": "claude-native", "max_tokens": 16, "messages": ASK}
    for key, status in ((only_chat, 401), (spent, 400)):
        refused = httpx.post(native, json=native_body, headers={"x-api-key": key}, timeout=10)
        assert (refused.status_code, refused.json()["type"]) == (status, "error"), refused.text
    assert fake_calls(lc_fake) == before  # nothing reached any upstream
    # An admitted call is metered: its row has the tokens the upstream reported.
    answer = bedrock_client(f"{lc_gw.url}/bedrock", MASTER).invoke_model(
        modelId="titan", body=json.dumps({"inputText": "hello world"})
    )
    request_id = answer["ResponseMetadata"]["HTTPHeaders"]["x-request-id"]
    [row] = rows(lc_gw, request_id=request_id)
    assert (row["status_code"], row["prompt_tokens"]) == (200, 2)


# ---------------------------------------------------------------------------------------------
# 13.6 a request may lower the operator's timeout and retries, never raise them
# ---------------------------------------------------------------------------------------------


def test_a_request_cannot_raise_the_timeout(lc_gw: Gateway) -> None:
    with pytest.raises(openai.APIStatusError) as info:  # the deployment allows 1 s; the upstream takes 3
        oai(lc_gw).chat.completions.create(model="slowjson", messages=ASK, extra_body={"timeout": 8})  # type: ignore[arg-type]
    assert info.value.status_code == 408


def test_a_request_cannot_raise_num_retries(lc_gw: Gateway, lc_fake: str) -> None:
    before = fake_calls(lc_fake).get("flaky-1000-lc", 0)
    with pytest.raises(openai.APIStatusError) as raised:
        oai(lc_gw).chat.completions.create(model="flaky", messages=ASK, extra_body={"num_retries": 5})  # type: ignore[arg-type]
    assert fake_calls(lc_fake)["flaky-1000-lc"] - before == 3  # the operator's num_retries: 2
    with pytest.raises(openai.APIStatusError) as lowered:
        oai(lc_gw).chat.completions.create(model="flaky", messages=ASK, extra_body={"num_retries": 0})  # type: ignore[arg-type]
    assert fake_calls(lc_fake)["flaky-1000-lc"] - before == 4
    # 17: each failed request's row says how many attempts it made.
    for error, attempts in ((raised, 3), (lowered, 1)):
        [row] = rows(lc_gw, request_id=error.value.response.headers["x-request-id"])
        assert (row["status_code"], row["metadata"]["attempts"]) == (503, attempts)


# ---------------------------------------------------------------------------------------------
# 13.7 a stream the client drops is accounted, with Redis counters
# ---------------------------------------------------------------------------------------------


def test_a_dropped_stream_leaves_a_row_and_frees_its_slot(lc_gw: Gateway) -> None:
    key = new_key(lc_gw, max_parallel_requests=1, tpm_limit=100_000)
    auth = {"Authorization": f"Bearer {key}"}
    body = {"model": "slowstream", "messages": ASK, "stream": True}
    url = f"{lc_gw.url}/v1/chat/completions"
    with httpx.stream("POST", url, json=body, headers=auth, timeout=30) as answer:
        assert answer.status_code == 200
        request_id = answer.headers["x-request-id"]
        next(answer.iter_raw())  # the first event arrived; the client goes away mid-stream
    [row] = rows(lc_gw, request_id=request_id)
    assert (row["status_code"], row["metadata"]["error_class"]) == (499, "ClientDisconnected")
    def slot_back() -> httpx.Response | None:  # settlement may finish just after the row
        again = httpx.post(f"{lc_gw.url}/v1/chat/completions", json={"model": "chat", "messages": ASK},
                           headers=auth, timeout=30)
        return again if again.status_code == 200 else None

    wait_until(slot_back, timeout=10, interval=0.1, what="the parallel slot given back")


# ---------------------------------------------------------------------------------------------
# 13.11 / 13.16 bad values are 400s at parse time; accepted ones are always written
# ---------------------------------------------------------------------------------------------


def test_deep_metadata_is_refused_before_the_upstream(lc_gw: Gateway, lc_fake: str) -> None:
    before = fake_calls(lc_fake).get("meta-probe", 0)
    deep = json.loads('{"a":' * 300 + "1" + "}" * 300)
    with pytest.raises(openai.BadRequestError, match="nested"):
        oai(lc_gw).chat.completions.create(model="meta", messages=ASK, metadata=deep)  # type: ignore[arg-type]
    assert fake_calls(lc_fake).get("meta-probe", 0) == before


def test_nul_characters_never_cost_a_row(lc_gw: Gateway) -> None:
    # PostgreSQL text refuses NUL: one such value in a batch would lose the whole batch.
    key = new_key(lc_gw)
    with pytest.raises(openai.BadRequestError) as unknown:
        oai(lc_gw, key).chat.completions.create(model="chat\u0000", messages=ASK)  # type: ignore[arg-type]
    answer = oai(lc_gw, key).chat.completions.with_raw_response.create(
        model="chat", messages=ASK, extra_body={"metadata": {"note\u0000": "a\u0000b"}, "tags": ["t\u0000"]}  # type: ignore[arg-type]
    )
    assert answer.status_code == 200
    [refused] = rows(lc_gw, request_id=unknown.value.response.headers["x-request-id"])
    assert (refused["status_code"], refused["requested_model"]) == (400, "chat\ufffd")
    [row] = rows(lc_gw, request_id=answer.headers["x-request-id"])
    assert row["metadata"]["note\ufffd"] == "a\ufffdb"
    assert row["request_tags"] == ["t\ufffd"]


def test_bad_numbers_are_400_not_500(lc_gw: Gateway, lc_fake: str) -> None:
    key = new_key(lc_gw, tpm_limit=150)
    converse = {"messages": [{"role": "user", "content": [{"text": "hi"}]}],
                "inferenceConfig": {"maxTokens": -100_000_000}}
    before = fake_calls(lc_fake).get("amazon.nova-micro-v1:0", 0)
    for _ in range(3):
        negative = httpx.post(f"{lc_gw.url}/bedrock/model/nova/converse", json=converse,
                              headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert negative.status_code == 400 and negative.headers["x-amzn-errortype"] == "ValidationException"
    assert fake_calls(lc_fake).get("amazon.nova-micro-v1:0", 0) == before
    for extra in ({"max_tokens": 2**64 - 1}, {"seed": 2**64}, {"max_tokens": 0}):
        with pytest.raises(openai.BadRequestError):
            oai(lc_gw, key).chat.completions.create(model="chat", messages=ASK, extra_body=extra)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# 13.12 a stream the upstream cuts short ends in an error
# ---------------------------------------------------------------------------------------------


def test_a_cut_stream_is_an_error_for_openai_and_anthropic_clients(lc_gw: Gateway) -> None:
    finishes: list[str | None] = []
    with pytest.raises(openai.APIError, match="ended before its end"):
        for chunk in oai(lc_gw).chat.completions.create(model="cut", messages=ASK, stream=True):  # type: ignore[arg-type]
            finishes.extend(choice.finish_reason for choice in chunk.choices)
    assert finishes and set(finishes) == {None}  # never "stop"
    stops: list[str | None] = []
    with (
        pytest.raises(anthropic.APIStatusError, match="ended before its end"),
        claude(lc_gw).messages.stream(model="cut", max_tokens=64, messages=ASK) as stream,  # type: ignore[arg-type]
    ):
        for event in stream:
            if event.type == "message_delta":
                stops.append(event.delta.stop_reason)
    assert stops == []
    def both_cut() -> list[dict[str, object]] | None:
        cut = [r for r in rows(lc_gw) if r["model_group"] == "cut"]
        return cut if len(cut) >= 2 else None

    cut = wait_until(both_cut, timeout=10, what="both cut rows")
    assert [(r["status_code"], r["metadata"]["error_class"]) for r in cut] == [(502, "StreamTruncated")] * 2



def test_a_cut_passthrough_stream_ends_in_an_error_and_its_row_says_so(lc_gw: Gateway) -> None:
    """Passthrough relays the upstream's bytes; a stream without its end marker ends with an
    error in the route's own framing (Anthropic SSE, Bedrock event stream)."""
    auth = {"Authorization": f"Bearer {MASTER}", "anthropic-version": "2023-06-01"}
    body = {"model": "claude-cut", "max_tokens": 16, "stream": True, "messages": ASK}
    with httpx.stream("POST", f"{lc_gw.url}/anthropic/v1/messages", json=body, headers=auth,
                      timeout=30) as answer:
        assert answer.status_code == 200
        native_id = answer.headers["x-request-id"]
        text = b"".join(answer.iter_raw()).decode()
    assert "message_stop" not in text and text.rstrip().endswith("}")
    assert "event: error" in text and "ended before its end" in text
    invoke = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 16, "messages": ASK}
    with httpx.stream("POST", f"{lc_gw.url}/bedrock/model/claude-cut-bedrock/invoke-with-response-stream",
                      json=invoke, headers={"Authorization": f"Bearer {MASTER}"}, timeout=30) as answer:
        assert answer.status_code == 200
        bedrock_id = answer.headers["x-request-id"]
        raw = b"".join(answer.iter_raw())
    assert b"invocationMetrics" not in raw and b":message-type\x07\x00\texception" in raw
    for request_id in (native_id, bedrock_id):
        [row] = rows(lc_gw, request_id=request_id)
        assert (row["status_code"], row["metadata"]["error_class"]) == (502, "StreamTruncated")


# ---------------------------------------------------------------------------------------------
# 13.15 / 12 the body size limit, in every client format
# ---------------------------------------------------------------------------------------------

BIG = "x" * (1024 * 1024 + 1)  # max_request_size_mb: 1


def test_body_size_limit_in_each_client_format(lc_gw: Gateway) -> None:
    with pytest.raises(openai.APIStatusError) as too_big:
        oai(lc_gw).chat.completions.create(model="chat", messages=[{"role": "user", "content": BIG}])
    assert too_big.value.status_code == 413
    assert "max_request_size_mb" in too_big.value.message
    with pytest.raises(anthropic.APIStatusError) as anthropic_big:
        claude(lc_gw).messages.create(model="chat", max_tokens=5, messages=[{"role": "user", "content": BIG}])
    assert anthropic_big.value.status_code == 413
    assert anthropic_big.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]
    with pytest.raises(ClientError) as bedrock_big:
        bedrock_client(f"{lc_gw.url}/bedrock", MASTER).converse(
            modelId="nova", messages=[{"role": "user", "content": [{"text": BIG}]}]
        )
    assert bedrock_big.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert bedrock_big.value.response["Error"]["Code"] == "ValidationException"
    # Without a content-length (chunked), reading stops at the limit.
    pieces = [b'{"model": "chat", "messages": "', BIG.encode(), b'"}']
    chunked = httpx.post(
        f"{lc_gw.url}/v1/chat/completions", content=iter(pieces),
        headers={"Authorization": f"Bearer {MASTER}"}, timeout=30,
    )
    assert chunked.status_code == 413
    # Admin and passthrough routes too, in their own formats.
    admin_big = httpx.post(f"{lc_gw.url}/key/generate", json={"metadata": {"x": BIG}},
                           headers={"Authorization": f"Bearer {MASTER}"}, timeout=30)
    assert admin_big.status_code == 413 and "error" in admin_big.json()
    invoke_big = httpx.post(f"{lc_gw.url}/bedrock/model/titan/invoke", json={"inputText": BIG},
                            headers={"Authorization": f"Bearer {MASTER}"}, timeout=30)
    assert invoke_big.status_code == 413 and invoke_big.headers["x-amzn-errortype"] == "ValidationException"
    # The refusals are accounted like any other request.
    [row] = rows(lc_gw, request_id=too_big.value.response.headers["x-request-id"])
    assert row["status_code"] == 413


# ---------------------------------------------------------------------------------------------
# 13.17 / 12 refusals are rows and metric lines
# ---------------------------------------------------------------------------------------------


def test_refusals_are_spend_rows_and_metric_lines(lc_gw: Gateway) -> None:
    limited = new_key(lc_gw, rpm_limit=1)
    spent = new_key(lc_gw, max_budget=0)
    answers: dict[str, int] = {}
    for key in (limited, limited, spent, "sk-not-a-key"):
        answer = httpx.post(f"{lc_gw.url}/v1/chat/completions", json={"model": "chat", "messages": ASK},
                            headers={"Authorization": f"Bearer {key}"}, timeout=10)
        answers[answer.headers["x-request-id"]] = answer.status_code
    assert sorted(answers.values()) == [200, 400, 401, 429]
    for request_id, status in answers.items():
        [row] = rows(lc_gw, request_id=request_id)
        assert row["status_code"] == status
    lines = {line["status_code"]: line for line in lc_gw.metric_lines()}
    for status in (401, 429, 400):
        assert "error" in lines[status], lines[status]


# ---------------------------------------------------------------------------------------------
# 12: one duration grammar — "1 d" (with a space) is a day wherever a duration is taken
# ---------------------------------------------------------------------------------------------


def test_spaced_durations_are_accepted_and_the_key_works(lc_gw: Gateway) -> None:
    key = new_key(lc_gw, duration="1 d", budget_duration="1 w", max_budget=5)
    answer = oai(lc_gw, key).chat.completions.create(model="chat", messages=ASK)  # type: ignore[arg-type]
    assert answer.choices[0].message.content
    info = httpx.get(f"{lc_gw.url}/key/info", params={"key": key},
                     headers={"Authorization": f"Bearer {MASTER}"}, timeout=10).json()["info"]
    assert info["expires"] is not None and info["budget_reset_at"] is not None
    refused = httpx.post(f"{lc_gw.url}/key/generate", json={"duration": "1 fortnight"},
                         headers={"Authorization": f"Bearer {MASTER}"}, timeout=10)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "duration"
