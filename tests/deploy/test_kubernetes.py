"""deploy/kubernetes: the kustomize base and example overlay, rendered by ``kubectl kustomize``
and validated offline against the Kubernetes schemas (kubernetes-validate, strict) for the oldest
and newest versions they support; then held together: selectors, probes, ports, arguments,
grace period and writable mounts must agree with each other and with the image."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.artifacts import DEPLOY, config_warnings, env_example, final_stage, run, tool
from tollgate.cli import parser, serve_defaults

KUBE = DEPLOY / "kubernetes"
# preStop sleep (the lifecycle action) is on by default from 1.30; 1.37 is the newest schema shipped.
VERSIONS = ("1.30.0", "1.37.0")


@cache
def _render(target: str) -> tuple[dict[str, Any], ...]:
    out = run([tool("kubectl"), "kustomize", str(KUBE / target)])
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def _one(docs: tuple[dict[str, Any], ...], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind}"
    return found[0]


def _gateway(docs: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    containers = _one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "gateway")


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("target", ["base", "overlays/example"])
def test_manifests_match_the_kubernetes_schemas(target: str, version: str) -> None:
    checked = set()
    for doc in _render(target):
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: no schema ships offline (checked by hand below)
        kubernetes_validate.validate(doc, version, strict=True)
        checked.add(doc["kind"])
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap",
            "ServiceAccount"} <= checked


def test_schema_validation_is_live() -> None:
    """A misspelt field fails the strict check, so the test above can fail."""
    deployment = dict(_one(_render("base"), "Deployment"))
    deployment["spec"] = {**deployment["spec"], "replica": 2}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


@pytest.mark.parametrize("target", ["base", "overlays/example"])
def test_selectors_pick_the_gateway_pods(target: str) -> None:
    docs = _render(target)
    deployment = _one(docs, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]

    def selects(selector: dict[str, str]) -> bool:
        return bool(selector) and all(pod_labels.get(k) == v for k, v in selector.items())

    assert selects(deployment["spec"]["selector"]["matchLabels"])
    assert selects(_one(docs, "Service")["spec"]["selector"])
    assert selects(_one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"])
    target_ref = _one(docs, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target_ref["kind"], target_ref["name"]) == ("Deployment", deployment["metadata"]["name"])


def test_rolling_upgrade_keeps_two_replicas_serving() -> None:
    docs = _render("base")
    spec = _one(docs, "Deployment")["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert spec["strategy"]["rollingUpdate"]["maxSurge"] >= 1
    assert _one(docs, "HorizontalPodAutoscaler")["spec"]["minReplicas"] >= 2
    assert _one(docs, "PodDisruptionBudget")["spec"]["minAvailable"] < spec["replicas"]


def test_probes_hit_the_health_port_the_gateway_opens() -> None:
    gateway = _gateway(_render("base"))
    args = parser(_env(gateway)).parse_args(["serve", *gateway["args"]])
    ports = {p["name"]: p["containerPort"] for p in gateway["ports"]}
    assert ports == {"http": args.port, "health": args.health_port}
    assert gateway["livenessProbe"]["httpGet"] == {"path": "/health/liveliness", "port": "health"}
    assert gateway["readinessProbe"]["httpGet"] == {"path": "/health/readiness", "port": "health"}
    assert gateway["startupProbe"]["httpGet"]["port"] == "health"


def test_grace_period_covers_pre_stop_and_drain() -> None:
    docs = _render("base")
    pod = _one(docs, "Deployment")["spec"]["template"]["spec"]
    gateway = _gateway(docs)
    pre_stop = gateway["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = serve_defaults(_env(gateway)).graceful_timeout
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + drain + 10  # + the spend-log flush


def test_containers_are_locked_down_with_the_image_volumes_writable() -> None:
    pod = _one(_render("base"), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(final_stage().user.split(":")[0])  # type: ignore[union-attr]
    for container in pod["containers"]:
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
        assert set(final_stage().volumes) <= writable, container["name"]


def test_the_gateway_migrates_the_schema_itself() -> None:
    """No init container: each pod's ``serve`` upgrades the schema on start, under a PostgreSQL
    advisory lock, so replicas starting together are safe."""
    docs = _render("base")
    pod = _one(docs, "Deployment")["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    assert "DISABLE_SCHEMA_UPDATE" not in _env(_gateway(docs))


def test_config_comes_from_the_generated_config_map() -> None:
    docs = _render("base")
    config_map = _one(docs, "ConfigMap")
    assert config_map["metadata"]["name"].startswith("tollgate-config-")  # hashed: a change rolls
    volumes = _one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "config", "configMap": {"name": config_map["metadata"]["name"]}} in volumes
    mount = next(m for m in _gateway(docs)["volumeMounts"] if m["name"] == "config")
    assert mount["mountPath"] in _gateway(docs)["args"]


def test_shipped_config_loads_without_warnings(tmp_path: Path) -> None:
    config_map = _one(_render("base"), "ConfigMap")
    path = tmp_path / "config.yaml"
    path.write_text(config_map["data"]["config.yaml"])
    env = {name: "dummy" for name in ("LITELLM_MASTER_KEY", "DATABASE_URL", "AWS_REGION_NAME")}
    deployments, warnings = config_warnings(path, env)
    assert deployments == 2
    assert warnings == []


def test_secrets_are_referenced_by_name_with_the_documented_keys() -> None:
    gateway = _gateway(_render("base"))
    refs = [e["valueFrom"]["secretKeyRef"] for e in gateway["env"] if "valueFrom" in e]
    assert {r["name"] for r in refs} == {"tollgate"}
    assert {r["key"] for r in refs} <= set(env_example(commented=True)) | {"REDIS_HOST"}
    assert {"DATABASE_URL", "LITELLM_MASTER_KEY"} <= {r["key"] for r in refs if not r.get("optional")}


def test_service_account_shows_irsa() -> None:
    docs = _render("base")
    account = _one(docs, "ServiceAccount")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    pod = _one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]


def test_service_monitor_scrapes_the_metrics_port() -> None:
    docs = _render("overlays/example")
    monitor = _one(docs, "ServiceMonitor")
    service = _one(docs, "Service")
    labels = service["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    assert "ServiceMonitor" not in {d["kind"] for d in _render("base")}  # optional
