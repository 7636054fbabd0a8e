"""Observation of executions on the real control plane: every executed record carries the cluster before
and after (workloads, pods, images, events, usage, log lines), the outcome checks of its category and the
results of its verification commands; `runs show` prints them. The scripted provider stands in for the
hosted LLM (unreachable here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from mcp import Client
from mcp_types import ElicitResult

from operate_mcp.agent.scripted import ScriptedProvider, answer
from operate_mcp.kube.runner import Kubectl
from operate_mcp.model.command import ProposedCommand
from operate_mcp.observe.outcomes import run_verification
from operate_mcp.records.models import ExecutionRecord
from operate_mcp.records.store import RecordStore
from operate_mcp.server import create_server
from support.manifests import bed_settings, deployment, proposal


@pytest.fixture
def settings(testbed, tmp_path):
    return bed_settings(testbed, tmp_path, provider="scripted", knowledge_enabled=False)


async def accept(context, params):
    return ElicitResult(action="accept", content={"approve": True, "justification": "go"})


async def execute_over_mcp(settings, commands, verification=()) -> dict:
    draft = proposal("update web", commands)
    draft["verification"] = list(verification)
    provider = ScriptedProvider([answer(draft)])
    server = create_server(settings, provider_factory=lambda s: provider, caller="alice")
    async with Client(server, elicitation_callback=accept) as client:
        proposed = await client.call_tool("operate", {"intent": "update web"})
        assert not proposed.is_error, proposed.content
        sid = proposed.structured_content["session_id"]
        done = await client.call_tool("operate", {"sessionId": sid, "executeChoice": 1})
        assert not done.is_error, done.content
    return done.structured_content


def only_record(settings) -> ExecutionRecord:
    store = RecordStore(settings.data_dir)
    [row] = store.search("").items
    return store.get(row.id)


async def test_an_executed_update_records_the_cluster_before_and_after(testbed, namespace, settings, tmp_path):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    testbed.kubectl_run("rollout", "status", "deployment/web", "-n", namespace, "--timeout=90s", timeout=100)
    set_image = ["kubectl", "set", "image", "deployment/web", "web=nginx:1.27.3", "-n", namespace]
    status = ["kubectl", "rollout", "status", "deployment/web", "-n", namespace, "--timeout=60s"]
    done = await execute_over_mcp(
        settings, [{"argv": set_image, "description": "new image"}], [{"argv": status, "description": "rolled out"}]
    )
    assert done["status"] == "executed_successfully", done["validation"]

    record = only_record(settings)
    assert record.category == "update"
    assert record.before is not None and record.after is not None
    [before], [after] = record.before.workloads, record.after.workloads
    assert (before.kind, before.name, before.images[0].image) == ("Deployment", "web", "nginx:1.25.5")
    assert after.images[0].image == "nginx:1.27.3" and after.available == 2
    assert len(record.before.pods) >= 2 and all(p.images[0].image == "nginx:1.25.5" for p in record.before.pods)
    new_pods = [p for p in record.after.pods if p.images[0].image == "nginx:1.27.3"]
    assert len(new_pods) == 2 and all(p.ready and p.owner == "deployment/web" for p in new_pods)
    assert record.after.cluster_version.startswith("v1.34") and record.after.client_version.startswith("v1.")
    assert any("Scaled up replica set" in e for e in record.after.events)
    # The last log lines of each touched container (the bed's kwok serves the same app log for each).
    assert record.after.logs and all(log.lines for log in record.after.logs)
    assert any("listening on :8080" in line for log in record.after.logs for line in log.lines)
    # Outcome checks of the update category, and the proposal's own verification command.
    checks = {c.name: c for c in record.outcome_checks}
    assert checks["outcome: rollout_complete"].ok and checks["outcome: pods_ready"].ok
    assert checks["outcome: no_failing_pods"].ok
    [verified] = [c for c in record.outcome_checks if c.name.startswith("verification: kubectl rollout status")]
    assert verified.ok and "successfully rolled out" in verified.detail

    env = {**os.environ, "OPERATE_MCP_DATA_DIR": str(settings.data_dir), "HOME": str(tmp_path)}
    shown = subprocess.run(
        [sys.executable, "-m", "operate_mcp", "runs", "show", record.id],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    for expected in ("before (", "after (", "Deployment/web: 2/2 ready", "Pod/web-", "listening on :8080"):
        assert expected in shown.stdout, shown.stdout


def test_a_verification_command_that_would_change_something_is_reported_and_never_run(testbed, namespace, settings):
    """The analysis refuses a mutating verification command; one written into a session file afterwards
    reaches execution only as data: it is classified again, reported, and not run."""
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    sneaky = ProposedCommand(argv=["kubectl", "delete", "deployment", "web", "-n", namespace], description="verify")
    reads = ProposedCommand(argv=["kubectl", "get", "deployment", "web", "-n", namespace], description="verify")
    [refused, ran] = run_verification(Kubectl(settings), [sneaky, reads])
    assert not refused.ok and refused.detail.startswith("not run:")
    assert ran.ok and "web" in ran.detail
    assert testbed.kubectl_run("get", "deployment", "web", "-n", namespace, "-o", "name").stdout.strip()


CRASH = '{"spec":{"template":{"metadata":{"labels":{"testbed.operate-mcp.dev/fail":"crashloop"}}}}}'


async def test_an_update_whose_new_pods_crash_loop_fails_its_outcome_checks_and_raises_anomalies(
    testbed, namespace, settings
):
    """The bed's failure switch makes the new pods crash (exit 1, CrashLoopBackOff); their previous
    container's log lines are the evidence."""
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    testbed.kubectl_run("rollout", "status", "deployment/web", "-n", namespace, "--timeout=90s", timeout=100)
    patch = ["kubectl", "patch", "deployment", "web", "-n", namespace, "-p", CRASH]
    done = await execute_over_mcp(settings, [{"argv": patch, "description": "the new version"}])
    assert done["status"] == "executed_with_errors"
    failed = {c["name"]: c for c in done["validation"]["checks"] if not c["ok"]}
    assert "outcome: no_failing_pods" in failed and "CrashLoopBackOff" in failed["outcome: no_failing_pods"]["detail"]

    # Attached to operate's response ...
    rules = {a["rule"]: a for a in done["anomalies"]}
    assert {"failure_state", "unexpected_restart"} <= set(rules), rules
    crash = rules["failure_state"]
    assert crash["severity"] == "P1" and "CrashLoopBackOff" in crash["actual"]
    assert crash["target"] == "deployment/web" and crash["namespace"] == namespace
    assert any("cannot connect to database" in e for e in rules["unexpected_restart"]["evidence"]), rules
    # ... stored, and returned by check_anomalies.
    server = create_server(settings, caller="alice")
    async with Client(server) as client:
        page = (
            await client.call_tool("check_anomalies", {"namespace": namespace, "severity": "P1"})
        ).structured_content
    assert {a["rule"] for a in page["anomalies"]} >= {"failure_state", "unexpected_restart"}
    assert all(a["run_id"] == only_record(settings).id for a in page["anomalies"])
    files = list((settings.data_dir / "anomalies").rglob("*.yaml"))
    assert len(files) >= 2
    alerts = (settings.data_dir / "alerts" / "intent-failures.log").read_text()
    assert "anomaly-P1" in alerts


async def test_watch_records_a_late_regression_as_an_anomaly_of_the_run_that_touched_it(
    testbed, namespace, settings, tmp_path
):
    """A clean update; ten minutes later (here: at once) the workload's pods start crash-looping. `watch`
    finds it and files it under the run that touched the workload, marked late."""
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    testbed.kubectl_run("rollout", "status", "deployment/web", "-n", namespace, "--timeout=90s", timeout=100)
    set_image = ["kubectl", "set", "image", "deployment/web", "web=nginx:1.27.3", "-n", namespace]
    done = await execute_over_mcp(settings, [{"argv": set_image, "description": "new image"}])
    assert done["status"] == "executed_successfully" and done["anomalies"] == []
    run = only_record(settings)

    testbed.kubectl_run("patch", "deployment", "web", "-n", namespace, "-p", CRASH)
    deadline = time.monotonic() + 60
    while "CrashLoopBackOff" not in testbed.kubectl_run("get", "pods", "-n", namespace, "-o", "yaml").stdout:
        assert time.monotonic() < deadline, "the bed's failure switch never crashed the pods"
        time.sleep(2)

    env = {
        **os.environ,
        "OPERATE_MCP_DATA_DIR": str(settings.data_dir),
        "HOME": str(tmp_path),
        "OPERATE_MCP_KUBECONFIG": str(testbed.kubeconfig),
        "OPERATE_MCP_KUBECTL": testbed.kubectl,
        "OPERATE_MCP_KNOWLEDGE_ENABLED": "false",
    }
    watched = subprocess.run(
        [sys.executable, "-m", "operate_mcp", "watch", "--once"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert watched.returncode == 0, watched.stderr
    assert "late anomal" in watched.stdout and "failure_state (late)" in watched.stdout, watched.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "operate_mcp", "anomalies", "--format", "json", "-n", namespace],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    page = json.loads(listed.stdout)
    late = [a for a in page["anomalies"] if a["late"]]
    assert late and all(a["run_id"] == run.id for a in late)
    assert any(a["rule"] == "failure_state" and "CrashLoopBackOff" in a["actual"] for a in late)
