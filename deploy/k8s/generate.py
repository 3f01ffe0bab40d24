"""Write StackBE's Kubernetes manifests (``deploy/k8s/base``) from one description of the
services, so every service is deployed the same way: ``python deploy/k8s/generate.py``.

Per service: a Deployment serving HTTP (probes on /health and /ready) and, except for
the gateway, a Deployment of its worker, each with a HorizontalPodAutoscaler and a
PodDisruptionBudget; a Service; and a migration Job. The gateway also gets an Ingress.
Containers run as non-root with a read-only root filesystem. Secrets are referenced by
name and key, never written here. ``tests/test_deploy.py`` checks the files are what this
writes, and validates them against the Kubernetes schema.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent
BASE = HERE / "base"
IMAGE = "ghcr.io/stackbe/stackbe"
UID = 10001
PRE_STOP_SECONDS = 5

# name -> (port, has a worker, has migrations)
SERVICES: dict[str, tuple[int, bool, bool]] = {
    "gateway": (8080, False, False),
    "identity": (8101, True, True),
    "catalog": (8102, True, True),
    "subscriptions": (8103, True, True),
    "entitlements": (8104, True, True),
    "webhooks": (8105, True, True),
}
UPSTREAMS = [name for name in SERVICES if name != "gateway"]


def _labels(name: str, role: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": f"stackbe-{name}", "app.kubernetes.io/component": role}


def _secret(name: str, key: str) -> dict[str, Any]:
    return {"valueFrom": {"secretKeyRef": {"name": name, "key": key}}}


def _env(name: str) -> list[dict[str, Any]]:
    """Settings: the shared ones from the stackbe-config ConfigMap and stackbe-secrets;
    each service's own database login from stackbe-<name>-database."""
    env: list[dict[str, Any]] = [
        {"name": "STACKBE_INTERNAL_SECRET", **_secret("stackbe-secrets", "internal-secret")},
    ]
    if name != "gateway":
        env += [
            {"name": "STACKBE_DATABASE_URL", **_secret(f"stackbe-{name}-database", "url")},
            {"name": "STACKBE_ENCRYPTION_KEY", **_secret("stackbe-secrets", "encryption-key")},
        ]
    if name == "identity":
        env.append(
            {"name": "STACKBE_JWT_SIGNING_KEYS", **_secret("stackbe-secrets", "jwt-signing-keys")}
        )
        env.append({"name": "STACKBE_SMTP_URL", **_secret("stackbe-secrets", "smtp-url")})
    if name == "gateway":
        env += [
            {"name": f"STACKBE_{up.upper()}_URL", "value": f"http://stackbe-{up}:{port}"}
            for up, (port, _, _) in SERVICES.items()
            if up != "gateway"
        ]
    return env


def _container(name: str, args: list[str], port: int | None) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": IMAGE,
        "args": args,
        "envFrom": [{"configMapRef": {"name": "stackbe-config"}}],
        "env": _env(name),
        "resources": {
            "requests": {"cpu": "100m", "memory": "160Mi"},
            "limits": {"cpu": "1", "memory": "384Mi"},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 (an emptyDir)
    }
    if port is not None:
        container["ports"] = [{"name": "http", "containerPort": port}]
        probe = {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10}
        container["livenessProbe"] = probe
        container["readinessProbe"] = {
            "httpGet": {"path": "/ready", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 2,
        }
        container["startupProbe"] = {**probe, "periodSeconds": 2, "failureThreshold": 30}
        # Endpoints drop the pod before it stops taking connections on SIGTERM.
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}}
    return container


def _pod(name: str, role: str, args: list[str], port: int | None) -> dict[str, Any]:
    return {
        "metadata": {"labels": _labels(name, role)},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "fsGroup": UID},
            "automountServiceAccountToken": False,
            # SIGTERM: stop taking work, finish in-flight work, then exit (operations.md):
            # the preStop pause, then STACKBE_SHUTDOWN_GRACE_SECONDS, with room to spare.
            "terminationGracePeriodSeconds": 40,
            "containers": [_container(name, args, port)],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        },
    }


def _deployment(name: str, role: str, args: list[str], port: int | None) -> list[dict[str, Any]]:
    full = f"stackbe-{name}" + ("" if role == "serve" else f"-{role}")
    selector = {"matchLabels": _labels(name, role)}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": full, "labels": _labels(name, role)},
        "spec": {
            "replicas": 2,
            "selector": selector,
            "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": _pod(name, role, args, port),
        },
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": full},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": full},
            "minReplicas": 2,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    }
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": full},
        "spec": {"minAvailable": 1, "selector": selector},
    }
    return [deployment, hpa, pdb]


def service_manifests(name: str) -> list[dict[str, Any]]:
    port, worker, migrations = SERVICES[name]
    module = f"stackbe_{name}"
    serve = [module, "serve", "--host", "0.0.0.0"]  # noqa: S104 (the pod's own address)
    docs = _deployment(name, "serve", serve, port)
    docs.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"stackbe-{name}", "labels": _labels(name, "serve")},
            "spec": {
                "selector": _labels(name, "serve"),
                "ports": [{"name": "http", "port": port, "targetPort": "http"}],
            },
        }
    )
    if worker:
        docs += _deployment(name, "worker", [module, "worker"], None)
    if migrations:
        pod = _pod(name, "migrate", [module, "migrate"], None)
        pod["spec"]["restartPolicy"] = "Never"
        docs.append(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": f"stackbe-{name}-migrate", "labels": _labels(name, "migrate")},
                "spec": {"backoffLimit": 3, "ttlSecondsAfterFinished": 3600, "template": pod},
            }
        )
    if name == "gateway":
        docs.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": "stackbe-gateway"},
                "spec": {
                    "rules": [
                        {
                            "host": "billing.example.com",
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "pathType": "Prefix",
                                        "backend": {
                                            "service": {
                                                "name": "stackbe-gateway",
                                                "port": {"name": "http"},
                                            }
                                        },
                                    }
                                ]
                            },
                        }
                    ]
                },
            }
        )
    return docs


def config_map() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "stackbe-config"},
        "data": {
            "STACKBE_NATS_URL": "nats://nats:4222",
            "STACKBE_PUBLIC_URL": "https://billing.example.com",
            "STACKBE_LOG_JSON": "true",
            "STACKBE_DATABASE_POOL_SIZE": "10",
            "STACKBE_SHUTDOWN_GRACE_SECONDS": "25",
            # New streams: one replica per node of the NATS cluster (nats/values.yaml).
            "STACKBE_STREAM_REPLICAS": "3",
            "STACKBE_STREAM_MAX_AGE_DAYS": "30",
        },
    }


def files() -> dict[Path, str]:
    """Every file of the base, by path: what ``main`` writes and the test compares."""
    out: dict[Path, str] = {}
    header = "# Written by deploy/k8s/generate.py; edit that, then run it.\n"
    out[BASE / "config.yaml"] = header + yaml.safe_dump(config_map(), sort_keys=False)
    for name in SERVICES:
        docs = service_manifests(name)
        out[BASE / f"{name}.yaml"] = header + yaml.safe_dump_all(docs, sort_keys=False)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "labels": [{"pairs": {"app.kubernetes.io/part-of": "stackbe"}}],
        "resources": ["config.yaml", *(f"{name}.yaml" for name in SERVICES)],
        "images": [{"name": IMAGE, "newTag": "latest"}],
    }
    out[BASE / "kustomization.yaml"] = header + yaml.safe_dump(kustomization, sort_keys=False)
    return out


def main() -> None:
    BASE.mkdir(parents=True, exist_ok=True)
    for path, text in files().items():
        path.write_text(text)
        print(f"wrote {path.relative_to(HERE.parent.parent)}", file=sys.stderr)


if __name__ == "__main__":
    main()
