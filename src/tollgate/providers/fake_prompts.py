"""The fake upstream's managed prompts: a small Bedrock Prompt Management catalog, answered in
``GetPrompt``'s shape. ``fakes/prompts.py`` serves it over HTTP (for botocore, in the tests);
``FakePromptSource`` answers in process for ``fake/`` ARN entries (the embedded demo config).

Prompts (``promptVersion`` "1" and "2", or none for the draft):

* ``6LE1KDKISG`` TEXT ``{{topic}}``, on ``anthropic.claude-3-5-sonnet-20240620-v1:0``; version 1
  differs from version 2 and the draft, so tests can tell which one was read.
* ``CHAT0PRMPT`` CHAT: a system prompt with ``{{persona}}``, a user message with ``{{topic}}``.
* ``NOVA0PRMPT`` TEXT ``{{text}}`` on ``amazon.nova-lite-v1:0`` (rarely configured itself).
* ``PLAIN00000`` TEXT without placeholders.
* ``TRNSCRIPT0`` CHAT (system, user, assistant, user) on ``fake.transcript-v1:0``: the fake
  upstream's transcript model, which answers with the conversation it received.

Any other id is ``ResourceNotFoundException``, as is a version other than those above.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tollgate.config import Deployment
from tollgate.errors import NotFound

ACCOUNT = "123456789012"
CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0"
NOVA_LITE = "amazon.nova-lite-v1:0"
TRANSCRIPT = "fake.transcript-v1:0"
_STAMP = "2024-11-20T10:00:00Z"
VERSIONS = ("1", "2")


def _text_variant(text: str, model_id: str, names: tuple[str, ...]) -> dict[str, Any]:
    return {
        "name": "variant-one",
        "templateType": "TEXT",
        "templateConfiguration": {"text": {"text": text, "inputVariables": [{"name": n} for n in names]}},
        "modelId": model_id,
        "inferenceConfiguration": {"text": {"temperature": 0.5, "maxTokens": 300}},
    }


def _chat_variant(model_id: str, *turns: tuple[str, str]) -> dict[str, Any]:
    return {
        "name": "variant-one",
        "templateType": "CHAT",
        "templateConfiguration": {
            "chat": {
                "system": [{"text": "You are a {{persona}}."}],
                "messages": [{"role": role, "content": [{"text": text}]} for role, text in turns],
                "inputVariables": [{"name": "persona"}, {"name": "topic"}],
            }
        },
        "modelId": model_id,
        "inferenceConfiguration": {"text": {"maxTokens": 300}},
    }


def _variant(prompt_id: str, version: str | None) -> dict[str, Any] | None:
    if prompt_id == "6LE1KDKISG":
        text = "Name one {{topic}}." if version == "1" else "Write one sentence about {{topic}}."
        return _text_variant(text, CLAUDE, ("topic",))
    if prompt_id == "CHAT0PRMPT":
        return _chat_variant(CLAUDE, ("user", "Tell me about {{topic}}."))
    if prompt_id == "TRNSCRIPT0":
        turns = (("user", "Tell me about {{topic}}."), ("assistant", "Gladly."), ("user", "Be brief."))
        return _chat_variant(TRANSCRIPT, *turns)
    if prompt_id == "NOVA0PRMPT":
        return _text_variant("Summarise: {{text}}", NOVA_LITE, ("text",))
    if prompt_id == "PLAIN00000":
        return _text_variant("Say hello.", CLAUDE, ())
    return None


def get_prompt(prompt_id: str, version: str | None, region: str) -> dict[str, Any]:
    """GetPrompt's answer, or ``NotFound``."""
    variant = _variant(prompt_id, version) if version in (None, "DRAFT", *VERSIONS) else None
    if variant is None:
        shown = f"{prompt_id}:{version}" if version else prompt_id
        raise NotFound(f"managed prompt {shown} not found")
    return {
        "name": f"fake-{prompt_id.lower()}",
        "id": prompt_id,
        "arn": f"arn:aws:bedrock:{region}:{ACCOUNT}:prompt/{prompt_id}",
        "version": version or "DRAFT",
        "defaultVariant": "variant-one",
        "variants": [variant],
        "createdAt": _STAMP,
        "updatedAt": _STAMP,
    }


class FakePromptSource:
    """Managed prompts for ``fake/`` ARN entries, read from the catalog above in process."""

    async def get_prompt(
        self, deployment: Deployment, prompt_id: str, version: str | None, region: str
    ) -> Mapping[str, Any]:
        return get_prompt(prompt_id, version, region)
