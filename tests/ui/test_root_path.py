"""The web UI served under SERVER_ROOT_PATH, in a real browser: every link it draws and every
request it makes stays under the prefix (the platform's ingress routes nothing else to the
gateway), signing in and out works, pages render, a key made in the UI is shown, and the API docs
load their assets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.servers import gateway
from tests.ui.browser import Watched, open_page
from tests.ui.conftest import MASTER, PRICE

PREFIX = "/llm-gateway"
PAGES = {"Keys": "All keys", "Teams": "All teams", "Users": "All users", "Models": "All models",
         "Usage": "Spend over time", "Logs": "Requests", "Playground": "Chat", "Audit": "Admin writes"}


@pytest.fixture(scope="module")
def prefixed() -> Iterator[str]:
    config = {
        "model_list": [{"model_name": "gpt-ui", "litellm_params": {"model": "fake/gpt-ui"},
                        "model_info": PRICE}],
        "general_settings": {"master_key": MASTER, "database_url": "memory"},
    }
    with gateway(config, env={"SERVER_ROOT_PATH": PREFIX}) as url:
        yield url


@pytest.fixture
def page_under_prefix(browser: Any, prefixed: str) -> Iterator[tuple[Watched, list[str]]]:
    watched = open_page(browser, prefixed)
    paths: list[str] = []
    watched.page.on("request", lambda req: paths.append(urlsplit(req.url).path)
                    if req.url.startswith(prefixed) else None)
    yield watched, paths
    watched.close()


def test_the_ui_under_a_prefix_stays_under_it(
    page_under_prefix: tuple[Watched, list[str]], prefixed: str
) -> None:
    watched, paths = page_under_prefix
    page = watched.page
    page.goto(f"{prefixed}{PREFIX}/ui")  # redirected to …/ui/
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(MASTER)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Keys", exact=True).wait_for()
    nav = page.get_by_role("navigation", name="Main")
    for link, marker in PAGES.items():
        assert (nav.get_by_role("link", name=link, exact=True).get_attribute("href")
                == f"{PREFIX}/ui/{link.lower()}")
        nav.get_by_role("link", name=link, exact=True).click()
        page.get_by_role("heading", name=marker, exact=True).wait_for()
        assert urlsplit(page.url).path == f"{PREFIX}/ui/{link.lower()}"
    nav.get_by_role("link", name="Keys", exact=True).click()
    page.get_by_text("Create a key").click()
    page.get_by_label("Key alias").fill("prefixed-key")
    page.get_by_role("button", name="Create").click()
    assert page.get_by_test_id("new-key").inner_text().startswith("sk-")
    page.get_by_role("cell", name="prefixed-key", exact=True).wait_for()
    page.reload()  # the page's own URL, under the prefix, draws the same page
    page.get_by_role("cell", name="prefixed-key", exact=True).wait_for()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in").wait_for()
    page.goto(f"{prefixed}{PREFIX}/docs")
    page.get_by_text("/key/generate").first.wait_for()
    assert watched.errors == [] and watched.foreign == []
    outside = [p for p in paths if not p.startswith(f"{PREFIX}/")]
    assert outside == [], outside
    assert f"{PREFIX}/key/generate" in paths and f"{PREFIX}/openapi.json" in paths
