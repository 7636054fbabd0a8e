"""deploy/rbac.yaml on the test bed: the example ServiceAccount analyses, dry-runs and executes in the namespace it
is bound to, reads everywhere, never reads Secrets and changes nothing elsewhere; a view-only identity is told it
cannot dry-run before any model call.

The ServiceAccount acts through a kubeconfig holding a token from `kubectl create token` (tests/support/
kube_identity.py); everything else is the product as a person runs it: an in-memory MCP client calling
`operate`, approval through elicitation, real kubectl and API server, the scripted provider as the model.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from mcp import Client
from mcp_types import ElicitResult

from operate_mcp.agent.scripted import ScriptedProvider, answer
from operate_mcp.kube.reader import reader_for
from operate_mcp.kube.runner import Kubectl
from operate_mcp.server import create_server
from operate_mcp.workflows.diagnose import diagnose
from support.kube_identity import service_account_kubeconfig
from support.manifests import bed_settings, deployment, proposal

RBAC = Path(__file__).resolve().parents[2] / "deploy" / "rbac.yaml"
ACCOUNT, ACCOUNT_NAMESPACE = "operate-mcp", "operate-mcp"


@pytest.fixture
def operator_config(testbed, namespace, tmp_path) -> Path:
    """deploy/rbac.yaml applied as documented, the operator role bound in `namespace` only."""
    testbed.kubectl_run("apply", "-f", str(RBAC))
    testbed.kubectl_run(
        "create", "rolebinding", "operate-mcp-operator", "-n", namespace,
        "--clusterrole=operate-mcp-operator", f"--serviceaccount={ACCOUNT_NAMESPACE}:{ACCOUNT}",
    )  # fmt: skip
    return service_account_kubeconfig(
        testbed, ACCOUNT, ACCOUNT_NAMESPACE, namespace, tmp_path / "operate-mcp.kubeconfig"
    )


def set_image(namespace: str) -> dict[str, object]:
    return {
        "argv": ["kubectl", "set", "image", "deployment/web", "web=nginx:1.27.3", "-n", namespace],
        "description": "new image",
    }


def image_of(testbed, namespace: str) -> str:
    return testbed.kubectl_run(
        "get", "deploy/web", "-n", namespace, "-o", "jsonpath={.spec.template.spec.containers[0].image}"
    ).stdout


async def accept(context, params) -> ElicitResult:
    return ElicitResult(action="accept", content={"approve": True, "justification": "rbac example"})


async def test_the_example_identity_analyses_and_executes_in_its_namespace(
    testbed, namespace, tmp_path, operator_config
):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    settings = bed_settings(
        testbed, tmp_path, kubeconfig=operator_config, provider="scripted", knowledge_enabled=False,
        rollout_timeout_seconds=60,
    )  # fmt: skip
    provider = ScriptedProvider([answer(proposal("update web", [set_image(namespace)]))])
    server = create_server(settings, provider_factory=lambda s: provider, caller="alice")
    async with Client(server, elicitation_callback=accept) as client:
        proposed = await client.call_tool("operate", {"intent": "update web to nginx 1.27"})
        assert not proposed.is_error, proposed.content
        session = proposed.structured_content["session_id"]
        done = await client.call_tool("operate", {"sessionId": session, "executeChoice": 1})
    assert not done.is_error, done.content
    assert done.structured_content["status"] == "executed_successfully"
    assert image_of(testbed, namespace) == "nginx:1.27.3"


def test_the_example_identity_diagnoses_everything_but_secrets(testbed, namespace, tmp_path, operator_config):
    """Without list on Secrets the two name checks (ingress TLS, imagePullSecrets) are skipped, and said so."""
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    kubectl = Kubectl(bed_settings(testbed, tmp_path, kubeconfig=operator_config))
    admin = Kubectl(bed_settings(testbed, tmp_path / "admin"))
    for scope in (namespace, None):
        result = diagnose(reader_for(kubectl), namespace=scope)
        assert result.not_read and all("secrets" in why for why in result.not_read), result.not_read
        assert result.analyzers_run == diagnose(reader_for(admin), namespace=scope).analyzers_run
        assert {"pod", "deployment", "ingress", "node", "validatingwebhook"} <= set(result.analyzers_run)


def test_the_example_identity_reads_no_secret_and_changes_nothing_elsewhere(
    testbed, namespace, tmp_path, operator_config
):
    kubectl = Kubectl(bed_settings(testbed, tmp_path, kubeconfig=operator_config))
    testbed.kubectl_run("create", "secret", "generic", "db", "-n", namespace, "--from-literal=password=hunter2")
    read = kubectl.run(["kubectl", "get", "secret", "db", "-n", namespace, "-o", "json"])
    assert not read.ok and "Forbidden" in read.stderr and "hunter2" not in read.stdout
    other = f"t-{uuid.uuid4().hex[:8]}"
    testbed.kubectl_run("create", "namespace", other)
    try:
        testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", other))
        elsewhere = kubectl.run(["kubectl", "scale", "deployment/web", "--replicas=3", "-n", other, "--dry-run=server"])
        assert not elsewhere.ok and "Forbidden" in elsewhere.stderr
        seen = kubectl.run(["kubectl", "get", "deployment/web", "-n", other, "-o", "name"])
        assert seen.ok and seen.stdout.strip() == "deployment.apps/web"  # reading is cluster-wide
    finally:
        testbed.kubectl_run("delete", "namespace", other, "--wait=false", check=False)
    for verb, resource in (("update", "clusterroles"), ("create", "rolebindings"), ("patch", "nodes")):
        can = kubectl.run(["kubectl", "auth", "can-i", verb, resource, "-n", namespace])
        assert can.stdout.strip() == "no", (verb, resource)


async def test_a_view_only_identity_is_told_it_cannot_dry_run_before_any_model_call(testbed, namespace, tmp_path):
    testbed.kubectl_run("create", "serviceaccount", "viewer", "-n", namespace)
    testbed.kubectl_run(
        "create", "rolebinding", "viewer", "--clusterrole=view", f"--serviceaccount={namespace}:viewer", "-n", namespace
    )
    config = service_account_kubeconfig(testbed, "viewer", namespace, namespace, tmp_path / "viewer.kubeconfig")
    settings = bed_settings(testbed, tmp_path, kubeconfig=config, provider="scripted", knowledge_enabled=False)
    provider = ScriptedProvider([answer(proposal("update web", [set_image(namespace)]))] * 5)
    async with Client(create_server(settings, provider_factory=lambda s: provider, caller="alice")) as client:
        result = await client.call_tool("operate", {"intent": "update web to nginx 1.27"})
    assert result.is_error
    message = result.content[0].text
    assert f"this identity cannot dry-run changes (patch/create) in namespace {namespace}" in message
    assert str(config) in message and "bind it a Role granting patch and create" in message
    assert provider.calls == []
