"""What ``serve`` and ``check-config`` say about a config before any request arrives.

Each finding is one line naming what it is about. None of them refuses to start (a config that
LiteLLM serves, tollgate serves): they are the mistakes that would otherwise show up only later,
at the first request that meets them: a gateway without a master key, a fallback or alias naming
a model group that does not exist, a deployment that would be charged $0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from tollgate.accounting.pricing import Pricer, load_bundled_table
from tollgate.config import Config
from tollgate.routing.table import WILDCARD, ModelTable, parse_aliases

OPEN_GATEWAY = (
    "general_settings has no master_key: the gateway is UNAUTHENTICATED — anyone who can reach it "
    "may call every model and use the admin API (set master_key, e.g. os.environ/LITELLM_MASTER_KEY)"
)


def preflight(config: Config) -> list[str]:
    """Every finding about ``config``, in a stable order."""
    findings = [OPEN_GATEWAY] if config.master_key is None else []
    findings.extend(missing_groups(config))
    findings.extend(unpriced(config))
    return findings


def missing_groups(config: Config) -> list[str]:
    """Fallbacks and ``model_group_alias`` entries naming a model group no deployment serves."""
    router, lit = config.router, config.litellm
    groups = ModelTable(config.deployments)  # what deployments serve, wildcard patterns included
    named = ModelTable(config.deployments, parse_aliases(lit.model_group_alias, router.model_group_alias))
    later = (" (unless a /model/new deployment adds it: store_model_in_db is on)"
             if config.general.store_model_in_db else "")
    findings = []
    for section, key, value in (
        ("router_settings", "fallbacks", router.fallbacks),
        ("router_settings", "context_window_fallbacks", router.context_window_fallbacks),
        ("router_settings", "content_policy_fallbacks", router.content_policy_fallbacks),
        ("router_settings", "default_fallbacks", router.default_fallbacks),
        ("litellm_settings", "fallbacks", lit.fallbacks),
        ("litellm_settings", "context_window_fallbacks", lit.context_window_fallbacks),
        ("litellm_settings", "content_policy_fallbacks", lit.content_policy_fallbacks),
        ("litellm_settings", "default_fallbacks", lit.default_fallbacks),
    ):
        for where, name, is_target in _names(f"{section}.{key}", value):
            if name == WILDCARD or named.resolve(name) is not None:
                continue
            effect = "that fallback is never taken" if is_target else "its fallbacks are never used"
            findings.append(f"config: '{where}' names model group '{name}', which no deployment "
                            f"serves: {effect}{later}")
    for section, mapping in (("litellm_settings", lit.model_group_alias),
                             ("router_settings", router.model_group_alias)):
        for name, alias in parse_aliases(mapping).items():
            if groups.resolve(alias.target) is None:
                findings.append(f"config: '{section}.model_group_alias.{name}' points at model group "
                                f"'{alias.target}', which no deployment serves: requests for '{name}' "
                                f"get 404{later}")
    return findings


def _names(
    where: str, value: Sequence[Mapping[str, Sequence[str]] | str]
) -> Iterable[tuple[str, str, bool]]:
    """(path, group name, whether it is a fallback target) of every group a setting names."""
    for i, entry in enumerate(value):
        if isinstance(entry, str):  # default_fallbacks: targets only
            yield f"{where}[{i}]", entry, True
            continue
        for group, targets in entry.items():
            yield f"{where}[{i}]", group, False
            for target in targets:
                yield f"{where}[{i}].{group}", target, True


def unpriced(config: Config) -> list[str]:
    """Deployments neither the bundled price table nor their ``model_info`` prices."""
    pricer = Pricer(load_bundled_table())
    return [
        f"config: deployment '{d.model_name}' ({d.litellm_model}) has no known price: its calls would "
        "be recorded at $0 and count nothing against budgets; set model_info.input_cost_per_token and "
        "output_cost_per_token (or model_info.base_model to a priced model)"
        for d in config.deployments
        # A wildcard deployment serves many models, each priced (or warned about) when first used.
        if WILDCARD not in d.litellm_model and not pricer.price_for_deployment(d).known
    ]
