"""Secret values never reach the model through the read tools or the dry runs, against a real API server."""

from __future__ import annotations

import base64
import json

import pytest

from operate_mcp.config import Settings
from operate_mcp.kube.runner import Kubectl
from operate_mcp.kube.tools import ToolBox
from operate_mcp.model.command import ProposedCommand
from operate_mcp.workflows.dryrun import dry_run

COUNT = 150


def value(i: int) -> str:
    return f"secret-{i:03d}-" + "x" * 1_000


@pytest.fixture
def kubectl(testbed, tmp_path) -> Kubectl:
    return Kubectl(Settings(data_dir=tmp_path / "data", kubeconfig=testbed.kubeconfig, kubectl=testbed.kubectl))


@pytest.fixture
def many_secrets(testbed, namespace) -> str:
    items = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"s-{i:03d}", "namespace": namespace},
            "type": "Opaque",
            "stringData": {"password": value(i)},
        }
        for i in range(COUNT)
    ]
    testbed.kubectl_run("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    return namespace


def assert_no_values(text: str) -> None:
    for i in range(COUNT):
        assert value(i) not in text
        assert base64.b64encode(value(i).encode()).decode()[:24] not in text


def test_kube_get_of_many_secrets_shows_names_and_keys_never_values(kubectl, many_secrets) -> None:
    text, call = ToolBox(kubectl).call("kube_get", {"resource": "secrets", "namespace": many_secrets})
    assert call.ok
    assert_no_values(text)
    assert "s-000" in text and "password" in text and "[REDACTED]" in text


@pytest.mark.parametrize("output", ["json", "yaml", "table"])
def test_kube_get_of_many_secrets_in_every_output_hides_values(kubectl, many_secrets, output) -> None:
    text, _ = ToolBox(kubectl).call("kube_get", {"resource": "secret", "namespace": many_secrets, "output": output})
    assert_no_values(text)


def test_dry_run_of_a_mutating_command_with_output_is_refused(kubectl, many_secrets) -> None:
    argv = ["kubectl", "annotate", "secret", "s-001", "-n", many_secrets, "note=y", "-o", "json"]
    result = dry_run(kubectl, ProposedCommand(argv=argv, description="x"), 1)
    assert not result.ok and "read with kubectl get" in result.error
    assert_no_values(result.model_dump_json())


def test_dry_run_of_a_mutating_command_prints_its_result_line_only(kubectl, many_secrets) -> None:
    argv = ["kubectl", "annotate", "secret", "s-001", "-n", many_secrets, "note=y"]
    result = dry_run(kubectl, ProposedCommand(argv=argv, description="x"), 1)
    assert result.ok, result.error
    assert result.output == "secret/s-001"
    assert_no_values(result.model_dump_json())
