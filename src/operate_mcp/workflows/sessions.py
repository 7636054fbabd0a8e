"""Sessions: one JSON file per proposal session, written atomically, with a strict state machine.

The file is the source of truth for what was proposed and approved. Status changes go
through `transition`, which holds an exclusive lock and checks the current state, so two
callers can never both move a session to `executing`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from operate_mcp.errors import SessionError
from operate_mcp.fileio import atomic_write
from operate_mcp.model.proposal import Proposal
from operate_mcp.model.remediation import Remediation
from operate_mcp.model.session import (
    TRANSITIONS,
    Session,
    SessionStatus,
    StatusChange,
    check_session_id,
    new_session_id,
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped by its parent) is dead for our purposes
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class SessionStore:
    def __init__(self, data_dir: Path, ttl_seconds: int = 3600) -> None:
        self.dir = data_dir / "sessions"
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.ttl = timedelta(seconds=ttl_seconds)

    def fresh_expiry(self) -> datetime:
        return datetime.now(UTC) + self.ttl

    def _path(self, session_id: str) -> Path:
        return self.dir / f"{check_session_id(session_id)}.json"

    def create(
        self,
        *,
        intent: str,
        caller: str,
        triggered_by: str,
        proposal: Proposal,
        parent_session: str | None = None,
        purpose: str = "operate",
        remediation: Remediation | None = None,
    ) -> Session:
        now = datetime.now(UTC)
        session = Session(
            id=new_session_id(),
            created_at=now,
            expires_at=now + self.ttl,
            status=SessionStatus.PROPOSED,
            intent=intent,
            caller=caller,
            triggered_by=triggered_by,
            proposal=proposal,
            parent_session=parent_session,
            purpose=purpose,
            remediation=remediation,
            history=[StatusChange(at=now, from_status=None, to_status=SessionStatus.PROPOSED, actor=caller)],
        )
        with self._locked(session.id):
            self._write(session)
        return session

    def load(self, session_id: str) -> Session:
        path = self._path(session_id)
        try:
            raw = path.read_text()
        except FileNotFoundError:
            raise SessionError(f"session {session_id} does not exist (it may have been pruned)") from None
        try:
            return Session.model_validate(json.loads(raw))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise SessionError(f"session file {path} is unreadable or was altered by hand: {exc}") from exc

    def save(self, session: Session) -> None:
        with self._locked(session.id):
            self._write(session)

    def transition(
        self,
        session_id: str,
        to: SessionStatus,
        *,
        actor: str,
        expected: set[SessionStatus] | None = None,
        note: str = "",
        mutate: Any = None,
    ) -> Session:
        """Compare-and-set under an exclusive lock; `mutate(session)` may edit it in the same write."""
        with self._locked(session_id):
            session = self.load(session_id)
            now = datetime.now(UTC)
            waiting = session.status in (SessionStatus.PROPOSED, SessionStatus.APPROVED)
            if waiting and session.is_expired(now) and to is not SessionStatus.EXPIRED:
                self._apply(session, SessionStatus.EXPIRED, "system", "ttl elapsed", now)
                self._write(session)
                raise SessionError(
                    f"session {session_id} expired at {session.expires_at:%Y-%m-%d %H:%M:%S} UTC; "
                    f"analyse again with operate(intent={session.intent!r})"
                )
            if expected is not None and session.status not in expected:
                raise SessionError(
                    f"session {session_id} is {session.status.value}, not "
                    f"{' or '.join(sorted(s.value for s in expected))}"
                )
            if to not in TRANSITIONS[session.status]:
                raise SessionError(f"session {session_id} cannot go from {session.status.value} to {to.value}")
            if mutate is not None:
                mutate(session)
            self._apply(session, to, actor, note, now)
            self._write(session)
            return session

    @staticmethod
    def _apply(session: Session, to: SessionStatus, actor: str, note: str, now: datetime) -> None:
        session.history.append(StatusChange(at=now, from_status=session.status, to_status=to, actor=actor, note=note))
        session.status = to

    def reap_if_interrupted(self, session_id: str) -> Session:
        """A session left `executing` by a process that no longer exists becomes `interrupted`."""
        session = self.load(session_id)
        if session.status is not SessionStatus.EXECUTING or session.executor is None:
            return session
        if session.executor.host != socket.gethostname() or _alive(session.executor.pid):
            return session
        done = len(session.outcomes)
        return self.transition(
            session_id,
            SessionStatus.INTERRUPTED,
            actor="system",
            expected={SessionStatus.EXECUTING},
            note=(
                f"executor pid {session.executor.pid} died after {done} of {len(session.proposal.commands)} "
                "commands; the session cannot run again: inspect the cluster and analyse anew"
            ),
        )

    def list(self) -> list[Session]:
        sessions: list[Session] = []
        for path in sorted(self.dir.glob("opr-*.json")):
            with contextlib.suppress(SessionError):
                sessions.append(self.load(path.stem))
        return sessions

    @contextlib.contextmanager
    def _locked(self, session_id: str) -> Iterator[None]:
        lock = self.dir / f".{check_session_id(session_id)}.lock"
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _write(self, session: Session) -> None:
        atomic_write(self._path(session.id), session.model_dump_json(indent=1))
