"""DaemonSets: nodes that should run a ready pod and do not (with the pods that show why), and pods on
nodes that should not run one."""

from __future__ import annotations

from collections.abc import Sequence

from operate_mcp.analyzers.deployment import pods_cited
from operate_mcp.analyzers.objects import KubeObject, deleting, status
from operate_mcp.analyzers.related import Related
from operate_mcp.model.finding import Evidence, Finding, Severity


class DaemonSetAnalyzer:
    name = "daemonset"
    resource = "daemonsets"
    cluster_scoped = False
    reads: tuple[str, ...] = ("pods", "events")

    def analyze(self, objects: Sequence[KubeObject], related: Related) -> list[Finding]:
        findings: list[Finding] = []
        for ds in objects:
            if deleting(ds):
                continue
            unready = _unready(ds, related)
            if unready is not None:
                findings.append(unready)
            misscheduled = int(status(ds).get("numberMisscheduled") or 0)
            if misscheduled:
                findings.append(
                    Finding.of(
                        ds,
                        problem=f"{misscheduled} of its pods run on nodes that should not run one",
                        severity="warning",
                        evidence=[Evidence.status("status.numberMisscheduled", misscheduled)],
                    )
                )
        return findings


def _unready(ds: KubeObject, related: Related) -> Finding | None:
    s = status(ds)
    desired = int(s.get("desiredNumberScheduled") or 0)
    ready = int(s.get("numberReady") or 0)
    if desired == 0 or ready >= desired:
        return None
    scheduled = int(s.get("currentNumberScheduled") or 0)
    problem = f"{ready} of {desired} pods ready"
    if scheduled < desired:
        problem += f"; {desired - scheduled} of its nodes have no pod"
    evidence = [
        Evidence.status("status.desiredNumberScheduled", desired),
        Evidence.status("status.currentNumberScheduled", scheduled),
        Evidence.status("status.numberReady", ready),
        Evidence.status("status.numberUnavailable", int(s.get("numberUnavailable") or 0)),
        *related.events_for(ds, warning_only=True),
        *pods_cited(ds, related),
    ]
    severity: Severity = "critical" if ready == 0 else "warning"
    return Finding.of(ds, problem=problem, severity=severity, evidence=evidence)
