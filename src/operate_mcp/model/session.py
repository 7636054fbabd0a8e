"""The session noun: one proposal's life from proposed to executed, its approvals, outcomes and the
state machine no caller may skip. The store that keeps sessions on disk is workflows/sessions.py."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from operate_mcp.errors import SessionError
from operate_mcp.model.command import ProposedCommand
from operate_mcp.model.proposal import Proposal
from operate_mcp.model.remediation import Remediation

SESSION_ID = re.compile(r"^opr-\d{13}-[0-9a-f]{8}$")


class SessionStatus(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    EXECUTING = "executing"
    EXECUTED_SUCCESSFULLY = "executed_successfully"
    EXECUTED_WITH_ERRORS = "executed_with_errors"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    EXPIRED = "expired"
    REJECTED = "rejected"


S = SessionStatus
TRANSITIONS: dict[SessionStatus, set[SessionStatus]] = {
    S.PROPOSED: {S.PROPOSED, S.APPROVED, S.REJECTED, S.EXPIRED},  # PROPOSED->PROPOSED: refine, 1st of 2 approvals
    S.APPROVED: {S.EXECUTING, S.REJECTED, S.EXPIRED, S.PROPOSED},
    S.EXECUTING: {S.EXECUTED_SUCCESSFULLY, S.EXECUTED_WITH_ERRORS, S.FAILED, S.INTERRUPTED},
    S.EXECUTED_SUCCESSFULLY: set(),
    S.EXECUTED_WITH_ERRORS: set(),
    S.FAILED: set(),
    S.INTERRUPTED: set(),
    S.EXPIRED: set(),
    S.REJECTED: set(),
}
TERMINAL = {s for s, nxt in TRANSITIONS.items() if not nxt}


class StatusChange(BaseModel):
    at: datetime
    from_status: SessionStatus | None
    to_status: SessionStatus
    actor: str
    note: str = ""


class Approval(BaseModel):
    """One yes, bound to the exact command list (digest), proposal version and tier.

    Nothing in the session file is trusted at execution: a `cli` approval carries an Ed25519
    signature by an enrolled approver key (`signature`, `key_id`); `elicitation` and
    `auto(trivial)` approvals carry an HMAC (`mac`) by the server's key, kept outside the data dir.
    """

    approver: str
    at: datetime
    method: str  # auto(trivial) | elicitation | cli
    justification: str = ""
    digest: str
    version: int
    tier: str
    key_id: str | None = None
    signature: str | None = None
    mac: str | None = None


class Executor(BaseModel):
    """Which process runs a session, so a crash shows as `interrupted`, never as runnable."""

    pid: int
    host: str
    started_at: datetime


class CommandOutcome(BaseModel):
    index: int
    argv: list[str]
    exit_code: int
    duration_seconds: float
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


class Check(BaseModel):
    name: str
    ok: bool
    detail: str = ""


class Validation(BaseModel):
    checks: list[Check] = Field(default_factory=list)
    model_verdict: str | None = None  # healthy | degraded | failed | skipped
    model_summary: str = ""
    iterations: int = 0

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks) and self.model_verdict in (None, "healthy", "skipped")


class Session(BaseModel):
    id: str
    created_at: datetime
    expires_at: datetime
    status: SessionStatus
    intent: str
    refinements: list[str] = Field(default_factory=list)
    caller: str
    triggered_by: str
    proposal: Proposal
    voided_versions: list[Proposal] = Field(default_factory=list)
    history: list[StatusChange] = Field(default_factory=list)
    approvals: list[Approval] = Field(default_factory=list)
    rejection: Approval | None = None
    parent_session: str | None = None
    purpose: str = "operate"  # operate | rollback | replay | remediate
    remediation: Remediation | None = None  # the diagnosis a remediate session's fix addresses
    executor: Executor | None = None
    drift_warnings: list[str] = Field(default_factory=list)
    outcomes: list[CommandOutcome] = Field(default_factory=list)
    rollback_plan: list[ProposedCommand] = Field(default_factory=list)
    validation: Validation | None = None
    finished_at: datetime | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def digest(self) -> str:
        return self.proposal.digest

    def is_expired(self, now: datetime | None = None) -> bool:
        return (now or datetime.now(UTC)) >= self.expires_at


def new_session_id() -> str:
    return f"opr-{int(time.time() * 1000):013d}-{uuid.uuid4().hex[:8]}"


def check_session_id(session_id: str) -> str:
    if not SESSION_ID.match(session_id):
        raise SessionError(
            f"{session_id!r} is not a session id; ids look like opr-1767225600000-1a2b3c4d "
            "(see `operate-mcp sessions list`)"
        )
    return session_id
