"""One configured guardrail at work: check texts, record what happened, decide.

``Guard.check`` sends the non-empty texts to ApplyGuardrail and returns the texts to go on with
(masked when the guardrail anonymized and masking applies), or raises ``GuardrailBlocked``. A
service that fails or times out raises ``GuardrailUnavailable`` (503) unless the guardrail says
``unreachable_fallback: fail_open``. Every run is appended to the request's ``GuardrailTrail``
(LiteLLM's ``guardrail_information`` fields) and reported to ``on_run`` (the metric).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from tollgate.call import GuardrailTrail
from tollgate.config import GuardrailConfig
from tollgate.errors import GatewayError, GuardrailBlocked, GuardrailUnavailable, UpstreamTimeout
from tollgate.guardrails.bedrock import Source
from tollgate.guardrails.verdict import Verdict, verdict

log = logging.getLogger("tollgate.guardrails")
APPLIED_HEADER = "x-litellm-applied-guardrails"
OnRun = Callable[[str, str, str], None]  # (guardrail, mode, outcome: passed|blocked|anonymized|failed)


class Checker(Protocol):
    async def apply(self, source: Source, texts: Sequence[str]) -> dict[str, Any]: ...


def applied_headers(trail: GuardrailTrail) -> dict[str, str]:
    return {APPLIED_HEADER: ",".join(trail.applied)} if trail.runs else {}


class Guard:
    def __init__(
        self,
        config: GuardrailConfig,
        checker: Checker,
        on_run: OnRun,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._checker = checker
        self._on_run = on_run
        self._clock = clock

    @property
    def name(self) -> str:
        return self.config.name

    async def check(
        self, texts: Sequence[str], mode: str, trail: GuardrailTrail, *, mask: bool, reveal: bool = False
    ) -> list[str]:
        """``mode`` names the step (pre_call, during_call, post_call, apply_guardrail); post_call
        checks the model's output, the others the caller's input. ``mask``: put the guardrail's
        masked texts in place when it anonymized. ``reveal``: a refusal carries the assessment
        (admins only: it describes the policy a caller could probe around)."""
        out = list(texts)
        sent = [i for i, text in enumerate(texts) if text.strip()]
        if not sent:
            return out
        source: Source = "OUTPUT" if mode == "post_call" else "INPUT"
        started = self._clock()
        try:
            answer = await self._checker.apply(source, [texts[i] for i in sent])
        except GatewayError as exc:
            self._failed(exc, mode, trail, started)
            return out
        found = verdict(answer)
        applies = mask and found.action == "ANONYMIZED" and len(found.outputs) == len(sent)
        self._record(found, mode, trail, started, applied=applies)
        if found.action == "BLOCKED":
            raise self._blocked(found, mode, trail, reveal)
        if applies:
            for i, text in zip(sent, found.outputs, strict=True):
                out[i] = text
        elif mask and found.action == "ANONYMIZED":
            mismatch = f"its masked output has {len(found.outputs)} texts for the {len(sent)} it was given"
            raise self._unavailable(mismatch, mode, trail)
        return out

    def _record(
        self, found: Verdict, mode: str, trail: GuardrailTrail, started: float, *, applied: bool
    ) -> None:
        outcome = {"NONE": "passed", "BLOCKED": "blocked", "ANONYMIZED": "anonymized"}[found.action]
        trail.runs.append(
            self._entry(
                mode, started,
                guardrail_status="success" if found.action == "NONE" else "guardrail_intervened",
                guardrail_action=None if found.action == "NONE" else found.action,
                masked_entity_count=found.masked,
                masking_applied=applied,
                guardrail_response=found.summary(),
            )
        )  # fmt: skip
        self._on_run(self.name, mode, outcome)

    def _failed(self, exc: GatewayError, mode: str, trail: GuardrailTrail, started: float) -> None:
        if isinstance(exc, UpstreamTimeout):
            reason = public = f"timed out after {self.config.timeout:g}s"
        else:
            # The caller gets the AWS error type; its message (account ids, role names) only the log.
            reason = exc.message
            public = f"the guardrail service answered {exc.code}" if exc.code else exc.message
        log.warning("guardrail %s (%s) failed: %s", self.name, mode, reason)
        trail.runs.append(
            self._entry(
                mode, started,
                guardrail_status="guardrail_failed_to_respond",
                guardrail_action=None,
                error=reason,
                unreachable_fallback="fail_open" if self.config.fail_open else "fail_closed",
            )
        )  # fmt: skip
        self._on_run(self.name, mode, "failed")
        if not self.config.fail_open:
            raise self._unavailable(public, mode, trail) from exc

    def _entry(self, mode: str, started: float, **fields: Any) -> dict[str, Any]:
        return {
            "guardrail_name": self.name,
            "guardrail_provider": "bedrock",
            "guardrail_mode": mode,
            **fields,
            "duration": round(self._clock() - started, 6),
        }

    def _blocked(self, found: Verdict, mode: str, trail: GuardrailTrail, reveal: bool) -> GuardrailBlocked:
        what = "response" if mode == "post_call" else "request"
        assessment = found.summary() if reveal else {"action": found.action}
        return GuardrailBlocked(
            f"Violated guardrail policy: guardrail '{self.name}' blocked the {what} ({mode})",
            details={"guardrail": {"name": self.name, "mode": mode, **assessment}},
            headers=applied_headers(trail),
        )

    def _unavailable(self, reason: str, mode: str, trail: GuardrailTrail) -> GuardrailUnavailable:
        return GuardrailUnavailable(
            f"guardrail '{self.name}' could not check the {'response' if mode == 'post_call' else 'request'} "
            f"({mode}): {reason}. The request is refused because the guardrail fails closed.",
            details={"guardrail": {"name": self.name, "mode": mode}},
            headers=applied_headers(trail),
        )
