"""operate, second half: run exactly what was approved, no shell, then validate and record it.

Order matters: every refusal (expired, not approved, already run, digest mismatch, drift)
happens before the session moves to `executing`, and that move is a compare-and-set, so
two callers can never both run a session.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial

import anyio

from operate_mcp.errors import OperateError
from operate_mcp.governance.approval import ApprovalError, approvers_needed, check_digest, valid_approvals
from operate_mcp.kube.commands import ProposedCommand, shell_quote
from operate_mcp.kube.targets import unique_targets
from operate_mcp.workflows.decision import write_decision_record
from operate_mcp.workflows.operate import OperateDeps
from operate_mcp.workflows.proposal import ObservedObject
from operate_mcp.workflows.sessions import CommandOutcome, Executor, Session, SessionStatus, Validation
from operate_mcp.workflows.snapshot import save_snapshot, take_snapshot
from operate_mcp.workflows.validate import validate_execution

Progress = Callable[[int, int, str], Awaitable[None]]


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
    check_digest(session)
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


async def execute(deps: OperateDeps, session_id: str, *, actor: str, on_progress: Progress | None = None) -> Session:
    session = preflight(deps, session_id)
    commands = session.proposal.command_list()
    seen, plan = await anyio.to_thread.run_sync(take_snapshot, deps.kubectl, commands)
    drift = _drift(session.proposal.observed_objects, [o for _, o, _ in seen])
    if drift and deps.settings.drift_mode == "refuse":
        _audit(deps, "execution.refused", session, actor, {"reason": "drift", "changes": drift})
        raise DriftError(
            "refusing to run: " + "; ".join(drift) + ". Nothing was run. Analyse again with "
            f"operate(intent={session.intent!r}), or set OPERATE_MCP_DRIFT_MODE=warn"
        )
    save_snapshot(deps.settings.data_dir / "snapshots" / f"{session.id}.json", seen)

    def start(s: Session) -> None:
        # Checked again under the lock: the proposal and its approvals must be the ones preflight saw.
        if s.proposal.version != session.proposal.version or s.proposal.digest != session.proposal.digest:
            raise ApprovalError(f"session {s.id} was refined while execution was starting; nothing ran")
        check_digest(s)
        if len(valid_approvals(s, deps.settings)) < approvers_needed(s.proposal.risk.tier):
            raise ApprovalError(f"session {s.id} lost its approval while execution was starting; nothing ran")
        s.executor = Executor(pid=os.getpid(), host=socket.gethostname(), started_at=datetime.now(UTC))
        s.rollback_plan = plan
        s.drift_warnings = drift

    session = deps.sessions.transition(
        session.id, SessionStatus.EXECUTING, actor=actor, expected={SessionStatus.APPROVED}, mutate=start
    )
    commands = session.proposal.command_list()  # from the locked, checked session: exactly what was approved
    _audit(deps, "execution.start", session, actor, {"digest": session.proposal.digest, "drift_warnings": drift})
    outcomes: list[CommandOutcome] = []
    try:
        return await _run_and_finish(deps, session, commands, outcomes, actor, on_progress)
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
        from operate_mcp.records.recorder import record_execution

        record = record_execution(
            session,
            store=deps.records,
            alerts=deps.alerts,
            metrics=deps.metrics,
            pattern_hashes=session.proposal.patterns_sha256,
            policy_hashes=session.proposal.policies_sha256,
        )
        _audit(deps, "record", session, actor, {"record_id": record.id, "status": record.status})
        session.extra["record_id"] = record.id
        deps.sessions.save(session)
    if deps.audit is not None:
        deps.audit.checkpoint()  # a signed tree head after every execution: truncation becomes detectable
    return session


async def _validate(deps: OperateDeps, session: Session, outcomes: list[CommandOutcome]) -> Validation:
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
