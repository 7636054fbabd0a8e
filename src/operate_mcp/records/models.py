"""The execution record: one finished (or running) execution as a queryable, self-contained data point.

A record is written once per execution from its session and never depends on the session file
again: outputs are redacted and capped here, so the store, exports and alerts never see secrets.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, field_validator

from operate_mcp.audit.redact import redact, redact_text  # structured: Secret JSON/YAML, URL and argv credentials
from operate_mcp.errors import OperateError
from operate_mcp.model.command import shell_quote

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from operate_mcp.model.session import CommandOutcome, Session

RECORD_ID = re.compile(r"^run-\d{13}-[0-9a-f]{8}$")
OUTPUT_CAP_CHARS = 8_000
ERROR_CAP_CHARS = 500


class RecordError(OperateError):
    """A record is missing, malformed, or cannot be built from the session given."""


class RecordNotFound(RecordError):
    """No record with that id; the message says how to find one."""


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIAL = "partial"  # some commands or checks failed, others went through
    ROLLED_BACK = "rolled_back"  # a rollback execution that ran cleanly
    INTERRUPTED = "interrupted"  # the executor died mid-way


FAILURE_STATUSES = frozenset({RunStatus.FAILED, RunStatus.PARTIAL, RunStatus.INTERRUPTED})


class ArtifactRef(BaseModel):
    """A pattern or policy used, with the hash of its content at the time, so a replay can tell it changed."""

    id: str
    sha256: str | None = None


class CommandRecord(BaseModel):
    index: int
    argv: list[str]
    exit_code: int
    duration_seconds: float
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    dry_run_ok: bool | None = None  # the analysis-time server dry-run of this exact command

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


class OutcomeCheck(BaseModel):
    name: str
    ok: bool
    detail: str = ""


class TokenCounts(BaseModel):
    input: int = 0
    output: int = 0
    cache_write: int = 0
    cache_read: int = 0


class ExecutionRecord(BaseModel):
    """Who asked for what, what ran, what came out; `namespaces`/`resources`/`tags` feed search qualifiers."""

    id: str = Field(pattern=RECORD_ID.pattern)
    started_at: datetime
    finished_at: datetime | None = None
    triggered_by: str = Field(min_length=1, description="cli | mcp:<client name> | api | scheduler")
    caller: str
    intent: str
    purpose: str = "operate"  # operate | rollback | replay | remediate
    params: dict[str, Any] = Field(default_factory=dict)
    parent_id: str | None = None  # the run or session this one retries, replays or rolls back
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    session_id: str | None = None
    proposal_version: int | None = None
    prompt_sha256: str | None = None
    patterns: list[ArtifactRef] = Field(default_factory=list)
    policies: list[ArtifactRef] = Field(default_factory=list)
    before: list[dict[str, Any]] = Field(default_factory=list)
    after: list[dict[str, Any]] = Field(default_factory=list)
    commands: list[CommandRecord] = Field(default_factory=list)
    outcome_checks: list[OutcomeCheck] = Field(default_factory=list)
    log_excerpts: list[str] = Field(default_factory=list)
    status: RunStatus
    duration_seconds: float = Field(default=0.0, ge=0)
    token_usage: TokenCounts = Field(default_factory=TokenCounts)
    namespaces: list[str] = Field(default_factory=list)
    resources: list[str] = Field(default_factory=list, description="kind/name, kind lower-case")
    failed_step: str | None = None
    error: str | None = None

    @field_validator("started_at", "finished_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        """Naive timestamps are taken as UTC, so ordering and date qualifiers never depend on the host's zone."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @field_validator("tags", "namespaces", "resources")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(v for v in values if v))


def new_record_id(at: datetime | None = None) -> str:
    """`run-<epoch ms>-<8 hex>`: sorts by start time, unique without coordination."""
    ms = int(at.timestamp() * 1000) if at is not None else int(time.time() * 1000)
    return f"run-{ms:013d}-{uuid.uuid4().hex[:8]}"


def cap_text(text: str, limit: int = OUTPUT_CAP_CHARS) -> str:
    """Redact first (a cut must never split a secret past its pattern), then keep head and tail."""
    text = redact_text(text)
    if len(text) <= limit:
        return text
    head = limit // 4
    tail = limit - head
    return f"{text[:head]}\n… [{len(text) - limit} characters cut] …\n{text[-tail:]}"


def _one_line(text: str, limit: int = ERROR_CAP_CHARS) -> str:
    lines = [line.strip() for line in redact_text(text).splitlines() if line.strip()]
    joined = lines[-1] if lines else ""
    return joined if len(joined) <= limit else joined[: limit - 1] + "…"


def step_name(argv: list[str]) -> str:
    """A failing step as people grep for it: the command line without manifests, redacted, capped."""
    shown = redact_text(shell_quote([str(a) for a in redact(list(argv))]))
    return shown if len(shown) <= 200 else shown[:199] + "…"


_SESSION_STATUS = {
    "executed_successfully": RunStatus.SUCCEEDED,
    "executed_with_errors": RunStatus.PARTIAL,
    "failed": RunStatus.FAILED,
    "interrupted": RunStatus.INTERRUPTED,
    "executing": RunStatus.RUNNING,
}


def _first_failure(
    outcomes: list[CommandOutcome], checks: list[OutcomeCheck]
) -> tuple[str | None, str | None]:
    for outcome in outcomes:
        if outcome.exit_code != 0 or outcome.timed_out:
            if outcome.timed_out:
                reason = f"timed out after {outcome.duration_seconds:.0f}s"
            else:
                reason = _one_line(outcome.stderr or outcome.stdout) or "no output"
                reason = f"exit {outcome.exit_code}: {reason}"
            return step_name(outcome.argv), reason
    for check in checks:
        if not check.ok:
            return f"check:{check.name}", _one_line(check.detail) or f"check {check.name} failed"
    return None, None


def _touched(session: Session) -> tuple[list[str], list[str]]:
    namespaces: list[str] = []
    resources: list[str] = []
    observed = session.proposal.observed_objects
    if observed:
        for obj in observed:
            resources.append(f"{obj.kind.lower()}/{obj.name}")
            if obj.namespace:
                namespaces.append(obj.namespace)
    else:
        from operate_mcp.kube.targets import unique_targets

        for target in unique_targets(session.proposal.command_list()):
            resources.append(f"{(target.kind or target.get_as).lower()}/{target.name}")
            if target.namespace:
                namespaces.append(target.namespace)
    return sorted(set(namespaces)), sorted(set(resources))


def record_from_session(
    session: Session,
    *,
    record_id: str | None = None,
    tags: Iterable[str] = (),
    metadata: Mapping[str, Any] | None = None,
    pattern_hashes: Mapping[str, str] | None = None,
    policy_hashes: Mapping[str, str] | None = None,
    log_excerpts: Iterable[str] = (),
    before: list[dict[str, Any]] | None = None,
    after: list[dict[str, Any]] | None = None,
) -> ExecutionRecord:
    """Build the record of an executed session; refuses sessions that never ran (their story is the audit log).

    A `rollback` session that ran cleanly is `rolled_back`; one that failed keeps its failure status,
    because a failed rollback is the failure someone must look at first.
    """
    status = _SESSION_STATUS.get(session.status.value)
    if status is None:
        raise RecordError(
            f"session {session.id} is {session.status.value}; only executed sessions become execution records"
        )
    if session.purpose == "rollback" and status is RunStatus.SUCCEEDED:
        status = RunStatus.ROLLED_BACK

    proposal = session.proposal
    started = session.executor.started_at if session.executor is not None else None
    if started is None:
        started = next((h.at for h in session.history if h.to_status.value == "executing"), session.created_at)
    finished = session.finished_at
    if finished is None and status is not RunStatus.RUNNING and session.history:
        finished = session.history[-1].at


    def dry_run_ok(outcome: CommandOutcome) -> bool | None:
        if not 1 <= outcome.index <= len(proposal.commands):
            return None
        checked = proposal.commands[outcome.index - 1]
        if checked.command.argv != outcome.argv or checked.dry_run is None:
            return None
        return checked.dry_run.ok

    commands = [
        CommandRecord(
            index=o.index,
            argv=[str(a) for a in redact(list(o.argv))],
            exit_code=o.exit_code,
            duration_seconds=o.duration_seconds,
            stdout=cap_text(o.stdout),
            stderr=cap_text(o.stderr),
            timed_out=o.timed_out,
            dry_run_ok=dry_run_ok(o),
        )
        for o in session.outcomes
    ]
    checks: list[OutcomeCheck] = []
    if session.validation is not None:
        checks = [OutcomeCheck(name=c.name, ok=c.ok, detail=redact_text(c.detail)) for c in session.validation.checks]
        verdict = session.validation.model_verdict
        if verdict is not None and verdict != "skipped":
            checks.append(
                OutcomeCheck(name="model-verdict", ok=verdict == "healthy",
                             detail=redact_text(f"{verdict}: {session.validation.model_summary}".strip(": ")))
            )

    failed_step, error = _first_failure(session.outcomes, checks)
    if status is RunStatus.INTERRUPTED:
        note = next((h.note for h in reversed(session.history) if h.to_status.value == "interrupted"), "")
        error = _one_line(note) or "the executor stopped before finishing"
        if failed_step is None and len(session.outcomes) < len(proposal.commands):
            failed_step = step_name(proposal.commands[len(session.outcomes)].command.argv)
    elif status in FAILURE_STATUSES and error is None:
        error = "the execution did not pass validation"

    namespaces, resources = _touched(session)
    params: dict[str, Any] = dict(session.extra.get("params") or {})
    if session.refinements:
        params["refinements"] = list(session.refinements)
    all_tags = [*tags]
    if session.purpose != "operate":
        all_tags.append(session.purpose)
    meta: dict[str, Any] = {
        "risk_tier": proposal.risk.tier.value,
        "digest": proposal.digest,
        "approvers": [a.approver for a in session.approvals],
        "provider": proposal.provider,
    }
    if session.drift_warnings:
        meta["drift_warnings"] = list(session.drift_warnings)
    meta.update(metadata or {})
    usage = proposal.token_usage
    duration = max(0.0, ((finished or datetime.now(UTC)) - started).total_seconds())
    return ExecutionRecord(
        id=record_id or new_record_id(started),
        started_at=started,
        finished_at=finished,
        triggered_by=session.triggered_by or "api",
        caller=session.caller,
        intent=session.intent or proposal.intent,
        purpose=session.purpose,
        params=params,
        parent_id=session.parent_session,
        tags=all_tags,
        metadata=meta,
        session_id=session.id,
        proposal_version=proposal.version,
        prompt_sha256=proposal.prompt_sha256,
        patterns=[ArtifactRef(id=p, sha256=(pattern_hashes or {}).get(p)) for p in proposal.patterns_applied],
        policies=[
            ArtifactRef(id=p.policy_id, sha256=(policy_hashes or {}).get(p.policy_id))
            for p in proposal.policies_checked
        ],
        before=before or [],
        after=after or [],
        commands=commands,
        outcome_checks=checks,
        log_excerpts=[cap_text(x, 2_000) for x in log_excerpts],
        status=status,
        duration_seconds=duration,
        token_usage=TokenCounts(
            input=usage.input_tokens,
            output=usage.output_tokens,
            cache_write=usage.cache_creation_input_tokens,
            cache_read=usage.cache_read_input_tokens,
        ),
        namespaces=namespaces,
        resources=resources,
        failed_step=failed_step,
        error=error,
    )
