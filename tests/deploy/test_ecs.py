"""deploy/ecs: the Fargate task definition, validated as ``RegisterTaskDefinition`` input by
botocore's own ECS model, and the CloudWatch metric filters as ``PutMetricFilter`` inputs, equal
to the table in docs/observability.md; then the settings that must agree with the image."""

from __future__ import annotations

import re
from typing import Any

import botocore.session
import botocore.validate
import pytest

from tests.deploy.artifacts import DEPLOY, LITELLM_CMD, ROOT, final_stage, load_json
from tollgate.cli import parser, serve_defaults

TASK = DEPLOY / "ecs" / "task-definition.json"
FILTERS = DEPLOY / "ecs" / "metric-filters.json"
# Fargate's CPU units -> the memory sizes (MiB) it accepts with them.
FARGATE_MEMORY = {
    "256": {512, 1024, 2048},
    "512": set(range(1024, 4097, 1024)),
    "1024": set(range(2048, 8193, 1024)),
    "2048": set(range(4096, 16385, 1024)),
    "4096": set(range(8192, 30721, 1024)),
}


def _errors(service: str, operation: str, params: Any) -> str:
    model = botocore.session.get_session().get_service_model(service).operation_model(operation)
    report = botocore.validate.ParamValidator().validate(params, model.input_shape)
    return str(report.generate_report()) if report.has_errors() else ""


def _containers() -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in load_json(TASK)["containerDefinitions"]}


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("environment", [])}


def test_task_definition_is_valid_register_task_definition_input() -> None:
    assert _errors("ecs", "RegisterTaskDefinition", load_json(TASK)) == ""


def test_validation_is_live() -> None:
    task = load_json(TASK)
    task["containerDefinitions"][0]["healthCheck"] = {"command": ["CMD"], "interval": "30"}
    assert "healthCheck.interval" in _errors("ecs", "RegisterTaskDefinition", task)


def test_fargate_arm64_with_a_valid_size() -> None:
    task = load_json(TASK)
    assert task["requiresCompatibilities"] == ["FARGATE"]
    assert task["networkMode"] == "awsvpc"
    assert task["runtimePlatform"] == {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"}
    assert int(task["memory"]) in FARGATE_MEMORY[task["cpu"]]
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/.+", task["taskRoleArn"])  # Bedrock comes from here
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/.+", task["executionRoleArn"])  # pulls secrets


def test_gateway_runs_litellm_arguments_with_the_health_port() -> None:
    gateway = _containers()["gateway"]
    assert tuple(gateway["command"]) == LITELLM_CMD
    args = parser(_env(gateway)).parse_args(["serve", *gateway["command"]])
    ports = {p["name"]: p["containerPort"] for p in gateway["portMappings"]}
    assert ports == {"http": args.port, "health": args.health_port}


def test_health_check_is_liveliness_with_a_ten_second_start() -> None:
    check = _containers()["gateway"]["healthCheck"]
    assert check["command"] == ["CMD", "tollgate", "healthcheck"]
    assert check["startPeriod"] == 10


def test_stop_timeout_covers_the_drain() -> None:
    gateway = _containers()["gateway"]
    drain = serve_defaults(_env(gateway)).graceful_timeout
    assert drain + 10 <= gateway["stopTimeout"] <= 120  # Fargate's maximum


def test_secrets_come_from_secrets_manager() -> None:
    for container in _containers().values():
        names = {s["name"] for s in container["secrets"]}
        assert {"DATABASE_URL", "LITELLM_MASTER_KEY"} <= names
        for secret in container["secrets"]:
            assert secret["valueFrom"].startswith("arn:aws:secretsmanager:"), secret
        assert not {"DATABASE_URL", "LITELLM_MASTER_KEY"} & set(_env(container))


def test_the_gateway_migrates_itself_and_the_file_system_is_read_only() -> None:
    containers = _containers()
    # No separate migration container: ``serve`` upgrades the schema on start (advisory lock).
    assert set(containers) == {"gateway"}
    gateway = containers["gateway"]
    assert "dependsOn" not in gateway
    assert "DISABLE_SCHEMA_UPDATE" not in _env(gateway)
    volumes = {v["name"] for v in load_json(TASK)["volumes"]}
    for container in containers.values():
        assert container["readonlyRootFilesystem"] is True
        mounts = {m["containerPath"] for m in container["mountPoints"] if m["sourceVolume"] in volumes}
        # ECS copies the owner of a Dockerfile VOLUME into the bind mount at the same path.
        assert set(final_stage().volumes) <= mounts


def test_logs_go_to_cloudwatch_where_the_metric_filters_look() -> None:
    groups = {f["logGroupName"] for f in load_json(FILTERS)}
    for container in _containers().values():
        logging = container["logConfiguration"]
        assert logging["logDriver"] == "awslogs"
        assert {logging["options"]["awslogs-group"]} == groups


def _observability_table() -> list[tuple[str, str, str]]:
    text = (ROOT / "docs" / "observability.md").read_text()
    rows = re.findall(r"^\| (\w+) \| `([^`]+)` \| `?([^`|]+?)`? \|$", text, flags=re.MULTILINE)
    assert len(rows) >= 8
    return [(name, pattern, value) for name, pattern, value in rows]


def test_metric_filters_are_the_documented_ones() -> None:
    filters = load_json(FILTERS)
    shipped = [
        (t["metricName"], f["filterPattern"], t["metricValue"])
        for f in filters for t in f["metricTransformations"]
    ]
    assert shipped == _observability_table()


@pytest.mark.parametrize("index", range(8))
def test_metric_filter_is_valid_put_metric_filter_input(index: int) -> None:
    metric_filter = load_json(FILTERS)[index]
    assert _errors("logs", "PutMetricFilter", metric_filter) == ""
    (transformation,) = metric_filter["metricTransformations"]
    assert transformation["dimensions"] == {"Model": "$.model"}
