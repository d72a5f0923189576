"""Amazon Bedrock managed prompts, the pure part: prompt ARNs, GetPrompt's answer, the template's
``{{placeholders}}``, and the Converse request a prompt renders to.

A prompt's variant (the default one, else the first) has a ``templateType``: ``TEXT`` renders to
one user message; ``CHAT`` to its messages, system prompt and tool configuration. Both carry the
model id and an inference configuration. Rendering replaces each ``{{name}}`` in the template's
texts with the variable's text; the variables given must be exactly the placeholders found,
or the request is refused naming the difference, before any model is called.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tollgate.errors import GatewayError, InvalidRequest

_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):bedrock:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"prompt/(?P<id>[0-9A-Za-z]{10})(?::(?P<version>\d{1,5}|DRAFT))?"
)
# Bedrock variable names: letters, digits, "_" and "-"; spaces inside the braces are tolerated.
_PLACEHOLDER = re.compile(r"\{\{\s*([0-9A-Za-z][0-9A-Za-z_-]*)\s*\}\}")


@dataclass(frozen=True, slots=True)
class PromptArn:
    arn: str
    region: str
    prompt_id: str
    version: str | None  # None: the working draft

    @property
    def unversioned(self) -> str:
        return self.arn.rsplit(":", 1)[0] if self.version is not None else self.arn


def looks_like_prompt(model: str) -> bool:
    """Cheap pre-check on every request's model name."""
    return model.startswith("arn:") and ":prompt/" in model


def parse_prompt_arn(model: str) -> PromptArn:
    match = _ARN.fullmatch(model)
    if match is None:
        raise InvalidRequest(
            f"'{model}' is not a Bedrock prompt ARN (arn:aws:bedrock:REGION:ACCOUNT:prompt/ID[:VERSION])",
            param="model",
        )
    version = match["version"]
    return PromptArn(model, match["region"], match["id"], None if version in (None, "DRAFT") else version)


@dataclass(frozen=True, slots=True)
class ManagedPrompt:
    arn: str
    version: str
    model_id: str
    template_type: Literal["TEXT", "CHAT"]
    template: Mapping[str, Any]  # templateConfiguration.text or .chat
    inference: Mapping[str, Any]  # inferenceConfiguration.text
    additional: Mapping[str, Any]  # additionalModelRequestFields


def managed_prompt(answer: Mapping[str, Any]) -> ManagedPrompt:
    """The variant to use from GetPrompt's answer; ``GatewayError`` (500) if it cannot be used."""
    name = str(answer.get("arn") or answer.get("id") or "the prompt")
    variants = [v for v in answer.get("variants") or () if isinstance(v, dict)]
    wanted = answer.get("defaultVariant")
    variant = next((v for v in variants if v.get("name") == wanted), variants[0] if variants else None)
    if variant is None:
        raise GatewayError(f"managed prompt {name} has no variant to render")
    kind = variant.get("templateType")
    config = variant.get("templateConfiguration") or {}
    template = config.get("text" if kind == "TEXT" else "chat")
    model_id = variant.get("modelId")
    if kind not in ("TEXT", "CHAT") or not isinstance(template, dict):
        raise GatewayError(f"managed prompt {name}: unsupported template type {kind!r}")
    if not isinstance(model_id, str) or not model_id:
        raise GatewayError(f"managed prompt {name} names no model (modelId)")
    inference = (variant.get("inferenceConfiguration") or {}).get("text") or {}
    additional = variant.get("additionalModelRequestFields") or {}
    return ManagedPrompt(
        arn=name,
        version=str(answer.get("version") or "DRAFT"),
        model_id=model_id,
        template_type=kind,
        template=template,
        inference=inference if isinstance(inference, dict) else {},
        additional=additional if isinstance(additional, dict) else {},
    )


def _template_texts(prompt: ManagedPrompt) -> Iterator[str]:
    if prompt.template_type == "TEXT":
        text = prompt.template.get("text")
        if isinstance(text, str):
            yield text
        return
    for block in prompt.template.get("system") or ():
        if isinstance(block, dict) and isinstance(block.get("text"), str):
            yield block["text"]
    for message in prompt.template.get("messages") or ():
        for block in (message.get("content") or ()) if isinstance(message, dict) else ():
            if isinstance(block, dict) and isinstance(block.get("text"), str):
                yield block["text"]


def placeholders(prompt: ManagedPrompt) -> set[str]:
    return {name for text in _template_texts(prompt) for name in _PLACEHOLDER.findall(text)}


def check_variables(prompt: ManagedPrompt, variables: Mapping[str, str]) -> None:
    expected = placeholders(prompt)
    missing, extra = sorted(expected - set(variables)), sorted(set(variables) - expected)
    if not missing and not extra:
        return
    details = []
    if missing:
        details.append(f"missing {missing}")
    if extra:
        details.append(f"not in the template {extra}")
    raise InvalidRequest(
        f"promptVariables do not match the placeholders of {prompt.arn}: {'; '.join(details)} "
        f"(the template's placeholders are {sorted(expected)})",
        param="promptVariables",
    )


def _fill(text: str, variables: Mapping[str, str]) -> str:
    # One pass: a value that itself contains "{{x}}" is not expanded again.
    return _PLACEHOLDER.sub(lambda m: variables[m.group(1)], text)


def _filled_blocks(blocks: object, variables: Mapping[str, str]) -> list[Any]:
    out = []
    for block in blocks if isinstance(blocks, list) else ():
        if isinstance(block, dict) and isinstance(block.get("text"), str):
            block = {**block, "text": _fill(block["text"], variables)}
        out.append(block)
    return out


def converse_body(prompt: ManagedPrompt, variables: Mapping[str, str]) -> dict[str, Any]:
    """The prompt rendered as a Converse request body (the model id travels separately)."""
    body: dict[str, Any]
    if prompt.template_type == "TEXT":
        text = _fill(str(prompt.template.get("text") or ""), variables)
        body = {"messages": [{"role": "user", "content": [{"text": text}]}]}
    else:
        messages = [
            {**m, "content": _filled_blocks(m.get("content"), variables)}
            for m in prompt.template.get("messages") or ()
            if isinstance(m, dict)
        ]
        body = {"messages": messages}
        system = _filled_blocks(prompt.template.get("system"), variables)
        if system:
            body["system"] = system
        tools = prompt.template.get("toolConfiguration")
        if tools:
            body["toolConfig"] = tools
    if prompt.inference:
        body["inferenceConfig"] = dict(prompt.inference)
    if prompt.additional:
        body["additionalModelRequestFields"] = dict(prompt.additional)
    return body
