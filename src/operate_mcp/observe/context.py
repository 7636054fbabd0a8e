"""The cluster around an execution at one moment: the touched workloads, their pods (phase, readiness,
restarts, last termination, images and image IDs), recent events about them, CPU and memory from the
metrics API, the last log lines of each touched container, and the cluster and client versions.

Bounded (pods, events and log lines are capped) and redacted (log lines and event messages go through
the redactor), so a record stays small and safe to show. Read through the in-process client: one list
per kind and namespace, whatever the number of pods.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from operate_mcp.analyzers.related import Related, event_text
from operate_mcp.kube.reader import ClusterReader, list_many
from operate_mcp.kube.targets import Target
from operate_mcp.model.observation import ContainerImage, ContainerLog, PodState, Snapshot, Usage, WorkloadState
from operate_mcp.redact import redact_text

WORKLOADS = {
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "daemonsets": "DaemonSet",
    "replicasets": "ReplicaSet",
    "jobs": "Job",
}
READ = ("pods", "events", "deployments", "statefulsets", "daemonsets", "replicasets", "jobs")
MAX_PODS = 50  # per snapshot
MAX_EVENTS = 30
MAX_LOGGED_CONTAINERS = 10
LOG_LINES = 50

_CPU = re.compile(r"^(\d+(?:\.\d+)?)(n|u|m)?$")
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_MEMORY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def cpu_millicores(quantity: str) -> float:
    """`250m` -> 250.0, `1` -> 1000.0, `12345678n` -> 12.345678: the metrics API's CPU quantities."""
    m = _CPU.match(quantity.strip())
    if not m:
        return 0.0
    value = float(m.group(1))
    return {"n": value / 1e6, "u": value / 1e3, "m": value, None: value * 1000}[m.group(2)]


def memory_bytes(quantity: str) -> int:
    m = _MEMORY.match(quantity.strip())
    if not m:
        return 0
    return int(float(m.group(1)) * _MEMORY_UNITS.get(m.group(2) or "", 1))


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _images(spec: Mapping[str, Any], statuses: Iterable[Mapping[str, Any]] = ()) -> list[ContainerImage]:
    ids = {str(s.get("name")): str(s.get("imageID") or "") for s in statuses}
    return [
        ContainerImage(
            container=str(c.get("name")), image=str(c.get("image") or ""), image_id=ids.get(str(c.get("name")), "")
        )
        for c in spec.get("containers") or ()
    ]


def pod_state(pod: Mapping[str, Any], owner: str) -> PodState:
    status = pod.get("status") or {}
    statuses = [s for s in status.get("containerStatuses") or () if isinstance(s, Mapping)]
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ())
    waiting = next(
        (
            str((s.get("state") or {}).get("waiting", {}).get("reason") or "")
            for s in statuses
            if (s.get("state") or {}).get("waiting")
        ),
        "",
    )
    last = next(
        (
            (s.get("lastState") or {}).get("terminated") or {}
            for s in statuses
            if (s.get("lastState") or {}).get("terminated")
        ),
        {},
    )
    return PodState(
        name=str(_meta(pod).get("name")),
        namespace=str(_meta(pod).get("namespace")),
        owner=owner,
        phase=str(status.get("phase") or ""),
        ready=ready,
        restarts=sum(int(s.get("restartCount") or 0) for s in statuses),
        # A pod that failed as a whole (Evicted, NodeLost, ...) says so in status.reason, not on a container.
        waiting_reason=waiting or str(status.get("reason") or ""),
        last_termination_reason=str(last.get("reason") or ""),
        last_exit_code=last.get("exitCode") if isinstance(last.get("exitCode"), int) else None,
        node=str((pod.get("spec") or {}).get("nodeName") or ""),
        images=_images(pod.get("spec") or {}, statuses),
    )


def _workload_state(kind: str, name: str, namespace: str, obj: Mapping[str, Any] | None) -> WorkloadState:
    if obj is None:
        return WorkloadState(kind=kind, name=name, namespace=namespace, exists=False)
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    template = (spec.get("template") or {}).get("spec") or {}
    ready = status.get("readyReplicas", status.get("numberReady"))
    return WorkloadState(
        kind=kind,
        name=name,
        namespace=namespace,
        replicas=spec.get("replicas", status.get("desiredNumberScheduled")),
        ready=int(ready or 0),
        available=int(status.get("availableReplicas", status.get("numberAvailable")) or 0),
        updated=int(status.get("updatedReplicas", status.get("updatedNumberScheduled")) or 0),
        images=_images(template),
    )


def _memory_limit(pod: Mapping[str, Any]) -> int | None:
    limits = [
        ((c.get("resources") or {}).get("limits") or {}).get("memory")
        for c in (pod.get("spec") or {}).get("containers") or ()
    ]
    if not limits or any(v is None for v in limits):
        return None
    return sum(memory_bytes(str(v)) for v in limits)


def capture(
    reader: ClusterReader,
    targets: Sequence[Target],
    *,
    default_namespace: str,
    client_version: str = "",
    logs: bool = True,
) -> Snapshot:
    """What the touched objects look like now. Nothing raises: what cannot be read is listed in `errors`."""
    started = time.monotonic()
    snapshot = Snapshot(at=datetime.now(UTC), client_version=client_version, cluster_version=reader.server_version())
    by_namespace: dict[str, list[Target]] = {}
    for t in targets:
        by_namespace.setdefault(t.namespace or default_namespace, []).append(t)
    pods_seen: list[Mapping[str, Any]] = []
    for namespace, wanted in by_namespace.items():
        listed = list_many(reader, READ, namespace)
        snapshot.errors += [f"{plural} in {namespace}: {lst.error}" for plural, lst in listed.items() if lst.error]
        objects = {plural: lst.items for plural, lst in listed.items() if lst.error is None}
        related = Related(objects)
        events: list[str] = []
        for t in wanted:
            kind = WORKLOADS.get(t.resource)
            if kind is None:
                continue
            obj = next((o for o in objects.get(t.resource, ()) if _meta(o).get("name") == t.name), None)
            snapshot.workloads.append(_workload_state(kind, t.name, namespace, obj))
            if obj is None:
                continue
            family = [obj, *related.descendants(obj)]
            pods = [o for o in family if o.get("kind") == "Pod"]
            for pod in pods[: max(0, MAX_PODS - len(snapshot.pods))]:
                snapshot.pods.append(pod_state(pod, f"{t.resource[:-1]}/{t.name}"))
                pods_seen.append(pod)
            for o in family:
                for e in related.events(o):
                    events.append(f"{o.get('kind')}/{_meta(o).get('name')}: {event_text(e)}")
        snapshot.events += [redact_text(e)[:500] for e in events[:MAX_EVENTS]]
        snapshot.usage += _usage(reader, namespace, {str(_meta(p).get("name")): p for p in pods_seen}, snapshot)
    if logs:
        snapshot.logs = _logs(reader, pods_seen)
    snapshot.read_seconds = round(time.monotonic() - started, 3)
    return snapshot


def _usage(
    reader: ClusterReader, namespace: str, pods: Mapping[str, Mapping[str, Any]], snapshot: Snapshot
) -> list[Usage]:
    if not pods:
        return []
    listing = reader.pod_metrics(namespace)
    if listing.error is not None:
        snapshot.errors.append(f"metrics in {namespace}: {listing.error}")
        return []
    found: list[Usage] = []
    for item in listing.items:
        name = str(_meta(item).get("name"))
        if name not in pods:
            continue
        containers = item.get("containers") or ()
        found.append(
            Usage(
                pod=name,
                namespace=namespace,
                cpu_millicores=round(
                    sum(cpu_millicores(str((c.get("usage") or {}).get("cpu", "0"))) for c in containers), 3
                ),
                memory_bytes=sum(memory_bytes(str((c.get("usage") or {}).get("memory", "0"))) for c in containers),
                memory_limit_bytes=_memory_limit(pods[name]),
            )
        )
    return found


def _logs(reader: ClusterReader, pods: Sequence[Mapping[str, Any]]) -> list[ContainerLog]:
    """The last lines of each touched container (and of its previous instance when it restarted)."""
    wanted: list[tuple[str, str, str, bool]] = []
    for pod in pods:
        if (pod.get("status") or {}).get("phase") not in ("Running", "Failed", "Succeeded"):
            continue
        for cs in (pod.get("status") or {}).get("containerStatuses") or ():
            key = (str(_meta(pod).get("namespace")), str(_meta(pod).get("name")), str(cs.get("name")))
            wanted.append((*key, False))
            if int(cs.get("restartCount") or 0) > 0:
                wanted.append((*key, True))
    wanted = wanted[:MAX_LOGGED_CONTAINERS]
    if not wanted:
        return []

    def read(w: tuple[str, str, str, bool]) -> ContainerLog | None:
        got = reader.logs(w[0], w[1], w[2], previous=w[3], tail=LOG_LINES)
        if got.error is not None or not got.items:
            return None
        return ContainerLog(namespace=w[0], pod=w[1], container=w[2], previous=w[3], lines=got.items[0]["lines"])

    with ThreadPoolExecutor(max_workers=min(8, len(wanted))) as pool:
        return [log for log in pool.map(read, wanted) if log is not None]
