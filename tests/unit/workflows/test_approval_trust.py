"""Approvals prove themselves: nothing written into a session file by hand counts, the trivial verdict is
bound to the version judged, and risk is recomputed rather than read back (security issue #9, findings 1, 2, 10).
"""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime

import pytest

from operate_mcp.approvers import approval_mac
from operate_mcp.config import Settings
from operate_mcp.governance.approval import AUTO_TRIVIAL, ApprovalError
from operate_mcp.governance.risk import assess_risk
from operate_mcp.kube.runner import Kubectl
from operate_mcp.model.command import Classification, ProposedCommand, command_digest
from operate_mcp.model.proposal import (
    CheckedCommand,
    ObservedObject,
    Proposal,
    RiskTier,
)
from operate_mcp.model.session import Approval, Session, SessionStatus
from operate_mcp.workflows.decide import record_approval, valid_approvals
from operate_mcp.workflows.execute import preflight
from operate_mcp.workflows.operate import OperateDeps
from operate_mcp.workflows.sessions import SessionStore
from support.sessions import local_settings
from support.sessions import new_session as support_new_session
from support.sessions import proposal_of as support_proposal_of

RESTART = [
    "kubectl",
    "annotate",
    "deployment/web",
    "kubectl.kubernetes.io/restartedAt=2026-11-29T10:00:00Z",
    "-n",
    "shop",
]
SET_IMAGE = ["kubectl", "set", "image", "deployment/web", "web=nginx:1.27.0", "-n", "shop"]


@pytest.fixture
def settings(tmp_path) -> Settings:
    return local_settings(tmp_path)


@pytest.fixture
def store(settings) -> SessionStore:
    return SessionStore(settings.data_dir)


def proposal_of(argvs: list[list[str]], tier: RiskTier, version: int = 1) -> Proposal:
    return support_proposal_of(argvs, tier, version=version, intent="restart web")


def new_session(store: SessionStore, argvs: list[list[str]], tier: RiskTier) -> Session:
    return support_new_session(store, argvs, tier, intent="restart web")


def forged(session: Session, method: str, **extra: object) -> Approval:
    p = session.proposal
    return Approval(
        approver="alice",
        at=datetime.now(UTC),
        method=method,
        digest=p.digest,
        version=p.version,
        tier=p.risk.tier.value,
        **extra,
    )


def edit(store: SessionStore, session: Session, **changes: object) -> Session:
    """What someone who can write the data dir does: rewrite the session file, digest recomputed."""
    for key, value in changes.items():
        setattr(session, key, value)
    store.save(session)
    return store.load(session.id)


@pytest.mark.parametrize(
    "extra",
    [
        {"method": "cli"},
        {"method": "cli", "key_id": "0" * 16, "signature": "AAAA"},
        {"method": "elicitation", "mac": "00" * 32},
        {"method": AUTO_TRIVIAL, "mac": "ab" * 32},
        {"method": "execute-choice"},
    ],
)
def test_hand_written_approvals_count_for_nothing(store, settings, extra):
    session = new_session(store, [SET_IMAGE], RiskTier.MEDIUM)
    method = str(extra.pop("method"))
    session = edit(store, session, approvals=[forged(session, method, **extra)], status=SessionStatus.APPROVED)
    assert valid_approvals(session, settings) == []


def test_a_mac_made_for_one_session_does_not_fit_another(store, settings):
    one = new_session(store, [RESTART], RiskTier.TRIVIAL)
    other = new_session(store, [RESTART], RiskTier.TRIVIAL)
    approval = forged(one, AUTO_TRIVIAL).model_copy(update={"approver": AUTO_TRIVIAL})
    approval.mac = approval_mac(settings, one.id, approval)
    assert valid_approvals(edit(store, one, approvals=[approval]), settings)
    assert valid_approvals(edit(store, other, approvals=[approval]), settings) == []


def test_edited_session_with_forged_approval_runs_nothing(store, settings):
    """Finding 2: argv replaced, digest recomputed, tier set to trivial, status approved: refused before kubectl."""
    session = new_session(store, [RESTART], RiskTier.TRIVIAL)
    evil = [ProposedCommand(argv=["kubectl", "exec", "web-0", "-n", "shop", "--", "sh", "-c", "id"], description="x")]
    p = session.proposal.model_copy(
        update={
            "commands": [
                CheckedCommand(
                    command=evil[0],
                    display=evil[0].display,
                    classification=Classification(command_class="mutating", reason="r"),
                )
            ],
            "digest": command_digest(evil),
        }
    )
    session = edit(store, session, proposal=p, status=SessionStatus.APPROVED)
    session = edit(store, session, approvals=[forged(session, AUTO_TRIVIAL, mac="cd" * 32)])
    deps = OperateDeps(settings=settings, kubectl=Kubectl(settings), provider=None, sessions=store)
    with pytest.raises(ApprovalError, match="forbidden"):
        preflight(deps, session.id)
    assert store.load(session.id).status is not SessionStatus.EXECUTING


def test_edited_tier_with_a_real_auto_approval_is_still_refused(store, settings):
    """A medium proposal whose file says trivial: the trivial approval is refused at approval time."""
    session = new_session(store, [SET_IMAGE], RiskTier.MEDIUM)
    p = session.proposal
    with pytest.raises(ApprovalError, match="executeChoice=1 alone"):
        record_approval(
            store,
            session.id,
            approver="x",
            method=AUTO_TRIVIAL,
            settings=settings,
            expected_digest=p.digest,
            expected_version=p.version,
            judged_tier=RiskTier.TRIVIAL,
        )
    assert store.load(session.id).approvals == []


def test_execute_choice_is_no_approval_method(store, settings):
    session = new_session(store, [SET_IMAGE], RiskTier.LOW)
    with pytest.raises(ApprovalError, match="unknown approval method"):
        record_approval(store, session.id, approver="agent", method="execute-choice", settings=settings)


def test_auto_approval_is_recorded_as_auto_not_as_a_person(store, settings):
    session = new_session(store, [RESTART], RiskTier.TRIVIAL)
    p = session.proposal
    done = record_approval(
        store,
        session.id,
        approver="root",
        method=AUTO_TRIVIAL,
        settings=settings,
        expected_digest=p.digest,
        expected_version=p.version,
        judged_tier=RiskTier.TRIVIAL,
    )
    assert done.status is SessionStatus.APPROVED
    assert [a.approver for a in done.approvals] == [AUTO_TRIVIAL]


def test_trivial_verdict_is_bound_to_the_version_judged(store, settings):
    """Finding 1: the verdict on v1 cannot approve v2, whatever v2 is."""
    session = new_session(store, [RESTART], RiskTier.TRIVIAL)
    judged = session.proposal

    def refine(s: Session) -> None:
        s.proposal = proposal_of([SET_IMAGE], RiskTier.MEDIUM, version=2)

    store.transition(session.id, SessionStatus.PROPOSED, actor="agent", mutate=refine)
    with pytest.raises(ApprovalError, match="refined after you were shown it"):
        record_approval(
            store,
            session.id,
            approver="x",
            method=AUTO_TRIVIAL,
            settings=settings,
            expected_digest=judged.digest,
            expected_version=judged.version,
            judged_tier=RiskTier.TRIVIAL,
        )
    assert store.load(session.id).status is SessionStatus.PROPOSED


def test_trivial_verdict_never_lands_on_a_refined_version_under_stress(store, settings):
    """Finding 1 as a race: approvals of the judged v1 against concurrent refinements to a medium version.
    Whatever the interleaving, no medium version ends up with an approval that counts."""
    for _ in range(60):
        session = new_session(store, [RESTART], RiskTier.TRIVIAL)
        judged = session.proposal
        barrier = threading.Barrier(2)

        def approve(sid: str = session.id, p: Proposal = judged, b: threading.Barrier = barrier) -> None:
            b.wait()
            with contextlib.suppress(ApprovalError):
                record_approval(
                    store,
                    sid,
                    approver="x",
                    method=AUTO_TRIVIAL,
                    settings=settings,
                    expected_digest=p.digest,
                    expected_version=p.version,
                    judged_tier=RiskTier.TRIVIAL,
                )

        def refine_it(sid: str = session.id, b: threading.Barrier = barrier) -> None:
            def refine(s: Session) -> None:
                s.proposal = proposal_of([SET_IMAGE], RiskTier.MEDIUM, version=s.proposal.version + 1)
                s.approvals = []

            b.wait()
            store.transition(
                sid,
                SessionStatus.PROPOSED,
                actor="agent",
                expected={SessionStatus.PROPOSED, SessionStatus.APPROVED},
                mutate=refine,
            )

        threads = [threading.Thread(target=approve), threading.Thread(target=refine_it)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        final = store.load(session.id)
        assert final.proposal.risk.tier is RiskTier.MEDIUM
        assert valid_approvals(final, settings) == []


# ----------------------------------------------------------------------------- finding 10: trivial means harmless


def tier_of(argv: list[str], settings: Settings, namespace: str = "default") -> RiskTier:
    return assess_risk([ProposedCommand(argv=argv, description="d")], [], [], settings, namespace).tier


@pytest.mark.parametrize(
    "argv",
    [
        ["kubectl", "annotate", "ingress/web", "nginx.ingress.kubernetes.io/auth-url-", "-n", "shop"],
        ["kubectl", "annotate", "ingress/web", "nginx.ingress.kubernetes.io/whitelist-source-range-", "-n", "shop"],
        ["kubectl", "annotate", "service/web", "kubectl.kubernetes.io/restartedAt=now", "-n", "shop"],
        ["kubectl", "annotate", "networkpolicy/deny", "kubectl.kubernetes.io/restartedAt=now", "-n", "shop"],
        ["kubectl", "annotate", "deployment/web", "team=x", "-n", "shop"],
        ["kubectl", "annotate", "deployment/web", "kubectl.kubernetes.io/restartedAt=now", "--overwrite", "-n", "shop"],
        ["kubectl", "label", "pod/web-0", "app-", "-n", "shop"],
        ["kubectl", "label", "pod/web-0", "tier=frontend", "-n", "shop"],
    ],
)
def test_annotations_and_labels_that_matter_are_not_trivial(argv, settings):
    assert tier_of(argv, settings) is not RiskTier.TRIVIAL


def test_allow_listed_annotation_on_a_named_workload_is_trivial(settings):
    argv = ["kubectl", "annotate", "deployment/web", "kubectl.kubernetes.io/restartedAt=now", "-n", "shop"]
    assert tier_of(argv, settings) is RiskTier.TRIVIAL


def test_configured_annotation_prefix_is_trivial(tmp_path):
    settings = Settings(data_dir=tmp_path, trivial_annotation_keys=["example.com/"])
    argv = ["kubectl", "annotate", "deployment/web", "example.com/note=hello", "-n", "shop"]
    assert tier_of(argv, settings) is RiskTier.TRIVIAL


# ----------------------------------------------------------------------------- finding 11: effective namespace


def test_command_without_namespace_is_judged_in_the_contexts_namespace(settings):
    argv = ["kubectl", "set", "image", "deployment/web", "web=nginx:1.27.0"]
    assert tier_of(argv, settings, namespace="default") is RiskTier.MEDIUM
    assert tier_of(argv, settings, namespace="prod") is RiskTier.CRITICAL


def test_tier_rises_with_the_namespace_the_object_was_observed_in(settings):
    argv = ["kubectl", "set", "image", "deployment/web", "web=nginx:1.27.0"]
    seen = ObservedObject(kind="Deployment", name="web", namespace="production", exists=True)
    risk = assess_risk([ProposedCommand(argv=argv, description="d")], [seen], [], settings, "default")
    assert risk.tier is RiskTier.CRITICAL


def test_a_server_mac_on_a_cli_approval_proves_nothing(store, settings):
    """Only elicitation and auto(trivial) approvals are MAC'd by the server; a `cli` approval must be signed."""
    session = new_session(store, [SET_IMAGE], RiskTier.MEDIUM)
    approval = forged(session, "cli")
    approval.mac = approval_mac(settings, session.id, approval)
    assert valid_approvals(edit(store, session, approvals=[approval]), settings) == []
