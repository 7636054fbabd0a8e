"""Post-execution validation on the real control plane: the analyzers judge the touched workloads, and a
change that leaves pods crash-looping is not a success, even when the object exists and the rollout
completed. Crashes come from the bed's failure switch (docs/testbed.md)."""

from __future__ import annotations

import json
import textwrap
import threading

import pytest

from operate_mcp.agent.scripted import ScriptedProvider, answer
from operate_mcp.kube.runner import Kubectl
from operate_mcp.model.command import ProposedCommand
from operate_mcp.model.session import SessionStatus
from operate_mcp.workflows.execute import execute
from operate_mcp.workflows.operate import analyze
from operate_mcp.workflows.validate import deterministic_checks, validate_execution
from support.approvers import BOB, approve_signed, enrol
from support.manifests import bed_settings, deployment, deps_for, proposal

S = SessionStatus
CRASH = {"spec": {"template": {"metadata": {"labels": {"testbed.operate-mcp.dev/fail": "crashloop"}}}}}


@pytest.fixture
def settings(testbed, tmp_path):
    return bed_settings(testbed, tmp_path, provider="scripted", rollout_timeout_seconds=20)


@pytest.fixture
def bob(settings):
    return enrol(settings.approvers_dir, "bob", BOB)


def rolled_out(testbed, name, namespace, **kw):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment(name, namespace, **kw))
    testbed.kubectl_run("rollout", "status", f"deploy/{name}", "-n", namespace, "--timeout=60s")


async def run_approved(settings, bob, command, intent="change web"):
    """analyse (scripted model) -> signed approval -> execute, validation without a model."""
    deps = deps_for(settings, ScriptedProvider([answer(proposal(intent, [command]))]))
    session = await analyze(deps, intent, caller="alice", triggered_by="test")
    approve_signed(deps.sessions, session.id, settings, "bob", bob)
    deps.provider = None
    return await execute(deps, session.id, actor="alice")


def change(argv):
    return ProposedCommand(argv=argv, description="the change under validation")


def failing(session):
    return [c for c in session.validation.checks if not c.ok]


async def test_a_healthy_rollout_passes_with_its_pods_stable(testbed, namespace, settings, bob):
    rolled_out(testbed, "web", namespace)
    cmd = {"argv": ["kubectl", "set", "image", "deployment/web", "web=nginx:1.27.3", "-n", namespace],
           "description": "new image"}
    done = await run_approved(settings, bob, cmd)
    assert done.status is S.EXECUTED_SUCCESSFULLY, done.validation
    [health] = [c for c in done.validation.checks if c.name.startswith("health of")]
    assert health.ok and health.name == f"health of deployments/web in {namespace}"
    assert health.detail.startswith("2 pod(s) Ready for at least 5s")


async def test_a_crash_looping_pod_is_not_a_success_though_it_exists(testbed, namespace, settings, bob):
    """Before the analyzers, validation only asked whether the pod existed: this run was a success."""
    manifest = textwrap.dedent(f"""\
        apiVersion: v1
        kind: Pod
        metadata:
          name: worker
          namespace: {namespace}
          labels: {{testbed.operate-mcp.dev/fail: crashloop}}
        spec:
          containers: [{{name: worker, image: nginx:1.25.5}}]
        """)
    cmd = {"argv": ["kubectl", "apply", "-f", "-"], "stdin": manifest, "description": "start a worker pod"}
    done = await run_approved(settings, bob, cmd, intent="start a worker")
    assert done.status is S.EXECUTED_WITH_ERRORS, done.validation
    assert any(c.name == f"pods/worker in {namespace} exists" and c.ok for c in done.validation.checks)
    [crash] = failing(done)
    assert crash.name.startswith(f"Pod/worker in {namespace}: container worker is crash-looping: it exited with code 1")
    assert "[status] status.containerStatuses[worker]" in crash.detail


async def test_a_rollout_into_crash_looping_pods_fails_and_cites_the_crash(testbed, namespace, settings, bob):
    rolled_out(testbed, "web", namespace)
    cmd = {"argv": ["kubectl", "patch", "deployment", "web", "-n", namespace, "--type=merge", "-p",
                    json.dumps(CRASH)], "description": "the template gets the crash switch"}
    done = await run_approved(settings, bob, cmd)
    assert done.status is S.EXECUTED_WITH_ERRORS
    problems = failing(done)
    assert any(c.name == "rollout status deployments/web" for c in problems)
    crashes = [c for c in problems if c.name.startswith("Pod/web-") and "crash-looping" in c.name]
    assert crashes, problems
    assert "terminated.exitCode: 1" in crashes[0].detail
    record = (settings.data_dir / "decisions" / f"{done.id}.md").read_text()
    assert "crash-looping" in record


async def test_a_rollout_that_completes_but_leaves_pods_crash_looping_is_not_a_success(testbed, namespace,
                                                                                       settings):
    """The real-world case: without a readiness probe a container is Ready as it starts, the rollout
    completes, and the pods crash a moment later. The stable window catches it."""
    rolled_out(testbed, "web", namespace)
    argv = ["kubectl", "set", "image", "deployment/web", "web=nginx:1.27.3", "-n", namespace]
    testbed.kubectl_run(*argv[1:])

    def crash_once_rolled_out() -> None:
        testbed.kubectl_run("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
        testbed.kubectl_run("label", "pods", "-l", "app=web", "-n", namespace, "--overwrite",
                            "testbed.operate-mcp.dev/fail=crashloop")

    crasher = threading.Thread(target=crash_once_rolled_out)
    crasher.start()
    try:
        validation = await validate_execution(
            Kubectl(settings), None, intent="new image", commands=[change(argv)], outcomes=[],
            rollout_timeout=60, max_iterations=1, stable_seconds=10,
        )
    finally:
        crasher.join()
    checks = {c.name: c for c in validation.checks}
    assert checks["rollout status deployments/web"].ok, "the rollout did complete"
    assert not validation.ok
    assert any(("crash-looping" in c.name or "restarted during validation" in c.name) and not c.ok
               for c in validation.checks), validation.checks


def test_problems_elsewhere_in_the_namespace_are_not_this_changes(testbed, namespace, settings):
    rolled_out(testbed, "web", namespace)
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("other", namespace))
    testbed.kubectl_run("patch", "deployment", "other", "-n", namespace, "--type=merge", "-p", json.dumps(CRASH))
    argv = ["kubectl", "annotate", "deployment/web", "team=shop", "--overwrite", "-n", namespace]
    testbed.kubectl_run(*argv[1:])
    checks = deterministic_checks(Kubectl(settings), [change(argv)], 30, stable_seconds=1)
    assert all(c.ok for c in checks), checks
    assert not any("other" in c.name for c in checks)


def test_a_deleted_workload_is_only_checked_for_being_gone(testbed, namespace, settings):
    rolled_out(testbed, "web", namespace)
    argv = ["kubectl", "delete", "deployment", "web", "-n", namespace]
    testbed.kubectl_run(*argv[1:])
    checks = deterministic_checks(Kubectl(settings), [change(argv)], 30)
    assert [(c.name, c.ok) for c in checks] == [(f"deployments/web in {namespace} deleted", True)]


def test_a_workload_that_is_not_there_gets_no_health_verdict(testbed, namespace, settings):
    argv = ["kubectl", "scale", "deployment/ghost", "--replicas=2", "-n", namespace]
    checks = deterministic_checks(Kubectl(settings), [change(argv)], 5, stable_seconds=1)
    assert (f"deployments/ghost in {namespace} exists", False) in [(c.name, c.ok) for c in checks]
    assert not any(c.name.startswith("health of") for c in checks)
