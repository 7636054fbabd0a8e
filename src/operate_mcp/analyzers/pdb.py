"""PodDisruptionBudgets: one that allows no voluntary disruption even with every pod healthy (a node
drain waits forever), one that selects no pod (it protects nothing), and one whose pods are too few
healthy to allow any (DisruptionAllowed False, InsufficientPods), citing those pods."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from operate_mcp.analyzers.objects import KubeObject, condition, deleting, meta, shown_condition, spec, status
from operate_mcp.analyzers.pod import pod_findings
from operate_mcp.analyzers.related import Related
from operate_mcp.model.finding import Evidence, Finding

MAX_PODS_CITED = 5


class PDBAnalyzer:
    """Judged from the disruption controller's status, once it has observed the current spec. A budget
    that selects nothing is a warning, not info: it is almost always a selector that matches no label."""

    name = "pdb"
    resource = "poddisruptionbudgets"
    cluster_scoped = False
    reads: tuple[str, ...] = ("pods", "events")

    def analyze(self, objects: Sequence[KubeObject], related: Related) -> list[Finding]:
        return [f for pdb in objects if (f := pdb_finding(pdb, related)) is not None]


def _rule(pdb: KubeObject) -> list[Evidence]:
    return [Evidence.spec(f"spec.{k}", spec(pdb)[k]) for k in ("minAvailable", "maxUnavailable") if k in spec(pdb)]


def _counts(pdb: KubeObject, *keys: str) -> list[Evidence]:
    return [Evidence.status(f"status.{k}", int(status(pdb).get(k) or 0)) for k in keys]


def pdb_finding(pdb: KubeObject, related: Related) -> Finding | None:
    s = status(pdb)
    observed, generation = s.get("observedGeneration"), meta(pdb).get("generation")
    if deleting(pdb) or observed is None or (isinstance(generation, int) and observed < generation):
        return None  # not yet judged by the disruption controller
    expected, healthy = int(s.get("expectedPods") or 0), int(s.get("currentHealthy") or 0)
    desired, allowed = int(s.get("desiredHealthy") or 0), int(s.get("disruptionsAllowed") or 0)
    if expected == 0:
        return Finding.of(
            pdb,
            problem="it selects no pods: it protects nothing",
            severity="warning",
            evidence=[
                Evidence.spec("spec.selector", spec(pdb).get("selector") or {}),
                *_counts(pdb, "expectedPods"),
                *related.events_for(pdb, reasons={"NoPods"}, limit=1),
            ],
        )
    if allowed > 0:
        return None
    if healthy >= desired:
        return Finding.of(
            pdb,
            problem=f"it allows no voluntary disruption even with all {expected} pods healthy: "
            "evictions (node drains, upgrades) will wait forever",
            severity="warning",
            evidence=[*_rule(pdb), *_counts(pdb, "expectedPods", "currentHealthy", "desiredHealthy",
                                             "disruptionsAllowed")],
        )
    allowed_condition = condition(pdb, "DisruptionAllowed")
    evidence = [*_rule(pdb), *_counts(pdb, "expectedPods", "currentHealthy", "desiredHealthy")]
    if allowed_condition is not None and allowed_condition.get("status") == "False":
        evidence.append(Evidence.status("status.conditions[DisruptionAllowed]", shown_condition(allowed_condition)))
    evidence += related.events_for(pdb, warning_only=True)
    evidence += _pods_cited(pdb, related)
    return Finding.of(
        pdb,
        problem=f"only {healthy} of the {desired} healthy pods it requires: no disruption is allowed",
        severity="warning",
        evidence=evidence,
    )


def selects(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """A label selector (matchLabels, matchExpressions) against one object's labels; empty selects all."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for e in selector.get("matchExpressions") or ():
        if not isinstance(e, Mapping):
            return False
        key, op, values = str(e.get("key")), e.get("operator"), set(e.get("values") or ())
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if (op == "Exists" and not present) or (op == "DoesNotExist" and present):
            return False
    return True


def _pods_cited(pdb: KubeObject, related: Related) -> list[Evidence]:
    selector = spec(pdb).get("selector")
    if not isinstance(selector, Mapping):
        return []
    pods = [p for p in related.objects("pods") if selects(selector, meta(p).get("labels") or {})]
    problems = [
        (str(meta(p).get("name", "")), f.problem)
        for p in sorted(pods, key=lambda p: str(meta(p).get("name", "")))
        for f in pod_findings(p, related)
    ]
    cited = [Evidence.related("Pod", name, problem) for name, problem in problems[:MAX_PODS_CITED]]
    if len(problems) > MAX_PODS_CITED:
        more = len(problems) - MAX_PODS_CITED
        cited.append(Evidence(source="related-object", text=f"... and {more} more pod problems"))
    return cited


