"""Model groups: which deployments answer a public model name, after aliases.

A model group is every deployment sharing a ``model_name`` (from the YAML ``model_list`` and from
deployments stored in the database). ``model_group_alias`` entries resolve first, exactly as
LiteLLM does; a client may also name an upstream model id a deployment serves (a Bedrock
``us.anthropic.…`` id sent by boto3 as ``modelId``), which resolves to that deployment's group.
Imports only ``config``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tollgate.config import Deployment

__all__ = ["Alias", "ModelTable", "parse_aliases"]


@dataclass(frozen=True, slots=True)
class Alias:
    target: str
    hidden: bool = False


def parse_aliases(*sources: Mapping[str, str | Mapping[str, Any]]) -> dict[str, Alias]:
    """Merge ``model_group_alias`` maps; later sources win (router_settings over litellm_settings)."""
    aliases: dict[str, Alias] = {}
    for source in sources:
        for name, value in source.items():
            if isinstance(value, str):
                aliases[name] = Alias(value)
            elif isinstance(value, Mapping) and isinstance(value.get("model"), str):
                aliases[name] = Alias(str(value["model"]), bool(value.get("hidden", False)))
    return aliases


@dataclass(frozen=True, slots=True)
class _Index:
    groups: Mapping[str, tuple[Deployment, ...]]
    by_upstream: Mapping[str, str]
    by_id: Mapping[str, Deployment]
    derived: frozenset[str] = frozenset()


def _build(deployments: Iterable[Deployment], derived: Iterable[Deployment] = ()) -> _Index:
    groups: dict[str, list[Deployment]] = {}
    by_upstream: dict[str, str] = {}
    by_id: dict[str, Deployment] = {}
    for dep in deployments:
        groups.setdefault(dep.model_name, []).append(dep)
        by_id[dep.id] = dep
        # First deployment wins, so a YAML entry keeps precedence over a later DB one.
        by_upstream.setdefault(dep.upstream_model, dep.model_name)
        by_upstream.setdefault(dep.litellm_model, dep.model_name)
    # Derived deployments are reachable only by their group name, never by their upstream id: a
    # client must not reach a model the operator did not configure by naming it.
    hidden = set()
    for dep in derived:
        if dep.model_name not in groups or dep.model_name in hidden:
            groups.setdefault(dep.model_name, []).append(dep)
            by_id.setdefault(dep.id, dep)
            hidden.add(dep.model_name)
    return _Index({k: tuple(v) for k, v in groups.items()}, by_upstream, by_id, frozenset(hidden))


class ModelTable:
    """Public model names → deployments. Reads are lock-free: updates swap one immutable index."""

    def __init__(
        self,
        deployments: Iterable[Deployment],
        aliases: Mapping[str, Alias] | None = None,
    ) -> None:
        all_deps = tuple(deployments)
        self._config = tuple(d for d in all_deps if d.source == "config")
        self._db = tuple(d for d in all_deps if d.source == "db")
        self._aliases: Mapping[str, Alias] = dict(aliases or {})
        self._derived: Mapping[str, Deployment] = {}
        self._index = _build(self._config + self._db)

    def replace_db_deployments(self, deployments: Iterable[Deployment]) -> None:
        """Swap every DB-stored deployment at once (after /model/new, /model/delete, a reload)."""
        db = tuple(deployments)
        index = _build(self._config + db, self._derived.values())
        # One attribute assignment each: a concurrent reader sees the old or the new table, never half.
        self._db = db
        self._index = index

    def derive(self, deployment: Deployment) -> Deployment:
        """Serve a deployment made at run time from a configured one (a managed prompt's model on
        its ARN entry's settings) as a hidden group of its own: routable by that group name, not
        listed by ``names``/``groups``/``all_deployments``. Returns the one already kept under
        its id, if any, so every caller shares one value."""
        kept = self._derived.get(deployment.id)
        if kept is not None:
            return kept
        derived = {**self._derived, deployment.id: deployment}
        index = _build(self._config + self._db, derived.values())
        self._derived = derived
        self._index = index
        return deployment

    def resolve(self, name: str) -> str | None:
        """The model group a client's model name means, or ``None``."""
        index = self._index
        alias = self._aliases.get(name)
        if alias is not None and alias.target in index.groups and alias.target not in index.derived:
            return alias.target
        if name in index.groups and name not in index.derived:
            return name
        return index.by_upstream.get(name)

    def deployments(self, group: str) -> tuple[Deployment, ...]:
        return self._index.groups.get(group, ())

    def deployment(self, deployment_id: str) -> Deployment | None:
        return self._index.by_id.get(deployment_id)

    def all_deployments(self) -> tuple[Deployment, ...]:
        return self._config + self._db

    def groups(self) -> tuple[str, ...]:
        index = self._index
        return tuple(g for g in index.groups if g not in index.derived)

    def names(self) -> list[str]:
        """Names for ``/models``: every group plus visible aliases that point at a group."""
        index = self._index
        names = [g for g in index.groups if g not in index.derived]
        seen = set(names)
        for name, alias in self._aliases.items():
            if not alias.hidden and alias.target in index.groups and name not in seen:
                names.append(name)
                seen.add(name)
        return names
