"""`remediate` on the real control plane: the analyzers read the namespace, the scripted provider (the
stand-in for the hosted LLM, unreachable here) explains and proposes a fix, code checks every line it
cites, and the fix goes through approval and exact execution; the analyzers then confirm it worked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import pytest
from mcp import Client
from mcp_types import ElicitResult

from operate_mcp.agent.provider import ModelTurn
from operate_mcp.agent.scripted import ScriptedProvider, answer, last_user_text, use
from operate_mcp.audit.log import AuditLog
from operate_mcp.server import create_server
from operate_mcp.workflows.remediate import remediate
from support.manifests import bed_settings, deployment, deps_for


@pytest.fixture
def settings(testbed, tmp_path):
    return bed_settings(testbed, tmp_path, provider="scripted")


def service(name: str, namespace: str, selector: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: v1
        kind: Service
        metadata: {{name: {name}, namespace: {namespace}}}
        spec:
          selector: {{app: {selector}}}
          ports: [{{name: http, port: 80, targetPort: 80}}]
        """)


def line_with(text: str, needle: str) -> str:
    """The first line of what the model was shown that contains `needle`, as a model would quote it."""
    for line in text.splitlines():
        if needle in line:
            return line.split("] ", 1)[-1].strip() if line.lstrip().startswith("[") else line.strip()
    raise AssertionError(f"{needle!r} not in what the model was shown:\n{text[:3000]}")


def diagnosis(
    fix: list[str], cite: list[tuple[str, str]], *, root_cause: str, rollback: list[str] | None = None
) -> Callable[[list[dict[str, Any]]], ModelTurn]:
    """The model's answer, citing lines it was shown: (source, needle) picks the first line with needle
    from the findings (the first message) or, for source "tool", from the last tool result."""

    def step(messages: list[dict[str, Any]]) -> ModelTurn:
        findings = messages[0]["content"]
        evidence = [
            {"source": source, "text": line_with(last_user_text(messages) if source == "tool" else findings, needle)}
            for source, needle in cite
        ]
        return answer(
            {
                "status": "active",
                "root_cause": root_cause,
                "confidence": "high",
                "evidence": evidence,
                "analysis": root_cause,
                "commands": [{"argv": fix, "description": "the fix"}],
                "rollback_commands": [{"argv": rollback, "description": "undo"}] if rollback else [],
            }
        )

    return step


async def accept(context, params):
    return ElicitResult(action="accept", content={"approve": True, "justification": "fix it"})


async def run_over_mcp(settings, provider, arguments: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """remediate, then approve (the person says yes) and run the fix, over one MCP session."""
    server = create_server(settings, provider_factory=lambda s: provider, caller="alice")
    async with Client(server, elicitation_callback=accept) as client:
        found = await client.call_tool("remediate", arguments)
        assert not found.is_error, found.content
        diagnosed = found.structured_content
        done = await client.call_tool("remediate", {"sessionId": diagnosed["session_id"], "executeChoice": 1})
        assert not done.is_error, done.content
    return diagnosed, done.structured_content


def rollout(testbed, namespace: str, name: str) -> None:
    testbed.kubectl_run("rollout", "status", f"deployment/{name}", "-n", namespace, "--timeout=90s", timeout=100)


async def test_a_service_selector_mismatch_is_diagnosed_fixed_and_confirmed_gone_over_mcp(testbed, namespace, settings):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    testbed.kubectl_run("apply", "-f", "-", stdin=service("web", namespace, "web-v2"))
    rollout(testbed, namespace, "web")
    fix = ["kubectl", "patch", "service", "web", "-n", namespace, "-p", '{"spec":{"selector":{"app":"web"}}}']
    back = ["kubectl", "patch", "service", "web", "-n", namespace, "-p", '{"spec":{"selector":{"app":"web-v2"}}}']
    provider = ScriptedProvider(
        [
            use("kube_get", {"resource": "service", "name": "web", "namespace": namespace, "output": "json"}),
            diagnosis(
                fix,
                [("spec", "spec.selector:"), ("tool", '"app": "web-v2"')],
                root_cause="Service web selects app=web-v2; the pods are labelled app=web",
                rollback=back,
            ),
        ]
    )
    diagnosed, done = await run_over_mcp(
        settings, provider, {"symptom": "the web service returns nothing", "namespace": namespace}
    )

    assert diagnosed["status"] == "active" and diagnosed["model"] == "scripted"
    [svc] = [f for f in diagnosed["findings"] if f["kind"] == "Service"]
    assert svc["name"] == "web" and svc["severity"] == "error"
    assert [e["origin"] for e in diagnosed["evidence"]] == ["analyzer", "tool:kube_get"]
    assert diagnosed["evidence"][0]["text"] == 'spec.selector: {"app":"web-v2"}'
    assert diagnosed["session"]["commands"][0]["command"]["argv"] == fix
    assert diagnosed["session"]["commands"][0]["dry_run"]["ok"]

    assert done["session"]["status"] == "executed_successfully", done["session"]["validation"]
    assert [(c["subject"], c["gone"]) for c in done["rechecked"]] == [(f"Service/web in {namespace}", True)]
    selector = testbed.kubectl_run("get", "service", "web", "-n", namespace, "-o", "jsonpath={.spec.selector.app}")
    assert selector.stdout == "web"


def unschedulable(namespace: str, how: str) -> str:
    """A Deployment the real scheduler cannot place: requests larger than any node, or a nodeSelector
    no node matches."""
    manifest = deployment("api", namespace, replicas=1)
    if how == "requests":
        return manifest.replace("cpu: 100m", "cpu: '64'")
    return manifest.replace("      containers:", "      nodeSelector: {disk: nvme-only}\n      containers:")


def apply_unschedulable(testbed, namespace: str, how: str) -> None:
    """Applied, and waited for until the scheduler has said no (the analyzers judge what is there now)."""
    testbed.kubectl_run("apply", "-f", "-", stdin=unschedulable(namespace, how))
    testbed.kubectl_run(
        "wait",
        "pod",
        "-l",
        "app=api",
        "-n",
        namespace,
        "--for=condition=PodScheduled=false",
        "--timeout=60s",
        timeout=70,
    )


@pytest.mark.parametrize(
    ("how", "scheduler_says", "fix"),
    [
        ("requests", "Insufficient cpu", ["set", "resources", "deployment/api", "-c", "api", "--requests=cpu=100m"]),
        (
            "node-selector",
            "didn't match Pod's node affinity/selector",
            [
                "patch",
                "deployment",
                "api",
                "--type=json",
                "-p",
                '[{"op":"remove","path":"/spec/template/spec/nodeSelector"}]',
            ],
        ),
    ],
)
async def test_an_unschedulable_workload_is_fixed_through_approval_and_the_analyzers_confirm_it(
    testbed, namespace, settings, how, scheduler_says, fix
):
    apply_unschedulable(testbed, namespace, how)
    fix = ["kubectl", *fix, "-n", namespace]
    provider = ScriptedProvider(
        [
            use(
                "kube_get",
                {
                    "resource": "deployment",
                    "name": "api",
                    "namespace": namespace,
                    "output": "json",
                    "fields": ["spec.template.spec"],
                },
            ),
            diagnosis(fix, [("event", scheduler_says)], root_cause=f"the scheduler says: {scheduler_says}"),
        ]
    )
    diagnosed, done = await run_over_mcp(
        settings, provider, {"symptom": "api never starts", "namespace": namespace, "object": "deployment/api"}
    )
    assert diagnosed["findings"][0]["name"].startswith("api")  # the object's findings first
    assert scheduler_says in diagnosed["evidence"][0]["text"]
    assert done["session"]["status"] == "executed_successfully", done["session"]["validation"]
    assert done["rechecked"] and all(c["gone"] for c in done["rechecked"]), done["rechecked"]
    assert {c["subject"].split("/")[0] for c in done["rechecked"]} >= {"Pod", "Deployment"}


async def test_evidence_the_model_never_read_is_refused_by_code_and_sent_back(testbed, namespace, settings):
    apply_unschedulable(testbed, namespace, "requests")
    fix = ["kubectl", "set", "resources", "deployment/api", "-c", "api", "--requests=cpu=100m", "-n", namespace]
    invented = "Readiness probe failed: HTTP probe failed with statuscode: 503"
    first = {
        "status": "active",
        "root_cause": "the readiness probe fails",
        "confidence": "high",
        "evidence": [{"source": "event", "text": invented}],
        "analysis": "made up",
        "commands": [{"argv": fix, "description": "the fix"}],
    }
    provider = ScriptedProvider(
        [answer(first), diagnosis(fix, [("event", "Insufficient cpu")], root_cause="requests too large")]
    )
    result = await remediate(
        deps_for(settings, provider),
        "api never starts",
        namespace=namespace,
        target=None,
        caller="alice",
        triggered_by="test",
    )
    sent_back = last_user_text(provider.calls[1]["messages"])
    assert "appears in nothing you read" in sent_back and invented[:40] in sent_back
    assert invented not in [e.text for e in result.evidence]
    assert result.evidence and all(e.origin == "analyzer" for e in result.evidence)


async def test_without_a_model_remediate_returns_the_analyzers_findings_and_says_so(testbed, namespace, settings):
    apply_unschedulable(testbed, namespace, "requests")
    result = await remediate(
        deps_for(settings, None),
        "api never starts",
        namespace=namespace,
        target="api",
        caller="alice",
        triggered_by="test",
    )
    assert result.model == "none" and "no model is configured" in result.note
    assert result.status == "active" and result.session_id is None
    assert any("Insufficient cpu" in e.text for e in result.evidence)
    assert {e.origin for e in result.evidence} == {"analyzer"}


def run_cli(testbed, tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "KUBECONFIG": testbed.kubeconfig,
        "OPERATE_MCP_KUBECTL": testbed.kubectl,
        "OPERATE_MCP_DATA_DIR": str(tmp_path / "data"),
    }
    return subprocess.run(
        [sys.executable, "-m", "operate_mcp", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_diagnose_cli_prints_the_documented_json_and_exits_1_on_an_error(testbed, namespace, tmp_path):
    apply_unschedulable(testbed, namespace, "requests")
    proc = run_cli(testbed, tmp_path, "diagnose", "--namespace", namespace, "--format", "json")
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert {"findings", "analyzers_run", "duration_s"} <= set(out)
    assert {"pod", "deployment", "service", "logs"} <= set(out["analyzers_run"])
    pods = [f for f in out["findings"] if f["kind"] == "Pod"]
    assert pods and set(pods[0]) == {"kind", "name", "namespace", "problem", "severity", "evidence"}
    assert pods[0]["namespace"] == namespace and pods[0]["severity"] == "error"
    assert any(e["source"] == "event" and "Insufficient cpu" in e["text"] for e in pods[0]["evidence"])


def test_diagnose_cli_of_a_healthy_namespace_prints_nothing_wrong_and_exits_0(testbed, namespace, tmp_path):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace, replicas=3))
    rollout(testbed, namespace, "web")
    proc = run_cli(testbed, tmp_path, "diagnose", "-n", namespace)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"diagnosis of {namespace}: 0 findings")


def selector_fix_provider(namespace: str) -> ScriptedProvider:
    fix = ["kubectl", "patch", "service", "web", "-n", namespace, "-p", '{"spec":{"selector":{"app":"web"}}}']
    return ScriptedProvider([diagnosis(fix, [("spec", "spec.selector:")], root_cause="the selector matches no pod")])


async def test_within_the_operators_limits_a_fix_runs_without_a_person(testbed, namespace, tmp_path):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    testbed.kubectl_run("apply", "-f", "-", stdin=service("web", namespace, "web-v2"))
    rollout(testbed, namespace, "web")
    settings = bed_settings(testbed, tmp_path, remediate_auto_max_tier="medium", remediate_auto_namespaces=[namespace])
    deps = deps_for(settings, selector_fix_provider(namespace), audit=AuditLog(settings.data_dir))
    result = await remediate(
        deps, "web returns nothing", namespace=namespace, target=None, caller="alice", triggered_by="test"
    )
    assert result.session is not None and result.session.status.value == "executed_successfully", result.session
    assert [a.method for a in result.session.approvals] == ["auto(remediate)"]
    assert result.rechecked and all(c.gone for c in result.rechecked)


async def test_outside_the_operators_namespaces_the_fix_waits_for_a_person(testbed, namespace, tmp_path):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    testbed.kubectl_run("apply", "-f", "-", stdin=service("web", namespace, "web-v2"))
    rollout(testbed, namespace, "web")
    settings = bed_settings(testbed, tmp_path, remediate_auto_max_tier="medium", remediate_auto_namespaces=["other"])
    deps = deps_for(settings, selector_fix_provider(namespace), audit=AuditLog(settings.data_dir))
    result = await remediate(
        deps, "web returns nothing", namespace=namespace, target=None, caller="alice", triggered_by="test"
    )
    assert result.session is not None
    assert result.session.status.value == "proposed" and result.session.approvals == []
    selector = testbed.kubectl_run("get", "service", "web", "-n", namespace, "-o", "jsonpath={.spec.selector.app}")
    assert selector.stdout == "web-v2"
