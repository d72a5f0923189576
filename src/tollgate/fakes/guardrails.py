"""The fake Bedrock's guardrails: ApplyGuardrail (``POST /guardrail/{id}/version/{v}/apply``) and
Converse's own ``guardrailConfig``, with outcomes scripted by the guardrail identifier.

An identifier is ``+``-joined behaviours: ``block-<word>`` blocks any text containing the word
(a word policy), ``anonymize-email`` masks e-mail addresses as ``{EMAIL}`` (a PII entity),
``fail-<status>`` answers that AWS error (503 ServiceUnavailableException, 500, 403, 429),
``hang`` never answers (until the client gives up), ``slow-<ms>`` answers after that delay.
Anything else passes. Answers have ApplyGuardrail's shape (action, actionReason, outputs with one
masked text per content block, assessments, usage). ``GET /_fake/guardrails`` lists the calls
(identifier, version, source, texts, signed) and ``DELETE`` clears them. Requests signed with
SigV4 are verified like every Bedrock route of the fake.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tollgate.canonical import ChatRequest, ChatResponse, TextPart
from tollgate.fakes.invoke import aws_error

BLOCKED_MESSAGE = "Sorry, the model cannot answer this question."
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_AWS_ERRORS = {
    403: "AccessDeniedException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
SignatureCheck = Callable[[Request, bytes], Response | None]
_HANG_LIMIT = 120.0


def assess(identifier: str, texts: list[str]) -> dict[str, Any]:
    """ApplyGuardrail's answer for ``texts`` under the behaviours named by ``identifier``."""
    behaviours = identifier.split("+")
    words = [b[len("block-"):] for b in behaviours if b.startswith("block-")]
    hits = [w for w in words if any(w.lower() in t.lower() for t in texts)]
    usage = {"topicPolicyUnits": 0, "contentPolicyUnits": 0, "wordPolicyUnits": len(texts),
             "sensitiveInformationPolicyUnits": 0, "sensitiveInformationPolicyFreeUnits": 0,
             "contextualGroundingPolicyUnits": 0}  # fmt: skip
    coverage = {"textCharacters": {"guarded": sum(map(len, texts)), "total": sum(map(len, texts))}}
    base = {"usage": usage, "guardrailCoverage": coverage}
    if hits:
        words_found = [{"match": w, "action": "BLOCKED", "detected": True} for w in hits]
        policy = {"wordPolicy": {"customWords": words_found, "managedWordLists": []}}
        return {**base, "action": "GUARDRAIL_INTERVENED", "actionReason": "Guardrail blocked.",
                "outputs": [{"text": BLOCKED_MESSAGE}], "assessments": [policy]}  # fmt: skip
    if "anonymize-email" in behaviours:
        found = [m for t in texts for m in _EMAIL.findall(t)]
        if found:
            entities = [{"match": m, "type": "EMAIL", "action": "ANONYMIZED", "detected": True}
                        for m in found]  # fmt: skip
            policy = {"sensitiveInformationPolicy": {"piiEntities": entities, "regexes": []}}
            return {**base, "action": "GUARDRAIL_INTERVENED", "actionReason": "Guardrail masked.",
                    "outputs": [{"text": _EMAIL.sub("{EMAIL}", t)} for t in texts],
                    "assessments": [policy]}  # fmt: skip
    return {**base, "action": "NONE", "actionReason": "No action.", "outputs": [], "assessments": [{}]}


async def _misbehave(request: Request, identifier: str) -> Response | None:
    for behaviour in identifier.split("+"):
        if behaviour == "hang":
            loop = asyncio.get_running_loop()
            deadline = loop.time() + _HANG_LIMIT
            while loop.time() < deadline and not await request.is_disconnected():
                await asyncio.sleep(0.05)
            return aws_error(504, "InternalServerException", "fake guardrail hung")
        if behaviour.startswith("slow-") and behaviour[5:].isdigit():
            await asyncio.sleep(int(behaviour[5:]) / 1000)
        if behaviour.startswith("fail-") and behaviour[5:].isdigit():
            status = int(behaviour[5:])
            error_type = _AWS_ERRORS.get(status, "InternalServerException")
            return aws_error(status, error_type, f"fake guardrail failure {status}")
    return None


def apply_guardrail_handlers(
    check: SignatureCheck,
) -> tuple[Callable[[Request], Awaitable[Response]], Callable[[Request], Awaitable[Response]]]:
    """(ApplyGuardrail handler, ``/_fake/guardrails`` handler) sharing one call log."""
    calls: list[dict[str, Any]] = []

    async def apply(request: Request) -> Response:
        raw = await request.body()
        rejected = check(request, raw)
        if rejected is not None:
            return rejected
        identifier: str = request.path_params["identifier"]
        try:
            body = orjson.loads(raw)
            texts = [block["text"]["text"] for block in body["content"]]
            source = body["source"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return aws_error(400, "ValidationException", "Malformed ApplyGuardrail request")
        signed = request.headers.get("authorization", "").startswith("AWS4-HMAC-SHA256 ")
        calls.append({"identifier": identifier, "version": request.path_params["version"],
                      "source": source, "texts": texts, "signed": signed})  # fmt: skip
        failed = await _misbehave(request, identifier)
        if failed is not None:
            return failed
        return Response(orjson.dumps(assess(identifier, texts)), media_type="application/json")

    async def log(request: Request) -> Response:
        if request.method == "DELETE":
            calls.clear()
        return Response(orjson.dumps(calls), media_type="application/json")

    return apply, log


def converse_guardrail(request: ChatRequest, answer: ChatResponse) -> ChatResponse:
    """Converse with ``guardrailConfig``: the input is assessed; a block replaces the answer with
    the blocked message and stop reason ``guardrail_intervened``; ``trace: enabled`` returns the
    assessment in ``trace.guardrail``, as Bedrock does."""
    config = request.passthrough.get("guardrailConfig") if request.passthrough_dialect == "bedrock" else None
    if not isinstance(config, dict):
        return answer
    identifier = str(config.get("guardrailIdentifier", ""))
    texts = [p.text for p in request.system] + [
        p.text for m in request.messages if m.role == "user" for p in m.parts if isinstance(p, TextPart)
    ]
    assessed = assess(identifier, texts)
    native: dict[str, Any] = {}
    if config.get("trace") == "enabled":
        native["trace"] = {"guardrail": {"inputAssessment": {identifier: assessed["assessments"][0]}}}
    if assessed["action"] == "GUARDRAIL_INTERVENED":
        native["stopReason"] = "guardrail_intervened"
        answer = replace(answer, parts=(TextPart(BLOCKED_MESSAGE),), finish_reason="content_filter")
    return replace(answer, native=native, native_dialect="bedrock" if native else None)
