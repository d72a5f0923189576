"""LiteLLM's per-request guardrail fields, shared by the OpenAI and Anthropic dialects.

``guardrails`` in the body names gateway guardrails to run: a list of names, or LiteLLM's
dictionary form ``{name: {"extra_body": {...}}}`` (whose options Bedrock guardrails do not take).
``metadata.guardrails`` switches guardrails on or off: ``{name: true | false}``. Both become a
``GuardrailChoice``; neither is ever rendered for an upstream. Imports ``canonical`` and ``errors``.
"""

from __future__ import annotations

from tollgate.canonical import NO_GUARDRAIL_CHOICE, GuardrailChoice
from tollgate.errors import InvalidRequest


def _names(raw: object, param: str) -> list[str]:
    if isinstance(raw, dict):
        raw = list(raw)
    if not isinstance(raw, list):
        raise InvalidRequest(f"'{param}' must be a list of guardrail names", param=param)
    for name in raw:
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f"'{param}' must be a list of guardrail names", param=param)
    return list(raw)


def parse_guardrail_choice(body: object, metadata: object) -> GuardrailChoice:
    """``body``: the request's ``guardrails`` value; ``metadata``: its ``metadata.guardrails``."""
    if body is None and metadata is None:
        return NO_GUARDRAIL_CHOICE
    named = _names(body, "guardrails") if body is not None else []
    off: list[str] = []
    if isinstance(metadata, dict):
        for name, on in metadata.items():
            if not isinstance(on, bool):
                raise InvalidRequest(
                    "'metadata.guardrails' must map guardrail names to true or false",
                    param="metadata.guardrails",
                )
            (named if on else off).append(name)
    elif metadata is not None:
        named.extend(_names(metadata, "metadata.guardrails"))
    return GuardrailChoice(tuple(dict.fromkeys(named)), tuple(dict.fromkeys(off)))
