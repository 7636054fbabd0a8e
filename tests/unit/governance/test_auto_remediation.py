"""Automatic remediation: a fix runs without a person only inside the limits the server's operator set
(off by default), judged on the commands themselves, and checked again whenever the approval is counted."""

from __future__ import annotations

import pytest

from operate_mcp.audit.log import AuditLog
from operate_mcp.governance.approval import AUTO_REMEDIATE, ApprovalError, auto_remediation_refused
from operate_mcp.model.proposal import RiskTier
from operate_mcp.workflows.decide import approve, valid_approvals
from operate_mcp.workflows.sessions import SessionStore
from support.sessions import local_settings, proposal_of

PATCH = ["kubectl", "patch", "service", "web", "-n", "shop", "-p", '{"spec":{"selector":{"app":"web"}}}']


def session_of(store, argvs, tier, purpose="remediate"):
    return store.create(
        intent="remediate: web returns nothing",
        caller="agent",
        triggered_by="test",
        proposal=proposal_of(argvs, tier),
        purpose=purpose,
    )


@pytest.fixture
def store(tmp_path):
    return SessionStore(tmp_path / "data", 3600)


def auto_on(tmp_path, **overrides):
    overrides.setdefault("remediate_auto_max_tier", "medium")
    overrides.setdefault("remediate_auto_namespaces", ["shop"])
    return local_settings(tmp_path, **overrides)


def test_automatic_remediation_is_off_by_default(tmp_path, store):
    session = session_of(store, [PATCH], RiskTier.LOW)
    assert "off" in auto_remediation_refused(session, RiskTier.LOW, local_settings(tmp_path))


@pytest.mark.parametrize(
    ("argv", "tier", "purpose", "why"),
    [
        (PATCH, RiskTier.LOW, "operate", "only a remediate fix"),
        (PATCH, RiskTier.CRITICAL, "remediate", "above the automatic limit"),
        (["kubectl", "patch", "service", "web", "-p", "{}"], RiskTier.LOW, "remediate", "names no single namespace"),
        ([*PATCH[:4], "-n", "payments", *PATCH[6:]], RiskTier.LOW, "remediate", "namespace payments is not"),
        (["kubectl", "delete", "pods", "--all", "-A"], RiskTier.LOW, "remediate", "names no single namespace"),
    ],
)
def test_a_fix_outside_the_configured_limits_needs_a_person(tmp_path, store, argv, tier, purpose, why):
    session = session_of(store, [argv], tier, purpose=purpose)
    assert why in auto_remediation_refused(session, tier, auto_on(tmp_path))


def test_a_production_namespace_never_runs_automatically_even_when_listed(tmp_path, store):
    settings = auto_on(tmp_path, remediate_auto_namespaces=["shop", "prod"], production_namespaces=["prod"])
    argv = [*PATCH[:4], "-n", "prod", *PATCH[6:]]
    session = session_of(store, [argv], RiskTier.LOW)
    assert "not one where fixes run automatically" in auto_remediation_refused(session, RiskTier.LOW, settings)


def test_the_tier_limit_is_inclusive_and_ordered(tmp_path, store):
    settings = auto_on(tmp_path, remediate_auto_max_tier="low")
    session = session_of(store, [PATCH], RiskTier.LOW)
    assert auto_remediation_refused(session, RiskTier.LOW, settings) is None
    assert "above the automatic limit (low)" in auto_remediation_refused(session, RiskTier.MEDIUM, settings)


def test_an_automatic_approval_within_limits_approves_and_stops_counting_once_the_limits_change(tmp_path, store):
    settings = auto_on(tmp_path)
    session = session_of(store, [PATCH], RiskTier.LOW)
    approved = approve(
        store,
        AuditLog(settings.data_dir),
        session.id,
        approver=AUTO_REMEDIATE,
        method=AUTO_REMEDIATE,
        settings=settings,
        judged_tier=RiskTier.LOW,
    )
    assert approved.status.value == "approved"
    assert [a.approver for a in valid_approvals(approved, settings)] == [AUTO_REMEDIATE]
    # The operator turns it off (or narrows the namespaces): the recorded approval no longer counts.
    assert valid_approvals(approved, auto_on(tmp_path, remediate_auto_namespaces=["other"])) == []
    assert valid_approvals(approved, local_settings(tmp_path)) == []


def test_an_automatic_approval_outside_the_limits_is_refused(tmp_path, store):
    session = session_of(store, [PATCH], RiskTier.LOW, purpose="operate")
    with pytest.raises(ApprovalError, match="needs a person's approval: only a remediate fix"):
        approve(
            store,
            AuditLog(tmp_path / "data"),
            session.id,
            approver=AUTO_REMEDIATE,
            method=AUTO_REMEDIATE,
            settings=auto_on(tmp_path),
            judged_tier=RiskTier.LOW,
        )


def test_a_hand_written_automatic_approval_counts_for_nothing(tmp_path, store):
    """A writer of the data dir adds an auto(remediate) approval without the server's MAC."""
    from datetime import UTC, datetime

    from operate_mcp.model.session import Approval

    settings = auto_on(tmp_path)
    session = session_of(store, [PATCH], RiskTier.LOW)
    p = session.proposal
    session.approvals.append(
        Approval(
            approver=AUTO_REMEDIATE,
            at=datetime.now(UTC),
            method=AUTO_REMEDIATE,
            digest=p.digest,
            version=p.version,
            tier="low",
            mac="00" * 32,
        )
    )
    store.save(session)
    assert valid_approvals(store.load(session.id), settings) == []
