"""Model groups: which deployments answer a public model name, after aliases.

A model group is every deployment sharing a ``model_name`` (from the YAML ``model_list`` and from
deployments stored in the database). ``model_group_alias`` entries resolve first, exactly as
LiteLLM does; a client may also name an upstream model id a deployment serves (a Bedrock
``us.anthropic.…`` id sent by boto3 as ``modelId``), which resolves to that deployment's group.

LiteLLM's wildcard routing: a ``model_name`` with ``*`` (``anthropic/*``, ``*``) is a pattern
tried when no group has the client's name, the longest pattern first. The client's name is then
its own group, served by the pattern's deployments with each ``*`` of ``litellm_params.model``
filled by what the client's name put there (``anthropic/claude-x`` → ``anthropic/claude-x``; a
fixed model string is kept). Those deployments get the id ``<pattern deployment id>~<name>``,
so prices, cooldowns and usage are per model, and ``deployment(id)`` rebuilds them on demand.

Derived deployments (``derive``: a managed prompt's model served on its ARN entry's settings) are
hidden groups of their own, reachable only through ``RouteHints.model_group``: never by name,
upstream id or wildcard, never listed, and never patterns themselves (their names may hold the
ARN entry's ``*``). Imports only ``config``.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from tollgate.config import AwsSettings, Deployment, split_model_string
from tollgate.errors import ConfigError

__all__ = ["Alias", "ModelTable", "parse_aliases"]

WILDCARD = "*"
SPECIALISED = "~"  # between a pattern deployment's id and the model name it serves
MAX_SPECIALISED = 1024  # wildcard-matched names kept built; others are rebuilt when asked for


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
class _Pattern:
    name: str
    regex: re.Pattern[str]
    deployments: tuple[Deployment, ...]


@dataclass(frozen=True, slots=True)
class _Index:
    groups: Mapping[str, tuple[Deployment, ...]]
    by_upstream: Mapping[str, str]
    by_id: Mapping[str, Deployment]
    patterns: tuple[_Pattern, ...]  # most specific (longest) first
    derived: frozenset[str] = frozenset()  # hidden groups (``ModelTable.derive``)


def _build(deployments: Iterable[Deployment], derived: Iterable[Deployment] = ()) -> _Index:
    groups: dict[str, list[Deployment]] = {}
    by_upstream: dict[str, str] = {}
    by_id: dict[str, Deployment] = {}
    for dep in deployments:
        groups.setdefault(dep.model_name, []).append(dep)
        by_id[dep.id] = dep
        if WILDCARD in dep.litellm_model:
            continue
        # First deployment wins, so a YAML entry keeps precedence over a later DB one.
        by_upstream.setdefault(dep.upstream_model, dep.model_name)
        by_upstream.setdefault(dep.litellm_model, dep.model_name)
    patterns = sorted(
        (_Pattern(name, _regex(name), tuple(deps)) for name, deps in groups.items() if WILDCARD in name),
        key=lambda p: (len(p.name), p.name.count(WILDCARD)),
        reverse=True,
    )
    # Derived deployments are reachable only by their group name, never by their upstream id: a
    # client must not reach a model the operator did not configure by naming it.
    hidden: set[str] = set()
    for dep in derived:
        if dep.model_name not in groups or dep.model_name in hidden:
            groups.setdefault(dep.model_name, []).append(dep)
            by_id.setdefault(dep.id, dep)
            hidden.add(dep.model_name)
    return _Index(
        {k: tuple(v) for k, v in groups.items()}, by_upstream, by_id, tuple(patterns), frozenset(hidden)
    )


def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile("(.*)".join(re.escape(piece) for piece in pattern.split(WILDCARD)), re.DOTALL)


def _specialise(dep: Deployment, name: str, captured: tuple[str, ...]) -> Deployment | None:
    """The pattern deployment ``dep`` serving the client's model ``name``; ``None`` if the filled
    model string names a provider tollgate does not speak."""
    model = dep.litellm_model
    if WILDCARD in model:
        if len(captured) > model.count(WILDCARD):
            model = name  # LiteLLM's rule when the wildcards do not line up: the client's name
        else:
            for piece in captured:
                model = model.replace(WILDCARD, piece, 1)
    try:
        provider, upstream, route = split_model_string(model)
    except ConfigError:
        return None
    aws = dep.aws if dep.aws is not None or provider != "bedrock" else AwsSettings()
    return replace(
        dep, id=f"{dep.id}{SPECIALISED}{name}", model_name=name, provider=provider, upstream_model=upstream,
        litellm_model=model, bedrock_route=route, aws=aws,
    )


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
        # Wildcard-matched names → their deployments, built once per index (least recently used out).
        self._specialised: OrderedDict[str, tuple[Deployment, ...]] = OrderedDict()

    def replace_db_deployments(self, deployments: Iterable[Deployment]) -> None:
        """Swap every DB-stored deployment at once (after /model/new, /model/delete, a reload)."""
        db = tuple(deployments)
        index = _build(self._config + db, self._derived.values())
        # One attribute assignment each: a concurrent reader sees the old or the new table, never half.
        self._db = db
        self._index = index
        self._specialised = OrderedDict()

    def derive(self, deployment: Deployment) -> Deployment:
        """Serve a deployment made at run time from a configured one (a managed prompt's model on
        its ARN entry's settings) as a hidden group of its own: routable by that group name, not
        listed by ``names``/``groups``/``all_deployments``. Returns the one already kept under
        its id, if any, so every caller shares one value. The wildcard cache is left alone:
        hidden groups are found before any pattern is tried, and patterns never change here."""
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
        if name in index.derived:
            return None
        if name in index.groups:
            return name
        group = index.by_upstream.get(name)
        if group is None and self.deployments(name):
            return name  # a wildcard pattern serves it
        return group

    def group_for(self, name: str, chosen: str | None = None) -> str | None:
        """``resolve(name)``; or, when the request's group was ``chosen`` for it (a managed prompt's
        model: ``RouteHints.model_group``), that group if it has deployments."""
        if chosen is None:
            return self.resolve(name)
        return chosen if self.deployments(chosen) else None

    def deployments(self, group: str) -> tuple[Deployment, ...]:
        index = self._index
        found = index.groups.get(group)
        if found is not None:
            return found
        if not index.patterns:
            return ()
        cached = self._specialised.get(group)
        if cached is None:
            cached = self._match(index, group)
            self._specialised[group] = cached
            while len(self._specialised) > MAX_SPECIALISED:
                self._specialised.popitem(last=False)
        else:
            self._specialised.move_to_end(group)
        return cached

    @staticmethod
    def _match(index: _Index, name: str) -> tuple[Deployment, ...]:
        for pattern in index.patterns:
            found = pattern.regex.fullmatch(name)
            if found is None:
                continue
            deps = (_specialise(d, name, found.groups()) for d in pattern.deployments)
            return tuple(d for d in deps if d is not None)
        return ()

    def deployment(self, deployment_id: str) -> Deployment | None:
        index = self._index
        found = index.by_id.get(deployment_id)
        if found is not None or SPECIALISED not in deployment_id:
            return found
        for pattern in index.patterns:
            for dep in pattern.deployments:
                if deployment_id.startswith(dep.id + SPECIALISED):
                    name = deployment_id[len(dep.id) + len(SPECIALISED) :]
                    return next((d for d in self.deployments(name) if d.id == deployment_id), None)
        return None

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
            shown = not alias.hidden and alias.target in index.groups and alias.target not in index.derived
            if shown and name not in seen:
                names.append(name)
                seen.add(name)
        return names
