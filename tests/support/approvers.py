"""Enrolled approvers for tests: real Ed25519 keys, public halves owned by distinct uids (tests run as
root, so a chown stands in for each person writing their own file), and real signed approvals."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from operate_mcp.approvers import approval_payload, init_key, sign_approval
from operate_mcp.config import Settings
from operate_mcp.identity import user_name
from operate_mcp.model.session import Session
from operate_mcp.workflows.decide import record_approval
from operate_mcp.workflows.sessions import SessionStore

PASSPHRASE = "correct horse"
ALICE, BOB, CAROL = 1001, 1002, 1003  # uids; none is the user the tests (and the server) run as


def enrol(approvers_dir: Path, name: str, uid: int, passphrase: str = PASSPHRASE) -> Path:
    """A key pair for the person `uid`: `<name>.pub` in `approvers_dir`, owned by `uid`. Returns the
    private key's path (outside `approvers_dir`)."""
    private = approvers_dir.parent / "keys" / f"{name}.pem"
    init_key(private, approvers_dir, passphrase, name)
    os.chown(approvers_dir / f"{name}.pub", uid, uid)
    return private


def identity(uid: int) -> str:
    """The name the registry gives a file owned by `uid`."""
    return user_name(uid)


def approve_signed(
    store: SessionStore,
    session_id: str,
    settings: Settings,
    who: str,
    key_path: Path,
    passphrase: str = PASSPHRASE,
    *,
    justification: str = "",
    expected_digest: str | None = None,
) -> Session:
    """What `operate-mcp approve` does after showing the proposal: sign what is stored now and record it.

    `who` is only the name claimed; the key's registry entry decides who approved."""
    p = store.load(session_id).proposal
    signed_at = datetime.now(UTC)
    payload = approval_payload(session_id, p.version, p.digest, p.risk.tier.value, signed_at=signed_at.isoformat())
    key_id, signature = sign_approval(key_path, passphrase, payload)
    return record_approval(
        store,
        session_id,
        approver=who,
        method="cli",
        settings=settings,
        justification=justification,
        signed_at=signed_at,
        expected_digest=expected_digest or p.digest,
        expected_version=p.version,
        key_id=key_id,
        signature=signature,
    )
