"""The approval rules are pure: given who proved each approval (`identity_of`), they count approvals without
reading a key, a registry or a ledger. Which approvals count, for which tier, through which channel."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from operate_mcp.config import Settings
from operate_mcp.governance import approval as rules
from operate_mcp.governance.approval import AUTO_TRIVIAL, channel_counts, counted_approvals
from operate_mcp.model.command import Classification, ProposedCommand, command_digest
from operate_mcp.model.proposal import CheckedCommand, Proposal, ProposedChanges, RiskAssessment, RiskTier
from operate_mcp.model.session import Approval, Session, SessionStatus

NOW = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
SERVER = "svc-operate"


@pytest.fixture
def settings(tmp_path) -> Settings:
    # Nothing exists at these paths: a rule that tried to read them would fail or count nothing.
    return Settings(
        data_dir=tmp_path / "absent",
        approvers_dir=tmp_path / "absent" / "approvers",
        approval_key_file=tmp_path / "absent" / "approval.key",
    )


def session_of(tier: RiskTier, *approvals: Approval) -> Session:
    cmd = ProposedCommand(argv=["kubectl", "scale", "deployment/web", "--replicas=2", "-n", "shop"], description="d")
    proposal = Proposal(
        version=2,
        intent="scale web",
        analysis="a",
        current_state="",
        changes=ProposedChanges(),
        commands=[
            CheckedCommand(
                command=cmd, display=cmd.display, classification=Classification(command_class="mutating", reason="r")
            )
        ],
        risk=RiskAssessment(tier=tier, reasons=["r"]),
        digest=command_digest([cmd]),
        iterations=1,
        prompt_sha256="0" * 64,
        provider="scripted",
    )
    return Session(
        id="opr-1767225600000-1a2b3c4d",
        intent="scale web",
        caller="agent",
        triggered_by="test",
        status=SessionStatus.PROPOSED,
        created_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        proposal=proposal,
        approvals=list(approvals),
    )


def given(session_tier: RiskTier, who: str, method: str = "cli", **changes: object) -> Approval:
    p = session_of(session_tier).proposal
    fields: dict[str, object] = {
        "approver": who,
        "at": NOW - timedelta(minutes=1),
        "method": method,
        "digest": p.digest,
        "version": p.version,
        "tier": session_tier.value,
        **changes,
    }
    return Approval.model_validate(fields)


def proven_as_named(a: Approval) -> str | None:
    """A stand-in for the key store: every approval proves the name it carries, except "forged"."""
    return None if a.approver == "forged" else a.approver


def count(session: Session, settings: Settings, tier: RiskTier | None = None) -> list[str]:
    found = counted_approvals(session, settings, proven_as_named, server_user=SERVER, now=NOW, tier=tier)
    return [a.approver for a in found]


def test_an_approval_that_proves_nothing_counts_for_nothing(settings):
    assert count(session_of(RiskTier.LOW, given(RiskTier.LOW, "forged")), settings) == []


def test_one_person_counts_once_however_often_they_approve(settings):
    s = session_of(RiskTier.CRITICAL, given(RiskTier.CRITICAL, "alice"), given(RiskTier.CRITICAL, "alice"))
    assert count(s, settings) == ["alice"]


def test_an_approval_of_another_version_or_digest_does_not_count(settings):
    s = session_of(RiskTier.LOW, given(RiskTier.LOW, "alice", version=1), given(RiskTier.LOW, "bob", digest="0" * 64))
    assert count(s, settings) == []


def test_an_expired_approval_does_not_count(settings):
    old = given(RiskTier.LOW, "alice", at=NOW - timedelta(seconds=settings.approval_sla_seconds["low"] + 1))
    assert count(session_of(RiskTier.LOW, old), settings) == []


def test_an_approval_of_a_lower_tier_does_not_cover_a_higher_one(settings):
    s = session_of(RiskTier.LOW, given(RiskTier.LOW, "alice"))
    assert count(s, settings) == ["alice"]
    assert count(s, settings, tier=RiskTier.MEDIUM) == []


def test_the_servers_own_user_never_counts_for_a_critical_operation(settings):
    s = session_of(RiskTier.CRITICAL, given(RiskTier.CRITICAL, SERVER), given(RiskTier.CRITICAL, "bob"))
    assert count(s, settings) == ["bob"]


@pytest.mark.parametrize(
    ("method", "tier", "counts"),
    [
        (AUTO_TRIVIAL, RiskTier.TRIVIAL, True),
        (AUTO_TRIVIAL, RiskTier.LOW, False),
        ("elicitation", RiskTier.MEDIUM, True),
        ("elicitation", RiskTier.CRITICAL, False),
        ("cli", RiskTier.CRITICAL, True),
        ("execute-choice", RiskTier.TRIVIAL, False),
    ],
)
def test_which_channel_counts_for_which_tier(settings, method, tier, counts):
    assert channel_counts(method, "alice", tier, settings, server_user=SERVER) is counts


def test_hardened_channels_count_only_signatures(tmp_path):
    hardened = Settings(data_dir=tmp_path, approval_channels=["cli"])
    assert not channel_counts("elicitation", "alice", RiskTier.LOW, hardened, server_user=SERVER)
    assert channel_counts("cli", "alice", RiskTier.LOW, hardened, server_user=SERVER)


def test_the_rules_module_reads_no_files():
    """governance/ holds pure rules: no os, no pathlib, no open(), no key store."""
    tree = ast.parse(Path(rules.__file__).read_text())
    imported = {
        (n.module if isinstance(n, ast.ImportFrom) else a.name)
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in n.names
    }
    assert not imported & {"os", "pathlib", "hmac", "operate_mcp.approvers", "operate_mcp.identity"}
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert "open" not in calls
