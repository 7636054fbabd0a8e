"""Rollback: a new session whose commands restore what an execution changed, approved and run like any other."""

from __future__ import annotations

from operate_mcp.errors import SessionError
from operate_mcp.model.proposal import ProposedChanges
from operate_mcp.model.session import Session, SessionStatus
from operate_mcp.workflows.operate import OperateDeps, audit_proposal, fixed_proposal

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

    # A rollback shows policy results but is never blocked by them: undoing a change must stay possible.
    proposal = await fixed_proposal(
        deps,
        plan,
        intent=f"roll back {session_id}: {original.proposal.intent}",
        analysis=(
            f"Restore the {len(plan)} object(s) that session {session_id} changed to their state before it ran, "
            "from the snapshot taken then."
        ),
        current_state=f"session {session_id} ended {original.status.value}",
        changes=ProposedChanges(update=original.proposal.changes.update + original.proposal.changes.create),
        policies_block=False,
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
