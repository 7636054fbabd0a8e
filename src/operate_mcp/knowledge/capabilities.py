"""What the cluster can do: operators and add-ons recognised by their API groups and CRDs.

Discovery goes through kubectl (argv lists, no shell): `kubectl api-resources -o wide` for every
served resource, `kubectl get crd -o json` for CRDs (served or not). Known operators come from the
catalog below; a CRD group nobody knows becomes a generic capability listing its kinds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from operate_mcp.errors import OperateError
from operate_mcp.knowledge.models import Capability
from operate_mcp.kube.runner import Kubectl

ScanProgress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class KnownAddon:
    id: str
    name: str
    category: str
    description: str
    enables: tuple[str, ...]
    groups: tuple[str, ...] = ()  # any served API group here means it is present
    crds: tuple[str, ...] = ()  # or any of these CRDs (plural.group)
    resources: tuple[str, ...] = field(default=())  # or any of these served resources (plural.group)


CATALOG: tuple[KnownAddon, ...] = (
    KnownAddon(
        "keda", "KEDA", "autoscaling",
        "Event-driven autoscaling: ScaledObject/ScaledJob scale workloads on queues, Kafka lag, Prometheus "
        "queries, cron or CPU, including to zero.",
        ("ScaledObject autoscaling on events and external metrics", "ScaledJob", "scale to zero",
         "TriggerAuthentication for scaler credentials"),
        groups=("keda.sh",), crds=("scaledobjects.keda.sh", "scaledjobs.keda.sh"),
    ),
    KnownAddon(
        "vpa", "Vertical Pod Autoscaler", "autoscaling",
        "Recommends or sets container CPU/memory requests from observed usage.",
        ("VerticalPodAutoscaler resource recommendations", "right-sizing requests"),
        crds=("verticalpodautoscalers.autoscaling.k8s.io",), resources=("verticalpodautoscalers.autoscaling.k8s.io",),
    ),
    KnownAddon(
        "metrics-server", "metrics-server", "metrics",
        "Serves the resource metrics API (metrics.k8s.io): kubectl top and HPA CPU/memory targets.",
        ("HorizontalPodAutoscaler on CPU and memory", "kubectl top pods and nodes"),
        groups=("metrics.k8s.io",),
    ),
    KnownAddon(
        "prometheus-operator", "Prometheus Operator", "monitoring",
        "Runs Prometheus and Alertmanager from CRDs; ServiceMonitor/PodMonitor select scrape targets, "
        "PrometheusRule holds alerts.",
        ("ServiceMonitor and PodMonitor scraping", "PrometheusRule alerts", "Prometheus-based autoscaling triggers"),
        groups=("monitoring.coreos.com",),
        crds=("servicemonitors.monitoring.coreos.com", "prometheuses.monitoring.coreos.com"),
    ),
    KnownAddon(
        "cert-manager", "cert-manager", "security",
        "Issues and renews TLS certificates (Let's Encrypt, private CAs) as Secrets.",
        ("Certificate and Issuer/ClusterIssuer", "automatic TLS for Ingress and Gateway"),
        groups=("cert-manager.io",), crds=("certificates.cert-manager.io", "issuers.cert-manager.io"),
    ),
    KnownAddon(
        "velero", "Velero", "backup",
        "Backs up and restores cluster objects and persistent volumes; Schedule runs backups periodically.",
        ("Backup and Restore of namespaces and volumes", "scheduled backups (Schedule)", "disaster recovery"),
        groups=("velero.io",), crds=("backups.velero.io", "schedules.velero.io", "restores.velero.io"),
    ),
    KnownAddon(
        "cloudnative-pg", "CloudNativePG", "database",
        "PostgreSQL operator: a Cluster CR runs a replicated PostgreSQL with failover, backups and poolers.",
        ("highly available PostgreSQL Cluster", "ScheduledBackup", "Pooler (PgBouncer)"),
        groups=("postgresql.cnpg.io",), crds=("clusters.postgresql.cnpg.io",),
    ),
    KnownAddon(
        "kyverno", "Kyverno", "policy",
        "Admission policies as Kubernetes resources: validate, mutate and generate objects.",
        ("ClusterPolicy/Policy admission rules", "policy reports"),
        groups=("kyverno.io",), crds=("clusterpolicies.kyverno.io", "policies.kyverno.io"),
    ),
    KnownAddon(
        "gatekeeper", "OPA Gatekeeper", "policy",
        "Admission control with OPA: ConstraintTemplates define Rego checks, constraints apply them.",
        ("ConstraintTemplate and constraints", "audit of existing objects"),
        groups=("templates.gatekeeper.sh", "constraints.gatekeeper.sh"),
        crds=("constrainttemplates.templates.gatekeeper.sh",),
    ),
    KnownAddon(
        "argo-cd", "Argo CD", "gitops",
        "GitOps: Application objects sync manifests from git; changes made by hand are reverted on sync.",
        ("Application and ApplicationSet from git", "sync and drift detection"),
        crds=("applications.argoproj.io", "appprojects.argoproj.io"),
    ),
    KnownAddon(
        "argo-rollouts", "Argo Rollouts", "delivery",
        "Progressive delivery: Rollout replaces Deployment for canary and blue-green releases with analysis.",
        ("canary and blue-green Rollouts", "AnalysisTemplate"),
        crds=("rollouts.argoproj.io",),
    ),
    KnownAddon(
        "flux", "Flux", "gitops",
        "GitOps: Kustomization and HelmRelease reconcile manifests from git or Helm repositories.",
        ("Kustomization and HelmRelease from git", "image automation"),
        groups=("kustomize.toolkit.fluxcd.io", "helm.toolkit.fluxcd.io", "source.toolkit.fluxcd.io"),
    ),
    KnownAddon(
        "istio", "Istio", "service-mesh",
        "Service mesh: traffic shifting (VirtualService, DestinationRule), mTLS, retries and timeouts.",
        ("weighted traffic shifting and canaries", "mTLS (PeerAuthentication)", "retries, timeouts, fault injection"),
        groups=("networking.istio.io", "security.istio.io"),
    ),
    KnownAddon(
        "gateway-api", "Gateway API", "networking",
        "Gateway, HTTPRoute and friends: role-oriented ingress with weighted backends and header matching.",
        ("Gateway and HTTPRoute routing", "weighted traffic splits"),
        groups=("gateway.networking.k8s.io",),
        crds=("gateways.gateway.networking.k8s.io", "httproutes.gateway.networking.k8s.io"),
    ),
)
KNOWN_IDS = {a.id for a in CATALOG}


class ApiResource(BaseModel):
    name: str
    group: str
    version: str
    kind: str
    namespaced: bool = True

    @property
    def full_name(self) -> str:
        return f"{self.name}.{self.group}" if self.group else self.name


class Discovery(BaseModel):
    resources: list[ApiResource] = Field(default_factory=list)
    crds: list[dict[str, Any]] = Field(default_factory=list)  # {name, group, kind, versions}
    warnings: list[str] = Field(default_factory=list)

    @property
    def groups(self) -> set[str]:
        return {r.group for r in self.resources} | {str(c["group"]) for c in self.crds}

    @property
    def resource_names(self) -> set[str]:
        return {r.full_name for r in self.resources} | {str(c["name"]) for c in self.crds}


class ScanReport(BaseModel):
    added: list[str] = Field(default_factory=list)
    changed: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    capabilities: list[Capability] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class ScanError(OperateError):
    """Discovery failed; the message carries kubectl's error."""


def parse_api_resources(text: str) -> list[ApiResource]:
    """`kubectl api-resources -o wide` as rows; columns located by the header's offsets (SHORTNAMES may be empty)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or not lines[0].startswith("NAME"):
        return []
    header = lines[0]
    names = header.split()
    starts = [header.index(n) for n in names]
    found: list[ApiResource] = []
    for line in lines[1:]:
        cells = {}
        for i, name in enumerate(names):
            end = starts[i + 1] if i + 1 < len(starts) else len(line)
            cells[name] = line[starts[i]:end].strip()
        api_version = cells.get("APIVERSION", "")
        group, _, version = api_version.rpartition("/")
        if not cells.get("NAME") or not cells.get("KIND"):
            continue
        found.append(ApiResource(name=cells["NAME"], group=group, version=version or api_version,
                                 kind=cells["KIND"], namespaced=cells.get("NAMESPACED", "true") == "true"))
    return found


def parse_crds(text: str) -> list[dict[str, Any]]:
    data = json.loads(text)
    crds = []
    for item in data.get("items", []):
        spec = item.get("spec") or {}
        names = spec.get("names") or {}
        crds.append({
            "name": item.get("metadata", {}).get("name", ""),
            "group": spec.get("group", ""),
            "kind": names.get("kind", ""),
            "versions": [v.get("name") for v in spec.get("versions", []) if v.get("served")],
        })
    return crds


def discover(kubectl: Kubectl, progress: ScanProgress | None = None, total: int = 4) -> Discovery:
    """Served API resources and CRDs. A partly failing discovery (an aggregated API down) still counts."""
    discovery = Discovery()
    if progress:
        progress(1, total, "reading API resources (kubectl api-resources)")
    result = kubectl.run(["kubectl", "api-resources", "-o", "wide"], output_cap=8_000_000, redact=False)
    discovery.resources = parse_api_resources(result.stdout)
    if not result.ok:
        if not discovery.resources:
            raise ScanError(f"kubectl api-resources failed: {result.stderr.strip()[:1000]}")
        discovery.warnings.append(f"api-resources was incomplete: {result.stderr.strip()[:500]}")
    if progress:
        progress(2, total, f"found {len(discovery.resources)} API resources; reading CRDs")
    crds = kubectl.run(["kubectl", "get", "customresourcedefinitions", "-o", "json"], output_cap=64_000_000,
                       redact=False)
    if crds.ok:
        try:
            discovery.crds = parse_crds(crds.stdout)
        except (json.JSONDecodeError, AttributeError) as exc:
            discovery.warnings.append(f"could not read the CRD list: {exc}")
    else:
        discovery.warnings.append(f"could not list CRDs: {crds.stderr.strip()[:500]}")
    return discovery


def recognise(discovery: Discovery) -> list[Capability]:
    """Capability records for the known add-ons present and, grouped by API group, the unknown CRDs."""
    groups = discovery.groups
    names = discovery.resource_names
    found: list[Capability] = []
    claimed: set[str] = set()
    for addon in CATALOG:
        explicit = {*addon.crds, *addon.resources}
        related = sorted(n for n in names if n in explicit or n.split(".", 1)[-1] in addon.groups)
        hit_groups = {g for g in addon.groups if g in groups}
        if not related and not hit_groups:
            continue
        claimed |= set(related)
        found.append(Capability(
            id=addon.id, name=addon.name, category=addon.category, description=addon.description,
            enables=list(addon.enables), known=True,
            groups=sorted(hit_groups | {n.split(".", 1)[1] for n in related if "." in n}), resources=related,
        ))
    by_group: dict[str, list[str]] = {}
    kinds: dict[str, set[str]] = {}
    for crd in discovery.crds:
        if crd["name"] in claimed:
            continue
        by_group.setdefault(crd["group"], []).append(crd["name"])
        kinds.setdefault(crd["group"], set()).add(crd["kind"])
    for group, crd_names in sorted(by_group.items()):
        kind_list = ", ".join(sorted(kinds[group]))
        found.append(Capability(
            id=f"crd:{group}", name=group, category="custom-resources",
            description=f"Custom resources in API group {group}: {kind_list}. Not a known add-on; "
                        "read the CRDs (kube_explain) before using them.",
            enables=[f"{k} objects" for k in sorted(kinds[group])], known=False, groups=[group],
            resources=sorted(crd_names),
        ))
    return found


def diff(old: Iterable[Capability], new: Iterable[Capability]) -> ScanReport:
    """What a re-scan changes: only added and changed records need writing, removed ones deleting."""
    before = {c.id: c.digest() for c in old}
    after = {c.id: c for c in new}
    report = ScanReport(capabilities=sorted(after.values(), key=lambda c: c.id))
    for cid, cap in sorted(after.items()):
        if cid not in before:
            report.added.append(cid)
        elif before[cid] != cap.digest():
            report.changed.append(cid)
        else:
            report.unchanged.append(cid)
    report.removed = sorted(set(before) - set(after))
    return report
