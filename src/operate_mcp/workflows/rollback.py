"""Rollback: a new session whose commands restore what an execution changed, approved and run like any other."""

from __future__ import annotations

import anyio

from operate_mcp.errors import SessionError
from operate_mcp.governance.risk import assess_risk
from operate_mcp.kube.commands import classify, command_digest
from operate_mcp.kube.targets import observe_objects
from operate_mcp.prompts import prompt_sha256
from operate_mcp.workflows.dryrun import dry_run
from operate_mcp.workflows.operate import PROMPT, OperateDeps, audit_proposal, check_policies
from operate_mcp.workflows.proposal import CheckedCommand, Proposal, ProposedChanges
from operate_mcp.workflows.sessions import Session, SessionStatus

ROLLBACKABLE = {
    SessionStatus.EXECUTED_SUCCESSFULLY,
    SessionStatus.EXECUTED_WITH_ERRORS,
    SessionStatus.FAILED,
    SessionStatus.INTERRUPTED,
}


async def propose_rollback(deps: OperateDeps, session_id: str, *, caller: str, triggered_by: str) -> Session:
    original = deps.sessions.reap_if_interrupted(session_id)
    if original.status not in ROLLBACKABLE:
        raise SessionError(
            f"session {session_id} is {original.status.value}; only an executed session can be rolled back"
        )
    if not original.rollback_plan:
        raise SessionError(f"session {session_id} has no rollback plan (nothing was snapshotted before it ran)")
    plan = original.rollback_plan

    def check() -> list[CheckedCommand]:
        return [
            CheckedCommand(
                command=c, display=c.display, classification=classify(c.argv), dry_run=dry_run(deps.kubectl, c, i)
            )
            for i, c in enumerate(plan, 1)
        ]

    checked = await anyio.to_thread.run_sync(check)
    observed = await anyio.to_thread.run_sync(observe_objects, deps.kubectl, plan)
    failed = [c for c in checked if c.dry_run is not None and not c.dry_run.ok]
    policies = await check_policies(deps, plan, observed)
    proposal = Proposal(
        version=1,
        intent=f"roll back {session_id}: {original.proposal.intent}",
        analysis=(
            f"Restore the {len(plan)} object(s) that session {session_id} changed to their state before it ran, "
            "from the snapshot taken then."
            + (f" {len(failed)} restore command(s) failed their dry-run; see the results." if failed else "")
        ),
        current_state=f"session {session_id} ended {original.status.value}",
        changes=ProposedChanges(update=original.proposal.changes.update + original.proposal.changes.create),
        commands=checked,
        risk=assess_risk(plan, observed, policies, deps.settings),
        policies_checked=policies,
        observed_objects=observed,
        digest=command_digest(plan),
        iterations=0,
        prompt_sha256=prompt_sha256(PROMPT),
        provider="none",
    )
    session = deps.sessions.create(
        intent=proposal.intent,
        caller=caller,
        triggered_by=triggered_by,
        proposal=proposal,
        parent_session=session_id,
        purpose="rollback",
    )
    if deps.audit is not None:
        deps.audit.append(
            "rollback",
            actor=caller,
            session_id=session.id,
            data={"parent_session": session_id, "digest": proposal.digest},
        )
    audit_proposal(deps, session, caller, parent_session=session_id)
    return session
