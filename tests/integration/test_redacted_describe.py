"""The model's read tools never show a password in a URL or a Basic credential kept in a container's environment,
against a real API server (issue #10: the model's filter used to leave both intact)."""

from __future__ import annotations

import base64
import json

import pytest

from operate_mcp.config import Settings
from operate_mcp.kube.runner import Kubectl
from operate_mcp.kube.tools import ToolBox

PASSWORD = "hunter2"
BASIC = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()  # YWRtaW46aHVudGVyMg==


@pytest.fixture
def kubectl(testbed, tmp_path) -> Kubectl:
    return Kubectl(Settings(data_dir=tmp_path / "data", kubeconfig=testbed.kubeconfig, kubectl=testbed.kubectl))


@pytest.fixture
def web(testbed, namespace) -> str:
    """A Deployment whose container carries DATABASE_URL and AUTH in its environment, as people write them."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "nginx:1.27",
                            "env": [
                                {"name": "DATABASE_URL", "value": f"postgres://admin:{PASSWORD}@db:5432/app"},
                                {"name": "AUTH", "value": f"Basic {BASIC}"},
                                {"name": "LOG_LEVEL", "value": "info"},
                            ],
                        }
                    ]
                },
            },
        },
    }
    testbed.kubectl_run("apply", "-f", "-", stdin=json.dumps(deployment))
    return namespace


def assert_masked(text: str) -> None:
    assert PASSWORD not in text and BASIC not in text
    assert "DATABASE_URL" in text and "AUTH" in text, "the names stay, so the model sees what is configured"


def test_describe_of_the_deployment_masks_the_url_password_and_the_basic_credential(kubectl, web) -> None:
    text, call = ToolBox(kubectl).call("kube_describe", {"resource": "deployment", "name": "web", "namespace": web})
    assert call.ok, text
    assert_masked(text)
    assert "postgres://admin:[REDACTED]@db:5432/app" in text and "Basic [REDACTED]" in text
    assert "LOG_LEVEL:" in text and "info" in text


def test_describe_of_its_pods_by_selector_masks_them_too(testbed, kubectl, web) -> None:
    testbed.kubectl_run("rollout", "status", "deployment/web", "-n", web, "--timeout=60s", timeout=90)
    text, call = ToolBox(kubectl).call("kube_describe", {"resource": "pods", "selector": "app=web", "namespace": web})
    assert call.ok, text
    assert "Containers:" in text, "the pod is there to describe"
    assert_masked(text)


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_get_of_the_deployment_masks_them_in_every_output(kubectl, web, output) -> None:
    text, call = ToolBox(kubectl).call(
        "kube_get", {"resource": "deployment", "name": "web", "namespace": web, "output": output}
    )
    assert call.ok, text
    assert_masked(text)
    assert "nginx:1.27" in text
