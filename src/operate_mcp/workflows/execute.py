"""operate, second half: run exactly what was approved, no shell, then validate and record it.

Order matters: every refusal (expired, not approved, already run, digest mismatch, drift)
happens before the session moves to `executing`, and that move is a compare-and-set, so
two callers can never both run a session.
"""

from __future__ import annotations

import contextlib
import os
import socket
from datetime import UTC, datetime
from functools import partial

import anyio

from operate_mcp.approvers import already_executed, mark_executed
from operate_mcp.errors import OperateError
from operate_mcp.governance.approval import ApprovalError, approvers_needed, check_digest
from operate_mcp.governance.risk import ORDER, assess_risk
from operate_mcp.kube.classifier import classify_command
from operate_mcp.kube.context import default_namespace
from operate_mcp.kube.targets import unique_targets
from operate_mcp.model.command import CommandClass, ProposedCommand, shell_quote
from operate_mcp.model.observation import Snapshot
from operate_mcp.model.progress import Progress
from operate_mcp.model.proposal import ObservedObject, PolicyCheck, RiskAssessment
from operate_mcp.model.session import CommandOutcome, Executor, Session, SessionStatus, Validation
from operate_mcp.workflows.decide import valid_approvals
from operate_mcp.workflows.decision import write_decision_record
from operate_mcp.workflows.observe import analyze_logs, find_anomalies, outcome_checks_async, snapshot_async
from operate_mcp.workflows.operate import OperateDeps
from operate_mcp.workflows.recheck import recheck
from operate_mcp.workflows.recording import record_execution
from operate_mcp.workflows.snapshot import save_snapshot, take_snapshot
from operate_mcp.workflows.validate import validate_execution


class DriftError(ApprovalError):
    """Objects changed between analysis and execution; running now would act on a state nobody reviewed.

    A change is anything but status: controllers bump resourceVersion on every status update,
    so comparing it alone would refuse every rollout-in-progress.
    """


def _drift(before: list[ObservedObject], now: list[ObservedObject]) -> list[str]:
    was = {(o.kind.lower(), o.name, o.namespace): o for o in before}
    changes: list[str] = []
    for o in now:
        old = was.get((o.kind.lower(), o.name, o.namespace))
        if old is None:
            old = next((b for b in before if b.name == o.name and b.namespace == o.namespace), None)
        if old is None:
            continue
        where = f"{o.kind}/{o.name}" + (f" in {o.namespace}" if o.namespace else "")
        if old.exists != o.exists:
            changes.append(f"{where} {'appeared' if o.exists else 'was deleted'} since the analysis")
        elif o.exists and old.fingerprint != o.fingerprint:
            detail = f"resourceVersion {old.resource_version} -> {o.resource_version}"
            if old.generation != o.generation:
                detail += f", generation {old.generation} -> {o.generation} (its spec changed)"
            if old.replicas != o.replicas:
                detail += f", replicas {old.replicas} -> {o.replicas}"
            changes.append(f"{where} changed since the analysis: {detail}")
    return changes


def _audit(deps: OperateDeps, kind: str, session: Session, actor: str, data: dict[str, object]) -> None:
    if deps.audit is not None:
        deps.audit.append(kind, actor=actor, session_id=session.id, data=data)


def preflight(deps: OperateDeps, session_id: str) -> Session:
    """Every refusal that must happen before anything runs."""
    session = deps.sessions.reap_if_interrupted(session_id)
    if session.status is SessionStatus.PROPOSED and session.is_expired():
        deps.sessions.transition(session_id, SessionStatus.EXPIRED, actor="system", note="ttl elapsed")
    if session.is_expired() and session.status in (SessionStatus.PROPOSED, SessionStatus.APPROVED):
        raise ApprovalError(
            f"session {session_id} expired at {session.expires_at:%Y-%m-%d %H:%M:%S} UTC; "
            f"analyse again with operate(intent={session.intent!r})"
        )
    if session.status in (
        SessionStatus.EXECUTING,
        SessionStatus.EXECUTED_SUCCESSFULLY,
        SessionStatus.EXECUTED_WITH_ERRORS,
        SessionStatus.FAILED,
        SessionStatus.INTERRUPTED,
    ):
        raise ApprovalError(f"session {session_id} is {session.status.value}; a session runs at most once")
    if session.status is not SessionStatus.APPROVED:
        raise ApprovalError(f"session {session_id} is {session.status.value}, not approved")
    if already_executed(deps.settings, session_id):
        raise ApprovalError(f"session {session_id} already started executing once; a session runs at most once")
    check_digest(session)
    reclassify(session)
    have = valid_approvals(session, deps.settings)
    need = approvers_needed(session.proposal.risk.tier)
    if len(have) < need:
        # Back to `proposed`, so the next call asks again (elicitation) or `operate-mcp approve` works.
        deps.sessions.transition(
            session_id,
            SessionStatus.PROPOSED,
            actor="system",
            expected={SessionStatus.APPROVED},
            note="approval expired",
        )
        raise ApprovalError(
            f"session {session_id} has {len(have)} valid approval(s), needs {need}: approvals expire after "
            f"{deps.settings.approval_sla_seconds.get(session.proposal.risk.tier.value)}s. Nothing ran; call "
            "operate(sessionId, executeChoice=1) again to be asked, or approve with operate-mcp approve"
        )
    return session


def reclassify(session: Session) -> None:
    """Every command is classified again right before it runs: only mutating kubectl commands run.

    The session file is data; whatever it says a command is, the classifier decides now.
    """
    for i, cmd in enumerate(session.proposal.command_list(), 1):
        verdict = classify_for_execution(cmd)
        if verdict is not None:
            raise ApprovalError(
                f"session {session.id}: command {i} `{shell_quote(cmd.argv)}` {verdict}; nothing was run. "
                f"Analyse again with operate(intent={session.intent!r})"
            )


def classify_for_execution(cmd: ProposedCommand) -> str | None:
    """Why `cmd` may not run as an approved change, or None when it may."""
    verdict = classify_command(cmd.argv, cmd.stdin)
    if verdict.command_class is not CommandClass.MUTATING:
        return f"is {verdict.command_class.value} ({verdict.reason})"
    return None


async def recompute_risk(deps: OperateDeps, session: Session, observed: list[ObservedObject]) -> RiskAssessment:
    """The tier from the commands, the objects as they are now and the policies as they are now;
    never the tier written in the session file."""
    commands = session.proposal.command_list()
    policies: list[PolicyCheck] = list(session.proposal.policies_checked)
    if deps.knowledge is not None:
        knowledge = deps.knowledge
        # Policies unavailable now: the stored checks stand (and the stored tier is a floor).
        with contextlib.suppress(OperateError):
            policies = await anyio.to_thread.run_sync(lambda: knowledge.check_policies(commands, observed))
    blocking = [p.policy_id for p in policies if not p.passed and p.effect == "block"]
    if blocking:
        raise ApprovalError(
            f"session {session.id} is blocked by policy {', '.join(blocking)} as the cluster is now; nothing was run"
        )
    namespace = await anyio.to_thread.run_sync(default_namespace, deps.kubectl)
    now = assess_risk(commands, [*observed, *session.proposal.observed_objects], policies, deps.settings, namespace)
    stored = session.proposal.risk.tier
    if ORDER.index(stored) > ORDER.index(now.tier):
        return RiskAssessment(tier=stored, reasons=session.proposal.risk.reasons)  # never lower than proposed
    return now


async def execute(deps: OperateDeps, session_id: str, *, actor: str, on_progress: Progress | None = None) -> Session:
    session = preflight(deps, session_id)
    commands = session.proposal.command_list()
    seen, plan = await anyio.to_thread.run_sync(take_snapshot, deps.kubectl, commands)
    risk = await recompute_risk(deps, session, [o for _, o, _ in seen])
    have = valid_approvals(session, deps.settings, tier=risk.tier)
    if len(have) < approvers_needed(risk.tier):
        _audit(deps, "execution.refused", session, actor, {"reason": "approvals", "tier": risk.tier.value})
        raise ApprovalError(
            f"session {session_id} needs {approvers_needed(risk.tier)} proven approval(s) for {risk.tier.value} risk "
            f"({'; '.join(risk.reasons)}) and has {len(have)}; nothing was run. "
            f"Approve with: operate-mcp approve {session_id}"
        )
    drift = _drift(session.proposal.observed_objects, [o for _, o, _ in seen])
    if drift and deps.settings.drift_mode == "refuse":
        _audit(deps, "execution.refused", session, actor, {"reason": "drift", "changes": drift})
        raise DriftError(
            "refusing to run: " + "; ".join(drift) + ". Nothing was run. Analyse again with "
            f"operate(intent={session.intent!r}), or set OPERATE_MCP_DRIFT_MODE=warn"
        )
    save_snapshot(deps.settings.data_dir / "snapshots" / f"{session.id}.json", seen)
    before = await snapshot_async(deps, session)  # the cluster around the change, for the record

    def start(s: Session) -> None:
        # Checked again under the lock: the proposal and its approvals must be the ones preflight saw.
        if s.proposal.version != session.proposal.version or s.proposal.digest != session.proposal.digest:
            raise ApprovalError(f"session {s.id} was refined while execution was starting; nothing ran")
        check_digest(s)
        reclassify(s)
        if already_executed(deps.settings, s.id):
            raise ApprovalError(f"session {s.id} already started executing once; a session runs at most once")
        if len(valid_approvals(s, deps.settings, tier=risk.tier)) < approvers_needed(risk.tier):
            raise ApprovalError(f"session {s.id} lost its approval while execution was starting; nothing ran")
        s.executor = Executor(pid=os.getpid(), host=socket.gethostname(), started_at=datetime.now(UTC))
        s.rollback_plan = plan
        s.drift_warnings = drift

    session = deps.sessions.transition(
        session.id, SessionStatus.EXECUTING, actor=actor, expected={SessionStatus.APPROVED}, mutate=start
    )
    mark_executed(deps.settings, session.id, session.proposal.digest)
    commands = session.proposal.command_list()  # from the locked, checked session: exactly what was approved
    _audit(deps, "execution.start", session, actor, {"digest": session.proposal.digest, "drift_warnings": drift})
    outcomes: list[CommandOutcome] = []
    try:
        return await _run_and_finish(deps, session, commands, outcomes, actor, on_progress, before)
    except BaseException:
        # Cancelled or crashed mid-way: the session must say so, never stay `executing` under a live pid.
        with anyio.CancelScope(shield=True):
            _interrupted(deps, session.id, outcomes, actor)
        raise


def _interrupted(deps: OperateDeps, session_id: str, outcomes: list[CommandOutcome], actor: str) -> None:
    def note(s: Session) -> None:
        s.outcomes = list(outcomes)
        s.finished_at = datetime.now(UTC)

    try:
        session = deps.sessions.transition(
            session_id,
            SessionStatus.INTERRUPTED,
            actor=actor,
            expected={SessionStatus.EXECUTING},
            note=f"execution stopped after {len(outcomes)} command(s); it cannot run again: inspect the cluster",
            mutate=note,
        )
    except OperateError:
        return  # already finished (the failure came after the final transition)
    _audit(
        deps,
        "execution",
        session,
        actor,
        {"status": session.status.value, "ok": sum(o.ok for o in outcomes), "total": len(session.proposal.commands)},
    )
    write_decision_record(deps.settings.data_dir, session)


async def _run_and_finish(
    deps: OperateDeps,
    session: Session,
    commands: list[ProposedCommand],
    outcomes: list[CommandOutcome],
    actor: str,
    on_progress: Progress | None,
    before: Snapshot | None,
) -> Session:
    for i, cmd in enumerate(commands, 1):
        if on_progress is not None:
            await on_progress(i, len(commands), f"running {shell_quote(cmd.argv)}")
        result = await anyio.to_thread.run_sync(partial(deps.kubectl.run, cmd.argv, stdin=cmd.stdin))
        outcome = CommandOutcome(
            index=i,
            argv=cmd.argv,
            exit_code=result.exit_code,
            duration_seconds=result.duration_seconds,
            stdout=result.stdout,
            stderr=result.stderr,
            timed_out=result.timed_out,
        )
        outcomes.append(outcome)
        session.outcomes = list(outcomes)
        deps.sessions.save(session)  # a crash after this line leaves the step on disk
        _audit(
            deps,
            "execution.step",
            session,
            actor,
            {
                "index": i,
                "argv": cmd.argv,
                "exit_code": result.exit_code,
                "duration_seconds": round(result.duration_seconds, 3),
            },
        )
    validation = await _validate(deps, session, outcomes)
    after = await snapshot_async(deps, session)
    ok_count = sum(o.ok for o in outcomes)
    if ok_count == len(outcomes) and validation.ok:
        final = SessionStatus.EXECUTED_SUCCESSFULLY
    elif ok_count == 0:
        final = SessionStatus.FAILED
    else:
        final = SessionStatus.EXECUTED_WITH_ERRORS

    def finish(s: Session) -> None:
        s.outcomes = outcomes
        s.validation = validation
        s.remediation = session.remediation
        s.finished_at = datetime.now(UTC)

    session = deps.sessions.transition(
        session.id,
        final,
        actor=actor,
        expected={SessionStatus.EXECUTING},
        note=f"{ok_count}/{len(outcomes)} commands ok",
        mutate=finish,
    )
    _audit(deps, "validation", session, actor, validation.model_dump(mode="json"))
    _audit(deps, "execution", session, actor, {"status": final.value, "ok": ok_count, "total": len(outcomes)})
    write_decision_record(deps.settings.data_dir, session)
    if deps.records is not None:
        record = record_execution(
            session,
            store=deps.records,
            alerts=deps.alerts,
            metrics=deps.metrics,
            pattern_hashes=session.proposal.patterns_sha256,
            policy_hashes=session.proposal.policies_sha256,
            before=before,
            after=after,
            log_analysis=await anyio.to_thread.run_sync(analyze_logs, deps, before, after),
            anomalies_of=lambda r: find_anomalies(deps, r),
        )
        _audit(deps, "record", session, actor, {"record_id": record.id, "status": record.status})
        session.extra["record_id"] = record.id
        deps.sessions.save(session)
    if deps.audit is not None:
        deps.audit.checkpoint()  # a signed tree head after every execution: truncation becomes detectable
    return session


async def _validate(deps: OperateDeps, session: Session, outcomes: list[CommandOutcome]) -> Validation:
    validation = await _validate_changes(deps, session, outcomes)
    if any(o.ok for o in outcomes):
        # What success looks like for this kind of operation (observe/outcomes), and the proposal's own checks.
        validation.checks += await outcome_checks_async(deps, session)
    if session.remediation is not None:
        # A fix is judged by its findings too: each one the diagnosis cited must be gone.
        remediation = session.remediation
        rechecked, checks = await anyio.to_thread.run_sync(recheck, deps.kubectl, remediation)
        remediation.rechecked = rechecked
        validation.checks += checks
    return validation


async def _validate_changes(deps: OperateDeps, session: Session, outcomes: list[CommandOutcome]) -> Validation:
    if not unique_targets(session.proposal.command_list()):
        return Validation(model_verdict="skipped", model_summary="no objects to check")
    return await validate_execution(
        deps.kubectl,
        deps.provider,
        intent=session.proposal.intent,
        commands=session.proposal.command_list(),
        outcomes=outcomes,
        rollout_timeout=deps.settings.rollout_timeout_seconds,
        max_iterations=deps.settings.validation_max_iterations,
    )
