"""ReplicaSets: pods wanted but not created (quota, admission webhooks, security policy: the controller's
FailedCreate), and, for a ReplicaSet no Deployment owns, pods created but not available."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from operate_mcp.analyzers.deployment import pods_cited
from operate_mcp.analyzers.objects import KubeObject, condition, deleting, meta, shown_condition, spec, status
from operate_mcp.analyzers.related import Related
from operate_mcp.model.finding import Evidence, Finding, Severity


class ReplicaSetAnalyzer:
    """The ReplicaSet is the object that fails to create pods, so it carries that finding even under a
    Deployment; availability of a Deployment's ReplicaSet is the Deployment's story (and an old one
    scaled to 0 wants nothing)."""

    name = "replicaset"
    resource = "replicasets"
    cluster_scoped = False
    reads: tuple[str, ...] = ("pods", "events")

    def analyze(self, objects: Sequence[KubeObject], related: Related) -> list[Finding]:
        return [f for rs in objects if (f := replicaset_finding(rs, related)) is not None]


def controlled_by(obj: KubeObject, kind: str) -> bool:
    return any(
        isinstance(ref, Mapping) and ref.get("kind") == kind and ref.get("controller")
        for ref in meta(obj).get("ownerReferences") or ()
    )


def replicaset_finding(rs: KubeObject, related: Related) -> Finding | None:
    want = spec(rs).get("replicas", 1)
    if deleting(rs) or not isinstance(want, int) or want == 0:
        return None
    s = status(rs)
    created, available = int(s.get("replicas") or 0), int(s.get("availableReplicas") or 0)
    failure = condition(rs, "ReplicaFailure")
    failing = failure if failure is not None and failure.get("status") == "True" else None
    failed_creates = related.events_for(rs, warning_only=True, reasons={"FailedCreate"})
    if created < want and (failing is not None or failed_creates):
        # Once every pod exists the FailedCreate events are history (they linger an hour), so `created < want`.
        why = failing.get("message") if failing is not None else None
        if not why:
            newest = next(e for e in related.events(rs) if e.get("reason") == "FailedCreate")
            why = str(newest.get("message") or "").removeprefix("(combined from similar events): ")
        evidence = [Evidence.status("status.replicas", created), Evidence.spec("spec.replicas", want)]
        if failing is not None:
            evidence.append(Evidence.status("status.conditions[ReplicaFailure]", shown_condition(failing)))
        severity: Severity = "critical" if created == 0 else "error"
        return Finding.of(
            rs, problem=f"{created} of {want} pods created: {why}", severity=severity,
            evidence=[*evidence, *failed_creates],
        )
    if controlled_by(rs, "Deployment") or available >= want:
        return None
    severity = "critical" if available == 0 else "warning"
    return Finding.of(
        rs,
        problem=f"{available} of {want} replicas available",
        severity=severity,
        evidence=[
            Evidence.status("status.availableReplicas", available),
            Evidence.status("status.readyReplicas", int(s.get("readyReplicas") or 0)),
            *related.events_for(rs, warning_only=True),
            *pods_cited(rs, related),
        ],
    )
