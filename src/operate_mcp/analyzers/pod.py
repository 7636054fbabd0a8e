"""Pods: crash loops (with the last exit), OOM kills, commands that cannot start, image pulls (and a registry
that wants credentials the pod lacks), container config errors and failed mounts (with the ConfigMap or
Secret that is missing), scheduling, readiness and liveness failures. A pod that is Ready again is healthy,
whatever its history says, unless its liveness probe keeps killing it."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from operate_mcp.analyzers.cronjob import observed_time, parse_time
from operate_mcp.analyzers.logs import log_evidence
from operate_mcp.analyzers.objects import KubeObject, condition, deleting, meta, shown_condition, spec, status
from operate_mcp.analyzers.related import Related
from operate_mcp.model.finding import Evidence, Finding

IMAGE_PULL = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
CANNOT_START = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})
STARTING = frozenset({"ContainerCreating", "PodInitializing"})
MOUNT_FAILURES = frozenset({"FailedMount", "FailedAttachVolume", "FailedCreatePodSandBox"})
# What registries and containerd say when a pull needs credentials the kubelet did not send.
PULL_DENIED = (
    "pull access denied",
    "authorization failed",
    "unauthorized",
    "no basic auth credentials",
    "requested access to the resource is denied",
    "403 forbidden",
)
# Read when the caller has read them (diagnose does, for the ConfigMap and Ingress analyzers), never required:
# post-execution validation fails on what it cannot read, and these only add evidence.
CONFIGMAPS = "configmaps"
SECRET_NAMES = "secretnames"  # noqa: S105  pseudo-resource: Secrets by name only (kube/reader.py), never values
# The kubelet forgets a container's back-off after 10 minutes of running: a liveness kill older than that is history.
LIVENESS_HISTORY = timedelta(minutes=10)
_KEY_MISSING = re.compile(r"couldn't find key (?P<key>\S+) in (?P<kind>Secret|ConfigMap) (?P<ns>[^/\s]+)/(?P<name>\S+)")
_OBJECT_MISSING = re.compile(r'(?P<kind>secret|configmap) "(?P<name>[^"]+)" not found')
_OBSERVED: WeakKeyDictionary[Related, datetime | None] = WeakKeyDictionary()


class PodAnalyzer:
    """One finding per failing container (or one per pod that cannot be scheduled or has failed).
    ConfigMaps and Secret names, when the caller read them, prove which referenced object is missing."""

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
    if deleting(pod) or phase == "Succeeded":
        return []
    if phase == "Running" and is_ready(pod):
        return _killed_by_liveness(pod, related)
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
    spec_at = f"spec.{'initContainers' if init else 'containers'}[{name}]"
    state = cs.get("state") or {}
    waiting = state.get("waiting") or {}
    terminated = state.get("terminated")
    last = (cs.get("lastState") or {}).get("terminated")
    reason = waiting.get("reason")
    restarts = int(cs.get("restartCount") or 0)

    if reason in IMAGE_PULL:
        image = container.get("image") or cs.get("image")
        events = related.events_for(pod, warning_only=True, reasons={"Failed"})
        problem = f"{label} cannot pull image {image}: {reason}"
        evidence = [
            *_waiting(at, waiting),
            Evidence.spec(f"{spec_at}.image", image),
        ]
        if _denied(str(waiting.get("message") or ""), *(e.text for e in events)):
            credentials, cited = _pull_secrets(pod, related)
            problem += f"; the registry denied access and {credentials}"
            evidence += cited
        return Finding.of(pod, problem=problem, severity="error", evidence=[*evidence, *events])
    if reason in CANNOT_START:
        message = str(waiting.get("message") or reason)
        return Finding.of(
            pod,
            problem=f"{label} cannot start: {message}",
            severity="error",
            evidence=[
                *_waiting(at, waiting),
                *_config_refs(pod, container, spec_at, message, related),
                *related.events_for(pod, warning_only=True, reasons={"Failed"}),
            ],
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
        missing = [(path, kind, src) for path, kind, src in _volume_sources(pod) if _absent(pod, kind, src, related)]
        problem = f"{label} cannot start: its volumes cannot be mounted"
        if missing:
            problem += "; " + ", ".join(f"{kind} {source} does not exist" for _, kind, source in missing)
        evidence = [*_waiting(at, waiting)]
        for path, kind, source in missing:
            evidence += [Evidence.spec(path, source), _not_found(pod, kind, source)]
        return Finding.of(pod, problem=problem, severity="error", evidence=[*evidence, *mounts])
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
    elif why in ("StartError", "ContainerCannotRun"):
        # The runtime could not start the process (a command not in the image): the message says which.
        detail = str(exited.get("message") or "").rsplit("error during container init: ", 1)[-1]
        detail = detail.removesuffix(": unknown") or "the runtime gave no message"
        if container.get("command"):
            evidence.append(Evidence.spec(f"spec.containers[{cs.get('name')}].command", container["command"]))
        problem = (
            f"{label} cannot start its command: {detail} (exit code {code}, {why}); it has restarted {_times(restarts)}"
        )
    else:
        problem = f"{label} is crash-looping: it exited with code {code} ({why}) and has restarted {_times(restarts)}"
    events = related.events_for(pod, reasons={"BackOff", "Unhealthy", "Killing", "Failed"}, limit=4)
    if any("Liveness probe failed" in e.text or "failed liveness probe" in e.text for e in events):
        problem = f"{label} is restarted by its failing liveness probe: " + problem.split(": ", 1)[-1]
        if container.get("livenessProbe"):
            evidence.append(
                Evidence.spec(f"spec.containers[{cs.get('name')}].livenessProbe", container["livenessProbe"])
            )
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
            *_asked_for(pod, str(why)),
            *related.events_for(pod, warning_only=True, reasons={"FailedScheduling"}, limit=1),
        ],
    )


def _asked_for(pod: KubeObject, why: str) -> list[Evidence]:
    """The part of the pod's spec the scheduler's message holds against it: the requests it found
    insufficient, the node selector or affinity no node matches."""
    evidence = []
    for resource in ("cpu", "memory", "ephemeral-storage"):
        if f"Insufficient {resource}" not in why:
            continue
        for c in spec(pod).get("containers") or ():
            asked = ((c.get("resources") or {}).get("requests") or {}).get(resource)
            if asked is not None:
                evidence.append(Evidence.spec(f"spec.containers[{c.get('name')}].resources.requests.{resource}", asked))
    if "node affinity/selector" in why:
        if spec(pod).get("nodeSelector"):
            evidence.append(Evidence.spec("spec.nodeSelector", spec(pod)["nodeSelector"]))
        required = ((spec(pod).get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
        if required:
            evidence.append(
                Evidence.spec("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution", required)
            )
    return evidence


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


def _killed_by_liveness(pod: KubeObject, related: Related) -> list[Finding]:
    """A Ready pod whose container's last instance was killed by its liveness probe, lately: ready between
    kills is not healthy. "Lately" is against the newest time the objects read show (no clock here)."""
    containers = {c.get("name"): c for c in spec(pod).get("containers") or () if isinstance(c, Mapping)}
    findings = []
    for cs in status(pod).get("containerStatuses") or ():
        last = (cs.get("lastState") or {}).get("terminated") if isinstance(cs, Mapping) else None
        if not last or not int(cs.get("restartCount") or 0):
            continue
        name = str(cs.get("name"))
        kill = next(
            (
                e
                for e in related.events(pod)
                if e.get("reason") == "Killing" and f"Container {name} failed liveness probe" in str(e.get("message"))
            ),
            None,
        )
        killed_at = _seen(kill) if kill is not None else None
        started = parse_time(last.get("startedAt"))
        if killed_at is None or (started is not None and killed_at < started):
            continue  # its last restart was not a liveness kill
        now = _observed(related, pod)
        if now is not None and now - killed_at > LIVENESS_HISTORY:
            continue
        at = f"status.containerStatuses[{name}]"
        findings.append(_crash(pod, f"container {name}", at, cs, containers.get(name, {}), last, related))
    return findings


def _observed(related: Related, pod: KubeObject) -> datetime | None:
    """The newest time the namespace's pods and events show, worked out once per `Related` (it is only asked
    for pods a liveness probe killed, but a namespace may hold thousands of objects)."""
    if related not in _OBSERVED:
        _OBSERVED[related] = observed_time([*related.objects("pods"), *related.objects("events")])
    seen = _OBSERVED[related]
    own = observed_time([pod])
    return max(seen, own) if seen is not None and own is not None else seen or own


def _seen(event: KubeObject) -> datetime | None:
    series = event.get("series")
    last = series.get("lastObservedTime") if isinstance(series, Mapping) else None
    return parse_time(last or event.get("lastTimestamp") or event.get("eventTime"))


def _denied(*texts: str) -> bool:
    return any(word in text.lower() for text in texts for word in PULL_DENIED)


def _pull_secrets(pod: KubeObject, related: Related) -> tuple[str, list[Evidence]]:
    """What credentials the pod offers its registry: none (the usual cause), or names, some perhaps missing.
    The ServiceAccount's imagePullSecrets are in the pod's spec already (admission copies them)."""
    names = [str(s.get("name")) for s in spec(pod).get("imagePullSecrets") or () if isinstance(s, Mapping)]
    if not names:
        return "the pod has no imagePullSecrets", [Evidence.spec("spec.imagePullSecrets", "none")]
    evidence = [Evidence.spec("spec.imagePullSecrets", names)]
    missing = [n for n in names if _absent(pod, "Secret", n, related)]
    evidence += [_not_found(pod, "Secret", n) for n in missing]
    if missing:
        return f"its imagePullSecrets {', '.join(missing)} do not exist", evidence
    return f"its imagePullSecrets ({', '.join(names)}) were not accepted", evidence


def _named(related: Related, kind: str, namespace: object) -> dict[str, KubeObject] | None:
    """ConfigMaps (or Secrets, by name only) of `namespace` by name; None when they were not read."""
    resource = CONFIGMAPS if kind == "ConfigMap" else SECRET_NAMES
    if not related.has(resource):
        return None
    return {str(meta(o).get("name")): o for o in related.objects(resource) if meta(o).get("namespace") == namespace}


def _absent(pod: KubeObject, kind: str, name: str, related: Related) -> bool:
    """Proven missing: its kind was read in the pod's namespace and no object has the name."""
    found = _named(related, kind, meta(pod).get("namespace"))
    return found is not None and name not in found


def _not_found(pod: KubeObject, kind: str, name: str) -> Evidence:
    return Evidence.related(kind, name, f"not found in namespace {meta(pod).get('namespace')}")


def _volume_sources(pod: KubeObject) -> Iterator[tuple[str, str, str]]:
    """(spec path, kind, name) of every ConfigMap and Secret the pod's volumes need (optional ones excepted)."""
    for v in spec(pod).get("volumes") or ():
        if not isinstance(v, Mapping):
            continue
        at = f"spec.volumes[{v.get('name')}]"
        cm, secret = v.get("configMap") or {}, v.get("secret") or {}
        if cm.get("name") and not cm.get("optional"):
            yield f"{at}.configMap.name", "ConfigMap", str(cm["name"])
        if secret.get("secretName") and not secret.get("optional"):
            yield f"{at}.secret.secretName", "Secret", str(secret["secretName"])
        for i, source in enumerate((v.get("projected") or {}).get("sources") or ()):
            for field, kind in (("configMap", "ConfigMap"), ("secret", "Secret")):
                ref = source.get(field) or {}
                if ref.get("name") and not ref.get("optional"):
                    yield f"{at}.projected.sources[{i}].{field}.name", kind, str(ref["name"])


def _config_refs(
    pod: KubeObject, container: Mapping[str, Any], at: str, message: str, related: Related
) -> list[Evidence]:
    """For a container config error: the env reference the message is about and what the object shows.
    A Secret is known by name only; a ConfigMap's keys (never its values) say which key is missing."""
    key_missing, object_missing = _KEY_MISSING.search(message), _OBJECT_MISSING.search(message)
    if key_missing is not None:
        kind, name, key = key_missing["kind"], key_missing["name"], key_missing["key"]
    elif object_missing is not None:
        kind = "Secret" if object_missing["kind"] == "secret" else "ConfigMap"
        name, key = object_missing["name"], None
    else:
        return []
    evidence = [Evidence.spec(path, ref) for path, ref in _env_refs(container, at, kind, name, key)]
    named = _named(related, kind, meta(pod).get("namespace"))
    if named is None:
        return evidence
    obj = named.get(name)
    if obj is None:
        return [*evidence, _not_found(pod, kind, name)]
    if kind == "Secret":
        return [*evidence, Evidence.related(kind, name, f"exists in namespace {meta(pod).get('namespace')}")]
    keys = sorted([*(obj.get("data") or {}), *(obj.get("binaryData") or {})])
    return [*evidence, Evidence.related(kind, name, f"exists; keys: {', '.join(keys) or 'none'}")]


def _env_refs(
    container: Mapping[str, Any], at: str, kind: str, name: str, key: str | None
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The container's env entries (or envFrom sources) that name this object (and key)."""
    ref_field, from_field = ("secretKeyRef", "secretRef") if kind == "Secret" else ("configMapKeyRef", "configMapRef")
    for env in container.get("env") or ():
        ref = (env.get("valueFrom") or {}).get(ref_field) or {}
        if ref.get("name") == name and (key is None or ref.get("key") == key):
            yield f"{at}.env[{env.get('name')}].valueFrom.{ref_field}", ref
    if key is None:
        for i, source in enumerate(container.get("envFrom") or ()):
            ref = source.get(from_field) or {}
            if ref.get("name") == name:
                yield f"{at}.envFrom[{i}].{from_field}", ref
