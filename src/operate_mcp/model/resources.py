"""The names of Kubernetes resources, in one table: plural, kind, short names and group.

kubectl accepts many spellings for one resource (`deploy`, `deployment`, `deployments.apps`,
`deployment.v1.apps`). The classifier, the policy changes and the run-search language all read
them through this table, so a rule, a policy and a query agree on what a spelling names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "BUILTIN_GROUPS",
    "RESOURCES",
    "Resource",
    "canonical_resource",
    "kind_of",
    "resource_of_kind",
    "singular",
]


@dataclass(frozen=True)
class Resource:
    """A built-in resource as kubectl names it; its singular is its kind in lower case."""

    plural: str
    kind: str
    group: str = ""  # "" is the core group
    short: tuple[str, ...] = ()

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def spellings(self) -> tuple[str, ...]:
        """Every name kubectl takes for it without a group: plural, singular, short names."""
        return tuple(dict.fromkeys((self.plural, self.singular, *self.short)))


def _r(plural: str, kind: str, group: str = "", short: str = "") -> Resource:
    return Resource(plural, kind, group, tuple(short.split()))


_APPS, _BATCH, _NET, _RBAC = "apps", "batch", "networking.k8s.io", "rbac.authorization.k8s.io"
_ADMISSION = "admissionregistration.k8s.io"

# The built-in resources kubectl knows by short name (`kubectl api-resources`, v1.32).
RESOURCES: tuple[Resource, ...] = (
    _r("pods", "Pod", short="po"),
    _r("services", "Service", short="svc"),
    _r("deployments", "Deployment", _APPS, "deploy"),
    _r("replicasets", "ReplicaSet", _APPS, "rs"),
    _r("statefulsets", "StatefulSet", _APPS, "sts"),
    _r("daemonsets", "DaemonSet", _APPS, "ds"),
    _r("jobs", "Job", _BATCH),
    _r("cronjobs", "CronJob", _BATCH, "cj"),
    _r("configmaps", "ConfigMap", short="cm"),
    _r("secrets", "Secret"),
    _r("namespaces", "Namespace", short="ns"),
    _r("nodes", "Node", short="no"),
    _r("persistentvolumeclaims", "PersistentVolumeClaim", short="pvc"),
    _r("persistentvolumes", "PersistentVolume", short="pv"),
    _r("serviceaccounts", "ServiceAccount", short="sa"),
    _r("ingresses", "Ingress", _NET, "ing"),
    _r("ingressclasses", "IngressClass", _NET),
    _r("horizontalpodautoscalers", "HorizontalPodAutoscaler", "autoscaling", "hpa"),
    _r("poddisruptionbudgets", "PodDisruptionBudget", "policy", "pdb"),
    _r("networkpolicies", "NetworkPolicy", _NET, "netpol"),
    _r("events", "Event", short="ev"),
    _r("endpoints", "Endpoints", short="ep"),
    _r("endpointslices", "EndpointSlice", "discovery.k8s.io"),
    _r("replicationcontrollers", "ReplicationController", short="rc"),
    _r("resourcequotas", "ResourceQuota", short="quota"),
    _r("limitranges", "LimitRange", short="limits"),
    _r("storageclasses", "StorageClass", "storage.k8s.io", "sc"),
    _r("customresourcedefinitions", "CustomResourceDefinition", "apiextensions.k8s.io", "crd crds"),
    _r("roles", "Role", _RBAC),
    _r("rolebindings", "RoleBinding", _RBAC),
    _r("clusterroles", "ClusterRole", _RBAC),
    _r("clusterrolebindings", "ClusterRoleBinding", _RBAC),
    _r("priorityclasses", "PriorityClass", "scheduling.k8s.io", "pc"),
    _r("certificatesigningrequests", "CertificateSigningRequest", "certificates.k8s.io", "csr"),
    _r("leases", "Lease", "coordination.k8s.io"),
    _r("podtemplates", "PodTemplate"),
    _r("controllerrevisions", "ControllerRevision", _APPS),
    _r("runtimeclasses", "RuntimeClass", "node.k8s.io"),
    _r("apiservices", "APIService", "apiregistration.k8s.io"),
    _r("validatingwebhookconfigurations", "ValidatingWebhookConfiguration", _ADMISSION),
    _r("mutatingwebhookconfigurations", "MutatingWebhookConfiguration", _ADMISSION),
)

# The API groups of built-in resources: a type spelled with one of these is the built-in resource.
BUILTIN_GROUPS = frozenset(
    {
        "core", "apps", "batch", "autoscaling", "policy", "networking.k8s.io", "rbac.authorization.k8s.io",
        "storage.k8s.io", "apiextensions.k8s.io", "coordination.k8s.io", "discovery.k8s.io", "scheduling.k8s.io",
        "certificates.k8s.io", "admissionregistration.k8s.io", "apiregistration.k8s.io", "node.k8s.io",
        "events.k8s.io",
    }
)  # fmt: skip

_BY_SPELLING: dict[str, Resource] = {spelling: r for r in RESOURCES for spelling in r.spellings}
_BY_PLURAL: dict[str, Resource] = {r.plural: r for r in RESOURCES}
_BY_KIND: dict[str, Resource] = {r.kind.lower(): r for r in RESOURCES}
_VERSION = re.compile(r"v\d+(?:(?:alpha|beta)\d+)?")


def _check_table() -> None:
    """The table is data a person edits: a spelling named twice or a group left out fails at import."""
    spellings = [s for r in RESOURCES for s in r.spellings]
    repeated = sorted({s for s in spellings if spellings.count(s) > 1})
    if repeated:
        raise ValueError(f"resource spellings name two resources: {', '.join(repeated)}")
    missing = sorted({r.group or "core" for r in RESOURCES} - BUILTIN_GROUPS)
    if missing:
        raise ValueError(f"groups of built-in resources missing from BUILTIN_GROUPS: {', '.join(missing)}")


_check_table()


def canonical_resource(type_name: str) -> str:
    """The plural resource a type spelling means (``deploy``, ``deployments.apps`` -> ``deployments``).

    Built-in groups are dropped so policies need one spelling; custom resources keep their group
    (without the version), and their short names and singulars are left as written.
    """
    lowered = type_name.lower()
    head, _, rest = lowered.partition(".")
    if rest:
        version, _, after = rest.partition(".")
        group = (after or "core") if _VERSION.fullmatch(version) else rest
        if group not in BUILTIN_GROUPS:
            return f"{head}.{group}"  # a custom resource: the version is not part of its identity
    found = _BY_SPELLING.get(head)
    return found.plural if found else head


def kind_of(resource: str) -> str | None:
    """The kind of a canonical plural (``deployments`` -> ``Deployment``); None for resources not in the table."""
    found = _BY_PLURAL.get(resource)
    return found.kind if found else None


def resource_of_kind(kind: str, group: str = "") -> str:
    """The canonical resource of a manifest object's kind and API group (``Ingress``, ``networking.k8s.io``
    -> ``ingresses``). Kinds not in the table are pluralised the usual CRD way, by adding an s."""
    found = _BY_KIND.get(kind.lower())
    plural = found.plural if found else f"{kind.lower()}s"
    return canonical_resource(f"{plural}.{group}" if group else plural)


def singular(spelling: str) -> str:
    """The lower-case kind a spelling names (``deploy``, ``Deployments`` -> ``deployment``), the way
    execution records name resources; a spelling not in the table comes back lower-cased as given."""
    lowered = spelling.lower()
    found = _BY_SPELLING.get(lowered)
    return found.singular if found else lowered
