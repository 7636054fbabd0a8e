"""Jobs: failed for good (backoff limit, deadline, pod failure policy), with the last exit of each failed
pod. A Job that completed, or is still running within its limits, says nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from operate_mcp.analyzers.objects import KubeObject, condition, deleting, meta, shown_condition, spec, status
from operate_mcp.analyzers.related import Related
from operate_mcp.model.finding import Evidence, Finding

MAX_PODS_CITED = 5
DEFAULT_BACKOFF_LIMIT = 6  # batch/v1 default when spec.backoffLimit is unset


class JobAnalyzer:
    """A failed Job of a CronJob whose newer run completed is history, not a problem."""

    name = "job"
    resource = "jobs"
    cluster_scoped = False
    reads: tuple[str, ...] = ("pods", "events")

    def analyze(self, objects: Sequence[KubeObject], related: Related) -> list[Finding]:
        return [f for job in objects if (f := job_finding(job, objects, related)) is not None]


def failed_condition(job: KubeObject) -> Mapping[str, Any] | None:
    failed = condition(job, "Failed")
    return failed if failed is not None and failed.get("status") == "True" else None


def completed(job: KubeObject) -> bool:
    done = condition(job, "Complete")
    return done is not None and done.get("status") == "True"


def created(obj: KubeObject) -> str:
    return str(meta(obj).get("creationTimestamp") or "")


def _superseded(job: KubeObject, jobs: Sequence[KubeObject]) -> bool:
    """A newer Job of the same CronJob completed: this failure is no longer the CronJob's state."""
    owners = {
        str(ref.get("uid"))
        for ref in meta(job).get("ownerReferences") or ()
        if isinstance(ref, Mapping) and ref.get("kind") == "CronJob"
    }
    if not owners:
        return False
    for other in jobs:
        refs = meta(other).get("ownerReferences") or ()
        siblings = any(isinstance(r, Mapping) and str(r.get("uid")) in owners for r in refs)
        if siblings and completed(other) and created(other) > created(job):
            return True
    return False


def job_finding(job: KubeObject, jobs: Sequence[KubeObject], related: Related) -> Finding | None:
    failed = failed_condition(job)
    if deleting(job) or failed is None or _superseded(job, jobs):
        return None
    reason = failed.get("reason") or "Failed"
    problem = f"job failed ({reason})"
    if failed.get("message"):
        problem += f": {failed['message']}"
    evidence = [Evidence.status("status.conditions[Failed]", shown_condition(failed))]
    s, sp = status(job), spec(job)
    failures = int(s.get("failed") or 0)
    evidence.append(Evidence.status("status.failed", failures))
    if reason == "DeadlineExceeded" and sp.get("activeDeadlineSeconds") is not None:
        evidence.append(Evidence.spec("spec.activeDeadlineSeconds", sp["activeDeadlineSeconds"]))
    else:
        limit = sp.get("backoffLimit")
        evidence.append(Evidence.spec("spec.backoffLimit", DEFAULT_BACKOFF_LIMIT if limit is None else limit))
    evidence += related.events_for(job, warning_only=True)
    evidence += failed_pods_cited(job, related)
    return Finding.of(job, problem=problem, severity="error", evidence=evidence)


def failed_pods_cited(job: KubeObject, related: Related) -> list[Evidence]:
    """Each failed container's last exit (`exited with code 2 (Error): ...`), or the pod's own reason."""
    exits: list[Evidence] = []
    for pod in sorted(related.pods_of(job), key=lambda p: str(meta(p).get("name", ""))):
        name = str(meta(pod).get("name", ""))
        before = len(exits)
        for cs in status(pod).get("containerStatuses") or ():
            if not isinstance(cs, Mapping):
                continue
            state = cs.get("state") or {}
            last = state.get("terminated") or (cs.get("lastState") or {}).get("terminated")
            if isinstance(last, Mapping) and last.get("exitCode") not in (None, 0):
                text = f"container {cs.get('name')} exited with code {last['exitCode']} ({last.get('reason')})"
                if last.get("message"):
                    text += f": {str(last['message']).strip()}"
                exits.append(Evidence.related("Pod", name, text))
        if len(exits) == before and status(pod).get("phase") == "Failed":
            why = ": ".join(str(x) for x in (status(pod).get("reason"), status(pod).get("message")) if x)
            exits.append(Evidence.related("Pod", name, f"failed: {why or 'no reason given'}"))
    if len(exits) > MAX_PODS_CITED:
        more = len(exits) - MAX_PODS_CITED
        exits = [*exits[:MAX_PODS_CITED], Evidence(source="related-object", text=f"... and {more} more failed pods")]
    return exits
