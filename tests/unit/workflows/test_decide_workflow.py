"""One decision use case for both faces: approving or rejecting through the MCP client or the CLI runs the
same sequence (rules, session transition, audit entry, decision record) and leaves the same trail."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from mcp import Client
from mcp_types import ElicitResult

from operate_mcp.approvers import approval_payload, sign_approval
from operate_mcp.audit.log import AuditLog
from operate_mcp.cli import main
from operate_mcp.config import Settings
from operate_mcp.errors import SessionError
from operate_mcp.governance.approval import ApprovalError
from operate_mcp.model.proposal import RiskTier
from operate_mcp.model.session import Session, SessionStatus
from operate_mcp.server import create_server
from operate_mcp.workflows.decide import approve, reject
from operate_mcp.workflows.decision import decision_path
from operate_mcp.workflows.sessions import SessionStore
from support.approvers import BOB, PASSPHRASE, enrol, identity
from support.sessions import local_settings, new_session

SET_IMAGE = ["kubectl", "set", "image", "deployment/web", "web=nginx:1.27.0", "-n", "shop"]


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    # The CLI reads the same installation from the environment, as a person's shell would.
    monkeypatch.setenv("OPERATE_MCP_APPROVERS_DIR", str(tmp_path / "config" / "approvers"))
    monkeypatch.setenv("OPERATE_MCP_APPROVAL_KEY_FILE", str(tmp_path / "config" / "approval.key"))
    return local_settings(tmp_path)


@pytest.fixture
def store(settings) -> SessionStore:
    return SessionStore(settings.data_dir)


def proposed(store: SessionStore, tier: RiskTier = RiskTier.MEDIUM) -> Session:
    return new_session(store, [SET_IMAGE], tier)


def audited(settings: Settings, kind: str) -> list[tuple[str, dict[str, object]]]:
    return [(e.actor, e.data) for e in AuditLog(settings.data_dir).entries() if e.kind == kind]


async def test_declining_in_the_mcp_client_rejects_audits_and_records_the_decision(settings, store):
    session = proposed(store)

    async def no(context, params):
        return ElicitResult(action="decline")

    async with Client(create_server(settings, caller="alice"), elicitation_callback=no) as client:
        result = await client.call_tool("operate", {"sessionId": session.id, "executeChoice": 1})
    assert not result.is_error, result.content
    assert result.structured_content["status"] == "rejected"
    [(actor, data)] = audited(settings, "rejection")
    assert actor == "alice" and data["method"] == "elicitation" and data["digest"] == session.proposal.digest
    assert decision_path(settings.data_dir, session.id).exists()


def test_rejecting_with_the_cli_leaves_the_same_trail_as_the_mcp_client(settings, store, capsys):
    session = proposed(store)
    code = main(["reject", session.id, "--justification", "not today", "--data-dir", str(settings.data_dir)])
    assert code == 0, capsys.readouterr().err
    assert store.load(session.id).status is SessionStatus.REJECTED
    [(_, data)] = audited(settings, "rejection")
    assert data == {
        "method": "cli",
        "version": 1,
        "digest": session.proposal.digest,
        "justification": "not today",
    }
    assert "not today" in decision_path(settings.data_dir, session.id).read_text()


def test_an_elicitation_approval_is_audited_with_what_was_approved_and_why(settings, store):
    session = proposed(store)
    done = approve(
        store,
        AuditLog(settings.data_dir),
        session.id,
        approver="alice via MCP client claude",
        method="elicitation",
        settings=settings,
        justification="release 42",
        expected_version=1,
        expected_digest=session.proposal.digest,
    )
    assert done.status is SessionStatus.APPROVED
    [(actor, data)] = audited(settings, "approval")
    assert actor == "alice via MCP client claude"
    assert data == {
        "method": "elicitation",
        "version": 1,
        "digest": session.proposal.digest,
        "tier": "medium",
        "justification": "release 42",
    }


def test_a_signed_approval_is_audited_under_the_keys_owner_not_the_name_given(settings, store):
    session = proposed(store)
    key = enrol(settings.approvers_dir, "bob", BOB)
    p, signed_at = session.proposal, datetime.now(UTC)
    payload = approval_payload(session.id, p.version, p.digest, p.risk.tier.value, signed_at=signed_at.isoformat())
    key_id, signature = sign_approval(key, PASSPHRASE, payload)
    approve(
        store,
        AuditLog(settings.data_dir),
        session.id,
        approver="mallory",
        method="cli",
        settings=settings,
        signed_at=signed_at,
        key_id=key_id,
        signature=signature,
    )
    [(actor, data)] = audited(settings, "approval")
    assert actor == identity(BOB) and data["key_id"] == key_id


def test_a_refused_approval_leaves_no_audit_entry(settings, store):
    session = proposed(store, RiskTier.CRITICAL)
    with pytest.raises(ApprovalError, match="two enrolled approvers"):
        approve(
            store,
            AuditLog(settings.data_dir),
            session.id,
            approver="alice via MCP client claude",
            method="elicitation",
            settings=settings,
        )
    assert audited(settings, "approval") == []
    assert store.load(session.id).status is SessionStatus.PROPOSED


def test_rejecting_twice_is_refused(settings, store):
    session = proposed(store)
    audit = AuditLog(settings.data_dir)
    reject(store, audit, session.id, actor="alice", method="cli", settings=settings)
    with pytest.raises(SessionError, match="is rejected"):
        reject(store, audit, session.id, actor="alice", method="cli", settings=settings)
    assert len(audited(settings, "rejection")) == 1
