"""Nodes: not Ready (False, or Unknown when the kubelet stopped reporting), under memory, disk or PID
pressure, without network, or cordoned. Each finding quotes the condition as `kubectl describe` shows it."""

from __future__ import annotations

from collections.abc import Sequence

from operate_mcp.analyzers.objects import KubeObject, condition, deleting, shown_condition, spec
from operate_mcp.analyzers.related import Related
from operate_mcp.model.finding import Evidence, Finding, Severity

# Conditions that are a problem when True, with what they mean for the pods on the node.
PRESSURE: dict[str, tuple[Severity, str]] = {
    "MemoryPressure": ("warning", "is low on memory: pods may be evicted and new ones are not placed there"),
    "DiskPressure": ("warning", "is low on disk: pods may be evicted and new ones are not placed there"),
    "PIDPressure": ("warning", "is running out of process IDs: new ones are not placed there"),
    "NetworkUnavailable": ("error", "has no working network: its pods cannot be reached"),
}


class NodeAnalyzer:
    """Run once per cluster: nodes are not in any namespace."""

    name = "node"
    resource = "nodes"
    cluster_scoped = True
    reads: tuple[str, ...] = ("events",)

    def analyze(self, objects: Sequence[KubeObject], related: Related) -> list[Finding]:
        return [f for node in objects if not deleting(node) for f in node_findings(node, related)]


def node_findings(node: KubeObject, related: Related) -> list[Finding]:
    findings: list[Finding] = []
    events = related.events_for(node, warning_only=True, limit=2)
    ready = condition(node, "Ready")
    if ready is not None and ready.get("status") != "True":
        unknown = ready.get("status") == "Unknown"
        why = ready.get("message") or ready.get("reason") or "no reason given"
        problem = f"node is not ready: {'its kubelet stopped posting status' if unknown else why}"
        findings.append(
            Finding.of(
                node,
                problem=problem,
                severity="error",
                evidence=[Evidence.status("status.conditions[Ready]", shown_condition(ready)), *events],
            )
        )
    for kind, (severity, meaning) in PRESSURE.items():
        c = condition(node, kind)
        if c is not None and c.get("status") == "True":
            findings.append(
                Finding.of(
                    node,
                    problem=f"node {meaning}",
                    severity=severity,
                    evidence=[Evidence.status(f"status.conditions[{kind}]", shown_condition(c)), *events],
                )
            )
    if spec(node).get("unschedulable"):
        evidence = [Evidence.spec("spec.unschedulable", True)]
        for taint in spec(node).get("taints") or ():
            if taint.get("key") == "node.kubernetes.io/unschedulable":
                evidence.append(Evidence.spec("spec.taints", f"{taint['key']}:{taint.get('effect')}"))
        findings.append(
            Finding.of(
                node,
                problem="node is cordoned: no new pods are placed on it",
                severity="info",
                evidence=evidence,
            )
        )
    return findings
