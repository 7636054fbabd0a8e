"""ConfigMaps no pod or pod template refers to (info only: left-overs to tidy, never a failure).

The rule, kept narrow so a healthy namespace stays silent: a ConfigMap is reported only when nothing we
read names it (volumes, projected sources, `env[].valueFrom`, `envFrom`, in pods and in the pod templates
of Deployments, ReplicaSets (rollback history), StatefulSets, DaemonSets, Jobs and CronJobs), nothing owns
it, it is neither `kube-root-ca.crt` (every namespace has one) nor a leader-election lock, and it is not in
a system namespace, where components read ConfigMaps through the API. A ConfigMap an application reads
through the API looks unused to us: that is why this is never more than `info`, and why a namespace whose
health is checked (the healthy fixture) should hold no such left-overs. Nothing is said unless pods were read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from operate_mcp.analyzers.objects import KubeObject, deleting, meta, spec
from operate_mcp.analyzers.related import Related
from operate_mcp.model.finding import Evidence, Finding

ALWAYS_THERE = frozenset({"kube-root-ca.crt"})
LEADER = "control-plane.alpha.kubernetes.io/leader"  # a leader-election lock: read and written through the API
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
TEMPLATED = ("deployments", "replicasets", "statefulsets", "daemonsets", "jobs", "cronjobs")


class ConfigMapAnalyzer:
    """Unused ConfigMaps, as `info`; empty and unused ones say so."""

    name = "configmap"
    resource = "configmaps"
    cluster_scoped = False
    reads: tuple[str, ...] = ("pods", *TEMPLATED)

    def analyze(self, objects: Sequence[KubeObject], related: Related) -> list[Finding]:
        if not related.has("pods"):
            return []
        used = set(referenced(related))
        return [f for cm in objects if (f := configmap_finding(cm, used)) is not None]


def pod_spec_of(obj: KubeObject) -> Mapping[str, Any]:
    """The pod spec of a pod, or of a workload's (a CronJob's: its job template's) pod template."""
    if obj.get("kind") == "Pod":
        return spec(obj)
    s: Mapping[str, Any] = spec(obj)
    if obj.get("kind") == "CronJob":
        s = (s.get("jobTemplate") or {}).get("spec") or {}
    return ((s.get("template") or {}).get("spec")) or {}


def configmap_names(pod_spec: Mapping[str, Any]) -> Iterator[str]:
    """Every ConfigMap a pod spec names: volumes, projected sources, env valueFrom, envFrom."""
    for v in pod_spec.get("volumes") or ():
        if (v.get("configMap") or {}).get("name"):
            yield str(v["configMap"]["name"])
        for source in (v.get("projected") or {}).get("sources") or ():
            if (source.get("configMap") or {}).get("name"):
                yield str(source["configMap"]["name"])
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for c in pod_spec.get(field) or ():
            for env in c.get("env") or ():
                ref = (env.get("valueFrom") or {}).get("configMapKeyRef") or {}
                if ref.get("name"):
                    yield str(ref["name"])
            for source in c.get("envFrom") or ():
                if (source.get("configMapRef") or {}).get("name"):
                    yield str(source["configMapRef"]["name"])


def referenced(related: Related) -> Iterator[tuple[str, str]]:
    for resource in ("pods", *TEMPLATED):
        for obj in related.objects(resource):
            ns = str(meta(obj).get("namespace", ""))
            for name in configmap_names(pod_spec_of(obj)):
                yield ns, name


def configmap_finding(cm: KubeObject, used: set[tuple[str, str]]) -> Finding | None:
    m = meta(cm)
    name, ns = str(m.get("name", "")), str(m.get("namespace", ""))
    if (
        deleting(cm)
        or name in ALWAYS_THERE
        or ns in SYSTEM_NAMESPACES
        or m.get("ownerReferences")
        or LEADER in (m.get("annotations") or {})
        or (ns, name) in used
    ):
        return None
    keys = sorted([*(cm.get("data") or {}), *(cm.get("binaryData") or {})])
    evidence = [
        Evidence(source="related-object", text="no pod or pod template in the namespace refers to it"),
        # keys only: values may be sensitive and prove nothing here
        Evidence(source="spec", text=f"data keys: {', '.join(keys) or 'none'}"),
    ]
    empty = " and empty" if not keys else ""
    return Finding.of(cm, problem=f"unused{empty}: no pod refers to it", severity="info", evidence=evidence)
