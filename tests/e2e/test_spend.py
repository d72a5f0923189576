"""End to end: spend rows in a real SQLite file after SIGTERM (clean stop) and SIGKILL (crash,
replayed by the next start), exact spend for JSON and streaming in OpenAI and Anthropic formats,
/spend/logs filters, /metrics, and audit entries for key writes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.servers import free_port
from tests.polling import wait_until

MASTER = "sk-spend-master"
HEADERS = {"Authorization": f"Bearer {MASTER}"}
IN_PRICE, OUT_PRICE = Decimal("0.000001"), Decimal("0.000003")


def _config(db: Path, **general: Any) -> dict[str, Any]:
    info = {"input_cost_per_token": float(IN_PRICE), "output_cost_per_token": float(OUT_PRICE)}
    return {
        "model_list": [
            {"model_name": "priced", "litellm_params": {"model": "fake/priced"}, "model_info": info},
            {"model_name": "down", "litellm_params": {"model": "fake/down", "mock_error_status": 500},
             "model_info": info},
        ],
        "general_settings": {"master_key": MASTER, "database_url": f"sqlite:///{db}", **general},
    }


def _start(config: dict[str, Any], tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    import yaml

    port = free_port()
    path = tmp / f"config-{port}.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    log = (tmp / f"log-{port}.txt").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tollgate", "serve", "--config", str(path), "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def alive() -> bool:
        try:
            return httpx.get(f"{url}/health/liveliness", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(alive, timeout=30, interval=0.05, what=f"{url} answering")
    except AssertionError:
        proc.kill()
        raise RuntimeError((tmp / f"log-{port}.txt").read_text()) from None
    return proc, url


def _rows(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "select request_id, prompt_tokens, completion_tokens, spend, status_code from tollgate_spend_logs"
        ).fetchall()


def _chat(url: str, text: str) -> dict[str, Any]:
    body = {"model": "priced", "messages": [{"role": "user", "content": text}]}
    response = httpx.post(f"{url}/v1/chat/completions", json=body, headers=HEADERS, timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_sigterm_flushes_every_row(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    proc, url = _start(_config(db, proxy_batch_write_at=3600, spend_log_batch_size=10_000), tmp_path)
    for n in range(20):
        _chat(url, f"request number {n}")
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(20)
    assert len(_rows(db)) == 20


def test_sigkill_loses_nothing_older_than_the_spill_interval(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    config = _config(db, proxy_batch_write_at=3600, spend_log_batch_size=10_000)
    proc, url = _start(config, tmp_path)
    for n in range(15):
        _chat(url, f"crash number {n}")
    spill = tmp_path / "tollgate-spend-spill"
    wait_until(
        lambda: sum(len(p.read_bytes().splitlines()) for p in spill.glob("*.jsonl")) == 15,
        what="every row in the spill file",
    )
    assert _rows(db) == []  # nothing reached the database yet
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    again, _ = _start(config, tmp_path)  # replays the dead process's spill file
    try:
        wait_until(lambda: len(_rows(db)) >= 15, what="the spill file replayed")
        assert len(_rows(db)) == 15
    finally:
        os.killpg(again.pid, signal.SIGTERM)
        again.wait(20)


def test_exact_spend_formats_filters_metrics_and_audit(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    proc, url = _start(_config(db, proxy_batch_write_at=0.05), tmp_path)
    try:
        key = httpx.post(f"{url}/key/generate", json={"key_alias": "k1", "user_id": "u1"}, headers=HEADERS)
        assert key.status_code == 200, key.text
        user_key = key.json()["key"]
        auth = {"Authorization": f"Bearer {user_key}"}
        text = "exactly forty characters of user text!!!"
        openai = httpx.post(
            f"{url}/v1/chat/completions", headers=auth, timeout=10,
            json={"model": "priced", "messages": [{"role": "user", "content": text}]},
        ).json()
        with httpx.stream(
            "POST", f"{url}/v1/chat/completions", headers=auth, timeout=10,
            json={"model": "priced", "stream": True, "messages": [{"role": "user", "content": text}]},
        ) as streamed:
            assert streamed.status_code == 200
            streamed.read()
        anthropic = httpx.post(
            f"{url}/v1/messages", headers={"x-api-key": user_key}, timeout=10,
            json={"model": "priced", "max_tokens": 100, "messages": [{"role": "user", "content": text}]},
        ).json()
        failed = httpx.post(
            f"{url}/v1/chat/completions", headers=auth, timeout=10,
            json={"model": "down", "messages": [{"role": "user", "content": text}]},
        )
        assert failed.status_code >= 500
        prompt, completion = openai["usage"]["prompt_tokens"], openai["usage"]["completion_tokens"]
        assert prompt == 10  # 40 characters / 4, the fake upstream's deterministic usage
        assert anthropic["usage"]["input_tokens"] == prompt
        one = IN_PRICE * prompt + OUT_PRICE * completion
        wait_until(lambda: len(_rows(db)) >= 4, what="the four spend rows written")
        rows = _rows(db)
        assert len(rows) == 4
        priced = [r for r in rows if r[4] == 200]
        assert [Decimal(r[3]) for r in priced] == [one, one, one]
        assert [Decimal(r[3]) for r in rows if r[4] != 200] == [Decimal(0)]
        info = httpx.get(f"{url}/key/info", params={"key": user_key}, headers=HEADERS).json()
        assert Decimal(str(info["info"]["spend"])) == 3 * one

        logs = httpx.get(f"{url}/spend/logs", params={"api_key": user_key}, headers=HEADERS).json()
        assert len(logs) == 4 and {log["user"] for log in logs} == {"u1"}
        assert sorted(log["metadata"]["client_format"] for log in logs) == [
            "anthropic", "openai", "openai", "openai"
        ]
        assert httpx.get(f"{url}/spend/logs", params={"user_id": "nobody"}, headers=HEADERS).json() == []
        one_id = logs[0]["request_id"]
        by_id = httpx.get(f"{url}/spend/logs", params={"request_id": one_id}, headers=HEADERS).json()
        assert [log["request_id"] for log in by_id] == [one_id]
        # Keyset pages: a full page names the next page's cursor; following it walks the rest.
        first = httpx.get(f"{url}/spend/logs", params={"api_key": user_key, "page_size": 3}, headers=HEADERS)
        cursor = first.headers["x-tollgate-next-cursor"]
        rest = httpx.get(f"{url}/spend/logs", params={"api_key": user_key, "page_size": 3, "cursor": cursor},
                         headers=HEADERS)
        assert "x-tollgate-next-cursor" not in rest.headers
        assert [r["request_id"] for r in first.json() + rest.json()] == [r["request_id"] for r in logs]
        # The reports (read from the rollups the writer keeps) say what the rows say.
        token = info["info"]["token"]
        activity = httpx.get(f"{url}/user/daily/activity", params={"api_key": token}, headers=HEADERS)
        totals = activity.json()["metadata"]
        assert (totals["total_api_requests"], totals["total_failed_requests"]) == (4, 1)
        assert Decimal(str(totals["total_spend"])) == Decimal(str(float(3 * one)))
        report = httpx.get(f"{url}/global/spend/report", params={"group_by": "api_key"}, headers=HEADERS)
        keys = [k for day in report.json() for k in day["api_keys"] if k["api_key"] == token]
        assert sum(k["api_requests"] for k in keys) == 4

        assert httpx.get(f"{url}/metrics").status_code == 401  # labels name keys and teams
        metrics = httpx.get(f"{url}/metrics", headers=HEADERS).text
        assert 'tollgate_requests_total{deployment=' in metrics
        assert "tollgate_upstream_errors_total" in metrics

        httpx.post(f"{url}/key/update", json={"key": user_key, "max_budget": 5}, headers=HEADERS)
        httpx.post(f"{url}/key/delete", json={"keys": [user_key]}, headers=HEADERS)
        audit = httpx.get(f"{url}/audit/logs", headers=HEADERS).json()["audit_logs"]
        assert [a["action"] for a in audit] == ["/key/delete", "/key/update", "/key/generate"]
        assert all(user_key not in str(a) for a in audit)
        assert audit[1]["before_value"]["max_budget"] is None
        assert audit[1]["updated_values"]["max_budget"] == 5
        denied = httpx.get(f"{url}/audit/logs", headers=auth)
        assert denied.status_code in (401, 403)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
