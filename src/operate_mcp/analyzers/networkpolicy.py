"""NetworkPolicies that cannot be what was meant: one whose pod selector matches none of the namespace's
pods (a label typo protects nothing), and a policy that leaves a Service's pods with no allowed ingress at
all (a deny-all with no policy allowing anything back in).

Severities keep a healthy namespace silent: no policy, nothing said; a default-deny next to the policies
that allow traffic back in is the recommended pattern and says nothing either; an empty namespace says
nothing (there is nothing to select yet). Peers are not evaluated: any ingress rule counts as allowing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from operate_mcp.analyzers.objects import KubeObject, deleting, meta, spec
from operate_mcp.analyzers.related import Related
from operate_mcp.analyzers.service import judged, labels, live, selected_pods, selector_match
from operate_mcp.model.finding import Evidence, Finding

MAX_CITED = 3


class NetworkPolicyAnalyzer:
    name = "networkpolicy"
    resource = "networkpolicies"
    cluster_scoped = False
    reads: tuple[str, ...] = ("pods", "services")

    def analyze(self, objects: Sequence[KubeObject], related: Related) -> list[Finding]:
        if not related.has("pods"):
            return []
        policies = [p for p in objects if not deleting(p)]
        findings = [f for p in policies if (f := _selects_nothing(p, related)) is not None]
        if related.has("services"):
            findings += _no_ingress(policies, related)
        return findings


def governs_ingress(policy: KubeObject) -> bool:
    """Ingress is always governed unless policyTypes is given without it (the API's defaulting)."""
    types = spec(policy).get("policyTypes")
    return "Ingress" in types if types else True


def selects(policy: KubeObject, pod: KubeObject) -> bool:
    selector: Mapping[str, Any] = spec(policy).get("podSelector") or {}
    return meta(pod).get("namespace") == meta(policy).get("namespace") and selector_match(selector, labels(pod))


def _namespace_pods(policy: KubeObject, related: Related) -> list[KubeObject]:
    ns = meta(policy).get("namespace")
    return [p for p in related.objects("pods") if meta(p).get("namespace") == ns and live(p)]


def _selects_nothing(policy: KubeObject, related: Related) -> Finding | None:
    selector = spec(policy).get("podSelector") or {}
    pods = _namespace_pods(policy, related)
    if not selector or not pods or any(selects(policy, p) for p in pods):
        return None
    return Finding.of(
        policy,
        problem=f"it selects none of the {len(pods)} pods in its namespace: it protects nothing",
        severity="warning",
        evidence=[
            Evidence.spec("spec.podSelector", dict(selector)),
            *(
                Evidence.related("Pod", str(meta(p).get("name")), f"labels {_shown(labels(p))}")
                for p in sorted(pods, key=lambda p: str(meta(p).get("name")))[:MAX_CITED]
            ),
        ],
    )


def _shown(found: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(found.items())) or "none"


def _no_ingress(policies: list[KubeObject], related: Related) -> list[Finding]:
    """Policies that select a Service's pods when no policy selecting them has an ingress rule: the pods are
    cut off, and the Service with them. One finding per such policy, citing the Services it cuts off."""
    cut: dict[str, list[str]] = {}
    by_name = {str(meta(p).get("name")): p for p in policies}
    for svc in related.objects("services"):
        if not judged(svc):
            continue
        for pod in selected_pods(svc, related)[:1]:  # a Service's pods share labels: one stands for all
            governing = [p for p in policies if governs_ingress(p) and selects(p, pod)]
            if governing and not any(spec(p).get("ingress") for p in governing):
                for p in governing:
                    cut.setdefault(str(meta(p).get("name")), []).append(str(meta(svc).get("name")))
    findings = []
    for name, services in sorted(cut.items()):
        policy = by_name[name]
        evidence = [
            Evidence.spec("spec.podSelector", dict(spec(policy).get("podSelector") or {})),
            Evidence.spec("spec.policyTypes", list(spec(policy).get("policyTypes") or ["Ingress"])),
            Evidence.spec("spec.ingress", spec(policy).get("ingress", "unset")),
        ]
        evidence += [
            Evidence.related("Service", s, "its pods are selected by no policy with an ingress rule")
            for s in services[:MAX_CITED]
        ]
        findings.append(
            Finding.of(
                policy,
                problem=f"it denies all ingress to the pods of Service {', '.join(services)}, "
                "and no policy lets any traffic back in",
                severity="warning",
                evidence=evidence,
            )
        )
    return findings
