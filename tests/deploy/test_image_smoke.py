"""The image's start, without a container engine: a fresh wheel and the locked dependencies in a
clean virtual environment (tests/deploy/image.py), started with the Dockerfile's ENTRYPOINT, ENV
and WORKDIR and LiteLLM's CMD (``--config /app/config.yaml --num_workers 2 --run_gunicorn``),
against the real PostgreSQL and Redis on this machine. It must reach ready on the health port,
answer a chat, print the JSON metric line the CloudWatch filters read, pass the image's
HEALTHCHECK command, and stop cleanly on SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from tests.deploy.artifacts import DEPLOY, LITELLM_CMD, final_stage, load_json
from tests.deploy.image import Image, build
from tests.e2e.servers import fake_upstream, free_port
from tests.polling import wait_until
from tests.services import postgres_database, redis_prefix

MASTER_KEY = "sk-smoke-" + secrets.token_hex(8)


def _psql(sql: str, database: str = "postgres") -> str:
    import asyncio

    import asyncpg

    async def go() -> str:
        conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{database}", timeout=5)
        try:
            return str(await conn.fetchval(sql))
        finally:
            await conn.close()

    return asyncio.run(go())


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    return build(tmp_path_factory.mktemp("image"))


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    base_url: str
    health_url: str
    env: dict[str, str]
    stdout: Path
    database: str


def _wait(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> httpx.Response:
    """The first 200 from ``url``; fails at once, with the log's tail, if the gateway exits."""

    def answered() -> httpx.Response | None:
        if process.poll() is not None:
            raise AssertionError(f"gateway exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            response = httpx.get(url, timeout=2)
        except httpx.HTTPError:
            return None
        return response if response.status_code == 200 else None

    try:
        return wait_until(answered, timeout=timeout, what=f"a 200 from {url}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log.read_text()[-4000:]}") from None


@pytest.fixture(scope="module")
def gateway(image: Image) -> Iterator[Running]:
    with postgres_database("tollgate_smoke") as url, redis_prefix("tollgate-smoke") as prefix, \
            fake_upstream() as upstream:
        yield from _start(image, upstream, url, prefix)


def _start(image: Image, upstream: str, database_url: str, prefix: str) -> Iterator[Running]:
    port, health_port = free_port(), free_port()
    # deploy/config.yaml, as compose mounts it, with the fake upstream where compose has it.
    config = (DEPLOY / "config.yaml").read_text().replace("http://fake-upstream:8900", upstream)
    (image.paths["/app"] / "config.yaml").write_text(config)
    env = image.env({
        "DATABASE_URL": database_url,
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": "6379",
        "TOLLGATE_REDIS_PREFIX": prefix,
        "LITELLM_MASTER_KEY": MASTER_KEY,
        "AWS_REGION_NAME": "us-east-1",
        "SEPARATE_HEALTH_APP": "1",
        "SEPARATE_HEALTH_PORT": str(health_port),
        "PORT": str(port),
    })
    stdout = image.root / "gateway.log"
    with stdout.open("wb") as out:
        process = subprocess.Popen(
            image.command(list(LITELLM_CMD)), cwd=image.workdir, env=env,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        yield Running(
            process, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{health_port}", env, stdout,
            database_url.rsplit("/", 1)[1],
        )
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def ready(gateway: Running) -> dict[str, object]:
    """The start-up the ECS health check's 10 s start period relies on, as readiness reports it."""
    answer = _wait(f"{gateway.health_url}/health/readiness", gateway.process, gateway.stdout, 60)
    report: dict[str, object] = answer.json()
    return report


def test_ready_on_the_health_port_with_postgresql_and_redis(ready: dict[str, object]) -> None:
    assert ready["status"] == "healthy"
    assert ready["db"] == "connected"
    assert ready["counters"] == "connected"


def test_serve_created_the_schema_itself(gateway: Running, ready: dict[str, object]) -> None:
    """No `tollgate migrate` ran first: the image's start brought the empty database to the schema."""
    from tollgate.store.migrations import HEAD

    assert _psql("SELECT version_num FROM alembic_version", gateway.database) == HEAD


def test_health_port_answers_litellm_paths(gateway: Running, ready: dict[str, object]) -> None:
    assert httpx.get(f"{gateway.health_url}/health/liveliness").json() == "I'm alive!"
    assert httpx.get(f"{gateway.health_url}/health").status_code == 200  # the guide's ALB check


def test_the_installed_wheel_serves_the_ui_and_swagger(gateway: Running, ready: dict[str, object]) -> None:
    """The UI's files and Swagger UI's bundle ship inside the wheel: nothing else is deployed."""
    page = httpx.get(f"{gateway.base_url}/ui/")
    assert page.status_code == 200 and 'src="static/js/app.js"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    script = httpx.get(f"{gateway.base_url}/ui/static/js/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    docs = httpx.get(f"{gateway.base_url}/docs")
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
    bundle = httpx.get(f"{gateway.base_url}/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000  # the npm/PyPI bundle, not a stub


def test_image_healthcheck_command_passes(image: Image, gateway: Running, ready: dict[str, object]) -> None:
    command = re.search(r"CMD (\[.*\])", final_stage().healthcheck or "")
    assert command is not None
    check = subprocess.run(
        image.command(json.loads(command.group(1))[1:]), cwd=image.workdir, env=gateway.env,
        capture_output=True, text=True, timeout=30,
    )
    assert check.returncode == 0, check.stderr


def test_chat_answers_and_prints_the_metric_line(gateway: Running, ready: dict[str, object]) -> None:
    client = openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key=MASTER_KEY, max_retries=0)
    reply = client.chat.completions.create(model="fake-gpt", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content
    # Every field the shipped CloudWatch metric filters read is in the line the gateway prints.
    fields: set[str] = set()
    for metric_filter in load_json(DEPLOY / "ecs" / "metric-filters.json"):
        fields |= set(re.findall(r"\$\.(\w+)", metric_filter["filterPattern"]))
        for transformation in metric_filter["metricTransformations"]:
            fields |= set(re.findall(r"\$\.(\w+)", transformation["metricValue"]))
            fields |= {v.removeprefix("$.") for v in transformation.get("dimensions", {}).values()}
    assert {"litellm_metric", "prompt_tokens", "status_code", "model"} <= fields

    def metric_line() -> dict[str, object] | None:
        lines = [raw for raw in gateway.stdout.read_text().splitlines()
                 if raw.startswith("{") and '"litellm_metric"' in raw]
        return json.loads(lines[-1]) if lines else None

    line = wait_until(metric_line, what="a JSON metric line on stdout")
    assert fields <= set(line), fields - set(line)
    assert line["model"] == "fake-gpt"
    assert line["litellm_metric"] is True


def test_docs_walk_through_key_chat_spend(gateway: Running, ready: dict[str, object]) -> None:
    """docs/deploy.md's compose steps: a key for an application, a chat with it, its spend row."""
    admin = {"Authorization": f"Bearer {MASTER_KEY}"}
    created = httpx.post(f"{gateway.base_url}/key/generate", headers=admin,
                         json={"models": ["fake-gpt", "claude-fast"], "key_alias": "demo"})
    assert created.status_code == 200, created.text
    app_key = created.json()["key"]
    client = openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key=app_key, max_retries=0)
    reply = client.chat.completions.create(model="fake-gpt", messages=[{"role": "user", "content": "hello"}])
    assert reply.choices[0].message.content
    spend = f"{gateway.base_url}/spend/logs"
    rows: list[dict[str, object]] = wait_until(  # the spend log is written in batches (every second)
        lambda: httpx.get(spend, params={"api_key": app_key}, headers=admin).json(),
        timeout=15, what="the key's spend row",
    )
    assert len(rows) == 1
    assert rows[0]["model_group"] == "fake-gpt"


def test_sigterm_stops_cleanly(gateway: Running, ready: dict[str, object]) -> None:
    os.kill(gateway.process.pid, signal.SIGTERM)  # what `docker stop` sends to PID 1
    assert gateway.process.wait(timeout=60) == 0
    rows = _psql("SELECT count(*) FROM tollgate_spend_logs", gateway.database)
    assert int(rows) >= 1
