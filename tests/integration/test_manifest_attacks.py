"""Manifest attacks against the real control plane (security issue #9, finding 6): the objects kubectl
reads from stdin are the objects risk, drift and the approver see, and the server-side dry-run
(`-o name`) proves it for every `-f -` command. The scripted provider stands in for the hosted LLM."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from operate_mcp.agent.scripted import ScriptedProvider, answer
from operate_mcp.kube.runner import Kubectl
from operate_mcp.model.command import ProposedCommand
from operate_mcp.workflows import dryrun
from operate_mcp.workflows.dryrun import dry_run
from operate_mcp.workflows.operate import analyze
from support.manifests import bed_settings, deployment, deps_for, proposal

SECRET_VALUE = "c3VwZXItc2VjcmV0LXZhbHVlLTEyMzQ="


@pytest.fixture
def settings(testbed, tmp_path):
    return bed_settings(testbed, tmp_path, provider="scripted")


def binding(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": f"{namespace}-default-is-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}],
    }


def config_map(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}}


def secret(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": {"dsn": SECRET_VALUE},
    }


def apply(stdin: str, namespace: str) -> ProposedCommand:
    return ProposedCommand(argv=["kubectl", "apply", "-f", "-", "-n", namespace], stdin=stdin, description="apply")


async def test_a_json_stream_with_a_cluster_role_binding_is_seen_whole_and_critical(testbed, namespace, settings):
    # `{crb}{deployment}`: PyYAML could not read it, so risk saw nothing and came out medium.
    stdin = json.dumps(binding(namespace)) + json.dumps(yaml.safe_load(deployment("web", namespace)))
    cmd = apply(stdin, namespace).model_dump()
    deps = deps_for(settings, ScriptedProvider([answer(proposal("grant and deploy web", [cmd]))]))
    session = await analyze(deps, "deploy web", caller="alice", triggered_by="test")
    p = session.proposal
    seen = {(o.kind, o.name) for o in p.observed_objects}
    assert {("ClusterRoleBinding", f"{namespace}-default-is-admin"), ("Deployment", "web")} <= seen, seen
    assert p.risk.tier.value == "critical", p.risk.reasons
    result = p.commands[0].dry_run
    assert result is not None and result.ok, result
    assert result.argv[-3:] == ["--dry-run=server", "-o", "name"]
    assert sorted(result.output.splitlines()) == [
        f"clusterrolebinding.rbac.authorization.k8s.io/{namespace}-default-is-admin",
        "deployment.apps/web",
    ]
    assert testbed.kubectl_run("get", "clusterrolebinding", f"{namespace}-default-is-admin", check=False).returncode


def test_an_honest_dry_run_reports_each_object_and_never_its_data(testbed, namespace, settings):
    stdin = json.dumps(config_map("settings", namespace)) + "\n" + json.dumps(secret("db", namespace))
    result = dry_run(Kubectl(settings), apply(stdin, namespace), 1)
    assert result.ok, result.error
    assert result.output.splitlines() == ["configmap/settings", "secret/db"]
    assert SECRET_VALUE not in result.model_dump_json()


def test_the_dry_run_fails_when_kubectl_applies_a_document_the_parser_dropped(
    testbed, namespace, settings, monkeypatch
):
    # The old parser dropped documents it could not read; should any reader drop one again, the
    # objects the API server reports no longer match what was reviewed, and the dry-run fails.
    real = dryrun.parse_manifests
    monkeypatch.setattr(dryrun, "parse_manifests", lambda text: real(text)[:1])
    stdin = json.dumps(config_map("decoy", namespace)) + json.dumps(binding(namespace))
    result = dry_run(Kubectl(settings), apply(stdin, namespace), 1)
    assert not result.ok
    assert f"it reported clusterrolebinding.rbac.authorization.k8s.io/{namespace}-default-is-admin" in result.error


def test_a_json_object_continued_as_yaml_is_refused_though_kubectl_applies_both(testbed, namespace, settings):
    stdin = json.dumps(config_map("decoy", namespace)) + "\n" + yaml.safe_dump(secret("hidden", namespace))
    seen_by_kubectl = testbed.kubectl_run("apply", "-f", "-", "--dry-run=server", "-o", "name", stdin=stdin)
    assert seen_by_kubectl.stdout.split() == ["configmap/decoy", "secret/hidden"]  # kubectl 1.34 reads both
    result = dry_run(Kubectl(settings), apply(stdin, namespace), 1)
    assert not result.ok and "document 2 (line 2) of the manifest is not valid JSON" in result.error
