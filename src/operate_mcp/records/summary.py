"""`runs summary`: a run in one line, its key events and errors, and rule-based suggestions for what to do next.

A suggestion is one small function over the record; add a rule by appending to `RULES`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pydantic import BaseModel, Field

from operate_mcp.model.command import shell_quote
from operate_mcp.records.models import CommandRecord, ExecutionRecord, RunStatus

MARKS = {
    RunStatus.SUCCEEDED: "✓",
    RunStatus.ROLLED_BACK: "↺",
    RunStatus.RUNNING: "…",
    RunStatus.PARTIAL: "!",
    RunStatus.FAILED: "✗",
    RunStatus.INTERRUPTED: "✗",
}
MAX_TEMPLATES = 5


class RunSummary(BaseModel):
    id: str
    status: RunStatus
    mark: str = ""  # ✓ succeeded, ↺ rolled back, ! partial, ✗ failed or interrupted; ⚠ added with anomalies
    one_line: str
    first_error: str | None = None  # the first error line its logs show after the change
    top_templates: list[str] = Field(default_factory=list)  # the commonest error templates, new ones marked
    anomalies: list[str] = Field(default_factory=list)
    key_events: list[str]
    errors: list[str]
    suggestions: list[str]


def human_duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _failed(record: ExecutionRecord) -> list[CommandRecord]:
    return [c for c in record.commands if not c.ok]


def _text(record: ExecutionRecord) -> str:
    parts = [record.error or ""]
    parts += [f"{c.stdout}\n{c.stderr}" for c in record.commands]
    parts += record.log_excerpts
    parts += [c.detail for c in record.outcome_checks]
    return "\n".join(parts)


def _ns_flag(record: ExecutionRecord) -> str:
    return f" -n {record.namespaces[0]}" if len(record.namespaces) == 1 else ""


def _workload(record: ExecutionRecord) -> str:
    for command in _failed(record):
        for arg in command.argv[1:]:
            if re.match(r"^(deployment|deploy|statefulset|sts|daemonset|ds)(\.[\w.]+)?/[\w.-]+$", arg):
                return arg
    for ref in record.resources:
        if ref.split("/", 1)[0] in ("deployment", "statefulset", "daemonset"):
            return ref
    return "deployment/<name>"


def _rollout(record: ExecutionRecord) -> list[str]:
    failed_rollout = any("rollout" in c.argv and "status" in c.argv for c in _failed(record))
    failed_check = any(not c.ok and "rollout" in c.name.lower() for c in record.outcome_checks)
    deadline = "exceeded its progress deadline" in _text(record)
    if not (failed_rollout or failed_check or deadline):
        return []
    ns = _ns_flag(record)
    return [
        f"the rollout did not complete: check `kubectl rollout status {_workload(record)}{ns}` and the events "
        f"(`kubectl get events{ns} --sort-by=.lastTimestamp`)"
    ]


def _drift(record: ExecutionRecord) -> list[str]:
    return [
        f"the server dry-run of `{shell_quote(c.argv)}` passed at analysis time but the real run failed: the "
        "object probably changed in between (drift); compare the before snapshot in `operate-mcp runs show "
        f"{record.id}` with the live object and analyse again"
        for c in _failed(record)
        if c.dry_run_ok
    ][:1]


def _forbidden(record: ExecutionRecord) -> list[str]:
    if not re.search(r"\bforbidden\b", _text(record), re.I):
        return []
    return [f"the API server refused a request (RBAC): check with `kubectl auth can-i --list{_ns_flag(record)}` "
            "as the identity operate-mcp uses"]


def _admission(record: ExecutionRecord) -> list[str]:
    if not re.search(r"admission webhook .* denied", _text(record), re.I):
        return []
    return ["an admission webhook denied the change: read its message above; the policy, not the command, "
            "decides what is allowed"]


def _not_found(record: ExecutionRecord) -> list[str]:
    if not re.search(r"\(NotFound\)|\bnot found\b", _text(record)):
        return []
    return [f"an object was not found: check its name and namespace (`kubectl get {_workload(record)}"
            f"{_ns_flag(record)}`); it may have been deleted or renamed since the analysis"]


def _conflict(record: ExecutionRecord) -> list[str]:
    if "the object has been modified" not in _text(record):
        return []
    return ["someone changed the object while this ran (update conflict): analyse again on the current state"]


def _image(record: ExecutionRecord) -> list[str]:
    if not re.search(r"ImagePullBackOff|ErrImagePull", _text(record)):
        return []
    return ["pods cannot pull their image: check the image name and tag, and the pull secret "
            f"(`kubectl describe pod{_ns_flag(record)} <pod>`)"]


def _crashloop(record: ExecutionRecord) -> list[str]:
    if "CrashLoopBackOff" not in _text(record):
        return []
    return [f"containers are crash-looping: read the last crash with `kubectl logs{_ns_flag(record)} <pod> --previous`"]


def _oom(record: ExecutionRecord) -> list[str]:
    if "OOMKilled" not in _text(record):
        return []
    return ["a container was killed for using too much memory (OOMKilled): raise its memory limit or find the leak"]


def _quota(record: ExecutionRecord) -> list[str]:
    if "exceeded quota" not in _text(record):
        return []
    return [f"a resource quota stopped the change: see `kubectl describe resourcequota{_ns_flag(record)}`"]


def _timeout(record: ExecutionRecord) -> list[str]:
    slow = [c for c in record.commands if c.timed_out]
    if not slow:
        return []
    return [f"`{shell_quote(slow[0].argv)}` timed out: check that the API server answers, or raise "
            "OPERATE_MCP_COMMAND_TIMEOUT_SECONDS"]


def _interrupted(record: ExecutionRecord) -> list[str]:
    if record.status is not RunStatus.INTERRUPTED:
        return []
    return ["the executor stopped mid-way: inspect the cluster, compare with the before snapshot, and analyse anew; "
            "the session cannot run again"]


def _partial(record: ExecutionRecord) -> list[str]:
    if record.status is not RunStatus.PARTIAL or record.session_id is None:
        return []
    return [f"some changes were applied and some were not: finish by hand, or propose a rollback with "
            f"operate(sessionId={record.session_id!r}, rollback=1)"]


RULES: list[Callable[[ExecutionRecord], list[str]]] = [
    _rollout, _drift, _forbidden, _admission, _not_found, _conflict, _image, _crashloop, _oom, _quota,
    _timeout, _interrupted, _partial,
]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def summarize(record: ExecutionRecord) -> RunSummary:
    ok = sum(c.ok for c in record.commands)
    line = (
        f"{record.id}: {record.status.value} in {human_duration(record.duration_seconds)} - {record.intent!r}; "
        f"{ok}/{len(record.commands)} commands ok"
    )
    if record.failed_step:
        line += f"; failed at {record.failed_step}"
    events = [f"{record.started_at:%Y-%m-%d %H:%M:%S}Z started by {record.caller} via {record.triggered_by}"]
    if record.parent_id:
        events.append(f"{record.purpose} of {record.parent_id}")
    for c in record.commands:
        outcome = "ok" if c.ok else ("timed out" if c.timed_out else f"exit {c.exit_code}")
        events.append(f"step {c.index}: {shell_quote(c.argv)} -> {outcome} in {human_duration(c.duration_seconds)}")
    for check in record.outcome_checks:
        detail = f": {check.detail}" if check.detail else ""
        events.append(f"check {check.name}: {'ok' if check.ok else 'FAILED'}{detail}")
    if record.finished_at is not None:
        events.append(f"{record.finished_at:%Y-%m-%d %H:%M:%S}Z finished {record.status.value}")
    errors: list[str] = []
    if record.error:
        errors.append(record.error)
    for c in _failed(record):
        last = _last_line(c.stderr or c.stdout)
        if last and last not in (record.error or ""):
            errors.append(f"step {c.index}: {last}")
    errors += [f"check {c.name}: {c.detail}" for c in record.outcome_checks if not c.ok and c.detail]
    suggestions = [s for rule in RULES for s in rule(record)]
    first_error = next((a.first_error for a in record.log_analysis if a.first_error), None)
    counts: dict[str, tuple[int, bool]] = {}
    for a in record.log_analysis:
        for t in a.templates:
            count, new = counts.get(t.template, (0, False))
            counts[t.template] = (count + t.count, new or t.new)
    top = sorted(counts.items(), key=lambda item: (-item[1][1], -item[1][0]))[:MAX_TEMPLATES]
    mark = MARKS.get(record.status, "?") + ("⚠" if record.anomalies else "")
    return RunSummary(
        id=record.id,
        status=record.status,
        mark=mark,
        one_line=line,
        first_error=first_error,
        top_templates=[f"{'NEW ' if new else ''}(x{count}) {template}" for template, (count, new) in top],
        anomalies=list(record.anomalies),
        key_events=events,
        errors=list(dict.fromkeys(errors)),
        suggestions=list(dict.fromkeys(suggestions)),
    )
