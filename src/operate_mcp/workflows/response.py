"""What the `operate` tool returns: the session's proposal, shaped for the person and the agent."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, Field

from operate_mcp.model.command import ProposedCommand
from operate_mcp.model.observation import Anomaly
from operate_mcp.model.proposal import CheckedCommand, KnowledgeRef, PolicyCheck, ProposedChanges, RiskAssessment
from operate_mcp.model.session import Approval, CommandOutcome, Session, SessionStatus, Validation
from operate_mcp.model.usage import TokenUsage


class OperateResponse(BaseModel):
    session_id: str
    status: SessionStatus
    version: int
    intent: str
    analysis: str
    current_state: str
    changes: ProposedChanges
    commands: list[CheckedCommand]
    verification: list[ProposedCommand]
    rollback_commands: list[CheckedCommand]
    risks: list[str]
    risk: RiskAssessment
    blocked: bool
    patterns_applied: list[str]
    policies_checked: list[PolicyCheck]
    capabilities_used: list[str]
    context_used: list[KnowledgeRef]
    digest: str
    expires_at: datetime
    token_usage: TokenUsage
    purpose: str
    parent_session: str | None
    approvals: list[Approval]
    execution: list[CommandOutcome]
    validation: Validation | None
    rollback_plan: list[ProposedCommand]
    anomalies: list[Anomaly] = Field(
        default_factory=list, description="what observation found after the execution (check_anomalies)"
    )
    next_action: str


def next_action(session: Session) -> str:
    p = session.proposal
    if session.status in (
        SessionStatus.EXECUTED_SUCCESSFULLY,
        SessionStatus.EXECUTED_WITH_ERRORS,
        SessionStatus.FAILED,
        SessionStatus.INTERRUPTED,
    ):
        undo = f" To undo it: operate(sessionId='{session.id}', rollback=1)." if session.rollback_plan else ""
        return f"session {session.status.value}; read execution and validation.{undo}"
    if session.status is SessionStatus.APPROVED:
        return f"approved; run it with operate(sessionId='{session.id}', executeChoice=1)"
    if session.status is not SessionStatus.PROPOSED:
        return f"session is {session.status.value}"
    if p.blocked:
        return f"{p.block_reason()}: refine with operate(sessionId, refinedIntent=...)"
    if not p.commands:
        return "nothing to run: read the analysis; refine with operate(sessionId, refinedIntent=...)"
    return (
        f"show the commands to the person; risk tier {p.risk.tier.value}. To run them: "
        f"operate(sessionId='{session.id}', executeChoice=1) after approval "
        f"(digest {p.digest[:12]}...). To change them: operate(sessionId, refinedIntent=...)"
    )


def to_response(session: Session, anomalies: Sequence[Anomaly] = ()) -> OperateResponse:
    p = session.proposal
    return OperateResponse(
        anomalies=list(anomalies),
        session_id=session.id,
        status=session.status,
        version=p.version,
        intent=p.intent,
        analysis=p.analysis,
        current_state=p.current_state,
        changes=p.changes,
        commands=p.commands,
        verification=p.verification,
        rollback_commands=p.rollback_commands,
        risks=p.risks,
        risk=p.risk,
        blocked=p.blocked,
        patterns_applied=p.patterns_applied,
        policies_checked=p.policies_checked,
        capabilities_used=p.capabilities_used,
        context_used=p.context_used,
        digest=p.digest,
        expires_at=session.expires_at,
        token_usage=p.token_usage,
        purpose=session.purpose,
        parent_session=session.parent_session,
        approvals=session.approvals,
        execution=session.outcomes,
        validation=session.validation,
        rollback_plan=session.rollback_plan,
        next_action=next_action(session),
    )
