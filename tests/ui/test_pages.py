"""Every page of the web UI in a real browser, with real data: keys made in the UI work and are
shown once, teams keep their budget, usage charts a key's spend, logs list requests, the
playground answers; no page logs a JavaScript error or contacts a host other than the gateway."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai

from tests.polling import wait_until
from tests.ui.browser import Watched, open_page
from tests.ui.conftest import sign_in

PAGES = {  # nav link → something only that page shows once loaded
    "Keys": "All keys", "Teams": "All teams", "Users": "All users", "Organizations": "All organizations",
    "Models": "All models", "Usage": "Spend over time", "Logs": "Requests", "Playground": "Chat",
    "Audit": "Admin writes",
}


def until(check: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    return wait_until(check, timeout=timeout, what=what)


def spent(admin_api: httpx.Client, key: str) -> float:
    """The key's spend once its requests are in the spend log (written in batches)."""
    return float(until(lambda: admin_api.get("/key/info", params={"key": key}).json()["info"]["spend"],
                       "the spend log to record the key's requests"))


def chat(base: str, key: str, text: str) -> str:
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=key)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-ui", messages=[{"role": "user", "content": text}])
    assert raw.parse().choices[0].message.content
    return raw.headers["x-request-id"]


def screenshot(w: Watched, name: str) -> None:
    """Set TOLLGATE_UI_SCREENSHOTS=docs to refresh the README's pictures from the real pages."""
    folder = os.environ.get("TOLLGATE_UI_SCREENSHOTS")
    if folder:
        w.page.screenshot(path=str(Path(folder) / name), full_page=False)


def test_every_page_renders_with_data_and_no_errors(
    watched: Watched, admin_api: httpx.Client, base: str
) -> None:
    key = admin_api.post("/key/generate", json={"key_alias": "tour-key", "max_budget": 3}).json()["key"]
    chat(base, key, "a request for the tour")
    admin_api.post("/team/new", json={"team_alias": "tour-team", "max_budget": 9}).raise_for_status()
    spent(admin_api, key)
    sign_in(watched)
    page = watched.page
    nav = page.get_by_role("navigation", name="Main")
    for link, marker in PAGES.items():
        nav.get_by_role("link", name=link, exact=True).click()
        page.get_by_role("heading", name=link, exact=True).wait_for()
        page.get_by_role("heading", name=marker, exact=True).wait_for()
        until(lambda: page.get_by_text("Loading…").count() == 0, f"the {link} page to load")
        assert nav.get_by_role("link", name=link, exact=True).get_attribute("aria-current") == "page"
    page.get_by_role("link", name="Keys", exact=True).click()
    page.get_by_role("cell", name="tour-key", exact=True).wait_for()
    page.get_by_role("link", name="Teams", exact=True).click()
    page.get_by_role("cell", name="tour-team", exact=True).wait_for()
    page.get_by_role("link", name="Models", exact=True).click()
    page.get_by_role("cell", name="gpt-ui", exact=True).wait_for()
    assert "$1.00 / 1M tokens" in page.locator("main").inner_text()
    page.get_by_role("link", name="Logs", exact=True).click()
    page.get_by_role("cell", name="tour-key", exact=True).first.wait_for()
    page.get_by_role("link", name="Audit", exact=True).click()
    page.get_by_role("cell", name="/team/new", exact=True).first.wait_for()
    for docs in ("/docs", "/"):
        page.goto(docs)
        page.get_by_text("/key/generate").first.wait_for()
    assert watched.errors == []
    assert watched.foreign == []


def test_key_made_in_the_ui_works_and_is_shown_once(watched: Watched, base: str) -> None:
    sign_in(watched)
    page = watched.page
    page.get_by_text("Create a key").click()
    page.get_by_label("Key alias").fill("ui-made-key")
    page.get_by_label("Max budget (USD)").fill("2.5")
    page.get_by_label("Budget duration").select_option("1d")
    page.get_by_role("button", name="Create").click()
    secret = page.get_by_test_id("new-key").inner_text()
    assert secret.startswith("sk-")
    assert page.get_by_role("button", name="Copy key").is_visible()
    chat(base, secret, "hello from a UI key")
    page.get_by_role("cell", name="ui-made-key", exact=True).wait_for()
    assert "$2.50 per 1d" in page.locator("tbody").inner_text()
    page.reload()
    page.get_by_role("cell", name="ui-made-key", exact=True).wait_for()
    assert secret not in page.content()
    screenshot(watched, "ui-keys.png")
    assert watched.errors == [] and watched.foreign == []


def test_team_created_with_a_budget_has_it(watched: Watched, admin_api: httpx.Client) -> None:
    sign_in(watched)
    page = watched.page
    page.get_by_role("link", name="Teams", exact=True).click()
    page.get_by_text("Create a team").click()
    page.get_by_label("Team alias").fill("budgeted-team")
    page.get_by_label("Max budget (USD)").fill("12.5")
    page.get_by_label("Budget duration").select_option("1mo")
    page.get_by_label("Models").fill("gpt-ui")
    page.get_by_role("button", name="Create").click()
    page.get_by_text("Team budgeted-team created with $12.50 per 1mo").wait_for()
    found = admin_api.get("/ui/api/teams", params={"search": "budgeted-team"}).json()["teams"]
    kept = [(t["max_budget"], t["budget_duration"], t["models"]) for t in found]
    assert kept == [(12.5, "1mo", ["gpt-ui"])]
    info = admin_api.get("/team/info", params={"team_id": found[0]["team_id"]}).json()["team_info"]
    assert info["budget_reset_at"]
    page.get_by_role("button", name="Details of team budgeted-team").click()
    assert "$12.50 remaining" in page.locator(".budget").inner_text()
    assert watched.errors == []


def test_usage_shows_a_keys_spend_with_a_chart(watched: Watched, admin_api: httpx.Client, base: str) -> None:
    key = admin_api.post("/key/generate", json={"key_alias": "usage-key"}).json()["key"]
    for i in range(3):
        chat(base, key, f"usage request number {i} with some words in it")
    spend = spent(admin_api, key)
    until(lambda: admin_api.get("/key/info", params={"key": key}).json()["info"]["spend"] >= spend
          and len(admin_api.get("/spend/logs/ui", params={"api_key": key}).json()["data"]) == 3, "3 log rows")
    spend = admin_api.get("/key/info", params={"key": key}).json()["info"]["spend"]
    sign_in(watched)
    page = watched.page
    page.get_by_role("link", name="Usage", exact=True).click()
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="usage-key", exact=True))
    row.wait_for()
    shown = row.locator("td").nth(1).inner_text()
    assert shown.startswith("$") and abs(float(shown[1:].replace(",", "")) - spend) <= spend * 0.01
    assert page.locator("svg.chart rect").count() >= 1
    assert page.locator("figure .legend").get_by_text("usage-key").count() == 1
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    assert "usage-key" in Path(download.value.path()).read_text()
    screenshot(watched, "ui-usage.png")
    row.get_by_role("button", name="Budget of usage-key").click()
    page.get_by_text("no budget set").wait_for()
    assert watched.errors == [] and watched.foreign == []


def test_logs_list_a_request_and_find_it_by_id(watched: Watched, admin_api: httpx.Client, base: str) -> None:
    key = admin_api.post("/key/generate", json={"key_alias": "logs-key"}).json()["key"]
    request_id = chat(base, key, "please log me")
    until(lambda: admin_api.get("/spend/logs/ui", params={"request_id": request_id}).json()["data"],
          "the log row")
    sign_in(watched)
    page = watched.page
    page.get_by_role("link", name="Logs", exact=True).click()
    page.get_by_role("cell", name="logs-key", exact=True).first.wait_for()
    page.get_by_label("Request ID").fill(request_id)
    page.get_by_role("button", name="Filter").click()
    until(lambda: page.locator("tbody tr").count() == 1 and "logs-key" in page.locator("tbody").inner_text(),
          "the filtered list")
    text = page.locator("tbody").inner_text()
    assert "gpt-ui" in text and "200 success" in text and "$" in text and " ms" in text
    page.get_by_role("button", name=f"Details of request {request_id}").click()
    page.get_by_role("heading", name=f"Request {request_id}").wait_for()
    page.get_by_label("Request ID").fill("")
    page.get_by_label("Status").select_option("failure")
    page.get_by_role("button", name="Filter").click()
    page.get_by_text("No requests match").wait_for()
    assert watched.errors == [] and watched.foreign == []


def test_playground_streams_an_answer_with_tokens_and_cost(watched: Watched) -> None:
    sign_in(watched)
    page = watched.page
    page.get_by_role("link", name="Playground", exact=True).click()
    page.get_by_label("Model").select_option("claude-ui")
    page.get_by_label("Message").fill("hello playground")
    page.get_by_role("button", name="Send").click()
    until(lambda: "hello playground" in page.get_by_test_id("answer").inner_text(), "the answer")
    until(lambda: "cost $" in page.get_by_test_id("playground-stats").inner_text(), "the recorded cost")
    assert "tokens in" in page.get_by_test_id("playground-stats").inner_text()
    assert watched.errors == [] and watched.foreign == []


def test_readable_at_phone_width(browser: Any, base: str) -> None:
    w = open_page(browser, base, width=390, height=800)
    try:
        sign_in(w)
        page = w.page
        for link in ("Keys", "Usage", "Logs"):
            page.get_by_role("link", name=link, exact=True).click()
            page.get_by_role("heading", name=PAGES[link], exact=True).wait_for()
            page.wait_for_load_state("networkidle")
            assert page.evaluate("document.documentElement.scrollWidth") <= 392, link
        screenshot(w, "ui-phone.png")
        assert w.errors == []
    finally:
        w.close()
