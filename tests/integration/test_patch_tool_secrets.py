"""The model's dry-run tools cannot read a Secret through the API server's error messages, on a real API server.

The attack: a JSON patch that copies /data/KEY into a field the server validates (/type is immutable,
/metadata/name must match the URL) makes the server quote the value in its error, which kubectl prints
and the tool would hand to the model.
"""

from __future__ import annotations

import base64
import json

import pytest

from operate_mcp.kube.runner import Kubectl
from operate_mcp.kube.tools import ToolBox
from support.manifests import bed_settings, deployment

VALUE = "Tr0ub4dor-and-3-horses"
ENCODED = base64.b64encode(VALUE.encode()).decode()


@pytest.fixture
def toolbox(testbed, tmp_path) -> ToolBox:
    return ToolBox(Kubectl(bed_settings(testbed, tmp_path)))


@pytest.fixture
def secret(testbed, namespace) -> str:
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": namespace},
        "type": "Opaque",
        "stringData": {"password": VALUE},
    }
    testbed.kubectl_run("apply", "-f", "-", stdin=json.dumps(manifest))
    return namespace


def assert_no_value(text: str) -> None:
    assert VALUE not in text
    assert ENCODED not in text
    assert ENCODED.rstrip("=")[:16] not in text


@pytest.mark.parametrize("target", ["/type", "/metadata/name"])
@pytest.mark.parametrize("op", ["copy", "move"])
@pytest.mark.parametrize("resource", ["secret", "secrets.v1", "deployments"])
def test_copying_secret_data_into_a_validated_field_never_shows_the_value(toolbox, secret, target, op, resource):
    attack = json.dumps([{"op": op, "from": "/data/password", "path": target}])
    text, call = toolbox.call(
        "dry_run_patch",
        {"resource": resource, "name": "db", "namespace": secret, "patch": attack, "patch_type": "json"},
    )
    assert_no_value(text)
    assert call.is_error and call.argv is None, "the attack must not reach the API server"
    assert "refused" in text


def test_a_test_operation_cannot_confirm_a_guessed_value(toolbox, secret):
    guess = json.dumps([{"op": "test", "path": "/data/password", "value": ENCODED}])
    text, call = toolbox.call(
        "dry_run_patch", {"resource": "secret", "name": "db", "namespace": secret, "patch": guess, "patch_type": "json"}
    )
    assert call.argv is None and "refused" in text


def test_a_strategic_merge_patch_of_the_secret_is_refused(toolbox, testbed, secret):
    text, call = toolbox.call(
        "dry_run_patch",
        {"resource": "Secrets", "name": "db", "namespace": secret, "patch": '{"type": "kubernetes.io/tls"}'},
    )
    assert call.argv is None and "is a Secret" in text
    stored = json.loads(testbed.kubectl_run("get", "secret", "db", "-n", secret, "-o", "json").stdout)
    assert stored["type"] == "Opaque" and stored["data"]["password"] == ENCODED


def test_a_failing_dry_run_apply_of_a_secret_shows_status_and_reason_only(toolbox, secret):
    # type is immutable: the API server answers Invalid and would quote the new type and more.
    manifest = json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": secret},
            "type": f"example.com/{VALUE.lower()}",
            "stringData": {"password": VALUE},
        }
    )
    text, call = toolbox.call("dry_run_apply", {"manifest": manifest, "namespace": secret})
    assert not call.ok
    assert "[failed: Invalid (422)]" in text
    assert "immutable" not in text
    assert_no_value(text)


def test_a_passing_dry_run_apply_of_a_secret_says_ok_and_nothing_else(toolbox, secret):
    manifest = json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": secret},
            "type": "Opaque",
            "stringData": {"password": VALUE},
        }
    )
    text, call = toolbox.call("dry_run_apply", {"manifest": manifest, "namespace": secret})
    assert call.ok, text
    assert "[ok]" in text and "configured" not in text and "unchanged" not in text


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("dry_run_delete", {"resource": "secret", "name": "missing"}),
        ("dry_run_scale", {"resource": "secret", "name": "db", "replicas": 2}),
        ("dry_run_set_image", {"resource": "secret", "name": "db", "container": "c", "image": "nginx:1.27"}),
        ("dry_run_rollout_undo", {"resource": "secret", "name": "db"}),
    ],
)
def test_other_dry_runs_on_a_secret_answer_with_status_only(toolbox, secret, tool, args):
    text, call = toolbox.call(tool, {**args, "namespace": secret})
    assert call.argv is not None
    assert "withheld" in text and "[stderr]" not in text
    assert_no_value(text)


def test_a_dry_run_delete_of_a_missing_secret_says_not_found(toolbox, secret):
    text, _ = toolbox.call("dry_run_delete", {"resource": "secret", "name": "missing", "namespace": secret})
    assert "[failed: NotFound (404)]" in text


def test_a_json_patch_of_a_deployment_still_dry_runs(toolbox, testbed, namespace):
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    patch = json.dumps([{"op": "replace", "path": "/spec/replicas", "value": 3}])
    text, call = toolbox.call(
        "dry_run_patch",
        {"resource": "deployment", "name": "web", "namespace": namespace, "patch": patch, "patch_type": "json"},
    )
    assert call.ok, text
    assert "deployment.apps/web patched" in text
