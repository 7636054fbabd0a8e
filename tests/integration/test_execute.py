"""Approve and execute against the real control plane. The scripted provider stands in for the
hosted LLM (unreachable here); kubectl, the API server, sessions and the audit log are real."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from mcp import Client
from mcp_types import ElicitResult

from operate_mcp.agent.scripted import ScriptedProvider, answer
from operate_mcp.audit.log import AuditLog
from operate_mcp.audit.verify import verify
from operate_mcp.errors import SessionError
from operate_mcp.governance.approval import ApprovalError
from operate_mcp.model.session import SessionStatus
from operate_mcp.server import create_server
from operate_mcp.workflows.execute import DriftError, execute
from operate_mcp.workflows.operate import analyze
from operate_mcp.workflows.rollback import propose_rollback
from support.approvers import BOB, CAROL, PASSPHRASE, approve_signed, enrol, identity
from support.manifests import bed_settings, deployment, deps_for, hpa, proposal
from support.terminal import run_in_terminal

S = SessionStatus


@pytest.fixture
def settings(testbed, tmp_path):
    return bed_settings(testbed, tmp_path, provider="scripted", rollout_timeout_seconds=60)


@pytest.fixture
def bob(settings):
    """Bob's approver key, enrolled in this test's registry."""
    return enrol(settings.approvers_dir, "bob", BOB)


def image_of(testbed, name, namespace):
    return testbed.kubectl_run(
        "get", f"deploy/{name}", "-n", namespace, "-o", "jsonpath={.spec.template.spec.containers[0].image}"
    ).stdout


def set_image(namespace, image="nginx:1.27.3"):
    return {
        "argv": ["kubectl", "set", "image", "deployment/web", f"web={image}", "-n", namespace],
        "description": "new image",
    }


async def propose(settings, commands, intent="update web", provider_extra=()):
    deps = deps_for(
        settings,
        ScriptedProvider([answer(proposal(intent, commands)), *provider_extra]),
        audit=AuditLog(settings.data_dir),
    )
    return deps, await analyze(deps, intent, caller="alice", triggered_by="test")


async def test_update_image_approve_execute_rolls_out_and_rollback_restores(testbed, namespace, settings, bob):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    testbed.kubectl_run("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    deps, session = await propose(settings, [set_image(namespace)])
    assert session.proposal.risk.tier.value == "medium"
    approve_signed(deps.sessions, session.id, settings, "bob", bob)
    deps.provider = None  # validation without a model: deterministic checks only
    done = await execute(deps, session.id, actor="alice")
    assert done.status is S.EXECUTED_SUCCESSFULLY, (done.outcomes, done.validation)
    assert image_of(testbed, "web", namespace) == "nginx:1.27.3"
    assert any(c.name.startswith("rollout status") and c.ok for c in done.validation.checks)
    assert done.outcomes[0].argv == session.proposal.commands[0].command.argv
    record = (settings.data_dir / "decisions" / f"{session.id}.md").read_text()
    assert record.startswith("---\n") and f"approver: {identity(BOB)}" in record and "executed_successfully" in record

    started = time.monotonic()
    rb = await propose_rollback(deps, session.id, caller="alice", triggered_by="test")
    assert rb.parent_session == session.id and rb.purpose == "rollback"
    assert all(c.dry_run and c.dry_run.ok for c in rb.proposal.commands)
    approve_signed(deps.sessions, rb.id, settings, "bob", bob)
    undone = await execute(deps, rb.id, actor="alice")
    elapsed = time.monotonic() - started
    assert undone.status is S.EXECUTED_SUCCESSFULLY, (undone.outcomes, undone.validation)
    assert image_of(testbed, "web", namespace) == "nginx:1.25.5"
    print(f"\nrollback on the test bed: proposed, approved, applied and rolled out in {elapsed:.2f}s")
    report = verify(settings.data_dir, alert=False)
    assert report.ok, report.problems
    kinds = [e.kind for e in AuditLog(settings.data_dir).entries()]
    assert kinds.count("execution") == 2 and "rollback" in kinds and "execution.step" in kinds


async def test_hpa_is_created_and_present(testbed, namespace, settings, bob):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("api", namespace))
    cmd = {
        "argv": ["kubectl", "apply", "-f", "-", "-n", namespace],
        "stdin": hpa("api", namespace),
        "description": "HPA",
    }
    deps, session = await propose(settings, [cmd], intent="autoscale api")
    approve_signed(deps.sessions, session.id, settings, "bob", bob)
    deps.provider = None
    done = await execute(deps, session.id, actor="alice")
    assert done.status is S.EXECUTED_SUCCESSFULLY, (done.outcomes, done.validation)
    got = json.loads(testbed.kubectl_run("get", "hpa", "api", "-n", namespace, "-o", "json").stdout)
    assert got["spec"]["maxReplicas"] == 6
    assert any(c.name.endswith("exists") and c.ok for c in done.validation.checks)


async def test_executing_twice_is_refused(testbed, namespace, settings, bob):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    deps, session = await propose(settings, [set_image(namespace)])
    approve_signed(deps.sessions, session.id, settings, "bob", bob)
    deps.provider = None
    await execute(deps, session.id, actor="alice")
    with pytest.raises(ApprovalError, match="runs at most once"):
        await execute(deps, session.id, actor="alice")


async def test_unapproved_session_is_refused(testbed, namespace, settings):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    deps, session = await propose(settings, [set_image(namespace)])
    with pytest.raises(ApprovalError, match="not approved"):
        await execute(deps, session.id, actor="alice")
    assert image_of(testbed, "web", namespace) == "nginx:1.25.5"


async def test_commands_edited_after_approval_are_refused(testbed, namespace, settings, bob):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    deps, session = await propose(settings, [set_image(namespace)])
    approve_signed(deps.sessions, session.id, settings, "bob", bob)
    path = settings.data_dir / "sessions" / f"{session.id}.json"
    data = json.loads(path.read_text())
    data["proposal"]["commands"][0]["command"]["argv"][4] = "web=evil/miner:1"
    path.write_text(json.dumps(data))
    with pytest.raises(ApprovalError, match="no longer match their digest"):
        await execute(deps, session.id, actor="alice")
    assert image_of(testbed, "web", namespace) == "nginx:1.25.5"


async def test_drifted_object_is_refused_with_what_changed(testbed, namespace, settings, bob):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    deps, session = await propose(settings, [set_image(namespace)])
    approve_signed(deps.sessions, session.id, settings, "bob", bob)
    testbed.kubectl_run("scale", "deploy/web", "--replicas=4", "-n", namespace)
    with pytest.raises(DriftError, match=r"changed since the analysis.*replicas 2 -> 4"):
        await execute(deps, session.id, actor="alice")
    assert deps.sessions.load(session.id).status is S.APPROVED
    assert image_of(testbed, "web", namespace) == "nginx:1.25.5"


async def test_critical_operation_needs_two_different_approvers(testbed, namespace, settings, bob):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    delete = {"argv": ["kubectl", "delete", "deployment", "web", "-n", namespace], "description": "remove"}
    deps, session = await propose(settings, [delete], intent="delete web")
    assert session.proposal.risk.tier.value == "critical"
    first = approve_signed(deps.sessions, session.id, settings, "bob", bob)
    assert first.status is S.PROPOSED
    with pytest.raises(ApprovalError, match="second, different approver"):
        approve_signed(deps.sessions, session.id, settings, "bob", bob)
    with pytest.raises(ApprovalError, match="not approved"):
        await execute(deps, session.id, actor="alice")
    carol = enrol(settings.approvers_dir, "carol", CAROL)
    second = approve_signed(deps.sessions, session.id, settings, "carol", carol)
    assert second.status is S.APPROVED and [a.approver for a in second.approvals] == [identity(BOB), identity(CAROL)]
    deps.provider = None
    done = await execute(deps, session.id, actor="alice")
    assert done.status is S.EXECUTED_SUCCESSFULLY, (done.outcomes, done.validation)
    assert testbed.kubectl_run("get", "deploy/web", "-n", namespace, check=False).returncode != 0


KILLER = textwrap.dedent("""
    import asyncio, sys
    from operate_mcp.config import Settings
    from operate_mcp.kube.runner import Kubectl
    from operate_mcp.workflows.execute import execute
    from operate_mcp.workflows.operate import OperateDeps
    from operate_mcp.workflows.sessions import SessionStore
    settings = Settings.model_validate_json(sys.argv[1])
    deps = OperateDeps(settings=settings, kubectl=Kubectl(settings), provider=None,
                       sessions=SessionStore(settings.data_dir))
    asyncio.run(execute(deps, sys.argv[2], actor="alice"))
""")


async def test_sigkill_during_execution_leaves_an_interrupted_session_that_cannot_run_again(
    testbed, namespace, settings, bob
):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    steps = [
        {
            "argv": ["kubectl", "annotate", "deployment/web", f"step={i}", "--overwrite", "-n", namespace],
            "description": f"step {i}",
        }
        for i in range(40)
    ]
    deps, session = await propose(settings, steps, intent="annotate web 40 times")
    approve_signed(deps.sessions, session.id, settings, "bob", bob)
    proc = subprocess.Popen([sys.executable, "-c", KILLER, settings.model_dump_json(), session.id])
    path = settings.data_dir / "sessions" / f"{session.id}.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        data = json.loads(path.read_text())
        if data["status"] == "executing" and len(data["outcomes"]) >= 2:
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("execution never reached its second command")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    interrupted = deps.sessions.reap_if_interrupted(session.id)
    assert interrupted.status is S.INTERRUPTED
    assert "cannot run again" in interrupted.history[-1].note
    assert 2 <= len(interrupted.outcomes) < 40
    with pytest.raises(ApprovalError, match="interrupted; a session runs at most once"):
        await execute(deps, session.id, actor="alice")
    with pytest.raises(SessionError, match="cannot go from interrupted"):
        deps.sessions.transition(session.id, S.EXECUTING, actor="mallory")


# --- MCP elicitation: the person approves through their client ---------------------------------------------


def mcp_server(settings, namespace, image="nginx:1.27.3"):
    provider = ScriptedProvider([answer(proposal("update web", [set_image(namespace, image)]))])
    return create_server(settings, provider_factory=lambda s: provider, caller="alice")


async def _propose_over_mcp(client) -> str:
    result = await client.call_tool("operate", {"intent": "update web"})
    assert not result.is_error, result.content
    return result.structured_content["session_id"]


@pytest.mark.parametrize(
    ("action", "content", "status", "image"),
    [
        ("accept", {"approve": True, "justification": "release 42"}, "executed_successfully", "nginx:1.27.3"),
        ("accept", {"approve": False, "justification": "not today"}, "rejected", "nginx:1.25.5"),
        ("decline", None, "rejected", "nginx:1.25.5"),
    ],
)
async def test_elicitation_decides(testbed, namespace, settings, action, content, status, image):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    asked: list[str] = []

    async def on_elicit(context, params):
        asked.append(params.message)
        return ElicitResult(action=action, content=content)

    async with Client(mcp_server(settings, namespace), elicitation_callback=on_elicit) as client:
        sid = await _propose_over_mcp(client)
        result = await client.call_tool("operate", {"sessionId": sid, "executeChoice": 1})
    assert not result.is_error, result.content
    assert result.structured_content["status"] == status
    assert "kubectl set image deployment/web web=nginx:1.27.3" in asked[0]
    assert "Digest: sha256:" in asked[0]
    assert image_of(testbed, "web", namespace) == image


async def test_cancelled_elicitation_runs_nothing_and_keeps_the_proposal(testbed, namespace, settings):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))

    async def on_elicit(context, params):
        return ElicitResult(action="cancel")

    async with Client(mcp_server(settings, namespace), elicitation_callback=on_elicit) as client:
        sid = await _propose_over_mcp(client)
        result = await client.call_tool("operate", {"sessionId": sid, "executeChoice": 1})
    assert result.is_error and "cancelled" in result.content[0].text
    assert json.loads((settings.data_dir / "sessions" / f"{sid}.json").read_text())["status"] == "proposed"
    assert image_of(testbed, "web", namespace) == "nginx:1.25.5"


async def test_client_without_elicitation_is_told_to_approve_in_a_terminal(testbed, namespace, settings, bob):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    async with Client(mcp_server(settings, namespace)) as client:
        sid = await _propose_over_mcp(client)
        result = await client.call_tool("operate", {"sessionId": sid, "executeChoice": 1})
        assert result.is_error and f"operate-mcp approve {sid}" in result.content[0].text
        assert image_of(testbed, "web", namespace) == "nginx:1.25.5"
        env = {
            **os.environ,
            "OPERATE_MCP_DATA_DIR": str(settings.data_dir),
            "OPERATE_MCP_APPROVERS_DIR": str(settings.approvers_dir),
            "OPERATE_MCP_APPROVAL_KEY_FILE": str(settings.approval_key_file),
        }
        approve = ["approve", sid, "--key", str(bob)]
        piped = subprocess.run([sys.executable, "-m", "operate_mcp", *approve], input=PASSPHRASE + "\n",
                               capture_output=True, text=True, env=env, start_new_session=True, check=False)
        assert piped.returncode == 2 and "approvals need a person at a terminal" in piped.stderr
        prompt = "Passphrase of your approver key"
        wrong, _ = run_in_terminal(approve, env, [(prompt, "wrong horse")])
        assert wrong == 2
        code, out = run_in_terminal([*approve, "--justification", "ok"], env, [(prompt, PASSPHRASE)])
        assert code == 0, out
        assert "nginx:1.27.3" in out and f"approved by {identity(BOB)}" in out
        result = await client.call_tool("operate", {"sessionId": sid, "executeChoice": 1})
    assert not result.is_error, result.content
    assert result.structured_content["status"] == "executed_successfully"
    assert image_of(testbed, "web", namespace) == "nginx:1.27.3"


# --- every execution becomes a record: search, summary, metrics, alerts ------------------------------------


async def test_execution_becomes_a_searchable_record_with_metrics(testbed, namespace, settings):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))

    async def on_elicit(context, params):
        return ElicitResult(action="accept", content={"approve": True, "justification": "ok"})

    async with Client(mcp_server(settings, namespace), elicitation_callback=on_elicit) as client:
        sid = await _propose_over_mcp(client)
        done = await client.call_tool("operate", {"sessionId": sid, "executeChoice": 1})
        assert done.structured_content["status"] == "executed_successfully"
        found = await client.call_tool("runs_search", {"query": f"status:succeeded namespace:{namespace}"})
        page = found.structured_content
        assert page["total"] == 1 and page["items"][0]["status"] == "succeeded"
        run_id = page["items"][0]["id"]
        summary = (await client.call_tool("runs_summary", {"id": run_id})).structured_content
        assert summary["status"] == "succeeded" and "update web" in summary["one_line"]
        shown = (await client.call_tool("runs_show", {"id": run_id})).structured_content
        assert shown["session_id"] == sid
        assert shown["commands"][0]["argv"][:3] == ["kubectl", "set", "image"]
        metrics = (await client.call_tool("metrics", {})).structured_content
        assert metrics["total"] == 1 and metrics["succeeded"] == 1 and metrics["success_rate"] == 1.0
        bad = await client.call_tool("runs_search", {"query": "status:(failed"})
        assert bad.is_error and "column" in bad.content[0].text.lower()


async def test_failed_execution_and_failed_analysis_leave_alert_lines(testbed, namespace, testbed_settings_warn):
    settings = testbed_settings_warn
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))

    async def on_elicit(context, params):
        return ElicitResult(action="accept", content={"approve": True, "justification": "ok"})

    async with Client(mcp_server(settings, namespace), elicitation_callback=on_elicit) as client:
        sid = await _propose_over_mcp(client)
        testbed.kubectl_run("delete", "deploy/web", "-n", namespace)
        done = await client.call_tool("operate", {"sessionId": sid, "executeChoice": 1})
        assert done.structured_content["status"] == "failed"
        assert done.structured_content["execution"][0]["exit_code"] != 0
        again = await client.call_tool("operate", {"intent": "something the script cannot answer"})
        assert again.is_error
    lines = (settings.data_dir / "alerts" / "intent-failures.log").read_text().splitlines()
    assert len(lines) == 2
    assert sid not in lines[1] and "step=analyse" in lines[1]
    assert "update web" in lines[0] and "\n" not in lines[0]


@pytest.fixture
def testbed_settings_warn(testbed, tmp_path):
    return bed_settings(testbed, tmp_path, rollout_timeout_seconds=30, drift_mode="warn")
