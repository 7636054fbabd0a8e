"""Replay from the verified audit log, against the real control plane (scripted provider for the
first analysis: the hosted LLM is unreachable here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from operate_mcp.agent.scripted import ScriptedProvider, answer
from operate_mcp.audit.log import AuditLog
from operate_mcp.model.session import SessionStatus
from operate_mcp.records.store import RecordStore
from operate_mcp.workflows import replay as replay_module
from operate_mcp.workflows.execute import execute
from operate_mcp.workflows.operate import analyze
from operate_mcp.workflows.replay import ReplayError, parse_overrides, plan_replay, replay
from support.approvers import BOB, approve_signed, enrol
from support.manifests import bed_settings, deployment, deps_for, proposal


@pytest.fixture
def settings(testbed, tmp_path):
    return bed_settings(testbed, tmp_path, rollout_timeout_seconds=60)


async def executed_scale(testbed, namespace, settings):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("api", namespace))
    scale = {"argv": ["kubectl", "scale", "deployment/api", "--replicas=3", "-n", namespace], "description": "scale"}
    deps = deps_for(
        settings, ScriptedProvider([answer(proposal("scale api to 3", [scale]))]), audit=AuditLog(settings.data_dir)
    )
    deps.records = RecordStore(settings.data_dir)
    session = await analyze(deps, "scale api to 3", caller="alice", triggered_by="test")
    approve_signed(deps.sessions, session.id, settings, "bob", enrol(settings.approvers_dir, "bob", BOB))
    deps.provider = None
    done = await execute(deps, session.id, actor="alice")
    assert done.status is SessionStatus.EXECUTED_SUCCESSFULLY
    return deps, done


async def test_replay_is_a_new_session_that_needs_approval_again(testbed, namespace, settings):
    deps, original = await executed_scale(testbed, namespace, settings)
    plan = plan_replay(deps, original.id)
    assert plan.intent == "scale api to 3"
    assert plan.commands == original.proposal.command_list()
    assert plan.warnings == []
    again = await replay(deps, plan, caller="carol", triggered_by="test")
    assert again.id != original.id
    assert again.parent_session == original.id and again.purpose == "replay"
    assert again.status is SessionStatus.PROPOSED and again.approvals == []
    assert again.proposal.digest == original.proposal.digest
    assert all(c.dry_run and c.dry_run.ok for c in again.proposal.commands)
    kinds = [(e.kind, e.session_id) for e in AuditLog(settings.data_dir).entries()]
    assert ("replay", again.id) in kinds and ("proposal", again.id) in kinds


async def test_replay_warns_when_the_prompt_changed(testbed, namespace, settings, monkeypatch):
    deps, original = await executed_scale(testbed, namespace, settings)
    monkeypatch.setattr(replay_module, "prompt_sha256", lambda name: "f" * 64)
    plan = plan_replay(deps, original.id)
    assert any("system prompt changed" in w for w in plan.warnings)


async def test_replay_with_namespace_override_retargets_the_commands(testbed, namespace, settings):
    deps, original = await executed_scale(testbed, namespace, settings)
    plan = plan_replay(deps, original.id, parse_overrides(["namespace=elsewhere"]))
    assert plan.commands[0].argv[-1] == "elsewhere"
    with pytest.raises(ReplayError, match="key one of intent, namespace"):
        parse_overrides(["kubeconfig=/tmp/x"])


async def test_replay_refuses_a_tampered_audit_log(testbed, namespace, settings):
    deps, original = await executed_scale(testbed, namespace, settings)
    day = sorted((settings.data_dir / "audit").glob("*.jsonl"))[-1]
    lines = day.read_text().splitlines()
    entry = json.loads(lines[0])
    entry["data"]["intent"] = "delete everything"
    lines[0] = json.dumps(entry)
    day.write_text("\n".join(lines) + "\n")
    with pytest.raises(ReplayError, match="does not verify"):
        plan_replay(deps, original.id)


async def test_replay_by_record_id_from_the_cli(testbed, namespace, settings):
    _deps, original = await executed_scale(testbed, namespace, settings)
    record_id = original.extra["record_id"]
    assert record_id.startswith("run-")
    env = {
        **os.environ,
        "OPERATE_MCP_DATA_DIR": str(settings.data_dir),
        "OPERATE_MCP_KUBECONFIG": str(testbed.kubeconfig),
        "OPERATE_MCP_KUBECTL": testbed.kubectl,
        "OPERATE_MCP_KNOWLEDGE_ENABLED": "false",
    }
    run = [sys.executable, "-m", "operate_mcp", "replay", record_id]
    dry = subprocess.run([*run, "--dry-run", "--format", "json"], capture_output=True, text=True, env=env)
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["original_session"] == original.id and plan["intent"] == "scale api to 3"
    made = subprocess.run([*run, "--format", "json"], capture_output=True, text=True, env=env)
    assert made.returncode == 0, made.stderr
    session = json.loads(made.stdout)
    assert session["parent_session"] == original.id and session["status"] == "proposed"
    bad = subprocess.run(
        [sys.executable, "-m", "operate_mcp", "replay", "run-0000000000000-deadbeef"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode != 0 and "run-0000000000000-deadbeef" in bad.stderr


async def test_replay_warns_when_a_policy_it_was_checked_against_changed(testbed, namespace, settings):
    from operate_mcp.knowledge.base import KnowledgeBase

    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("api", namespace))
    scale = {"argv": ["kubectl", "scale", "deployment/api", "--replicas=3", "-n", namespace], "description": "scale"}
    deps = deps_for(
        settings, ScriptedProvider([answer(proposal("scale api to 3", [scale]))]), audit=AuditLog(settings.data_dir)
    )
    kb = KnowledgeBase(settings, kubectl=deps.kubectl)
    deps.knowledge = kb
    session = await analyze(deps, "scale api to 3", caller="alice", triggered_by="test")
    assert session.proposal.policies_sha256, "the proposal records the policies it was checked against"
    assert plan_replay(deps, session.id).warnings == []
    policy_id = sorted(session.proposal.policies_sha256)[0]
    item = kb.get("policy", policy_id)
    kb.import_items([item.model_copy(update={"description": item.description + " (tightened)"})])
    warnings = plan_replay(deps, session.id).warnings
    assert any("policies changed" in w and policy_id in w for w in warnings), warnings
