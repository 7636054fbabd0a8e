"""Container logs as evidence: which containers' logs are worth reading, and which of their lines prove
a crash (the first error and the end of the story: `panic: ...`, a traceback's last line).

Pure, like every analyzer: the caller reads the tails `wanted_logs` names and hands them in under the
`logs` pseudo-resource (`Related.log`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import partial
from typing import NamedTuple

from operate_mcp.analyzers.objects import KubeObject, meta, status
from operate_mcp.model.finding import Evidence

TAIL = 50  # lines read per container
MAX_CONTAINERS = 20  # logs read per diagnosis: enough to explain, bounded on a namespace of crashes
MAX_CITED = 6

# A line that says something went wrong, in the formats apps log in (klog's E/F prefix, Python, Go, Java, Node).
_ERROR = re.compile(
    r"\b(ERROR|Error|FATAL|Fatal|CRITICAL|SEVERE|panic|Traceback|Exception|exception|error|failed|refused)\b"
    r"|^[EF]\d{4} "
)


class LogRequest(NamedTuple):
    namespace: str
    pod: str
    container: str
    previous: bool


def wanted_logs(pods: Sequence[KubeObject], limit: int = MAX_CONTAINERS) -> list[LogRequest]:
    """Containers that crashed (their previous instance's log) or exited with an error (their own): the
    logs that explain a restart. Then, while the limit allows, Ready containers whose last instance was
    killed (a liveness probe restarts a container that is Ready between kills): the previous log says why
    its health check failed. Healthy containers' logs are never read."""
    failing: list[LogRequest] = []
    killed: list[LogRequest] = []
    for pod in pods:
        m, s = meta(pod), status(pod)
        if m.get("deletionTimestamp") or s.get("phase") == "Succeeded":
            continue
        for cs in [*(s.get("initContainerStatuses") or ()), *(s.get("containerStatuses") or ())]:
            if not isinstance(cs, Mapping):
                continue
            request = partial(LogRequest, str(m.get("namespace")), str(m.get("name")), str(cs.get("name")))
            last = (cs.get("lastState") or {}).get("terminated") or {}
            crashed = bool(last) and int(cs.get("restartCount") or 0) > 0
            if cs.get("ready"):
                if crashed and last.get("exitCode") not in (None, 0):
                    killed.append(request(True))
            elif ((cs.get("state") or {}).get("terminated") or {}).get("exitCode") not in (None, 0):
                failing.append(request(False))
            elif crashed:
                failing.append(request(True))
            if len(failing) >= limit:
                return failing
    return [*failing, *killed][:limit]


def decisive_lines(lines: Sequence[str], limit: int = MAX_CITED) -> list[str]:
    """From the first error line on (its first and last lines when long); the last lines when none looks
    like an error. Lines are cited exactly as read, so a person can find them in `kubectl logs`."""
    kept = [line for line in lines if line.strip()]
    first = next((i for i, line in enumerate(kept) if _ERROR.search(line)), None)
    story = kept[first:] if first is not None else kept[-limit:]
    if len(story) <= limit:
        return list(story)
    head = limit // 2
    return [*story[:head], *story[-(limit - head) :]]


def log_evidence(lines: Sequence[str] | None) -> list[Evidence]:
    return [Evidence(source="log", text=line) for line in decisive_lines(lines or ())]
