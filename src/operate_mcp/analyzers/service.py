"""Services: a selector that no ready pod answers, and ports that reach no container. Each finding says why:
no pod carries the labels (and which pods nearly do), the pods are not ready (and what is wrong with them),
or the targetPort names a port the pods do not have."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from operate_mcp.analyzers.objects import KubeObject, deleting, meta, spec, status
from operate_mcp.analyzers.pod import is_ready, pod_findings
from operate_mcp.analyzers.related import Related
from operate_mcp.model.finding import Evidence, Finding, Severity

MAX_PODS_CITED = 3
SERVICE_NAME_LABEL = "kubernetes.io/service-name"  # how an EndpointSlice names its Service
TEMPLATED = ("deployments", "statefulsets", "daemonsets")  # workloads whose pod template a Service may select


class ServiceAnalyzer:
    """A Service with a selector and no ready endpoints, or a targetPort its pods do not serve. ExternalName
    and selector-less Services (endpoints managed by hand) are not judged."""

    name = "service"
    resource = "services"
    cluster_scoped = False
    reads: tuple[str, ...] = ("pods", "endpointslices", "events", *TEMPLATED)

    def analyze(self, objects: Sequence[KubeObject], related: Related) -> list[Finding]:
        return [f for svc in objects for f in service_findings(svc, related)]


def labels(obj: KubeObject) -> Mapping[str, str]:
    value = meta(obj).get("labels")
    return value if isinstance(value, Mapping) else {}


def equality_match(selector: Mapping[str, Any], found: Mapping[str, Any]) -> bool:
    """A Service's `spec.selector` (every key equal); an empty one selects nothing here (selector-less)."""
    return bool(selector) and all(str(found.get(k)) == str(v) and k in found for k, v in selector.items())


def selector_match(selector: Mapping[str, Any], found: Mapping[str, Any]) -> bool:
    """A metav1.LabelSelector (`matchLabels`, `matchExpressions`); an empty selector selects everything."""
    for k, v in (selector.get("matchLabels") or {}).items():
        if k not in found or str(found[k]) != str(v):
            return False
    for e in selector.get("matchExpressions") or ():
        key, op, values = e.get("key"), e.get("operator"), [str(v) for v in e.get("values") or ()]
        if op == "In" and (key not in found or str(found[key]) not in values):
            return False
        if op == "NotIn" and key in found and str(found[key]) in values:
            return False
        if op == "Exists" and key not in found:
            return False
        if op == "DoesNotExist" and key in found:
            return False
    return True


def shown_labels(found: Mapping[str, Any], keys: Sequence[str] | None = None) -> str:
    """`app=web-v2, tier=front`: the labels (only `keys`, when given) as `kubectl get --show-labels` prints them."""
    picked = [k for k in (keys if keys is not None else sorted(found)) if k in found]
    return ", ".join(f"{k}={found[k]}" for k in picked) or "none"


def live(pod: KubeObject) -> bool:
    """A pod that can serve: not terminating, not finished."""
    return not deleting(pod) and status(pod).get("phase") not in ("Succeeded", "Failed")


def selected_pods(svc: KubeObject, related: Related) -> list[KubeObject]:
    selector = spec(svc).get("selector") or {}
    ns = meta(svc).get("namespace")
    return sorted(
        (
            p
            for p in related.objects("pods")
            if meta(p).get("namespace") == ns and live(p) and equality_match(selector, labels(p))
        ),
        key=lambda p: str(meta(p).get("name", "")),
    )


def ready_endpoints(svc: KubeObject, related: Related) -> int | None:
    """Ready addresses in the Service's EndpointSlices (None when they were not read). An endpoint whose
    `ready` is unset counts as ready, as the API documents."""
    if not related.has("endpointslices"):
        return None
    m = meta(svc)
    count = 0
    for s in related.objects("endpointslices"):
        if meta(s).get("namespace") != m.get("namespace") or labels(s).get(SERVICE_NAME_LABEL) != m.get("name"):
            continue
        for e in s.get("endpoints") or ():
            if (e.get("conditions") or {}).get("ready", True) is not False:
                count += 1
    return count


def judged(svc: KubeObject) -> bool:
    """Selector Services only: ExternalName and selector-less ones have no endpoints for us to expect."""
    return not deleting(svc) and spec(svc).get("type") != "ExternalName" and bool(spec(svc).get("selector"))


def service_findings(svc: KubeObject, related: Related) -> list[Finding]:
    if not judged(svc) or not related.has("pods"):
        return []
    pods = selected_pods(svc, related)
    endpoints = ready_endpoints(svc, related)
    events = related.events_for(svc, warning_only=True)
    if not pods:
        if endpoints:
            return []  # something serves it after all (pods not all read?): nothing we can prove
        return _selects_nothing(svc, related, events)
    ready = [p for p in pods if is_ready(p)]
    if not ready:
        if endpoints:
            return []  # publishNotReadyAddresses: it serves its pods ready or not, as asked
        return [_none_ready(svc, pods, related, events)]
    return _port_findings(svc, ready, events)


def _selector_evidence(svc: KubeObject) -> Evidence:
    return Evidence.spec("spec.selector", dict(spec(svc).get("selector") or {}))


def _selects_nothing(svc: KubeObject, related: Related, events: list[Evidence]) -> list[Finding]:
    selector: Mapping[str, Any] = spec(svc).get("selector") or {}
    ns = meta(svc).get("namespace")
    workloads = [
        w
        for resource in TEMPLATED
        for w in related.objects(resource)
        if meta(w).get("namespace") == ns
        and not deleting(w)
        and equality_match(selector, (((spec(w).get("template") or {}).get("metadata") or {}).get("labels") or {}))
    ]
    if any(spec(w).get("replicas") == 0 for w in workloads):
        return []  # its workload is scaled to zero on purpose: no endpoints is what was asked for
    evidence = [_selector_evidence(svc)]
    for w in workloads[:MAX_PODS_CITED]:
        evidence.append(
            Evidence.related(str(w.get("kind")), str(meta(w).get("name")), "its pod template matches; no pod yet")
        )
    keys = list(selector)
    near = [
        p
        for p in related.objects("pods")
        if meta(p).get("namespace") == ns and live(p) and any(k in labels(p) for k in keys)
    ]
    near.sort(key=lambda p: str(meta(p).get("name", "")))
    for p in near[:MAX_PODS_CITED]:
        evidence.append(Evidence.related("Pod", str(meta(p).get("name")), f"labels {shown_labels(labels(p), keys)}"))
    if len(near) > MAX_PODS_CITED:
        evidence.append(Evidence(source="related-object", text=f"... and {len(near) - MAX_PODS_CITED} more pods"))
    wanted = shown_labels(selector, keys)
    return [
        Finding.of(
            svc,
            problem=f"no ready endpoints: no pod has the labels {wanted}",
            severity="error",
            evidence=[*evidence, *events],
        )
    ]


def _none_ready(svc: KubeObject, pods: list[KubeObject], related: Related, events: list[Evidence]) -> Finding:
    """Pods that fail make it an error; pods still starting (no finding of their own yet) only a warning."""
    evidence = [_selector_evidence(svc)]
    failing = False
    for p in pods[:MAX_PODS_CITED]:
        found = pod_findings(p, related)
        failing = failing or any(f.failing for f in found)
        why = "; ".join(f.problem for f in found) or f"not ready (phase {status(p).get('phase', 'Unknown')})"
        evidence.append(Evidence.related("Pod", str(meta(p).get("name")), why))
    if len(pods) > MAX_PODS_CITED:
        evidence.append(Evidence(source="related-object", text=f"... and {len(pods) - MAX_PODS_CITED} more pods"))
    why = "its pod is not ready" if len(pods) == 1 else f"none of its {len(pods)} pods is ready"
    return Finding.of(
        svc,
        problem=f"no ready endpoints: {why}",
        severity="error" if failing else "warning",
        evidence=[*evidence, *events],
    )


def _container_ports(pod: KubeObject) -> list[Mapping[str, Any]]:
    return [
        port
        for c in spec(pod).get("containers") or ()
        if isinstance(c, Mapping)
        for port in c.get("ports") or ()
        if isinstance(port, Mapping)
    ]


def shown_ports(pod: KubeObject) -> str:
    """`app 8080/TCP (http), sidecar 9090/TCP`: each container's declared ports, or `no ports declared`."""
    shown = []
    for c in spec(pod).get("containers") or ():
        for port in c.get("ports") or ():
            name = f" ({port['name']})" if port.get("name") else ""
            shown.append(f"{c.get('name')} {port.get('containerPort')}/{port.get('protocol', 'TCP')}{name}")
    return ", ".join(shown) or "no container ports declared"


def _port_findings(svc: KubeObject, pods: list[KubeObject], events: list[Evidence]) -> list[Finding]:
    """A named targetPort no pod has gets no endpoints for that port (error). A number no container declares
    may still be served (declaring is optional), so it is a warning, and only when the pods declare ports."""
    findings: list[Finding] = []
    for i, port in enumerate(spec(svc).get("ports") or ()):
        target = port.get("targetPort", port.get("port"))
        at = f"spec.ports[{port.get('name') or i}].targetPort"
        if isinstance(target, str) and not target.isdigit():
            if any(cp.get("name") == target for p in pods for cp in _container_ports(p)):
                continue
            problem = f"port {port.get('port')} has no endpoints: no container of its pods has a port named {target}"
            severity: Severity = "error"
        else:
            declared = [_container_ports(p) for p in pods]
            if not all(declared) or any(str(cp.get("containerPort")) == str(target) for d in declared for cp in d):
                continue
            problem = f"port {port.get('port')} sends traffic to {target}, which no container of its pods declares"
            severity = "warning"
        evidence = [Evidence.spec(at, target)]
        evidence += [Evidence.related("Pod", str(meta(p).get("name")), f"ports {shown_ports(p)}") for p in pods[:1]]
        findings.append(Finding.of(svc, problem=problem, severity=severity, evidence=[*evidence, *events]))
    return findings
