"""A PostgreSQL outage, through a TCP proxy between a real ``tollgate serve`` and the database:
keys the replica has seen keep working (bounded staleness), keys it has not and every database
write answer 503 with retry-after in the caller's format, readiness keeps answering (200, the
outage reported) on the main port and on ``--health-port``, and all recovers when the database
does. Both failure shapes: the server down (connections refused) and a stalled network."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.servers import free_port, replicas
from tests.e2e.tcp_proxy import TcpProxy, tcp_proxy
from tests.polling import wait_until
from tests.services import postgres_database

MASTER = "sk-outage-master"
CHAT = {"model": "local-fake", "messages": [{"role": "user", "content": "hi"}]}
# Longer than any bound the gateway keeps during an outage (2 s database timeout, 2 s readiness):
# a request that has not answered by then has hung.
CLIENT_TIMEOUT = 8.0


@dataclass
class Replica:
    url: str
    health_url: str
    proxy: TcpProxy
    seen_key: str  # used once while the database was up: cached

    def chat(self, key: str) -> httpx.Response:
        return httpx.post(
            f"{self.url}/v1/chat/completions",
            json=CHAT,
            headers={"Authorization": f"Bearer {key}"},
            timeout=CLIENT_TIMEOUT,
        )

    def generate_key(self) -> httpx.Response:
        return httpx.post(
            f"{self.url}/key/generate",
            json={"models": ["local-fake"]},
            headers={"Authorization": f"Bearer {MASTER}"},
            timeout=CLIENT_TIMEOUT,
        )


@pytest.fixture(scope="module")
def replica() -> Iterator[Replica]:
    with postgres_database() as db:
        parts = urlsplit(db)
        with tcp_proxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
            config = {
                "model_list": [{"model_name": "local-fake", "litellm_params": {"model": "fake/local"}}],
                "general_settings": {
                    "master_key": MASTER,
                    "database_url": f"postgresql://postgres@127.0.0.1:{proxy.port}{parts.path}",
                    "database_connection_timeout": 2,
                    # Every request asks the database again, so the outage path is what serves keys.
                    "user_api_key_cache_ttl": 0,
                },
            }
            health_port = free_port()
            with replicas(config, 1, "--health-port", str(health_port)) as [(url, _)]:
                replica = Replica(url, f"http://127.0.0.1:{health_port}", proxy, "")
                replica.seen_key = replica.generate_key().json()["key"]
                assert replica.chat(replica.seen_key).status_code == 200
                yield replica


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    error = response.json()["error"]
    assert "unavailable" in error["message"]
    assert "127.0.0.1" not in response.text  # where the database lives is not the caller's business


def _readiness(url: str) -> dict[str, str]:
    ready = httpx.get(f"{url}/health/readiness", timeout=CLIENT_TIMEOUT)
    assert ready.status_code == 200, ready.text
    body: dict[str, str] = ready.json()
    return body


@pytest.mark.parametrize("failure", ["cut", "pause"])
def test_database_outage_degrades_and_recovers(replica: Replica, failure: str) -> None:
    assert _readiness(replica.url)["db"] == "connected"
    unseen = replica.generate_key().json()["key"]  # made on the replica, never used there: not cached
    getattr(replica.proxy, failure)()
    try:
        for _ in range(3):  # the first request finds the outage, the next ones know of it
            assert replica.chat(replica.seen_key).status_code == 200
        _assert_unavailable(replica.chat(unseen))
        _assert_unavailable(replica.generate_key())
        for url in (replica.url, replica.health_url):
            assert _readiness(url)["db"].startswith("unreachable")
    finally:
        replica.proxy.resume()
    wait_until(lambda: replica.chat(unseen).status_code == 200, what="the new key served")
    assert replica.generate_key().status_code == 200
    for url in (replica.url, replica.health_url):
        assert _readiness(url)["db"] == "connected"
