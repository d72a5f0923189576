"""Managed prompts in the lifecycle: a request whose model is a Bedrock prompt ARN becomes the
prompt's rendered request, routed to the prompt's model.

The ARN entry is the ``model_list`` entry whose ``model_name`` matches the ARN (exactly, or as a
``*`` pattern such as ``arn:aws:bedrock:us-west-2:123456789012:prompt/*``); its deployment's
credentials read the prompt (``PromptSource``, chosen by the deployment's provider). Access is
checked on the ARN before the prompt is read, as admission later checks it again: a key's
``models`` list names ARNs like any model. The prompt's ``modelId`` is routed to a configured
deployment serving that upstream id, else to a deployment derived from the ARN entry (same
credentials and endpoint, the prompt's model id, priced as that model).

Prompts are cached per process: a versioned ARN (immutable in Bedrock) for ``versioned_ttl``
seconds, the working draft for ``draft_ttl``; concurrent misses share one GetPrompt call.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

import orjson

from tollgate.auth.principal import Principal
from tollgate.canonical import ChatRequest
from tollgate.config import Deployment, Price
from tollgate.conversations.prompts import (
    ManagedPrompt,
    PromptArn,
    check_variables,
    converse_body,
    managed_prompt,
    parse_prompt_arn,
)
from tollgate.dialects.bedrock import converse as bedrock_converse
from tollgate.errors import GatewayError, UnknownModel
from tollgate.policy.access import check_access, matches
from tollgate.routing.table import ModelTable

MAX_CACHED = 1024


class PromptSource(Protocol):
    async def get_prompt(
        self, deployment: Deployment, prompt_id: str, version: str | None, region: str
    ) -> Mapping[str, Any]:
        """GetPrompt's answer as JSON values; ``errors.NotFound`` for an unknown prompt or version."""
        ...


@dataclass(frozen=True, slots=True)
class PromptCacheSettings:
    draft_ttl: float = 60.0
    versioned_ttl: float = 3600.0


class PromptResolver:
    def __init__(
        self,
        table: ModelTable,
        sources: Mapping[str, PromptSource],
        *,
        settings: PromptCacheSettings = PromptCacheSettings(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._table = table
        self._sources = sources
        self._settings = settings
        self._clock = clock
        self._cache: OrderedDict[tuple[str, str, str | None], tuple[float, ManagedPrompt]] = OrderedDict()
        self._pending: dict[tuple[str, str, str | None], asyncio.Future[ManagedPrompt]] = {}

    async def apply(self, principal: Principal, request: ChatRequest) -> ChatRequest:
        """The request with the prompt rendered in and its route chosen. Raises ``UnknownModel``
        (no ARN entry), ``ModelAccessDenied``, ``NotFound`` (no such prompt) or
        ``InvalidRequest`` (variables that do not match the template)."""
        arn = parse_prompt_arn(request.model)
        entry = self._entry(arn)
        check_access(principal, request.model)
        prompt = await self._prompt(entry, arn)
        variables = request.prompt_variables or {}
        check_variables(prompt, variables)
        body = orjson.dumps(converse_body(prompt, variables))
        try:
            rendered = bedrock_converse.parse_request(body, model=request.model)
        except GatewayError as exc:
            message = f"managed prompt {arn.arn} renders to an invalid request: {exc.message}"
            raise GatewayError(message) from None
        return _merged(request, rendered, self._route(entry, prompt.model_id))

    def _entry(self, arn: PromptArn) -> Deployment:
        """The deployment of the ``model_list`` entry matching the ARN: an exact name first,
        then the longest matching pattern."""
        best: Deployment | None = None
        for dep in self._table.all_deployments():
            name = dep.model_name
            if name in (arn.arn, arn.unversioned):
                return dep
            if "*" in name and matches(name, arn.arn) and (best is None or len(name) > len(best.model_name)):
                best = dep
        if best is None:
            raise UnknownModel(
                f"Invalid model name passed in model={arn.arn}. "
                "Call `/v1/models` to view available models for your key.",
                param="model",
            )
        return best

    def _route(self, entry: Deployment, model_id: str) -> str:
        """The model group for the prompt's model: a configured one serving it, else one derived
        from the ARN entry."""
        short = model_id.rsplit("/", 1)[-1] if model_id.startswith("arn:") else model_id
        for name in (model_id, short):
            group = self._table.resolve(name)
            if group is not None:
                return group
        derived = replace(
            entry,
            id=f"{entry.id}/{model_id}",
            model_name=f"{entry.model_name} -> {model_id}",
            upstream_model=model_id,
            litellm_model=f"{entry.provider}/{model_id}",
            info=replace(entry.info, price=Price(), base_model=None),
        )
        return self._table.derive(derived).model_name

    async def _prompt(self, entry: Deployment, arn: PromptArn) -> ManagedPrompt:
        key = (entry.id, arn.prompt_id, arn.version)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(key)
            return cached[1]
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[ManagedPrompt] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            prompt = await self._fetch(entry, arn)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        else:
            future.set_result(prompt)
            ttl = self._settings.versioned_ttl if arn.version else self._settings.draft_ttl
            self._cache[key] = (self._clock() + ttl, prompt)
            while len(self._cache) > MAX_CACHED:
                self._cache.popitem(last=False)
            return prompt
        finally:
            del self._pending[key]

    async def _fetch(self, entry: Deployment, arn: PromptArn) -> ManagedPrompt:
        source = self._sources.get(entry.provider)
        if source is None:
            raise GatewayError(
                f"model_list entry '{entry.model_name}' cannot read managed prompts: its provider is "
                f"'{entry.provider}'; use a bedrock/ model"
            )
        answer = await source.get_prompt(entry, arn.prompt_id, arn.version, arn.region)
        return managed_prompt({**answer, "arn": arn.arn})


def _merged(request: ChatRequest, rendered: ChatRequest, group: str) -> ChatRequest:
    """The client's request carrying the prompt: the prompt's messages, system and tools; the
    client's inference settings where it gave any, else the prompt's."""
    return replace(
        request,
        messages=rendered.messages,
        system=rendered.system,
        tools=rendered.tools or request.tools,
        tool_choice=rendered.tool_choice if rendered.tools else request.tool_choice,
        max_tokens=request.max_tokens if request.max_tokens is not None else rendered.max_tokens,
        temperature=request.temperature if request.temperature is not None else rendered.temperature,
        top_p=request.top_p if request.top_p is not None else rendered.top_p,
        top_k=request.top_k if request.top_k is not None else rendered.top_k,
        stop=request.stop or rendered.stop,
        reasoning=request.reasoning or rendered.reasoning,
        hints=replace(request.hints, model_group=group),
    )
