"""Manifests for the diagnose scenarios on the test bed: one broken thing each (a failure switch of
testbed/kwok/pod-failures.yaml, or an object the real control plane refuses to satisfy), and healthy
namespaces that must say nothing. Objects are dicts; `manifest` makes the stream `kubectl apply` reads."""

from __future__ import annotations

import json
from typing import Any

FAIL_LABEL = "testbed.operate-mcp.dev/fail"
IMAGE = "registry.example/shop/app:1.0"

Obj = dict[str, Any]


def manifest(*objects: Obj) -> str:
    """One `kubectl apply -f -` stream (a v1 List) holding `objects`."""
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})


def container(name: str, image: str = IMAGE, **fields: Any) -> Obj:
    """A container with small requests (many scenarios share two fake nodes with other sessions)."""
    fields.setdefault("resources", {"requests": {"cpu": "10m", "memory": "16Mi"}})
    return {"name": name, "image": image, **fields}


def http_probe(port: int | str = 8080, path: str = "/healthz") -> Obj:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": 10}


def secret_env(name: str, secret: str, key: str) -> Obj:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def configmap_volume(volume: str, configmap: str) -> Obj:
    return {"name": volume, "configMap": {"name": configmap}}


def pod_template(app: str, containers: list[Obj], fail: str | None = None, **pod_spec: Any) -> Obj:
    labels = {"app": app, **({FAIL_LABEL: fail} if fail else {})}
    return {"metadata": {"labels": labels}, "spec": {"containers": containers, **pod_spec}}


def deployment(
    name: str,
    namespace: str,
    containers: list[Obj] | None = None,
    *,
    fail: str | None = None,
    replicas: int = 1,
    **pod_spec: Any,
) -> Obj:
    """A Deployment selecting `app: name`; `fail` puts the bed's failure switch on its pod template."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": pod_template(name, containers or [container(name)], fail, **pod_spec),
        },
    }


def statefulset(name: str, namespace: str, replicas: int = 3) -> Obj:
    """Pods started side by side (Parallel), governed by the headless Service of the same name."""
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"app": name}},
            "template": pod_template(name, [container(name, ports=[{"name": "peer", "containerPort": 7000}])]),
        },
    }


def job(name: str, namespace: str) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {"restartPolicy": "Never", "containers": [container(name)]}},
        },
    }


def service(
    name: str,
    namespace: str,
    selector: dict[str, str],
    *,
    port: int = 80,
    target: int | str = 8080,
    headless: bool = False,
) -> Obj:
    svc_spec: Obj = {"selector": selector, "ports": [{"name": "http", "port": port, "targetPort": target}]}
    if headless:
        svc_spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace}, "spec": svc_spec}


def configmap(name: str, namespace: str, data: dict[str, str]) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}


def secret(name: str, namespace: str, data: dict[str, str]) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": data,
    }


def pvc(name: str, namespace: str, storage_class: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage_class,
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }


def web_pods(namespace: str, replicas: int = 30) -> Obj:
    """The healthy web tier: pods that declare the port their Service targets and mount their ConfigMap."""
    return deployment(
        "web",
        namespace,
        [
            container(
                "web",
                ports=[{"name": "http", "containerPort": 8080}],
                readinessProbe=http_probe("http"),
                volumeMounts=[{"name": "config", "mountPath": "/etc/web"}],
            )
        ],
        replicas=replicas,
        volumes=[configmap_volume("config", "web-config")],
    )


def healthy_namespace(namespace: str, replicas: int = 30) -> list[Obj]:
    """Many pods, all well: a Deployment behind a Service, a StatefulSet behind its headless Service, the
    ConfigMap they use, and a Job that runs to completion."""
    return [
        configmap("web-config", namespace, {"listen": ":8080"}),
        web_pods(namespace, replicas),
        service("web", namespace, {"app": "web"}, target="http"),
        statefulset("db", namespace),
        service("db", namespace, {"app": "db"}, port=7000, target=7000, headless=True),
        job("migrate", namespace),
    ]
