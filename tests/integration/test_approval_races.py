"""Approval and execution under races, cancellation and expiry (found in review). Real control plane;
the scripted provider stands in for the hosted LLM."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import anyio
import pytest
from mcp import Client

from operate_mcp.agent.scripted import ScriptedProvider, answer
from operate_mcp.config import Settings
from operate_mcp.governance.approval import ApprovalError
from operate_mcp.model.session import SessionStatus
from operate_mcp.server import create_server
from operate_mcp.workflows import execute as execute_module
from operate_mcp.workflows.execute import execute
from operate_mcp.workflows.operate import analyze
from support.approvers import BOB, approve_signed, enrol
from support.manifests import bed_settings, deployment, deps_for, proposal

S = SessionStatus


@pytest.fixture
def settings(testbed, tmp_path):
    return bed_settings(testbed, tmp_path, rollout_timeout_seconds=30, knowledge_enabled=False)


@pytest.fixture
def bob(settings):
    """Bob's approver key, enrolled in this test's registry."""
    return enrol(settings.approvers_dir, "bob", BOB)


async def annotated(testbed, namespace, settings, n=3):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    steps = [
        {
            "argv": ["kubectl", "annotate", "deployment/web", f"step={i}", "--overwrite", "-n", namespace],
            "description": f"step {i}",
        }
        for i in range(n)
    ]
    deps = deps_for(settings, ScriptedProvider([answer(proposal("annotate web", steps))]))
    session = await analyze(deps, "annotate web", caller="alice", triggered_by="test")
    deps.provider = None
    return deps, session


async def test_approval_of_a_digest_nobody_was_shown_is_refused(testbed, namespace, settings, bob):
    deps, session = await annotated(testbed, namespace, settings)
    with pytest.raises(ApprovalError, match="refined after you were shown it"):
        approve_signed(deps.sessions, session.id, settings, "bob", bob, expected_digest="ab" * 32)
    assert deps.sessions.load(session.id).approvals == []


async def test_refinement_while_execution_starts_runs_nothing(testbed, namespace, settings, bob, monkeypatch):
    deps, session = await annotated(testbed, namespace, settings)
    approve_signed(deps.sessions, session.id, settings, "bob", bob)
    real = execute_module.take_snapshot

    def snapshot_then_refine(kubectl, commands):
        result = real(kubectl, commands)
        # Someone refines the proposal while the snapshot is taken (the version moves on).
        path = settings.data_dir / "sessions" / f"{session.id}.json"
        data = json.loads(path.read_text())
        data["proposal"]["version"] = 2
        path.write_text(json.dumps(data))
        return result

    monkeypatch.setattr(execute_module, "take_snapshot", snapshot_then_refine)
    with pytest.raises(ApprovalError, match="refined while execution was starting; nothing ran"):
        await execute(deps, session.id, actor="alice")
    annotations = testbed.kubectl_run(
        "get", "deploy/web", "-n", namespace, "-o", "jsonpath={.metadata.annotations}"
    ).stdout
    assert "step" not in annotations and "evil" not in annotations


async def test_cancelled_execution_is_interrupted_not_left_executing(testbed, namespace, settings, bob):
    deps, session = await annotated(testbed, namespace, settings, n=40)
    approve_signed(deps.sessions, session.id, settings, "bob", bob)
    with anyio.move_on_after(1.5):
        await execute(deps, session.id, actor="alice")
    after = deps.sessions.load(session.id)
    assert after.status is S.INTERRUPTED, after.status
    assert 0 < len(after.outcomes) < 40
    assert (settings.data_dir / "decisions" / f"{session.id}.md").is_file()


async def test_expired_approval_sends_the_session_back_to_be_asked_again(testbed, namespace, settings, bob):
    deps, session = await annotated(testbed, namespace, settings)
    approve_signed(deps.sessions, session.id, settings, "bob", bob)
    path = settings.data_dir / "sessions" / f"{session.id}.json"
    data = json.loads(path.read_text())
    data["approvals"][0]["at"] = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    path.write_text(json.dumps(data))
    with pytest.raises(ApprovalError, match="call operate\\(sessionId, executeChoice=1\\) again"):
        await execute(deps, session.id, actor="alice")
    assert deps.sessions.load(session.id).status is S.PROPOSED
    again = approve_signed(deps.sessions, session.id, settings, "bob", bob)
    assert again.status is S.APPROVED
    done = await execute(deps, session.id, actor="alice")
    assert done.status is S.EXECUTED_SUCCESSFULLY


async def test_policies_cannot_be_changed_by_the_agent_over_mcp(tmp_path):
    server = create_server(Settings(data_dir=tmp_path), caller="agent")
    async with Client(server) as client:
        for action, extra in (
            ("delete", {"id": "no-latest-tag"}),
            ("import", {"yamlText": "id: x"}),
            ("create", {"item": {"id": "x"}}),
        ):
            result = await client.call_tool("manage_knowledge", {"action": action, "kind": "policy", **extra})
            assert result.is_error and "policies cannot be changed over MCP" in result.content[0].text
