"""The guardrail tests' shared world: one fake Bedrock, one PostgreSQL database, one gateway."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.admin_env import run_tollgate, write_config
from tests.e2e.guardrails.world import World, guardrails_config
from tests.e2e.servers import fake_upstream, gateway
from tests.services import postgres_database


@pytest.fixture(scope="package")
def world() -> Iterator[World]:
    with fake_upstream() as upstream, postgres_database() as database:
        config = guardrails_config(upstream, database)
        path = write_config(config)
        migrated = run_tollgate(["migrate", "--config", str(path)])
        path.unlink()
        assert migrated.returncode == 0, migrated.stderr
        with gateway(config, env={"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": upstream}) as url:
            yield World(url, upstream)
