"""A person's decision on a proposal: approve or reject, whichever face asked (MCP elicitation or the CLI).

One sequence for both: the approval rules (governance), the proof (approvers), the session's
transition under its lock, the audit entry and, when the decision ends the session, its record.
"""

from __future__ import annotations

from datetime import UTC, datetime

from operate_mcp.approvers import (
    SignatureError,
    approval_mac,
    approval_payload,
    authentic_identity,
    load_registry,
    verify_approval,
)
from operate_mcp.audit.log import AuditLog
from operate_mcp.config import Settings
from operate_mcp.governance.approval import (
    AUTO_REMEDIATE,
    AUTO_TRIVIAL,
    ApprovalError,
    approvers_needed,
    check_approvable,
    check_approver,
    counted_approvals,
)
from operate_mcp.identity import os_user
from operate_mcp.model.proposal import RiskTier
from operate_mcp.model.session import Approval, Session, SessionStatus
from operate_mcp.workflows.decision import write_decision_record
from operate_mcp.workflows.sessions import SessionStore


def approve(
    store: SessionStore,
    audit: AuditLog,
    session_id: str,
    *,
    approver: str,
    method: str,
    settings: Settings,
    justification: str = "",
    expected_digest: str | None = None,
    expected_version: int | None = None,
    key_id: str | None = None,
    signature: str | None = None,
    signed_at: datetime | None = None,
    judged_tier: RiskTier | None = None,
) -> Session:
    """Record one approval (see `record_approval`) and audit it under the identity that proved it."""
    session = record_approval(
        store,
        session_id,
        approver=approver,
        method=method,
        settings=settings,
        justification=justification,
        expected_digest=expected_digest,
        expected_version=expected_version,
        key_id=key_id,
        signature=signature,
        signed_at=signed_at,
        judged_tier=judged_tier,
    )
    given = session.approvals[-1]  # record_approval appends the new one last, with its proven approver
    p = session.proposal
    data: dict[str, object] = {
        "method": method,
        "version": p.version,
        "digest": p.digest,
        "tier": p.risk.tier.value,
        "justification": justification,
    }
    if given.key_id:
        data["key_id"] = given.key_id
    audit.append("approval", actor=given.approver, session_id=session.id, data=data)
    return session


def reject(
    store: SessionStore,
    audit: AuditLog,
    session_id: str,
    *,
    actor: str,
    method: str,
    settings: Settings,
    justification: str = "",
) -> Session:
    """Reject the proposal, audit it, and write the decision record: a rejection ends the session."""
    session = record_rejection(store, session_id, actor=actor, method=method, justification=justification)
    p = session.proposal
    audit.append(
        "rejection",
        actor=actor,
        session_id=session.id,
        data={"method": method, "version": p.version, "digest": p.digest, "justification": justification},
    )
    write_decision_record(settings.data_dir, session)
    return session


def valid_approvals(
    session: Session, settings: Settings, now: datetime | None = None, tier: RiskTier | None = None
) -> list[Approval]:
    """The approvals of `session` that count (governance: `counted_approvals`), each proven by its
    signature or the server's MAC (`approvers`); they carry the proven identity as `approver`."""
    return counted_approvals(
        session,
        settings,
        lambda a: authentic_identity(session.id, a, settings),
        server_user=os_user(),
        now=now or datetime.now(UTC),
        tier=tier,
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
    expected_version: int | None = None,
    key_id: str | None = None,
    signature: str | None = None,
    signed_at: datetime | None = None,
    judged_tier: RiskTier | None = None,
) -> Session:
    """Add one approval; the session becomes `approved` once enough proven approvals exist.

    `expected_digest` / `expected_version` are what the person (or the trivial check) was shown:
    if the proposal was refined meanwhile, the approval is refused rather than landing on a
    version nobody saw. The check is repeated under the session lock.
    """
    session = store.load(session_id)
    p = session.proposal
    shown_digest = expected_digest or p.digest
    shown_version = expected_version if expected_version is not None else p.version
    now = datetime.now(UTC)
    check_approvable(
        session,
        method=method,
        settings=settings,
        shown_version=shown_version,
        shown_digest=shown_digest,
        judged_tier=judged_tier,
        signed=bool(key_id and signature),
        signed_at=signed_at,
        now=now,
    )
    tier = p.risk.tier
    if method in (AUTO_TRIVIAL, AUTO_REMEDIATE):
        approver = method
    elif method == "cli" and key_id and signature and signed_at is not None:  # unsigned: refused above
        payload = approval_payload(session_id, p.version, p.digest, tier.value, signed_at=signed_at.isoformat())
        try:
            key = verify_approval(load_registry(settings.approvers_dir), key_id, payload, signature)
        except SignatureError as exc:
            raise ApprovalError(f"the approval signature is not accepted: {exc}") from exc
        approver = key.identity  # the key's owner, whatever name the caller gave
    approval = Approval(
        approver=approver,
        at=signed_at if method == "cli" and signed_at is not None else now,
        method=method,
        justification=justification,
        digest=p.digest,
        version=p.version,
        tier=tier.value,
        key_id=key_id if method == "cli" else None,
        signature=signature if method == "cli" else None,
    )
    if method != "cli":
        approval.mac = approval_mac(settings, session_id, approval)
    current = valid_approvals(session, settings)
    check_approver(session, method=method, approver=approver, counted=current, server_user=os_user())
    enough = len(current) + 1 >= approvers_needed(tier)

    def add(s: Session) -> None:
        if s.proposal.digest != shown_digest or s.proposal.version != shown_version:
            raise ApprovalError(
                f"session {session_id} changed while it was being approved (now version {s.proposal.version}, "
                f"digest {s.proposal.digest[:12]}…); nothing was approved: review the new proposal"
            )
        if s.proposal.risk.tier is not tier:
            raise ApprovalError(
                f"session {session_id} changed risk tier while it was being approved; nothing was approved"
            )
        s.approvals = [*valid_approvals(s, settings), approval]

    return store.transition(
        session_id,
        SessionStatus.APPROVED if enough else SessionStatus.PROPOSED,
        actor=approver,
        expected={SessionStatus.PROPOSED},
        note=f"approved via {method}"
        + ("" if enough else f"; {approvers_needed(tier) - 1 - len(current)} more approver(s) needed"),
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
