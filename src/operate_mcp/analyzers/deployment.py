"""Deployments: replicas wanted but not available, rollouts past their progress deadline, and the pods
and ReplicaSets that show why."""

from __future__ import annotations

from collections.abc import Sequence

from operate_mcp.analyzers.objects import KubeObject, condition, deleting, meta, shown_condition, spec, status
from operate_mcp.analyzers.pod import pod_findings
from operate_mcp.analyzers.related import Related
from operate_mcp.model.finding import Evidence, Finding, Severity

MAX_PODS_CITED = 5


class DeploymentAnalyzer:
    """Replicas wanted but not available. Objects in (read once by the caller), findings out."""

    name = "deployment"
    resource = "deployments"
    cluster_scoped = False
    reads: tuple[str, ...] = ("replicasets", "pods", "events")

    def analyze(self, objects: Sequence[KubeObject], related: Related) -> list[Finding]:
        return [f for d in objects if (f := deployment_finding(d, related)) is not None]


def deployment_finding(d: KubeObject, related: Related) -> Finding | None:
    want = spec(d).get("replicas", 1)
    if deleting(d) or not isinstance(want, int) or want == 0:
        return None
    s = status(d)
    available = int(s.get("availableReplicas") or 0)
    progressing = condition(d, "Progressing")
    stalled = progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded"
    if available >= want and not stalled:
        return None
    severity: Severity = "critical" if available == 0 else "error" if stalled else "warning"
    problem = f"{available} of {want} replicas available"
    if stalled:
        problem += "; the rollout exceeded its progress deadline"
    if spec(d).get("paused"):
        problem += "; the rollout is paused"
    evidence = [
        Evidence.status("status.availableReplicas", available),
        Evidence.status("status.readyReplicas", int(s.get("readyReplicas") or 0)),
        Evidence.status("status.updatedReplicas", int(s.get("updatedReplicas") or 0)),
    ]
    if progressing is not None and (stalled or progressing.get("status") != "True"):
        evidence.append(Evidence.status("status.conditions[Progressing]", shown_condition(progressing)))
    available_condition = condition(d, "Available")
    if available_condition is not None and available_condition.get("status") != "True":
        evidence.append(Evidence.status("status.conditions[Available]", shown_condition(available_condition)))
    evidence += related.events_for(d, warning_only=True)
    for rs in related.owned(d, "ReplicaSet"):  # FailedCreate: quota, admission webhooks, security policies
        evidence += related.events_for(rs, warning_only=True, name_object=True, limit=2)
    evidence += pods_cited(d, related)
    return Finding.of(d, problem=problem, severity=severity, evidence=evidence)


def pods_cited(d: KubeObject, related: Related) -> list[Evidence]:
    problems = [
        (meta(pod).get("name", ""), f.problem)
        for pod in sorted(related.pods_of(d), key=lambda p: str(meta(p).get("name", "")))
        for f in pod_findings(pod, related)
    ]
    cited = [Evidence.related("Pod", str(name), problem) for name, problem in problems[:MAX_PODS_CITED]]
    if len(problems) > MAX_PODS_CITED:
        cited.append(
            Evidence(source="related-object", text=f"... and {len(problems) - MAX_PODS_CITED} more pod problems")
        )
    return cited
