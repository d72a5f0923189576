"""Schemathesis against the admin API's OpenAPI document (issue 13, item 16): a served ``tollgate``
on a fresh PostgreSQL database (where integer overflow and NUL bytes used to become 500s) gets a
bounded number of generated requests per operation, valid and invalid, as the master key; no answer
may be a 5xx. ~430 requests, a few seconds; raise ``EXAMPLES`` locally to dig deeper."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.e2e.admin_env import database, gateways, run_tollgate, write_config

MASTER = "sk-fuzz-master"
EXAMPLES = 10


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    with database("postgres") as db_url:
        config = {
            "model_list": [{"model_name": "local-fake", "litellm_params": {"model": "fake/local"}}],
            "general_settings": {"master_key": MASTER, "database_url": db_url, "store_model_in_db": True},
            # On, so /cache/ping and /cache/delete are fuzzed for real (off, they answer 503 by design).
            "litellm_settings": {"cache": True, "cache_params": {"type": "local"}},
        }
        path = write_config(config)
        try:
            assert run_tollgate(["migrate", "--config", str(path)]).returncode == 0
            with gateways(config, 1) as (url,):
                yield url
        finally:
            path.unlink()


def test_no_admin_operation_answers_a_server_error(served: str) -> None:
    schema = schemathesis.openapi.from_url(f"{served}/openapi.json")
    headers = {"Authorization": f"Bearer {MASTER}"}
    failures: list[str] = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def probe(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            response = case.call(base_url=served, headers=headers)
            if response.status_code >= 500:
                failures.append(f"{case.operation.label} -> {response.status_code}: "
                                f"body={case.body!r:.300} query={case.query!r:.200}")

        probe()
    assert calls > 100, "schemathesis generated too few requests to mean anything"
    assert not failures, "\n".join(failures[:20])
