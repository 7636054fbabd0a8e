"""Asking the person over MCP: the approval resolver (elicitation) and what the body does with the answer.

The decision itself (rules, proof, session transition, audit entry, decision record) is the use
case in workflows/decide.py, which `operate-mcp approve` / `reject` call too.
"""

from collections.abc import Callable
from typing import Any, Literal

from mcp.server.mcpserver import (
    AcceptedElicitation,
    CancelledElicitation,
    Context,
    DeclinedElicitation,
    Elicit,
    ElicitationResult,
)
from pydantic import BaseModel, Field

from operate_mcp.errors import OperateError
from operate_mcp.governance.approval import AUTO_TRIVIAL, ApprovalError, ApprovalPending, approvers_needed
from operate_mcp.model.proposal import RiskTier
from operate_mcp.model.session import Session, SessionStatus
from operate_mcp.server.app import App
from operate_mcp.server.tools import client_name, progress
from operate_mcp.workflows.decide import approve, reject, valid_approvals
from operate_mcp.workflows.display import approval_question, one_line
from operate_mcp.workflows.execute import execute


class ApprovalForm(BaseModel):
    """What the person is asked; only primitive fields, as MCP elicitation requires."""

    approve: bool = Field(description="Run exactly these commands now?")
    justification: str = Field(default="", description="Why (kept in the audit log)")


class NotAsked(BaseModel):
    """The approval resolver decided not to ask; `reason` says why.

    For `trivial`, `version` and `digest` are what was judged trivial: the body may auto-approve
    exactly that version and nothing else (a refinement in between voids the verdict).
    """

    reason: Literal[
        "not-executing", "not-proposed", "trivial", "no-elicitation", "already-approved", "blocked", "critical"
    ]
    version: int | None = None
    digest: str | None = None


Resolver = Callable[[Context[Any, Any], str | None, int | None], Elicit[ApprovalForm] | NotAsked]


def elicitation_identity(caller: str, ctx: Context[Any, Any]) -> str:
    """What an elicitation answer proves: that the MCP client program said a person agreed."""
    return f"{caller} via MCP client {one_line(client_name(ctx), 60)}"


def approval_resolver(app: App) -> Resolver:
    """Decides, before the body runs, whether to ask the person (and shows them the proposal)."""

    def ask_approval(
        ctx: Context[Any, Any], sessionId: str | None, executeChoice: int | None
    ) -> Elicit[ApprovalForm] | NotAsked:
        settings = app.settings
        if executeChoice != 1 or not sessionId:
            return NotAsked(reason="not-executing")
        try:
            session = app.sessions.load(sessionId)
        except OperateError:
            return NotAsked(reason="not-proposed")  # the body reports the real error
        p = session.proposal
        if session.status is not SessionStatus.PROPOSED:
            return NotAsked(reason="not-proposed")
        if p.blocked:
            return NotAsked(reason="blocked")
        if p.risk.tier is RiskTier.TRIVIAL and settings.trivial_auto_approve:
            return NotAsked(reason="trivial", version=p.version, digest=p.digest)
        if p.risk.tier is RiskTier.CRITICAL:
            return NotAsked(reason="critical")
        who = elicitation_identity(app.caller, ctx)
        if any(a.approver == who for a in valid_approvals(session, settings)):
            return NotAsked(reason="already-approved")
        caps = ctx.request_context.session.client_capabilities if ctx.request_context.session else None
        if caps is None or caps.elicitation is None or "elicitation" not in settings.approval_channels:
            return NotAsked(reason="no-elicitation")
        # The body approves exactly this version and digest, or nothing.
        app.shown[(sessionId, ctx.request_id)] = (p.version, p.digest)
        return Elicit(approval_question(session), ApprovalForm)

    return ask_approval


async def approve_then_execute(
    app: App, ctx: Context[Any, Any], session_id: str, outcome: ElicitationResult[Any]
) -> Session:
    """Record the person's answer (or the trivial verdict) as a decision, then run what was approved."""
    shown = app.shown.pop((session_id, ctx.request_id), None)
    session = app.sessions.reap_if_interrupted(session_id)
    if session.status is SessionStatus.PROPOSED:
        data = outcome.data if isinstance(outcome, AcceptedElicitation) else None
        form = data if isinstance(data, ApprovalForm) else None
        if isinstance(outcome, DeclinedElicitation) or (form is not None and not form.approve):
            justification = form.justification if form is not None else ""
            return reject(
                app.sessions,
                app.audit,
                session_id,
                actor=app.caller,
                method="elicitation",
                settings=app.settings,
                justification=justification,
            )
        if isinstance(outcome, CancelledElicitation):
            raise ApprovalError(f"approval of {session_id} was cancelled; nothing ran and the session stays proposed")
        if form is not None:
            if shown is None:
                raise ApprovalError(f"the approval of {session_id} cannot be matched to what was shown; ask again")
            session = approve(
                app.sessions,
                app.audit,
                session_id,
                approver=elicitation_identity(app.caller, ctx),
                method="elicitation",
                settings=app.settings,
                justification=form.justification,
                expected_version=shown[0],
                expected_digest=shown[1],
            )
        elif isinstance(data, NotAsked) and data.reason == "trivial":
            # Bound to the version and digest the resolver judged trivial, re-checked under the lock.
            session = approve(
                app.sessions,
                app.audit,
                session_id,
                approver=AUTO_TRIVIAL,
                method=AUTO_TRIVIAL,
                settings=app.settings,
                expected_version=data.version,
                expected_digest=data.digest,
                judged_tier=RiskTier.TRIVIAL,
            )
        elif isinstance(data, NotAsked) and data.reason == "critical":
            raise ApprovalPending(
                f"session {session_id} is critical risk: two enrolled people other than the server's own user "
                f"must each approve it in their own terminal with: operate-mcp approve {session_id} "
                "(see docs/security.md); then call operate(sessionId, executeChoice=1) again"
            )
        elif isinstance(data, NotAsked) and data.reason == "no-elicitation":
            raise ApprovalPending(
                f"session {session_id} ({session.proposal.risk.tier.value} risk) needs a person's approval, and "
                "this MCP client cannot ask them directly. Show the proposal to the person and ask THEM to run, "
                f"in their own terminal: operate-mcp approve {session_id} (it shows the commands and signs them "
                "with their approver key); "
                "then call operate(sessionId, executeChoice=1) again"
            )
        if session.proposal.blocked:
            raise ApprovalError(f"session {session_id} cannot run: {session.proposal.block_reason()}")
        if session.status is SessionStatus.PROPOSED:
            have = len(valid_approvals(session, app.settings))
            raise ApprovalPending(
                f"session {session_id} has {have} of {approvers_needed(session.proposal.risk.tier)} approvals; "
                f"a second, different person approves with: operate-mcp approve {session_id}"
            )
    return await execute(app.with_provider(required=False), session_id, actor=app.caller, on_progress=progress(ctx))
