"""Managed prompts, the pure part: ARNs, GetPrompt answers, placeholders and rendering."""

from __future__ import annotations

from typing import Any

import pytest

from tollgate.conversations.prompts import (
    check_variables,
    converse_body,
    looks_like_prompt,
    managed_prompt,
    parse_prompt_arn,
    placeholders,
)
from tollgate.errors import GatewayError, InvalidRequest
from tollgate.providers import fake_prompts

ARN = "arn:aws:bedrock:us-west-2:123456789012:prompt/6LE1KDKISG"


@pytest.mark.parametrize(
    ("text", "version", "region"),
    [
        (ARN, None, "us-west-2"),
        (f"{ARN}:2", "2", "us-west-2"),
        (f"{ARN}:DRAFT", None, "us-west-2"),
        ("arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:prompt/ABCDEFGHIJ:17", "17", "us-gov-west-1"),
    ],
)
def test_prompt_arns(text: str, version: str | None, region: str) -> None:
    arn = parse_prompt_arn(text)
    assert looks_like_prompt(text)
    assert (arn.version, arn.region, arn.prompt_id[:3]) == (version, region, text.split("/")[1][:3])
    assert arn.unversioned == text.rsplit(":", 1)[0] if version else arn.unversioned == text


@pytest.mark.parametrize(
    "text",
    [
        "arn:aws:bedrock:us-west-2:123456789012:prompt/SHORT",
        "arn:aws:bedrock:us-west-2:1234:prompt/6LE1KDKISG",
        f"{ARN}:v2",
        "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude",
    ],
)
def test_malformed_prompt_arns_are_refused_naming_the_shape(text: str) -> None:
    with pytest.raises(InvalidRequest, match="prompt/ID"):
        parse_prompt_arn(text)


def test_a_text_prompt_renders_to_one_user_message_with_its_inference_config() -> None:
    prompt = managed_prompt(fake_prompts.get_prompt("6LE1KDKISG", "2", "us-west-2"))
    assert (prompt.template_type, prompt.model_id, prompt.version) == ("TEXT", fake_prompts.CLAUDE, "2")
    assert placeholders(prompt) == {"topic"}
    body = converse_body(prompt, {"topic": "fruit"})
    assert body == {
        "messages": [{"role": "user", "content": [{"text": "Write one sentence about fruit."}]}],
        "inferenceConfig": {"temperature": 0.5, "maxTokens": 300},
    }


def test_versions_are_read_as_asked() -> None:
    first = managed_prompt(fake_prompts.get_prompt("6LE1KDKISG", "1", "us-west-2"))
    assert converse_body(first, {"topic": "fruit"})["messages"][0]["content"][0]["text"] == "Name one fruit."


def test_a_chat_prompt_renders_its_system_and_messages() -> None:
    prompt = managed_prompt(fake_prompts.get_prompt("CHAT0PRMPT", None, "us-west-2"))
    assert placeholders(prompt) == {"persona", "topic"}
    body = converse_body(prompt, {"persona": "pirate", "topic": "ships"})
    assert body["system"] == [{"text": "You are a pirate."}]
    assert body["messages"] == [{"role": "user", "content": [{"text": "Tell me about ships."}]}]


def test_values_are_filled_in_once_not_expanded_again() -> None:
    prompt = managed_prompt(fake_prompts.get_prompt("CHAT0PRMPT", None, "us-west-2"))
    body = converse_body(prompt, {"persona": "{{topic}}", "topic": "x"})
    assert body["system"] == [{"text": "You are a {{topic}}."}]


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({}, "missing ['topic']"),
        ({"topic": "a", "colour": "b"}, "not in the template ['colour']"),
        ({"colour": "b"}, "missing ['topic']; not in the template ['colour']"),
    ],
)
def test_variables_must_match_the_placeholders(variables: dict[str, str], expected: str) -> None:
    prompt = managed_prompt(fake_prompts.get_prompt("6LE1KDKISG", None, "us-west-2"))
    with pytest.raises(InvalidRequest) as info:
        check_variables(prompt, variables)
    assert expected in info.value.message
    assert "placeholders are ['topic']" in info.value.message
    assert info.value.param == "promptVariables"


def test_a_prompt_without_placeholders_takes_no_variables() -> None:
    prompt = managed_prompt(fake_prompts.get_prompt("PLAIN00000", None, "us-west-2"))
    check_variables(prompt, {})
    with pytest.raises(InvalidRequest):
        check_variables(prompt, {"x": "y"})


def test_the_default_variant_is_chosen() -> None:
    answer: dict[str, Any] = fake_prompts.get_prompt("6LE1KDKISG", None, "us-west-2")
    other = {**answer["variants"][0], "name": "other", "modelId": "amazon.nova-micro-v1:0"}
    answer = {**answer, "variants": [other, answer["variants"][0]]}
    assert managed_prompt(answer).model_id == fake_prompts.CLAUDE


@pytest.mark.parametrize(
    "variant",
    [
        None,
        {"name": "v", "templateType": "AGENT", "templateConfiguration": {}, "modelId": "m"},
        {"name": "v", "templateType": "TEXT", "templateConfiguration": {"text": {"text": "x"}}},
    ],
)
def test_unusable_prompts_are_gateway_errors(variant: dict[str, Any] | None) -> None:
    with pytest.raises(GatewayError):
        managed_prompt({"arn": ARN, "variants": [variant] if variant else []})
