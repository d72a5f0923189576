"""What a call cost: usage × price per token, in exact ``Decimal`` dollars.

Prices come from the bundled table ``tollgate/data/prices.json`` (its header names its source
and date), looked up by the deployment's ``base_model``, upstream model id, then public name,
with LiteLLM provider prefixes (``bedrock/converse/``, ``anthropic/`` …) and Bedrock
inference-profile prefixes (``us.``, ``eu.``, ``apac.``, ``global.`` …) stripped. Each field a
deployment's ``model_info`` sets (``input_cost_per_token`` …, parsed into
``Deployment.info.price``) wins over the table's. Cache tokens without a cache price are charged
at the input price. An unknown model costs ``Decimal(0)`` and is reported once per model through
the ``warn`` callback, never raised.
May import: ``canonical``, ``config``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources

from tollgate.canonical import Usage
from tollgate.config import Deployment, Price

_PROVIDER_PREFIXES = (
    "bedrock/converse/", "bedrock/invoke/", "bedrock/", "converse/", "invoke/",
    "anthropic/", "openai/", "text-completion-openai/",
)
_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.", "ap.")
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class PriceTable:
    prices: Mapping[str, Price]
    source: str = ""
    as_of: str = ""

    def lookup(self, model: str) -> Price | None:
        """The table's price for a model id, or ``None``; prefixes are stripped as needed."""
        for candidate in _candidates(model):
            price = self.prices.get(candidate)
            if price is not None:
                return price
        return None


def _candidates(model: str) -> list[str]:
    names = [model]
    stripped = model
    for prefix in _PROVIDER_PREFIXES:
        if stripped.startswith(prefix):
            stripped = stripped[len(prefix) :]
            names.append(stripped)
            break
    for prefix in _PROFILE_PREFIXES:
        # Only a profile prefix followed by a provider.model id ("us.anthropic.claude-…").
        if stripped.startswith(prefix) and "." in stripped[len(prefix) :]:
            names.append(stripped[len(prefix) :])
            break
    return names


def parse_table(raw: Mapping[str, object]) -> PriceTable:
    models = raw.get("models")
    if not isinstance(models, dict):
        raise ValueError("price table: 'models' must be a mapping")
    prices: dict[str, Price] = {}
    for name, row in models.items():
        if not isinstance(row, dict):
            raise ValueError(f"price table: models.{name} must be a mapping")
        prices[name] = Price(
            input=_decimal(row.get("input")),
            output=_decimal(row.get("output")),
            cache_read=_decimal(row.get("cache_read")),
            cache_write=_decimal(row.get("cache_write")),
        )
    return PriceTable(prices, str(raw.get("source", "")), str(raw.get("as_of", "")))


def _decimal(value: object) -> Decimal | None:
    if value is None:
        return None
    if not isinstance(value, str | int):
        raise ValueError(f"price table: prices are decimal strings (got {value!r})")
    return Decimal(value)


def load_bundled_table() -> PriceTable:
    text = resources.files("tollgate").joinpath("data/prices.json").read_text(encoding="utf-8")
    return parse_table(json.loads(text))


def merge(base: Price | None, override: Price) -> Price:
    """``override``'s fields where set, else ``base``'s."""
    if base is None:
        return override
    return Price(
        input=override.input if override.input is not None else base.input,
        output=override.output if override.output is not None else base.output,
        cache_read=override.cache_read if override.cache_read is not None else base.cache_read,
        cache_write=override.cache_write if override.cache_write is not None else base.cache_write,
    )


def cost(usage: Usage, price: Price) -> Decimal:
    """Dollars for ``usage`` at ``price``; ``Usage.input_tokens`` excludes cache tokens."""
    input_price = price.input or ZERO
    cache_read = price.cache_read if price.cache_read is not None else input_price
    cache_write = price.cache_write if price.cache_write is not None else input_price
    return (
        usage.input_tokens * input_price
        + usage.output_tokens * (price.output or ZERO)
        + usage.cache_read_tokens * cache_read
        + usage.cache_write_tokens * cache_write
    )


class Pricer:
    """Prices deployments and model names against one table; warns once per unknown model."""

    def __init__(self, table: PriceTable, *, warn: Callable[[str], None] | None = None) -> None:
        self._table = table
        self._warn = warn
        self._warned: set[str] = set()
        self._by_name: dict[str, Price] = {}
        # Per deployment id, with the deployment it was computed for: a /model/update that
        # replaces the deployment object recomputes its price.
        self._by_deployment: dict[str, tuple[Deployment, Price]] = {}

    def price_for_deployment(self, deployment: Deployment) -> Price:
        cached = self._by_deployment.get(deployment.id)
        if cached is not None and cached[0] is deployment:
            return cached[1]
        price = self._price_deployment(deployment)
        self._by_deployment[deployment.id] = (deployment, price)
        return price

    def _price_deployment(self, deployment: Deployment) -> Price:
        info = deployment.info
        names = [n for n in (info.base_model, deployment.upstream_model, deployment.model_name) if n]
        base = next((p for p in (self._table.lookup(n) for n in names) if p is not None), None)
        price = merge(base, deployment.info.price)
        if not price.known:
            self._unknown(deployment.upstream_model or deployment.model_name)
        return price

    def price_for(self, model: str) -> Price:
        """The table's price for a model name (``Price()`` if unknown, warned once)."""
        price = self._by_name.get(model)
        if price is None:
            price = self._table.lookup(model) or Price()
            if not price.known:
                self._unknown(model)
            self._by_name[model] = price
        return price

    def cost(self, usage: Usage, deployment: Deployment) -> Decimal:
        return cost(usage, self.price_for_deployment(deployment))

    def _unknown(self, model: str) -> None:
        if model in self._warned:
            return
        self._warned.add(model)
        if self._warn is not None:
            self._warn(
                f"no price known for model {model!r}: its calls are recorded at $0; set "
                "model_info.input_cost_per_token / output_cost_per_token to price it"
            )
