"""What a Bedrock ApplyGuardrail answer means for the gateway: pass, block, or anonymize.

Pure. ``GUARDRAIL_INTERVENED`` with any policy entry ``BLOCKED`` blocks; with only ``ANONYMIZED``
entries it anonymizes (the masked texts are in ``outputs``); an intervention that names neither
blocks too, so an unknown policy kind fails closed. Assessments are kept for the error body and
the spend log with every text taken out: only numbers, booleans and the strings that name a
policy (``type``, ``name``, ``action``, …) survive, never a ``match`` of the checked text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Action = Literal["NONE", "BLOCKED", "ANONYMIZED"]
# String fields of an assessment that describe the policy, not the text checked.
_POLICY_STRINGS = frozenset({"type", "name", "action", "confidence", "filterStrength", "regex"})


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    outputs: tuple[str, ...] = ()  # the guardrail's output texts: the masked ones when ANONYMIZED
    reason: str | None = None  # Bedrock's actionReason
    assessments: tuple[Mapping[str, Any], ...] = ()  # redacted (see the module docstring)
    masked: int = 0  # entities anonymized

    def summary(self) -> dict[str, Any]:
        """The JSON form shown to callers and kept in the spend log."""
        return {"action": self.action, "action_reason": self.reason, "assessments": list(self.assessments)}


def _actions(value: object) -> Iterator[str]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key == "action" and isinstance(item, str):
                yield item
            else:
                yield from _actions(item)
    elif isinstance(value, list):
        for item in value:
            yield from _actions(item)


def redact(value: object) -> Any:
    """``value`` without any text but the strings naming a policy."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(item, Mapping | list):
                out[key] = redact(item)
            elif isinstance(item, bool | int | float) or (isinstance(item, str) and key in _POLICY_STRINGS):
                out[key] = item
        return out
    if isinstance(value, list):
        return [redact(item) for item in value]
    return None


def verdict(answer: Mapping[str, Any]) -> Verdict:
    assessments = answer.get("assessments")
    assessments = assessments if isinstance(assessments, list) else []
    reason = answer.get("actionReason")
    redacted = tuple(redact(a) for a in assessments if isinstance(a, Mapping))
    reason = reason if isinstance(reason, str) else None
    if answer.get("action") != "GUARDRAIL_INTERVENED":
        return Verdict("NONE", reason=reason, assessments=redacted)
    actions = list(_actions(assessments))
    raw_outputs = answer.get("outputs") or ()
    texts = (o.get("text") for o in raw_outputs if isinstance(o, Mapping))
    outputs = tuple(t for t in texts if isinstance(t, str))
    if "BLOCKED" in actions or "ANONYMIZED" not in actions:
        return Verdict("BLOCKED", (), reason, redacted)
    return Verdict("ANONYMIZED", outputs, reason, redacted, actions.count("ANONYMIZED"))
