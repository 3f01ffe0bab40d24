"""The deployment files: the Kubernetes base is what deploy/k8s/generate.py writes and
validates against the Kubernetes schema (kubernetes-validate, strict), each overlay does
so once built, docker-compose.yml validates against the Compose Specification's schema
(the copy check-jsonschema ships), every service in services/ is in Kubernetes and in
compose, and no secret is written into a manifest.

Overlays are built here the way ``kubectl apply -k`` builds them, for the fields they use:
namespace, images, replicas and JSON 6902 patches selected by kind and name."""

from __future__ import annotations

import copy
import importlib.resources
import importlib.util
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).parents[1]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES = "1.33.0"
SECRET_NAMES = ("SECRET", "KEY", "DATABASE_URL", "SMTP_URL", "PASSWORD")


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("k8s_generate", K8S / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def base() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in _load(K8S / "base" / name)]


def _pointer(doc: Any, path: str) -> tuple[Any, str]:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]
    for part in parts[:-1]:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc, parts[-1]


def _apply(doc: dict[str, Any], ops: list[dict[str, Any]]) -> None:
    for op in ops:
        parent, key = _pointer(doc, op["path"])
        index: Any = int(key) if isinstance(parent, list) else key
        if op["op"] == "remove":
            del parent[index]
        elif op["op"] == "replace":
            assert (index < len(parent)) if isinstance(parent, list) else key in parent, op
            parent[index] = op["value"]
        else:
            parent[index] = op["value"]


def build(overlay: str) -> list[dict[str, Any]]:
    k = yaml.safe_load((K8S / "overlays" / overlay / "kustomization.yaml").read_text())
    assert k["resources"] == ["../../base"]
    docs = copy.deepcopy(base())
    counts = {r["name"]: r["count"] for r in k.get("replicas", [])}
    tags = {i["name"]: i["newTag"] for i in k.get("images", [])}
    for doc in docs:
        doc["metadata"]["namespace"] = k["namespace"]
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] in counts:
            doc["spec"]["replicas"] = counts.pop(doc["metadata"]["name"])
        pods = [doc["spec"]["template"]] if doc["kind"] in ("Deployment", "Job") else []
        for pod in pods:
            for container in pod["spec"]["containers"]:
                if container["image"] in tags:
                    container["image"] += ":" + tags[container["image"]]
    assert counts == {}, f"replicas for deployments that do not exist: {counts}"
    for patch in k.get("patches", []):
        target, ops = patch["target"], yaml.safe_load(patch["patch"])
        hit = [
            d
            for d in docs
            if d["kind"] == target["kind"]
            and target.get("name", d["metadata"]["name"]) == (d["metadata"]["name"])
        ]
        assert hit, f"a patch of {overlay} matches nothing: {target}"
        for doc in hit:
            _apply(doc, ops)
    return docs


def _validate(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_the_base_is_what_the_generator_writes() -> None:
    for path, text in _generator().files().items():
        assert path.read_text() == text, f"{path} is stale: run python deploy/k8s/generate.py"


def test_every_base_manifest_is_valid_kubernetes() -> None:
    docs = base()
    for doc in docs:
        _validate(doc)
    kinds = sorted({d["kind"] for d in docs})
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Job",
        "PodDisruptionBudget",
        "Service",
    ]
    broken = copy.deepcopy(next(d for d in docs if d["kind"] == "Deployment"))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(broken)  # the validator does refuse what is wrong


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_each_overlay_builds_into_valid_kubernetes(overlay: str) -> None:
    docs = build(overlay)
    for doc in docs:
        _validate(doc)
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    gateway = by[("Deployment", "stackbe-gateway")]
    hpa = by[("HorizontalPodAutoscaler", "stackbe-gateway")]
    if overlay == "dev":
        assert gateway["spec"]["replicas"] == 1 and hpa["spec"]["minReplicas"] == 1
        image = gateway["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image.endswith(":dev")
    else:
        assert gateway["spec"]["replicas"] == 3 and hpa["spec"]["minReplicas"] == 3
        assert by[("Ingress", "stackbe-gateway")]["spec"]["tls"][0]["secretName"]


def _compose_errors(doc: dict[str, Any]) -> list[str]:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / "compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(
        schema, format_checker=jsonschema.FormatChecker()
    )
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(doc)]


def test_the_compose_file_is_valid_compose() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert _compose_errors(compose) == []
    broken = copy.deepcopy(compose)
    broken["services"]["identity"]["healthcheck"]["test"] = {"curl": "/health"}
    broken["services"]["gateway"]["restart_policy"] = "always"
    errors = _compose_errors(broken)  # the schema does refuse what is wrong
    assert any("healthcheck.test" in e for e in errors), errors
    assert any("'restart_policy' was unexpected" in e for e in errors), errors


def test_every_service_is_deployed_in_kubernetes_and_in_compose() -> None:
    services = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "src").is_dir())
    names = {d["metadata"]["name"] for d in base() if d["kind"] == "Deployment"}
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for service in services:
        assert f"stackbe-{service}" in names, service
        assert service in compose, service
        if service != "gateway":
            assert f"stackbe-{service}-worker" in names, service
            assert {f"{service}-worker", f"{service}-migrate"} <= set(compose), service
        assert "healthcheck" in compose[service] or service == "gateway", service
    assert "healthcheck" in compose["gateway"]
    assert sorted(_generator().SERVICES) == services


def test_pods_run_locked_down_and_secrets_are_only_referenced() -> None:
    for doc in base():
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for c in pod["containers"]:
            ctx = c["securityContext"]
            assert ctx["readOnlyRootFilesystem"] and not ctx["allowPrivilegeEscalation"]
            assert c["resources"]["requests"] and c["resources"]["limits"]
            for env in c.get("env", []):
                if any(word in env["name"] for word in SECRET_NAMES):
                    assert "value" not in env and "secretKeyRef" in env["valueFrom"], env
        if doc["kind"] == "Deployment" and "worker" not in doc["metadata"]["name"]:
            container = pod["containers"][0]
            assert container["livenessProbe"]["httpGet"]["path"] == "/health"
            assert container["readinessProbe"]["httpGet"]["path"] == "/ready"


def test_the_nats_values_and_the_postgres_example_are_what_they_say() -> None:
    nats = yaml.safe_load((K8S / "nats" / "values.yaml").read_text())
    assert nats["config"]["cluster"] == {"enabled": True, "replicas": 3}
    config = next(d for d in base() if d["kind"] == "ConfigMap")["data"]
    assert config["STACKBE_STREAM_REPLICAS"] == "3"  # a replica of each stream per node
    assert nats["config"]["jetstream"]["enabled"] is True
    cluster = _load(K8S / "postgres" / "cluster.yaml")
    assert [d["kind"] for d in cluster] == ["Cluster", "ScheduledBackup"]
    assert cluster[0]["apiVersion"] == "postgresql.cnpg.io/v1"
    assert cluster[0]["spec"]["instances"] == 3
