"""Web UI page timings on a large spend log: N spend rows (default 2,000,000) in a fresh PostgreSQL
database, then every UI page opened in headless Chromium and every API call the pages make timed.

Seeds 200 keys, 20 teams and 50 users through the admin API, then the spend rows with one SQL
statement (90 days, 5 models, 2 % failures, spread over the keys, teams and users). Each page is
opened from the navigation ``--rounds`` times (median reported): the time from the click until the
page's data is drawn ("Loading…" gone). Each API call is timed over the same rounds with httpx.

    .venv/bin/python bench/ui_pages.py [--rows 2000000] [--rounds 5] [--keep]

Needs PostgreSQL on 127.0.0.1:5432 (user postgres) and Debian's chromium; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pg

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
MASTER = "sk-bench-master"
MODELS = ("gpt-ui", "claude-ui", "nova-ui", "llama-ui", "mistral-ui")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGES = {"Keys": "All keys", "Teams": "All teams", "Users": "All users", "Organizations": "All organizations",
         "Models": "All models", "Usage": "Spend over time", "Logs": "Requests", "Playground": "Chat",
         "Audit": "Admin writes"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def seed_rows(database: str, keys: list[tuple[str, str]], rows: int) -> None:
    values = ",".join(f"({i + 1}, '{token}', '{alias}')" for i, (token, alias) in enumerate(keys))
    models = ",".join(f"'{m}'" for m in MODELS)
    step = 90 * 86400 / rows
    pg.psql(f"""
        WITH k(n, token, alias) AS (VALUES {values})
        INSERT INTO {pg.SPEND_TABLE} (request_id, api_key, key_alias, user_id, team_id, model_group,
            deployment_id, provider_model, started_at, ended_at, prompt_tokens, completion_tokens,
            cache_read_tokens, cache_write_tokens, spend, status_code, tags, metadata, client_format,
            requested_model, attempts, stream)
        SELECT 'bench-' || i, k.token, k.alias, 'user-' || (i % 50), 'team-' || (i % 20),
            (ARRAY[{models}])[1 + i % 5], 'dep', 'fake', now() - i * interval '{step} seconds',
            now() - i * interval '{step} seconds' + interval '400 milliseconds', 100 + i % 900, 50 + i % 400,
            0, 0, (100 + i % 900) * 0.000001 + (50 + i % 400) * 0.000002,
            CASE WHEN i % 50 = 0 THEN 429 ELSE 200 END, '["bench"]'::json, '{{}}'::json, 'openai',
            (ARRAY[{models}])[1 + i % 5], 1, false
        FROM generate_series(1, {rows}) AS i JOIN k ON k.n = 1 + i % {len(keys)}
    """, database)
    pg.psql(f"ANALYZE {pg.SPEND_TABLE}", database)


def seed_entities(api: httpx.Client) -> list[tuple[str, str]]:
    for t in range(20):
        api.post("/team/new", json={"team_id": f"team-{t}", "team_alias": f"Team {t}", "max_budget": 500,
                                    "budget_duration": "1mo"}).raise_for_status()
    for u in range(50):
        user = {"user_id": f"user-{u}", "user_email": f"user{u}@example.com"}
        api.post("/user/new", json=user).raise_for_status()
    keys = []
    for n in range(200):
        made = api.post("/key/generate", json={"key_alias": f"agent-{n:03d}", "team_id": f"team-{n % 20}",
                                               "user_id": f"user-{n % 50}", "max_budget": 50,
                                               "budget_duration": "1d"}).json()
        keys.append((made["token"], made["key_alias"]))
    return keys


def api_calls(keys: list[tuple[str, str]]) -> Calls:
    token = keys[7][0]
    return {
        "Keys: /ui/api/keys": ("/ui/api/keys", {"page": 1, "size": 25}),
        "Keys: search": ("/ui/api/keys", {"search": "agent-19", "page": 1, "size": 25}),
        "Teams: /ui/api/teams": ("/ui/api/teams", {"page": 1, "size": 25}),
        "Users: /ui/api/users": ("/ui/api/users", {"page": 1, "size": 25}),
        "Organizations": ("/ui/api/organizations", {"page": 1, "size": 25}),
        "Models: /model/info": ("/model/info", {}),
        "Usage: 30 days by key": ("/ui/api/usage", {"group_by": "key"}),
        "Usage: 30 days by model": ("/ui/api/usage", {"group_by": "model"}),
        "Usage: 90 days by team": ("/ui/api/usage", {"group_by": "team", "start_date": _days_ago(89)}),
        "Usage: one key, 30 days": ("/ui/api/usage", {"group_by": "model", "api_key": token}),
        "Budget status of a key": ("/ui/api/budget", {"key": token}),
        "Budget status of a team (1mo)": ("/ui/api/budget", {"team_id": "team-3"}),
        "Logs: newest 50": ("/spend/logs/ui", {"page_size": 50}),
        "Logs: page 20": ("/spend/logs/ui", {"page_size": 50, "page": 20}),
        "Logs: one key": ("/spend/logs/ui", {"api_key": token, "page_size": 50}),
        "Logs: failures of one model": ("/spend/logs/ui", {"status_filter": "failure", "model": "nova-ui"}),
        "Logs: by request id": ("/spend/logs/ui", {"request_id": "bench-123456"}),
        "Audit: /audit/logs": ("/audit/logs", {}),
    }


def _days_ago(days: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() - days * 86400))


Calls = dict[str, tuple[str, dict[str, object]]]


def time_api(api: httpx.Client, calls: Calls, rounds: int) -> dict[str, float]:
    out = {}
    for name, (path, params) in calls.items():
        samples = []
        for _ in range(rounds):
            start = time.perf_counter()
            api.get(path, params=params).raise_for_status()
            samples.append((time.perf_counter() - start) * 1000)
        out[name] = statistics.median(samples)
    return out


def time_pages(base: str, rounds: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    samples: dict[str, list[float]] = {name: [] for name in PAGES}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        page = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base).new_page()
        page.goto("/ui/")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(MASTER)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Keys", exact=True).wait_for()
        nav = page.get_by_role("navigation", name="Main")
        for _ in range(rounds + 1):  # the first round warms caches and loads each module once
            for name, marker in PAGES.items():
                start = time.perf_counter()
                nav.get_by_role("link", name=name, exact=True).click()
                page.get_by_role("heading", name=marker, exact=True).wait_for()
                # (wait_for_function would need 'unsafe-eval', which the page's CSP refuses)
                page.locator("main").get_by_text("Loading…").first.wait_for(state="detached")
                samples[name].append((time.perf_counter() - start) * 1000)
        browser.close()
    return {name: statistics.median(values[1:]) for name, values in samples.items()}


def main() -> int:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    args = parser.parse_args()
    name, url = pg.create_database()
    config = {"model_list": [{"model_name": m, "litellm_params": {"model": f"fake/{m}"}} for m in MODELS],
              "general_settings": {"master_key": MASTER, "database_url": url}}
    path = Path(tempfile.mkstemp(suffix=".yaml")[1])
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    server = None
    try:
        subprocess.run([PYTHON, "-m", "tollgate", "migrate", "--config", str(path)], check=True, env=env)
        port = 4000 + int.from_bytes(os.urandom(2), "big") % 20000
        base = f"http://127.0.0.1:{port}"
        argv = [PYTHON, "-m", "tollgate", "serve", "--config", str(path), "--host", "127.0.0.1",
                "--port", str(port)]
        server = subprocess.Popen(argv, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health/liveliness", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("tollgate did not start")
            time.sleep(0.1)
        with httpx.Client(base_url=base, headers={"authorization": f"Bearer {MASTER}"}, timeout=60) as api:
            log("seeding keys, teams and users …")
            keys = seed_entities(api)
            log(f"seeding {args.rows:,} spend rows …")
            started = time.monotonic()
            seed_rows(name, keys, args.rows)
            # Rows written straight into the table bypass the rollups the gateway keeps: rebuild.
            subprocess.run([PYTHON, "-m", "tollgate", "rollups", "rebuild", "--config", str(path)],
                           check=True, env=env)
            log(f"seeded and rolled up in {time.monotonic() - started:.0f} s; timing …")
            api_ms = time_api(api, api_calls(keys), args.rounds)
        page_ms = time_pages(base, args.rounds)
        rows = pg.spend_figures(name)[0]
        print(f"\n{rows:,} spend rows in PostgreSQL; median of {args.rounds} rounds\n")
        print("| page (click → data drawn, headless Chromium) | ms |\n|---|---:|")
        for page, ms in page_ms.items():
            print(f"| {page} | {ms:.0f} |")
        print("\n| API call | ms |\n|---|---:|")
        for call, ms in api_ms.items():
            print(f"| {call} | {ms:.0f} |")
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(10)
        path.unlink()
        if args.keep:
            log(f"kept database {name}: {url}")
        else:
            pg.drop_database(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
