"""Pods: crash loops (with the last exit), OOM kills, image pulls, container config errors, failed mounts,
scheduling and readiness failures. A pod that is Ready again is healthy, whatever its history says."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from operate_mcp.analyzers.logs import log_evidence
from operate_mcp.analyzers.objects import KubeObject, condition, deleting, meta, shown_condition, spec, status
from operate_mcp.analyzers.related import Related
from operate_mcp.model.finding import Evidence, Finding

IMAGE_PULL = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
CANNOT_START = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})
STARTING = frozenset({"ContainerCreating", "PodInitializing"})
MOUNT_FAILURES = frozenset({"FailedMount", "FailedAttachVolume", "FailedCreatePodSandBox"})


class PodAnalyzer:
    """One finding per failing container (or one per pod that cannot be scheduled or has failed)."""

    name = "pod"
    resource = "pods"
    cluster_scoped = False
    reads: tuple[str, ...] = ("events",)

    def analyze(self, objects: Sequence[KubeObject], related: Related) -> list[Finding]:
        return [f for pod in objects for f in pod_findings(pod, related)]


def is_ready(pod: KubeObject) -> bool:
    ready = condition(pod, "Ready")
    return ready is not None and ready.get("status") == "True"


def pod_findings(pod: KubeObject, related: Related) -> list[Finding]:
    """What is wrong with one pod now; used by the owners' analyzers to cite their pods too."""
    phase = status(pod).get("phase")
    if deleting(pod) or phase == "Succeeded" or (phase == "Running" and is_ready(pod)):
        return []
    if phase == "Failed":
        owners = {ref.get("kind") for ref in meta(pod).get("ownerReferences") or () if isinstance(ref, Mapping)}
        return [] if "Job" in owners else [_failed(pod, related)]  # a Job's failed attempts are the Job's story
    scheduled = condition(pod, "PodScheduled")
    if scheduled is not None and scheduled.get("status") == "False":
        return [_unschedulable(pod, scheduled, related)]
    containers = {c.get("name"): c for c in spec(pod).get("containers") or () if isinstance(c, Mapping)}
    inits = {c.get("name"): c for c in spec(pod).get("initContainers") or () if isinstance(c, Mapping)}
    findings: list[Finding] = []
    for field, specs in (("initContainerStatuses", inits), ("containerStatuses", containers)):
        for cs in status(pod).get(field) or ():
            if isinstance(cs, Mapping):
                found = _container(pod, field, cs, specs.get(cs.get("name"), {}), related)
                if found is not None:
                    findings.append(found)
    ready = condition(pod, "Ready")
    if not findings and phase == "Running" and ready is not None:
        # Every container ready but the pod is not: a readiness gate, or the kubelet has not caught up.
        findings.append(
            Finding.of(
                pod,
                problem="pod is running but not ready",
                severity="warning",
                evidence=[Evidence.status("status.conditions[Ready]", shown_condition(ready))],
            )
        )
    return findings


def _container(
    pod: KubeObject, field: str, cs: Mapping[str, Any], container: Mapping[str, Any], related: Related
) -> Finding | None:
    name = str(cs.get("name"))
    init = field == "initContainerStatuses"
    label = f"{'init container' if init else 'container'} {name}"
    at = f"status.{field}[{name}]"
    state = cs.get("state") or {}
    waiting = state.get("waiting") or {}
    terminated = state.get("terminated")
    last = (cs.get("lastState") or {}).get("terminated")
    reason = waiting.get("reason")
    restarts = int(cs.get("restartCount") or 0)

    if reason in IMAGE_PULL:
        image = container.get("image") or cs.get("image")
        return Finding.of(
            pod,
            problem=f"{label} cannot pull image {image}: {reason}",
            severity="error",
            evidence=[
                *_waiting(at, waiting),
                Evidence.spec(f"spec.{'initContainers' if init else 'containers'}[{name}].image", image),
                *related.events_for(pod, warning_only=True, reasons={"Failed"}),
            ],
        )
    if reason in CANNOT_START:
        return Finding.of(
            pod,
            problem=f"{label} cannot start: {waiting.get('message') or reason}",
            severity="error",
            evidence=[*_waiting(at, waiting), *related.events_for(pod, warning_only=True, reasons={"Failed"})],
        )
    if cs.get("ready") or (init and terminated and terminated.get("exitCode") == 0):
        return None
    exited = terminated if terminated and terminated.get("exitCode") not in (None, 0) else last
    backing_off = any(
        e.get("reason") == "BackOff" and "restarting" in str(e.get("message", "")) for e in related.events(pod)
    )
    if reason == "CrashLoopBackOff" or (exited and (terminated or (restarts > 0 and backing_off))):
        return _crash(pod, label, at, cs, container, exited or {}, related)
    if state.get("running") and init:
        return None  # an init container runs to completion; running is progress
    if state.get("running"):
        probes = related.events_for(pod, warning_only=True, reasons={"Unhealthy"})
        failing = [e for e in probes if "Readiness probe failed" in e.text]
        ready = condition(pod, "Ready")
        evidence = [Evidence.status(f"{at}.ready", False)]
        if ready is not None:
            evidence.append(Evidence.status("status.conditions[Ready]", shown_condition(ready)))
        if failing:
            return Finding.of(
                pod,
                problem=f"{label} is running but not ready: its readiness probe fails",
                severity="error",
                evidence=[*evidence, *failing],
            )
        return Finding.of(pod, problem=f"{label} is running but not ready", severity="warning", evidence=evidence)
    if reason in STARTING:
        mounts = related.events_for(pod, warning_only=True, reasons=MOUNT_FAILURES)
        if not mounts:
            return None  # still starting
        return Finding.of(
            pod,
            problem=f"{label} cannot start: its volumes cannot be mounted",
            severity="error",
            evidence=[*_waiting(at, waiting), *mounts],
        )
    if reason:
        return Finding.of(
            pod,
            problem=f"{label} is waiting: {reason}",
            severity="warning",
            evidence=[*_waiting(at, waiting), *related.events_for(pod, warning_only=True)],
        )
    return None


def _waiting(at: str, waiting: Mapping[str, Any]) -> list[Evidence]:
    evidence = [Evidence.status(f"{at}.state.waiting.reason", waiting.get("reason"))]
    if waiting.get("message"):
        evidence.append(Evidence.status(f"{at}.state.waiting.message", waiting["message"]))
    return evidence


def _crash(
    pod: KubeObject,
    label: str,
    at: str,
    cs: Mapping[str, Any],
    container: Mapping[str, Any],
    exited: Mapping[str, Any],
    related: Related,
) -> Finding:
    state = cs.get("state") or {}
    where = f"{at}.state.terminated" if state.get("terminated") is exited else f"{at}.lastState.terminated"
    code, why, restarts = exited.get("exitCode"), exited.get("reason"), int(cs.get("restartCount") or 0)
    evidence: list[Evidence] = []
    if state.get("waiting"):
        evidence += _waiting(at, state["waiting"])
    evidence += [Evidence.status(f"{where}.reason", why), Evidence.status(f"{where}.exitCode", code)]
    if exited.get("message"):
        evidence.append(Evidence.status(f"{where}.message", exited["message"]))
    evidence.append(Evidence.status(f"{at}.restartCount", restarts))
    if why == "OOMKilled":
        limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
        evidence.append(Evidence.spec(f"spec.containers[{cs.get('name')}].resources.limits.memory", limit or "none"))
        problem = f"{label} was OOMKilled (exit code {code}) and has restarted {_times(restarts)}"
        if limit:
            problem += f"; its memory limit is {limit}"
    else:
        problem = f"{label} is crash-looping: it exited with code {code} ({why}) and has restarted {_times(restarts)}"
    events = related.events_for(pod, reasons={"BackOff", "Unhealthy", "Killing"}, limit=4)
    if any("Liveness probe failed" in e.text or "failed liveness probe" in e.text for e in events):
        problem = f"{label} is restarted by its failing liveness probe: " + problem.split(": ", 1)[-1]
    evidence += events
    previous = state.get("terminated") is not exited
    evidence += log_evidence(related.log(pod, str(cs.get("name")), previous=previous))
    return Finding.of(pod, problem=problem, severity="error", evidence=evidence)


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _unschedulable(pod: KubeObject, scheduled: Mapping[str, Any], related: Related) -> Finding:
    why = scheduled.get("message") or scheduled.get("reason") or "no reason given"
    return Finding.of(
        pod,
        problem=f"pod cannot be scheduled: {why}",
        severity="error",
        evidence=[
            Evidence.status("status.conditions[PodScheduled]", shown_condition(scheduled)),
            *related.events_for(pod, warning_only=True, reasons={"FailedScheduling"}, limit=1),
        ],
    )


def _failed(pod: KubeObject, related: Related) -> Finding:
    s = status(pod)
    why = ": ".join(str(x) for x in (s.get("reason"), s.get("message")) if x) or "no reason given"
    evidence = [Evidence.status("status.phase", "Failed")]
    if s.get("reason"):
        evidence.append(Evidence.status("status.reason", s["reason"]))
    if s.get("message"):
        evidence.append(Evidence.status("status.message", s["message"]))
    return Finding.of(
        pod,
        problem=f"pod failed: {why}",
        severity="error",
        evidence=[*evidence, *related.events_for(pod, warning_only=True)],
    )
