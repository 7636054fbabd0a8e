"""An execution becomes a record: the session translated into an ExecutionRecord, stored, alerted on
when it failed, counted. The records package stores records; knowing what a session is belongs here."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from operate_mcp.kube.targets import unique_targets
from operate_mcp.model.observation import Category, LogAnalysis, Snapshot
from operate_mcp.model.session import CommandOutcome, Session
from operate_mcp.records.alerts import FailureAlerts
from operate_mcp.records.category import categorize
from operate_mcp.records.models import (
    FAILURE_STATUSES,
    ArtifactRef,
    CommandRecord,
    ExecutionRecord,
    OutcomeCheck,
    RecordError,
    RunStatus,
    TokenCounts,
    cap_text,
    new_record_id,
    one_line,
    step_name,
)
from operate_mcp.records.prometheus import RunMetrics
from operate_mcp.records.store import RecordStore
from operate_mcp.redact import redact, redact_text

logger = logging.getLogger(__name__)


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
                reason = one_line(outcome.stderr or outcome.stdout) or "no output"
                reason = f"exit {outcome.exit_code}: {reason}"
            return step_name(outcome.argv), reason
    for check in checks:
        if not check.ok:
            return f"check:{check.name}", one_line(check.detail) or f"check {check.name} failed"
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
    before: Snapshot | None = None,
    after: Snapshot | None = None,
    log_analysis: Sequence[LogAnalysis] = (),
    category: Category | None = None,
    anomalies: Sequence[str] = (),
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
        error = one_line(note) or "the executor stopped before finishing"
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
        category=category or categorize(session.purpose, proposal.command_list()),
        before=before,
        after=after,
        log_analysis=list(log_analysis),
        anomalies=list(anomalies),
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


def record_execution(
    session: Session,
    *,
    store: RecordStore,
    alerts: FailureAlerts | None = None,
    metrics: RunMetrics | None = None,
    anomalies_of: Callable[[ExecutionRecord], Sequence[str]] | None = None,
    **details: Any,
) -> ExecutionRecord:
    """Save the record of a finished session (a store error propagates: the data point is the point).

    Alerts and metrics are best effort: a full disk under `alerts/` or a metrics bug is logged and
    never turns a finished execution into an error. `details` go to `record_from_session`.
    """
    record = record_from_session(session, **details)
    if anomalies_of is not None:
        record.anomalies = list(anomalies_of(record))  # judged before it is stored: never against itself
    store.save(record)
    if alerts is not None:
        try:
            alerts.alert_if_failed(record)
        except OSError as exc:
            logger.error("could not write the failure alert for %s: %s", record.id, exc)
    if metrics is not None:
        try:
            metrics.observe(record)
        except Exception:  # metrics must never break an execution
            logger.exception("could not count %s in the Prometheus metrics", record.id)
    return record
