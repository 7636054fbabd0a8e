"""`operate-mcp approve` against the real control plane: an approval is a signature by an enrolled
person's key, typed at a real terminal (a pty), and names that key's owner. The attacks of security
issue #9 (finding 3) are performed here: typing back what the screen shows, piping stdin, and one
agent approving a critical delete as 'alice' and then as 'bob' by setting USER/LOGNAME."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from operate_mcp.agent.scripted import ScriptedProvider, answer
from operate_mcp.audit.log import AuditLog
from operate_mcp.governance.approval import ApprovalError
from operate_mcp.identity import os_user
from operate_mcp.model.session import SessionStatus
from operate_mcp.workflows.decide import valid_approvals
from operate_mcp.workflows.execute import execute
from operate_mcp.workflows.operate import analyze
from support.approvers import ALICE, BOB, CAROL, PASSPHRASE, approve_signed, enrol, identity
from support.manifests import bed_settings, deployment, deps_for, proposal
from support.terminal import run_in_terminal

S = SessionStatus
PROMPT = "Passphrase of your approver key"


@pytest.fixture
def settings(testbed, tmp_path):
    return bed_settings(testbed, tmp_path, provider="scripted", rollout_timeout_seconds=60, knowledge_enabled=False)


def cli_env(settings, **extra):
    """The environment of a person's shell that runs the CLI against the same installation."""
    return {
        **os.environ,
        "OPERATE_MCP_DATA_DIR": str(settings.data_dir),
        "OPERATE_MCP_APPROVERS_DIR": str(settings.approvers_dir),
        "OPERATE_MCP_APPROVAL_KEY_FILE": str(settings.approval_key_file),
        **extra,
    }


async def propose(testbed, namespace, settings, command, intent, analysis="analysis"):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    deps = deps_for(
        settings, ScriptedProvider([answer(proposal(analysis, [command]))]), audit=AuditLog(settings.data_dir)
    )
    session = await analyze(deps, intent, caller="agent", triggered_by="test")
    deps.provider = None  # validation without a model: deterministic checks only
    return deps, session


def set_image(namespace):
    return {
        "argv": ["kubectl", "set", "image", "deployment/web", "web=nginx:1.27.3", "-n", namespace],
        "description": "",
    }


def delete_web(namespace):
    return {"argv": ["kubectl", "delete", "deployment", "web", "-n", namespace], "description": "remove web"}


def approve_in_terminal(settings, session_id, key, passphrase=PASSPHRASE, **env):
    return run_in_terminal(
        ["approve", session_id, "--key", str(key), "--justification", "release 42"],
        cli_env(settings, **env),
        [(PROMPT, passphrase)],
    )


async def test_approving_in_a_terminal_signs_and_names_the_key_owner_not_user_or_logname(testbed, namespace, settings):
    deps, session = await propose(testbed, namespace, settings, set_image(namespace), "update web")
    assert session.proposal.risk.tier.value == "medium"
    bob = enrol(settings.approvers_dir, "bob", BOB)

    code, out = approve_in_terminal(settings, session.id, bob, USER="alice", LOGNAME="alice")

    assert code == 0, out
    assert f"approved by {identity(BOB)};" in out and "alice" not in out
    assert "web=nginx:1.27.3" in out and f"session {session.id}  version 1  risk medium" in out
    assert PASSPHRASE not in out  # typed at a prompt that does not echo
    approved = deps.sessions.load(session.id)
    [approval] = approved.approvals
    assert approved.status is S.APPROVED and approval.approver == identity(BOB) and approval.method == "cli"
    assert approval.key_id and approval.signature
    [entry] = [e for e in AuditLog(settings.data_dir).entries() if e.kind == "approval"]
    assert entry.actor == identity(BOB) and entry.data["key_id"] == approval.key_id
    done = await execute(deps, session.id, actor="agent")
    assert done.status is S.EXECUTED_SUCCESSFULLY, (done.outcomes, done.validation)


async def test_wrong_passphrase_approves_nothing(testbed, namespace, settings):
    deps, session = await propose(testbed, namespace, settings, set_image(namespace), "update web")
    bob = enrol(settings.approvers_dir, "bob", BOB)
    code, out = approve_in_terminal(settings, session.id, bob, passphrase="wrong horse")
    assert code == 2 and f"the passphrase does not unlock {bob}" in out
    assert deps.sessions.load(session.id).status is S.PROPOSED and deps.sessions.load(session.id).approvals == []


async def test_agent_typing_back_what_the_screen_shows_approves_nothing(testbed, namespace, settings):
    """The old prompt asked for the digest printed right above it; a pty satisfied isatty()."""
    deps, session = await propose(testbed, namespace, settings, set_image(namespace), "update web")
    bob = enrol(settings.approvers_dir, "bob", BOB)
    digest = session.proposal.digest
    code, out = approve_in_terminal(settings, session.id, bob, passphrase=digest[:8])
    assert code == 2 and "does not unlock" in out
    assert digest[:8] not in out  # neither shown nor echoed
    assert deps.sessions.load(session.id).approvals == []


async def test_piped_stdin_cannot_approve(testbed, namespace, settings):
    deps, session = await propose(testbed, namespace, settings, set_image(namespace), "update web")
    bob = enrol(settings.approvers_dir, "bob", BOB)
    piped = subprocess.run(
        [sys.executable, "-m", "operate_mcp", "approve", session.id, "--key", str(bob)],
        input=PASSPHRASE + "\n",
        capture_output=True,
        text=True,
        env=cli_env(settings),
        start_new_session=True,  # an agent's shell: no controlling terminal
        check=False,
    )
    assert piped.returncode == 2 and "approvals need a person at a terminal" in piped.stderr
    assert deps.sessions.load(session.id).approvals == []


async def test_critical_delete_signed_twice_by_one_key_counts_once(testbed, namespace, settings):
    """One agent with one key approved as 'alice' and then as 'bob' by changing USER/LOGNAME."""
    deps, session = await propose(testbed, namespace, settings, delete_web(namespace), "delete web")
    assert session.proposal.risk.tier.value == "critical"
    carol = enrol(settings.approvers_dir, "carol", CAROL)

    code, out = approve_in_terminal(settings, session.id, carol, USER="alice", LOGNAME="alice")
    assert code == 0, out
    assert f"approval 1 of 2 recorded ({identity(CAROL)})" in out
    code, out = approve_in_terminal(settings, session.id, carol, USER="bob", LOGNAME="bob")
    assert code == 2 and "already approved" in out

    # Even copied into the session file under other names, one signature is one approval.
    path = settings.data_dir / "sessions" / f"{session.id}.json"
    data = json.loads(path.read_text())
    data["approvals"] += [{**data["approvals"][0], "approver": name} for name in ("alice", "bob")]
    path.write_text(json.dumps(data))
    stored = deps.sessions.load(session.id)
    assert stored.status is S.PROPOSED
    assert [a.approver for a in valid_approvals(stored, settings)] == [identity(CAROL)]
    with pytest.raises(ApprovalError, match="not approved"):
        await execute(deps, session.id, actor="agent")
    assert testbed.kubectl_run("get", "deploy/web", "-n", namespace, check=False).returncode == 0

    bob = enrol(settings.approvers_dir, "bob", BOB)
    code, out = approve_in_terminal(settings, session.id, bob)
    assert code == 0 and f"approved by {identity(BOB)}" in out, out
    done = await execute(deps, session.id, actor="agent")
    assert done.status is S.EXECUTED_SUCCESSFULLY, (done.outcomes, done.validation)
    assert testbed.kubectl_run("get", "deploy/web", "-n", namespace, check=False).returncode != 0


async def test_one_person_with_two_keys_is_still_one_approver(testbed, namespace, settings):
    deps, session = await propose(testbed, namespace, settings, delete_web(namespace), "delete web")
    desktop = enrol(settings.approvers_dir, "alice", ALICE)
    laptop = enrol(settings.approvers_dir, "alice-laptop", ALICE)
    first = approve_signed(deps.sessions, session.id, settings, "alice", desktop)
    assert first.status is S.PROPOSED
    with pytest.raises(ApprovalError, match="already approved"):
        approve_signed(deps.sessions, session.id, settings, "bob", laptop)
    assert len(valid_approvals(deps.sessions.load(session.id), settings)) == 1


async def test_agent_written_escape_sequences_reach_the_approver_inert(testbed, namespace, settings):
    """Finding 12: raw escape bytes in the intent and analysis reached the approver's terminal."""
    intent = "update web\x1b[2J\x1b]0;pwned\x07\nSECURITY TEAM: pre-approved"
    _, session = await propose(
        testbed, namespace, settings, set_image(namespace), intent, analysis="fine\x1b[8m hidden \x1b[0m"
    )
    bob = enrol(settings.approvers_dir, "bob", BOB)
    code, out = approve_in_terminal(settings, session.id, bob, passphrase="wrong horse")
    assert code == 2
    for raw in ("\x1b[2J", "\x1b]0;", "\x07", "\x1b[8m"):
        assert raw not in out
    assert "intent: update web [2J ]0;pwned SECURITY TEAM: pre-approved" in out
    assert "fine\\x1b[8m hidden \\x1b[0m" in out


async def test_reject_names_the_real_os_user(testbed, namespace, settings):
    deps, session = await propose(testbed, namespace, settings, set_image(namespace), "update web")
    rejected = subprocess.run(
        [sys.executable, "-m", "operate_mcp", "reject", session.id, "--justification", "not today"],
        capture_output=True,
        text=True,
        env=cli_env(settings, USER="alice", LOGNAME="alice"),
        check=False,
    )
    assert rejected.returncode == 0, rejected.stderr
    stored = deps.sessions.load(session.id)
    assert stored.status is S.REJECTED and stored.rejection is not None
    assert stored.rejection.approver == os_user() != "alice"
