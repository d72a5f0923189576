"""One gateway for the web UI tests: fake models on SQLite, the master key as the admin password,
and SSO against a loopback OIDC issuer the tests run. One browser for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.auth.oidc_issuer import LocalIssuer, serve_issuer
from tests.e2e.admin_env import sqlite_database
from tests.e2e.servers import gateway
from tests.ui.browser import Watched, launch, open_page

MASTER = "sk-ui-master"
PRICE = {"input_cost_per_token": "0.000001", "output_cost_per_token": "0.000002"}


@pytest.fixture(scope="package")
def issuer() -> Iterator[LocalIssuer]:
    with serve_issuer() as running:
        yield running


@pytest.fixture(scope="package")
def base(issuer: LocalIssuer) -> Iterator[str]:
    config = {
        "model_list": [
            {"model_name": "gpt-ui", "litellm_params": {"model": "fake/gpt-ui"}, "model_info": PRICE},
            {"model_name": "claude-ui", "litellm_params": {"model": "fake/claude-ui"}, "model_info": PRICE},
        ],
        "general_settings": {"master_key": MASTER, "store_model_in_db": True},
    }
    env = {
        "GENERIC_CLIENT_ID": issuer.client_id, "GENERIC_CLIENT_SECRET": issuer.client_secret,
        "GENERIC_AUTHORIZATION_ENDPOINT": f"{issuer.url}/authorize",
        "GENERIC_TOKEN_ENDPOINT": f"{issuer.url}/token",
        "GENERIC_USERINFO_ENDPOINT": f"{issuer.url}/userinfo",
        "ALLOWED_EMAIL_DOMAINS": "example.com", "PROXY_ADMIN_ID": "root-admin",
    }
    with sqlite_database() as url:
        config["general_settings"]["database_url"] = url
        with gateway(config, env=env) as running:
            yield running


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    yield from launch()


@pytest.fixture
def admin_api(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, headers={"authorization": f"Bearer {MASTER}"}, timeout=10) as client:
        yield client


@pytest.fixture
def watched(browser: Any, base: str) -> Iterator[Watched]:
    page = open_page(browser, base)
    yield page
    page.close()


def sign_in(w: Watched, username: str = "admin", password: str = MASTER) -> None:
    page = w.page
    page.goto("/ui/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Keys", exact=True).wait_for()
