"""Interim single-deployment routing used until routing/router.py lands. TODO(integration): delete."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from tollgate.call import Call
from tollgate.config import Deployment
from tollgate.errors import UnknownModel
from tollgate.gateway import Outcome

T = TypeVar("T")


class InterimRouting:
    def __init__(self, deployments: Sequence[Deployment]) -> None:
        self._groups: dict[str, list[Deployment]] = {}
        for dep in deployments:
            self._groups.setdefault(dep.model_name, []).append(dep)

    def names(self) -> list[str]:
        return list(self._groups)

    def deployments(self, model: str) -> Sequence[Deployment]:
        group = self._groups.get(model)
        if not group:
            raise UnknownModel(
                f"Invalid model name passed in model={model}. "
                "Call `/v1/models` to view available models for your key.",
                param="model",
            )
        return group

    async def run(
        self, call: Call, attempt: Callable[[Deployment, float | None], Awaitable[T]]
    ) -> Outcome[T]:
        dep = self.deployments(call.model)[0]
        value = await attempt(dep, dep.timeout)
        return Outcome(value, dep, dep.model_name, 1)
