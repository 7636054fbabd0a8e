"""Knowledge against the real control plane: scan finds KEDA and Velero from their CRDs, the analysis
embeds them with the KEDA pattern, and policies block a proposal in code whatever the model says."""

from __future__ import annotations

import argparse
import json
import textwrap
from collections.abc import Iterator

import pytest

from operate_mcp.agent.scripted import ScriptedProvider, answer, use
from operate_mcp.config import Settings
from operate_mcp.knowledge.base import KnowledgeBase
from operate_mcp.knowledge.cli import add_knowledge_parsers
from operate_mcp.kube.runner import Kubectl
from operate_mcp.workflows.operate import OperateDeps, analyze
from operate_mcp.workflows.response import to_response
from operate_mcp.workflows.sessions import SessionStore
from support.manifests import deployment, proposal


def crd(group: str, kind: str, plural: str, *, version: str) -> str:
    """A minimal valid CRD with the real group and names; the schema accepts any spec."""
    return textwrap.dedent(f"""\
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata: {{name: {plural}.{group}}}
        spec:
          group: {group}
          scope: Namespaced
          names: {{kind: {kind}, listKind: {kind}List, plural: {plural}, singular: {kind.lower()}}}
          versions:
          - name: {version}
            served: true
            storage: true
            schema:
              openAPIV3Schema:
                type: object
                properties:
                  spec: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
                  status: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
        """)


CRDS = [
    ("keda.sh", "ScaledObject", "scaledobjects", "v1alpha1"),
    ("keda.sh", "TriggerAuthentication", "triggerauthentications", "v1alpha1"),
    ("velero.io", "Backup", "backups", "v1"),
    ("velero.io", "Schedule", "schedules", "v1"),
]


@pytest.fixture(scope="module")
def addon_crds(testbed) -> Iterator[list[str]]:
    """KEDA's and Velero's CRDs (the manifests only, no operators); cluster-scoped, so removed afterwards."""
    names = [f"{plural}.{group}" for group, _, plural, _ in CRDS]
    try:
        for group, kind, plural, version in CRDS:
            testbed.kubectl_run("apply", "-f", "-", stdin=crd(group, kind, plural, version=version))
        testbed.kubectl_run("wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{n}" for n in names])
        yield names
    finally:
        testbed.kubectl_run("delete", "crd", *names, "--ignore-not-found", "--wait=false", check=False)


@pytest.fixture
def settings(testbed, tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", kubeconfig=testbed.kubeconfig, kubectl=testbed.kubectl,
                    provider="scripted")


@pytest.fixture
def kb(settings) -> KnowledgeBase:
    return KnowledgeBase(settings, kubectl=Kubectl(settings))


def deps(settings: Settings, provider: ScriptedProvider, kb: KnowledgeBase) -> OperateDeps:
    return OperateDeps(settings=settings, kubectl=Kubectl(settings), provider=provider,
                       sessions=SessionStore(settings.data_dir, settings.session_ttl_seconds), knowledge=kb)


def scaled_object(name: str, namespace: str, max_replicas: int = 20) -> str:
    return textwrap.dedent(f"""\
        apiVersion: keda.sh/v1alpha1
        kind: ScaledObject
        metadata: {{name: {name}, namespace: {namespace}}}
        spec:
          scaleTargetRef: {{name: {name}}}
          minReplicaCount: 2
          maxReplicaCount: {max_replicas}
          triggers:
          - type: cpu
            metricType: Utilization
            metadata: {{value: "70"}}
        """)


def test_scan_finds_keda_and_velero_and_a_rescan_changes_nothing(addon_crds, kb) -> None:
    steps: list[tuple[int, int, str]] = []
    report = kb.scan(progress=lambda step, total, message: steps.append((step, total, message)))
    found = {c.id: c for c in report.capabilities}
    assert "keda" in found and "velero" in found, sorted(found)
    assert {"scaledobjects.keda.sh", "triggerauthentications.keda.sh"} <= set(found["keda"].resources)
    assert {"backups.velero.io", "schedules.velero.io"} <= set(found["velero"].resources)
    assert {"keda", "velero"} <= set(report.added)
    assert [s[0] for s in steps] == [1, 2, 3, 4] and all(s[1] == 4 for s in steps)
    assert {c.id for c in kb.capabilities()} == set(found)
    assert kb.last_scan() is not None

    again = kb.scan()
    assert again.added == [] and again.changed == [] and again.removed == []
    assert {"keda", "velero"} <= set(again.unchanged)


def test_scan_from_the_cli_prints_the_capabilities(addon_crds, settings, monkeypatch, capsys) -> None:
    monkeypatch.setenv("OPERATE_MCP_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("OPERATE_MCP_KUBECONFIG", str(settings.kubeconfig))
    monkeypatch.setenv("OPERATE_MCP_KUBECTL", settings.kubectl)
    parser = argparse.ArgumentParser()
    add_knowledge_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["scan", "--format", "json"])
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"keda", "velero"} <= {c["id"] for c in report["capabilities"]}


async def test_autoscaling_intent_embeds_keda_and_the_keda_pattern(addon_crds, testbed, namespace, settings,
                                                                   kb) -> None:
    kb.scan()
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("api", namespace))
    apply = {"argv": ["kubectl", "apply", "-f", "-", "-n", namespace], "stdin": scaled_object("api", namespace),
             "description": "autoscale api with KEDA on CPU"}
    draft = proposal("KEDA is installed; scale api with a ScaledObject", [apply],
                     [{"argv": ["kubectl", "delete", "scaledobject", "api", "-n", namespace],
                       "description": "remove the ScaledObject"}])
    draft |= {"patterns_applied": ["keda-autoscaling"], "capabilities_used": ["keda"]}
    provider = ScriptedProvider([
        use("kube_api_resources", {"api_group": "keda.sh"}),
        answer(draft),
    ])
    session = await analyze(deps(settings, provider, kb), "enable autoscaling for api", caller="alice",
                            triggered_by="test")

    sent = provider.calls[0]["messages"][0]["content"]
    assert "<context>" in sent
    assert "KEDA [capability keda]" in sent
    assert "[pattern keda-autoscaling]" in sent and "ScaledObject" in sent
    assert "Not applicable here" not in sent
    used = {(r.kind, r.id) for r in session.proposal.context_used}
    assert {("capability", "keda"), ("pattern", "keda-autoscaling"), ("pattern", "hpa-autoscaling")} <= used
    p = session.proposal
    assert p.commands[0].dry_run is not None and p.commands[0].dry_run.ok, p.commands[0].dry_run
    assert not p.blocked and all(c.passed for c in p.policies_checked), p.policies_checked


@pytest.mark.parametrize(("intent", "command", "policy_id"), [
    ("scale api to 500", ["kubectl", "scale", "deployment/api", "--replicas=500"], "scaling-constraints"),
    ("run the newest nginx", ["kubectl", "set", "image", "deployment/api", "api=nginx:latest"], "no-latest-tag"),
])
async def test_a_policy_violation_is_blocked_in_code_even_when_the_model_ignores_it(
    testbed, namespace, settings, kb, intent, command, policy_id
) -> None:
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("api", namespace))
    argv = [*command, "-n", namespace]
    provider = ScriptedProvider([answer(proposal("as asked", [{"argv": argv, "description": intent}]))])
    session = await analyze(deps(settings, provider, kb), intent, caller="alice", triggered_by="test")

    p = session.proposal
    assert p.commands[0].dry_run is not None and p.commands[0].dry_run.ok  # the API server would accept it
    assert p.blocked
    failed = [c for c in p.policies_checked if not c.passed]
    assert [c.policy_id for c in failed] == [policy_id] and failed[0].effect == "block"
    response = to_response(session)
    assert response.blocked and policy_id in response.model_dump_json()
    assert f"blocked by policy {policy_id}" in response.model_dump_json()


async def test_a_manifest_with_500_replicas_is_blocked(testbed, namespace, settings, kb) -> None:
    manifest = deployment("big", namespace, replicas=500)
    provider = ScriptedProvider([answer(proposal("create big", [
        {"argv": ["kubectl", "apply", "-f", "-", "-n", namespace], "stdin": manifest, "description": "create"}]))])
    session = await analyze(deps(settings, provider, kb), "create big with 500 replicas", caller="alice",
                            triggered_by="test")
    assert session.proposal.blocked
    check = next(c for c in session.proposal.policies_checked if c.policy_id == "scaling-constraints")
    assert not check.passed and "replicas 500 exceeds the maximum of 100" in check.message
