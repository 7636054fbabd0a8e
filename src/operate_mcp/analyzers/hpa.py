"""HorizontalPodAutoscalers (autoscaling/v2): a scale target that does not exist, utilization targets on
containers that request none of that resource, the controller's AbleToScale / ScalingActive conditions,
and an autoscaler held at its maximum while it wants more."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from operate_mcp.analyzers.cronjob import observed_time, parse_time
from operate_mcp.analyzers.objects import KubeObject, condition, deleting, meta, shown_condition, spec, status
from operate_mcp.analyzers.related import Related
from operate_mcp.model.finding import Evidence, Finding

TARGETS = {"Deployment": "deployments", "StatefulSet": "statefulsets", "ReplicaSet": "replicasets"}
AT_MAXIMUM_FOR = timedelta(minutes=10)  # shorter is a burst the maximum is there to cap


class HPAAnalyzer:
    """One finding per autoscaler, the most basic problem first: no target, then no requests to measure
    utilization against, then whatever the controller's conditions say. "For long" is measured against the
    newest time the objects read show (see cronjob.py): never overstated."""

    name = "hpa"
    resource = "horizontalpodautoscalers"
    cluster_scoped = False
    reads: tuple[str, ...] = ("deployments", "statefulsets", "replicasets", "pods", "events")

    def analyze(self, objects: Sequence[KubeObject], related: Related) -> list[Finding]:
        findings: list[Finding] = []
        for hpa in objects:
            if deleting(hpa):
                continue
            found = _target_missing(hpa, related) or _no_requests(hpa, related) or _conditions(hpa, related)
            if found is None:
                found = _at_maximum(hpa, related, objects)
            if found is not None:
                findings.append(found)
        return findings


def _ref(hpa: KubeObject) -> Mapping[str, Any]:
    ref = spec(hpa).get("scaleTargetRef")
    return ref if isinstance(ref, Mapping) else {}


def _failing(hpa: KubeObject, kind: str) -> Mapping[str, Any] | None:
    c = condition(hpa, kind)
    return c if c is not None and c.get("status") == "False" else None


def _target(hpa: KubeObject, related: Related) -> tuple[str, KubeObject | None] | None:
    """(kind, the target or None if it does not exist); None when the kind is not one this analyzer reads."""
    ref = _ref(hpa)
    kind, api = str(ref.get("kind") or ""), str(ref.get("apiVersion") or "apps/v1")
    if kind not in TARGETS or not api.startswith("apps/") or not related.has(TARGETS[kind]):
        return None  # a kind this analyzer does not read, or could not read: nothing to prove
    found = next((o for o in related.objects(TARGETS[kind]) if meta(o).get("name") == ref.get("name")), None)
    return kind, found


def _target_missing(hpa: KubeObject, related: Related) -> Finding | None:
    target = _target(hpa, related)
    if target is None or target[1] is not None:
        return None
    kind, name = target[0], str(_ref(hpa).get("name"))
    evidence = [
        Evidence.spec("spec.scaleTargetRef", dict(_ref(hpa))),
        Evidence.related(kind, name, f"not found in namespace {meta(hpa).get('namespace')}"),
    ]
    able = _failing(hpa, "AbleToScale")
    if able is not None:
        evidence.append(Evidence.status("status.conditions[AbleToScale]", shown_condition(able)))
    evidence += related.events_for(hpa, warning_only=True, reasons={"FailedGetScale"}, limit=1)
    return Finding.of(
        hpa, problem=f"its scale target {kind}/{name} does not exist", severity="error", evidence=evidence
    )


def _utilization_metrics(hpa: KubeObject) -> list[tuple[str, str | None]]:
    """(resource, container or None for every container) of each utilization target: they need requests."""
    wanted: list[tuple[str, str | None]] = []
    for m in spec(hpa).get("metrics") or ():
        if not isinstance(m, Mapping):
            continue
        source = m.get("resource") if m.get("type") == "Resource" else m.get("containerResource")
        if m.get("type") not in ("Resource", "ContainerResource") or not isinstance(source, Mapping):
            continue
        target = source.get("target")
        if isinstance(target, Mapping) and target.get("type") == "Utilization" and source.get("name"):
            wanted.append((str(source["name"]), str(source["container"]) if source.get("container") else None))
    return wanted


def _no_requests(hpa: KubeObject, related: Related) -> Finding | None:
    target = _target(hpa, related)
    if target is None or target[1] is None:
        return None
    kind, obj = target[0], target[1]
    template = spec(obj).get("template") or {}
    containers = [c for c in (template.get("spec") or {}).get("containers") or () if isinstance(c, Mapping)]
    name = str(meta(obj).get("name"))
    missing: list[tuple[str, str]] = []
    for resource, only in _utilization_metrics(hpa):
        for c in containers:
            requests = (c.get("resources") or {}).get("requests") or {}
            if (only is None or c.get("name") == only) and not requests.get(resource):
                missing.append((resource, str(c.get("name"))))
    if not missing:
        return None
    resource, container = missing[0]
    evidence = [
        Evidence.related(kind, name, f"spec.template.spec.containers[{c}].resources.requests.{r}: not set")
        for r, c in missing
    ]
    active = _failing(hpa, "ScalingActive")
    if active is not None:
        evidence.append(Evidence.status("status.conditions[ScalingActive]", shown_condition(active)))
    evidence += related.events_for(hpa, warning_only=True, reasons={"FailedGetResourceMetric"}, limit=1)
    return Finding.of(
        hpa,
        problem=f"it cannot compute {resource} utilization: container {container} of {kind}/{name} requests "
        f"no {resource}",
        severity="error",
        evidence=evidence,
    )


def _conditions(hpa: KubeObject, related: Related) -> Finding | None:
    able, active = _failing(hpa, "AbleToScale"), _failing(hpa, "ScalingActive")
    if active is not None and active.get("reason") == "ScalingDisabled":
        active = None  # its target is scaled to 0 on purpose: autoscaling is off, not broken
    if able is None and active is None:
        return None
    evidence = []
    for kind, c in (("AbleToScale", able), ("ScalingActive", active)):
        if c is not None:
            evidence.append(Evidence.status(f"status.conditions[{kind}]", shown_condition(c)))
    evidence += related.events_for(hpa, warning_only=True, limit=2)
    worst = able or active or {}
    problem = (
        f"it cannot scale its target ({worst.get('reason')})" if able is not None
        else f"it is not autoscaling ({worst.get('reason')})"
    )
    if worst.get("message"):
        problem += f": {worst['message']}"
    return Finding.of(hpa, problem=problem, severity="error" if able is not None else "warning", evidence=evidence)


def _at_maximum(hpa: KubeObject, related: Related, hpas: Sequence[KubeObject]) -> Finding | None:
    limited = condition(hpa, "ScalingLimited")
    if limited is None or limited.get("status") != "True" or limited.get("reason") != "TooManyReplicas":
        return None
    maximum = spec(hpa).get("maxReplicas")
    s = status(hpa)
    since = parse_time(limited.get("lastTransitionTime"))
    now = observed_time([*hpas, *related.objects("pods"), *related.objects("events")])
    if since is None or now is None or now - since < AT_MAXIMUM_FOR:
        return None
    minutes = int((now - since).total_seconds() // 60)
    evidence = [
        Evidence.spec("spec.maxReplicas", maximum),
        Evidence.status("status.desiredReplicas", s.get("desiredReplicas")),
        Evidence.status("status.currentReplicas", s.get("currentReplicas")),
        Evidence.status("status.conditions[ScalingLimited]", shown_condition(limited)),
    ]
    for m in s.get("currentMetrics") or ():
        source = m.get("resource") if isinstance(m, Mapping) else None
        if not isinstance(source, Mapping):
            continue
        current = source.get("current")
        if isinstance(current, Mapping) and current.get("averageUtilization") is not None:
            evidence.append(
                Evidence.status(
                    f"status.currentMetrics[{source.get('name')}].current.averageUtilization",
                    current["averageUtilization"],
                )
            )
    return Finding.of(
        hpa,
        problem=f"it has been held at its maximum of {maximum} replicas for {minutes} minutes and wants more",
        severity="warning",
        evidence=evidence,
    )
