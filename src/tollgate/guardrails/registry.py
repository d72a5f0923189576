"""The configured guardrails of one gateway: a ``Screen`` per request, the listing of
``GET /guardrails/list`` and the one-off check of ``POST /guardrails/apply_guardrail``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from tollgate.call import Call, GuardrailTrail
from tollgate.canonical import NO_GUARDRAIL_CHOICE, ChatRequest
from tollgate.config import GuardrailConfig
from tollgate.errors import GatewayError, InvalidRequest
from tollgate.guardrails.bedrock import ApplyGuardrailClient, bedrock_runtime_model
from tollgate.guardrails.guard import Guard, OnRun
from tollgate.guardrails.screen import Screen
from tollgate.guardrails.selection import select
from tollgate.providers.http import HttpClient


def _ignore(guardrail: str, mode: str, outcome: str) -> None:
    return None


class Guardrails:
    def __init__(self, guards: Sequence[Guard]) -> None:
        self._guards = tuple(guards)
        self._by_name = {g.name: g for g in self._guards}
        self._configs = tuple(g.config for g in self._guards)

    @classmethod
    def build(
        cls,
        configs: Sequence[GuardrailConfig],
        http: HttpClient,
        env: Mapping[str, str],
        on_run: OnRun = _ignore,
    ) -> Guardrails:
        if not configs:
            return cls(())
        model = bedrock_runtime_model()
        return cls([Guard(c, ApplyGuardrailClient(c, http, env, model), on_run) for c in configs])

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._by_name)

    def screen(self, call: Call) -> Screen:
        """The request's guardrails. Never raises: a refusal of the choice (unknown name, switching
        off under a team's lock) is raised by ``Screen.before``, inside the accounted lifecycle."""
        request = call.request
        choice = request.guardrails if isinstance(request, ChatRequest) else NO_GUARDRAIL_CHOICE
        if not self._guards and choice == NO_GUARDRAIL_CHOICE:
            return Screen((), call.guardrails)
        try:
            chosen = select(self._configs, call.principal, choice)
        except GatewayError as exc:
            return Screen((), call.guardrails, exc)
        guards = [self._by_name[c.name] for c in chosen]
        return Screen(guards, call.guardrails, reveal=call.principal.is_admin)

    def listing(self) -> dict[str, Any]:
        """LiteLLM's ``{"guardrails": [{guardrail_name, litellm_params, guardrail_info}]}``,
        without credentials."""
        return {
            "guardrails": [
                {
                    "guardrail_name": c.name,
                    "litellm_params": dict(c.public_params),
                    "guardrail_info": dict(c.info),
                }
                for c in self._configs
            ]
        }

    async def apply(
        self, name: str, text: str, input_type: Literal["request", "response"], trail: GuardrailTrail,
        *, reveal: bool = False,
    ) -> str:
        """One guardrail on ``text`` without a model call: the text as the guardrail leaves it
        (masked when it anonymized), or ``GuardrailBlocked``."""
        guard = self._by_name.get(name)
        if guard is None:
            available = ", ".join(sorted(self._by_name)) or "none are configured"
            raise InvalidRequest(
                f"unknown guardrail '{name}' (available: {available})", param="guardrail_name"
            )
        mode = "post_call" if input_type == "response" else "pre_call"
        checked = await guard.check([text], mode, trail, mask=True, reveal=reveal)
        return checked[0]
