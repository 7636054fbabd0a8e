"""The cluster preflight on the test bed: a view-only identity is told it cannot dry-run before any model
call, an identity that may edit passes, bad credentials are named, and a pass is cached.

The identities are real ServiceAccounts with tokens from `kubectl create token`, made by the test with the
bed's admin kubeconfig (never by product code).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from operate_mcp.agent.scripted import ScriptedProvider, answer
from operate_mcp.kube.preflight import NotAuthorized, preflight
from operate_mcp.kube.runner import CommandResult, Kubectl
from operate_mcp.workflows.operate import analyze
from support.manifests import bed_settings, deps_for

NOTHING = {"analysis": "nothing to do", "commands": []}


def identity_kubeconfig(testbed, namespace: str, path: Path, *, role: str | None, token: str | None = None) -> Path:
    """A kubeconfig for a new ServiceAccount in `namespace` bound to the ClusterRole `role` there."""
    account = f"sa-{role or 'none'}"
    if token is None:
        testbed.kubectl_run("create", "serviceaccount", account, "-n", namespace)
        if role is not None:
            testbed.kubectl_run(
                "create", "rolebinding", account, f"--clusterrole={role}",
                f"--serviceaccount={namespace}:{account}", "-n", namespace,
            )
        token = testbed.kubectl_run("create", "token", account, "-n", namespace).stdout.strip()
    admin = json.loads(testbed.kubectl_run("config", "view", "--minify", "--raw", "-o", "json").stdout)
    cluster = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "bed", "cluster": cluster}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {"cluster": "bed", "user": account, "namespace": namespace}}],
        "current-context": account,
    }
    path.write_text(json.dumps(config))
    return path


async def test_a_view_only_identity_cannot_dry_run_and_no_model_is_called(testbed, namespace, tmp_path):
    config = identity_kubeconfig(testbed, namespace, tmp_path / "viewer.kubeconfig", role="view")
    provider = ScriptedProvider([answer(NOTHING)] * 30)
    deps = deps_for(bed_settings(testbed, tmp_path, kubeconfig=config, knowledge_enabled=False), provider)
    with pytest.raises(NotAuthorized) as raised:
        await analyze(deps, "scale api to 3", caller="alice", triggered_by="test")
    message = str(raised.value)
    assert f"this identity cannot dry-run changes (patch/create) in namespace {namespace}" in message
    assert str(config) in message and "sa-view" in message and "https://127.0.0.1:" in message
    assert provider.calls == []


def test_an_identity_that_may_edit_passes(testbed, namespace, tmp_path):
    config = identity_kubeconfig(testbed, namespace, tmp_path / "editor.kubeconfig", role="edit")
    target = preflight(Kubectl(bed_settings(testbed, tmp_path, kubeconfig=config)))
    assert target.namespace == namespace and target.context == "sa-edit" and target.server.startswith("https://")


def test_a_token_the_cluster_rejects_is_named_as_unauthorized(testbed, namespace, tmp_path):
    config = identity_kubeconfig(testbed, namespace, tmp_path / "bad.kubeconfig", role=None, token="not-a-token")
    with pytest.raises(NotAuthorized, match=r"rejected the credentials: Unauthorized \(401\)"):
        preflight(Kubectl(bed_settings(testbed, tmp_path, kubeconfig=config)))


class CountingKubectl(Kubectl):
    """The real runner, counting the processes it starts."""

    runs = 0

    def run(self, argv, **kw) -> CommandResult:  # type: ignore[no-untyped-def, override]
        self.runs += 1
        return super().run(argv, **kw)


def test_the_happy_path_costs_two_kubectl_calls_and_is_then_cached(testbed, tmp_path):
    kubectl = CountingKubectl(bed_settings(testbed, tmp_path))
    now = [1_000_000.0]
    first = preflight(kubectl, clock=lambda: now[0])
    assert kubectl.runs == 2 and first.server.startswith("https://")
    now[0] += 30
    assert preflight(kubectl, clock=lambda: now[0]) == first and kubectl.runs == 2
    now[0] += 61
    preflight(kubectl, clock=lambda: now[0])
    assert kubectl.runs == 4
