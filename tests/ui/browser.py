"""Headless Chromium for the web UI tests: Debian's ``chromium`` driven by Playwright (its own
browser download does not work without the internet), and a page that records console errors
and every request to a host other than the gateway."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.services import missing

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str | None:
    env = os.environ.get("TOLLGATE_CHROMIUM")
    found = env or shutil.which("chromium") or shutil.which("chromium-browser")
    return found if found and os.path.exists(found) else None


def launch() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        missing("no Chromium: install Debian's package (apt-get install chromium); .ci/run does")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Watched:
    """A page, and what it did that a test must be able to fail on."""

    page: Any
    base: str
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def close(self) -> None:
        self.page.context.close()


def open_page(browser: Any, base: str, *, width: int = 1280, height: int = 900) -> Watched:
    context = browser.new_context(viewport={"width": width, "height": height}, base_url=base)
    page = context.new_page()
    page.set_default_timeout(15_000)
    watched = Watched(page, base)

    def console(message: Any) -> None:
        if message.type == "error":
            watched.errors.append(f"console: {message.text} ({message.location.get('url')})")

    def request(req: Any) -> None:
        url = req.url
        if not url.startswith(base) and not url.startswith(("data:", "blob:")):
            watched.foreign.append(url)

    page.on("console", console)
    page.on("pageerror", lambda exc: watched.errors.append(f"page error: {exc}"))
    page.on("request", request)
    return watched
