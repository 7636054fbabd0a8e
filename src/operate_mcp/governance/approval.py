"""Approvals: a human decision, proportionate to risk, bound to the exact commands, and expiring.

The agent cannot approve its own proposal: `executeChoice=1` only suffices for trivial
operations (configurable); low and medium need the person (MCP elicitation or the
`operate-mcp approve` command); critical needs two different people.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from operate_mcp.config import Settings
from operate_mcp.errors import SessionError
from operate_mcp.kube.commands import command_digest
from operate_mcp.workflows.proposal import RiskTier
from operate_mcp.workflows.sessions import Approval, Session, SessionStatus, SessionStore


class ApprovalError(SessionError):
    """The approval is refused; the message says why and what to do instead."""


def approvers_needed(tier: RiskTier) -> int:
    return 2 if tier is RiskTier.CRITICAL else 1


def approval_expiry(approval: Approval, settings: Settings) -> datetime:
    return approval.at + timedelta(seconds=settings.approval_sla_seconds.get(approval.tier, 900))


def valid_approvals(session: Session, settings: Settings, now: datetime | None = None) -> list[Approval]:
    """Approvals that still count: same version, same digest, inside their SLA window."""
    now = now or datetime.now(UTC)
    p = session.proposal
    return [
        a
        for a in session.approvals
        if a.version == p.version and a.digest == p.digest and approval_expiry(a, settings) > now
    ]


def check_digest(session: Session) -> None:
    """The stored commands must still hash to what was proposed and approved."""
    actual = command_digest(session.proposal.command_list())
    if actual != session.proposal.digest:
        raise ApprovalError(
            f"session {session.id}: the stored commands no longer match their digest "
            f"({actual[:12]}… ≠ {session.proposal.digest[:12]}…); the file was edited after analysis. "
            "Nothing was run. Analyse again with operate(intent=...)"
        )
    for a in session.approvals:
        if a.version == session.proposal.version and a.digest != actual:
            raise ApprovalError(
                f"session {session.id}: {a.approver} approved digest {a.digest[:12]}…, the commands now hash to "
                f"{actual[:12]}…; nothing was run"
            )


def record_approval(
    store: SessionStore,
    session_id: str,
    *,
    approver: str,
    method: str,
    settings: Settings,
    justification: str = "",
    expected_digest: str | None = None,
) -> Session:
    """Add one approval; the session becomes `approved` once enough distinct people said yes.

    `expected_digest` is the digest of the commands the person was shown: if the proposal was
    refined meanwhile, the approval is refused rather than landing on a version nobody saw.
    """
    session = store.load(session_id)
    check_digest(session)
    p = session.proposal
    if expected_digest is not None and expected_digest != p.digest:
        raise ApprovalError(
            f"session {session_id} was refined after you were shown it (digest {expected_digest[:12]}… is now "
            f"{p.digest[:12]}…); nothing was approved: review the new proposal"
        )
    if p.blocked:
        raise ApprovalError(f"session {session_id} cannot be approved: {p.block_reason()}")
    if not p.commands:
        raise ApprovalError(f"session {session_id} proposes no commands; there is nothing to approve")
    if p.risk.tier is RiskTier.CRITICAL and method == "execute-choice":
        raise ApprovalError("critical operations need two people to approve; executeChoice is not an approval")
    current = valid_approvals(session, settings)
    if any(a.approver == approver for a in current):
        raise ApprovalError(
            f"{approver} has already approved session {session_id}; a critical operation needs a second, "
            "different approver (two-person rule)"
        )
    approval = Approval(
        approver=approver,
        at=datetime.now(UTC),
        method=method,
        justification=justification,
        digest=p.digest,
        version=p.version,
        tier=p.risk.tier.value,
    )
    enough = len(current) + 1 >= approvers_needed(p.risk.tier)

    def add(s: Session) -> None:
        shown = expected_digest or p.digest
        if s.proposal.digest != shown or s.proposal.version != p.version:
            raise ApprovalError(
                f"session {session_id} changed while it was being approved (now version {s.proposal.version}, "
                f"digest {s.proposal.digest[:12]}…); nothing was approved: review the new proposal"
            )
        s.approvals = [*valid_approvals(s, settings), approval]

    return store.transition(
        session_id,
        SessionStatus.APPROVED if enough else SessionStatus.PROPOSED,
        actor=approver,
        expected={SessionStatus.PROPOSED},
        note=f"approved via {method}"
        + ("" if enough else f"; {approvers_needed(p.risk.tier) - 1 - len(current)} more approver(s) needed"),
        mutate=add,
    )


def record_rejection(
    store: SessionStore, session_id: str, *, actor: str, method: str, justification: str = ""
) -> Session:
    session = store.load(session_id)
    rejection = Approval(
        approver=actor,
        at=datetime.now(UTC),
        method=method,
        justification=justification,
        digest=session.proposal.digest,
        version=session.proposal.version,
        tier=session.proposal.risk.tier.value,
    )

    def set_rejection(s: Session) -> None:
        s.rejection = rejection

    return store.transition(
        session_id,
        SessionStatus.REJECTED,
        actor=actor,
        expected={SessionStatus.PROPOSED, SessionStatus.APPROVED},
        note=f"rejected via {method}: {justification}".rstrip(": "),
        mutate=set_rejection,
    )
