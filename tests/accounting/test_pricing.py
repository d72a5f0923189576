"""Pricing: the bundled table, prefixes, cache tokens, overrides, unknown models."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tollgate.accounting.pricing import Pricer, cost, load_bundled_table, merge, parse_table
from tollgate.canonical import Usage
from tollgate.config import Deployment, ModelInfo, Price

TABLE = load_bundled_table()


NO_PRICE = Price()


def deployment(upstream: str, price: Price = NO_PRICE, base_model: str | None = None) -> Deployment:
    return Deployment(
        id="d1", model_name="public", provider="bedrock", upstream_model=upstream,
        litellm_model=f"bedrock/{upstream}", info=ModelInfo(price=price, base_model=base_model),
    )


def test_table_header_names_its_source_and_date() -> None:
    assert "litellm" in TABLE.source.lower()
    assert TABLE.as_of[:2] == "20"
    assert len(TABLE.prices) > 80


@pytest.mark.parametrize(
    ("model", "input_per_mtok", "output_per_mtok"),
    [
        ("anthropic.claude-3-5-sonnet-20241022-v2:0", "3", "15"),
        ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", "3", "15"),
        ("eu.anthropic.claude-3-7-sonnet-20250219-v1:0", "3", "15"),
        ("apac.anthropic.claude-sonnet-4-20250514-v1:0", "3", "15"),
        ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "3", "15"),
        ("bedrock/converse/us.anthropic.claude-opus-4-1-20250805-v1:0", "15", "75"),
        ("anthropic.claude-haiku-4-5-20251001-v1:0", "1", "5"),
        ("anthropic.claude-opus-4-5-20251101-v1:0", "5", "25"),
        ("us.amazon.nova-micro-v1:0", "0.035", "0.14"),
        ("amazon.nova-lite-v1:0", "0.06", "0.24"),
        ("amazon.nova-pro-v1:0", "0.8", "3.2"),
        ("amazon.nova-premier-v1:0", "2.5", "12.5"),
        ("meta.llama3-3-70b-instruct-v1:0", "0.72", "0.72"),
        ("mistral.mistral-large-2402-v1:0", "8", "24"),
        ("amazon.titan-embed-text-v2:0", "0.02", "0"),
        ("cohere.embed-english-v3", "0.1", "0"),
        ("claude-3-5-haiku-20241022", "0.8", "4"),
        ("anthropic/claude-sonnet-4-5", "3", "15"),
        ("openai/gpt-4o", "2.5", "10"),
        ("gpt-4o-mini", "0.15", "0.6"),
        ("gpt-4.1", "2", "8"),
        ("o3-mini", "1.1", "4.4"),
        ("text-embedding-3-small", "0.02", "0"),
    ],
)
def test_lookup(model: str, input_per_mtok: str, output_per_mtok: str) -> None:
    price = TABLE.lookup(model)
    assert price is not None
    assert price.input == Decimal(input_per_mtok) / 1_000_000
    assert price.output == Decimal(output_per_mtok) / 1_000_000


def test_unknown_and_prefix_only_matches() -> None:
    assert TABLE.lookup("no-such-model") is None
    assert TABLE.lookup("us.no-such.model") is None


def test_cost_counts_cache_tokens_at_their_prices() -> None:
    price = TABLE.lookup("anthropic.claude-3-5-sonnet-20241022-v2:0")
    assert price is not None
    usage = Usage(input_tokens=1000, output_tokens=500, cache_read_tokens=2000, cache_write_tokens=4000)
    # 1000×3 + 500×15 + 2000×0.3 + 4000×3.75 per million
    assert cost(usage, price) == Decimal("0.0261")


def test_cache_tokens_without_cache_price_cost_the_input_price() -> None:
    price = Price(input=Decimal("0.000001"), output=Decimal("0.000002"))
    assert cost(Usage(input_tokens=1, output_tokens=1, cache_read_tokens=10), price) == Decimal("0.000013")


def test_cost_is_exact_decimal() -> None:
    price = TABLE.lookup("amazon.nova-micro-v1:0")
    assert price is not None
    total = sum((cost(Usage(input_tokens=1), price) for _ in range(1000)), Decimal(0))
    assert total == Decimal("0.000035")


def test_model_info_overrides_win_per_field() -> None:
    pricer = Pricer(TABLE)
    override = Price(input=Decimal("0.00001"))
    price = pricer.price_for_deployment(deployment("anthropic.claude-3-5-haiku-20241022-v1:0", override))
    assert price.input == Decimal("0.00001")
    assert price.output == Decimal("0.000004")
    assert price.cache_read == Decimal("0.00000008")
    usage = Usage(input_tokens=10, output_tokens=10)
    custom = deployment("custom-model", Price(Decimal("0.5"), Decimal("1")))
    assert pricer.cost(usage, custom) == Decimal("15")


def test_base_model_is_looked_up_first() -> None:
    price = Pricer(TABLE).price_for_deployment(deployment("arn:aws:bedrock:profile/x", base_model="gpt-4o"))
    assert price.input == Decimal("0.0000025")


def test_unknown_model_costs_zero_and_warns_once() -> None:
    warnings: list[str] = []
    pricer = Pricer(TABLE, warn=warnings.append)
    for _ in range(3):
        assert pricer.cost(Usage(100, 100), deployment("mystery-model")) == Decimal(0)
        assert pricer.price_for("mystery-model") == Price()
    pricer.price_for("other-model")
    assert len(warnings) == 2
    assert "mystery-model" in warnings[0]


def test_merge_and_parse_table() -> None:
    base = Price(Decimal(1), Decimal(2), Decimal(3), Decimal(4))
    assert merge(base, Price(output=Decimal(9))) == Price(Decimal(1), Decimal(9), Decimal(3), Decimal(4))
    assert merge(None, Price(output=Decimal(9))) == Price(output=Decimal(9))
    table = parse_table({"source": "s", "as_of": "d", "models": {"m": {"input": "0.1"}}})
    assert table.lookup("m") == Price(input=Decimal("0.1"))
    with pytest.raises(ValueError):
        parse_table({"models": {"m": {"input": 0.1}}})
