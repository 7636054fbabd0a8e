"""After a fix ran: the analyzers again, finding by finding — is each problem the diagnosis cited gone?

Execution calls this for every remediate session (workflows/execute.py), so a fix is judged by its
findings, not only by its rollout.
"""

from __future__ import annotations

import re
import time

from operate_mcp.kube.reader import reader_for
from operate_mcp.kube.runner import Kubectl
from operate_mcp.model.remediation import FindingCheck, Remediation
from operate_mcp.model.session import Check
from operate_mcp.redact import redact_text
from operate_mcp.workflows.diagnose import diagnose

RECHECK_SECONDS = 30.0  # how long a fix's findings may take to clear after validation
RECHECK_POLL_SECONDS = 2.0
# A pod's name without its ReplicaSet hash and random suffix: `web-7d9c8b6f5-x2x9q` -> `web`.
_POD_SUFFIX = re.compile(r"(-[a-z0-9]{6,10})?-[a-z0-9]{5}$")
_RS_SUFFIX = re.compile(r"-[a-z0-9]{6,10}$")


def family(kind: str, name: str) -> str:
    """The workload an object belongs to by name: pods and ReplicaSets come and go, their owner stays."""
    if kind == "Pod":
        return _POD_SUFFIX.sub("", name)
    if kind == "ReplicaSet":
        return _RS_SUFFIX.sub("", name)
    return name


def recheck(
    kubectl: Kubectl, remediation: Remediation, *, within: float = RECHECK_SECONDS
) -> tuple[list[FindingCheck], list[Check]]:
    """After the fix: the analyzers again over the namespace, until every finding is gone or `within`
    seconds pass (controllers need a moment: endpoints follow ready pods, new pods replace old). A finding
    is gone when nothing is wrong with its object (for pods and ReplicaSets: with its workload) any more."""
    wanted = [f for f in remediation.findings if f.severity != "info"]
    deadline = time.monotonic() + within
    while True:
        diagnosis = diagnose(reader_for(kubectl), namespace=remediation.namespace)
        now: dict[tuple[str, str], list[str]] = {}
        for f in diagnosis.findings:
            if f.severity != "info":
                now.setdefault((f.kind, family(f.kind, f.name)), []).append(f"{f.subject}: {f.problem}")
        results = [
            FindingCheck(
                subject=f.subject,
                problem=f.problem,
                gone=not (still := now.get((f.kind, family(f.kind, f.name)), [])),
                now=still,
            )
            for f in wanted
        ]
        if all(r.gone for r in results) or time.monotonic() >= deadline:
            break
        time.sleep(RECHECK_POLL_SECONDS)
    checks = [
        Check(
            name=redact_text(f"finding gone: {r.subject}: {r.problem}")[:300],
            ok=r.gone,
            detail=redact_text("the analyzers find nothing wrong with it now" if r.gone else "; ".join(r.now))[:1000],
        )
        for r in results
    ]
    if diagnosis.not_read:
        checks.append(Check(name="read the cluster again", ok=False, detail="; ".join(diagnosis.not_read)[:1000]))
    return results, checks
