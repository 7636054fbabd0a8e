"""The model's dry-run tools are no way to read Secrets: no patch of a Secret in any spelling, no JSON-patch
operation that reads a stored value (copy, move, test, `from`), and any dry-run that touches a Secret
answers with status and reason only. (The same attacks against a real API server are in
tests/integration/test_patch_tool_secrets.py.)"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from operate_mcp.config import Settings
from operate_mcp.kube.runner import CommandResult, Kubectl
from operate_mcp.kube.secrets import failure_status, manifest_has_secret, touches_secret
from operate_mcp.kube.tools import ApplyArgs, ToolBox, _render

VALUE = "hunter2-correct-horse"
ENCODED = base64.b64encode(VALUE.encode()).decode()


@pytest.fixture
def toolbox(tmp_path: Path) -> ToolBox:
    # A real runner pointed at a kubectl that does not exist: a refused call never starts a process,
    # and an accepted one shows in ToolCall.argv exactly what would have run.
    return ToolBox(Kubectl(Settings(data_dir=tmp_path, kubectl=str(tmp_path / "no-kubectl"))))


def patch(toolbox: ToolBox, resource: str, body: object, patch_type: str = "json") -> tuple[str, list[str] | None]:
    text = body if isinstance(body, str) else json.dumps(body)
    args = {"resource": resource, "name": "db", "namespace": "shop", "patch": text, "patch_type": patch_type}
    out, call = toolbox.call("dry_run_patch", args)
    return out, call.argv


@pytest.mark.parametrize(
    "resource", ["secret", "secrets", "Secret", "SECRETS", "secret.v1", "secrets.v1", "secrets.v1.", "secrets.v1.core"]
)
@pytest.mark.parametrize("patch_type", ["strategic", "merge", "json"])
def test_a_patch_of_a_secret_is_refused_in_every_spelling(toolbox, resource, patch_type) -> None:
    body = [{"op": "replace", "path": "/type", "value": "x"}] if patch_type == "json" else {"type": "x"}
    out, argv = patch(toolbox, resource, body, patch_type)
    assert argv is None, "nothing may run"
    assert "refused" in out and "is a Secret" in out


@pytest.mark.parametrize(
    ("op", "why"),
    [
        ({"op": "copy", "from": "/data/password", "path": "/type"}, "copy"),
        ({"op": "move", "from": "/data/password", "path": "/metadata/name"}, "move"),
        ({"op": "test", "path": "/data/password", "value": ENCODED}, "confirms guessed values"),
        ({"op": "copy", "from": "/spec/template/spec/containers/0/env/0/value", "path": "/metadata/name"}, "copy"),
    ],
)
def test_json_patch_operations_that_read_stored_values_are_refused_on_any_object(toolbox, op, why) -> None:
    out, argv = patch(toolbox, "deployment", [{"op": "replace", "path": "/spec/replicas", "value": 2}, op])
    assert argv is None
    assert "operation 2" in out and why in out and "use add, replace or remove" in out


def test_a_from_on_an_allowed_operation_is_refused_and_names_secret_values(toolbox) -> None:
    out, argv = patch(toolbox, "configmap", [{"op": "add", "from": "/stringData/password", "path": "/x", "value": 1}])
    assert argv is None and "reads from '/stringData/password' (a Secret's values)" in out


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"op": "replace"}, "non-empty list"),
        ([], "non-empty list"),
        ([{"op": "Copy", "from": "/data/a", "path": "/type"}], "use add, replace or remove"),
        ([{"op": "replace", "path": "/spec/replicas"}], "needs a value"),
        ([{"op": "remove", "path": "spec"}], "needs a path"),
        ([{"op": "remove", "path": "/spec", "note": 1}], "unknown keys"),
        ("[{op: replace, path: /x, value: 1", "not valid JSON or YAML"),
    ],
)
def test_malformed_json_patches_are_refused_with_the_fix(toolbox, body, message) -> None:
    out, argv = patch(toolbox, "deployment", body)
    assert argv is None and message in out


def test_add_replace_and_remove_run_as_the_canonical_json_that_was_checked(toolbox) -> None:
    yaml_body = "- {op: replace, path: /spec/replicas, value: 3}\n- {op: remove, path: /metadata/labels/x}\n"
    _, argv = patch(toolbox, "deployment", yaml_body)
    assert argv is not None
    assert (
        argv[argv.index("-p") + 1] == '[{"op":"replace","path":"/spec/replicas","value":3},{"op":"remove",'
        '"path":"/metadata/labels/x"}]'
    )
    assert argv[-1] == "--dry-run=server"


def test_a_repeated_key_runs_as_the_value_that_was_checked(toolbox) -> None:
    # kubectl and PyYAML might keep different copies of a repeated key; re-serialising leaves one.
    _, argv = patch(toolbox, "deployment", '[{"op": "copy", "op": "replace", "path": "/spec/replicas", "value": 1}]')
    assert argv is not None and argv[argv.index("-p") + 1] == '[{"op":"replace","path":"/spec/replicas","value":1}]'
    out, argv = patch(toolbox, "deployment", '[{"op": "replace", "op": "copy", "from": "/data/a", "path": "/type"}]')
    assert argv is None and "'copy'" in out


def test_a_strategic_patch_of_another_object_still_runs(toolbox) -> None:
    _, argv = patch(toolbox, "deployment", "spec:\n  replicas: 4\n", "strategic")
    assert argv is not None and argv[argv.index("-p") + 1] == '{"spec":{"replicas":4}}'


def test_a_strategic_patch_must_be_a_mapping(toolbox) -> None:
    out, argv = patch(toolbox, "deployment", "[1, 2]", "merge")
    assert argv is None and "a merge patch is a mapping" in out


SECRET_MANIFEST = f"apiVersion: v1\nkind: Secret\nmetadata: {{name: db}}\nstringData: {{password: {VALUE}}}\n"


@pytest.mark.parametrize(
    "manifest",
    [
        SECRET_MANIFEST,
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n---\n{SECRET_MANIFEST}",
        json.dumps({"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Secret"}]}),
        '{"apiVersion": "v1", "kind": "\\u0053ecret", "metadata": {"name": "db"}}',
        "apiVersion: v1\nkind: ConfigMap\nkind: Secret\nmetadata: {name: db}\n",
        '{"apiVersion": "v1", "KIND": "Secret"}',
        "apiVersion: v1\nkind: [unclosed\n",
        '{"kind": "ConfigMap"}{"kind": "Secret"}',
    ],
)
def test_every_way_of_writing_a_secret_manifest_counts_as_touching_a_secret(manifest) -> None:
    assert manifest_has_secret(manifest)
    assert touches_secret(["kubectl", "apply", "-f", "-", "--dry-run=server"], manifest)


def test_a_deployment_that_only_references_a_secret_is_not_a_secret() -> None:
    manifest = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n"
        "      containers:\n      - name: web\n        envFrom: [{secretRef: {name: db}}]\n"
    )
    assert not manifest_has_secret(manifest)


@pytest.mark.parametrize(
    "argv",
    [
        ["kubectl", "delete", "secret", "db", "-n", "shop", "--dry-run=server"],
        ["kubectl", "scale", "secrets.v1/db", "--replicas=1", "--dry-run=server"],
        ["kubectl", "set", "image", "Secret/db", "a=b", "--dry-run=server"],
        ["kubectl", "rollout", "undo", "secret/db", "--dry-run=server"],
    ],
)
def test_commands_naming_a_secret_touch_a_secret(argv) -> None:
    assert touches_secret(argv)


def test_commands_naming_other_objects_do_not() -> None:
    assert not touches_secret(["kubectl", "scale", "deployment/web", "--replicas=2", "--dry-run=server"])


API_ERROR = f'The Secret "db" is invalid: type: Invalid value: "{VALUE}": field is immutable\n'


def failed(stderr: str, exit_code: int = 1) -> CommandResult:
    return CommandResult(
        argv=["kubectl", "apply", "-f", "-", "--dry-run=server"],
        exit_code=exit_code,
        stdout="",
        stderr=stderr,
        duration_seconds=0.1,
    )


def test_a_failed_dry_run_touching_a_secret_shows_status_and_reason_only() -> None:
    text = _render(ApplyArgs(manifest=SECRET_MANIFEST), failed(API_ERROR), withhold=True)
    assert "[failed: Invalid (422)]" in text
    assert VALUE not in text and ENCODED not in text and "immutable" not in text


def test_the_reason_is_one_of_the_api_servers_words_never_text_from_the_message() -> None:
    assert failure_status(failed('Error from server (NotFound): secrets "db" not found')) == "NotFound (404)"
    assert failure_status(failed(f"Error from server ({VALUE}): x")) == "kubectl error (exit 1)"
    assert failure_status(failed(f"error: {VALUE}")) == "kubectl error (exit 1)"


def test_a_passing_dry_run_touching_a_secret_says_ok_but_not_whether_anything_changed() -> None:
    # "unchanged" against "configured" would confirm a guessed value.
    ok = CommandResult(
        argv=["kubectl", "apply", "-f", "-", "--dry-run=server"],
        exit_code=0,
        stdout="secret/db unchanged (server dry run)\n",
        stderr="",
        duration_seconds=0.1,
    )
    text = _render(ApplyArgs(manifest=SECRET_MANIFEST), ok, withhold=True)
    assert "[ok]" in text and "unchanged" not in text


def test_the_toolbox_withholds_the_answer_of_a_dry_run_delete_of_a_secret(toolbox) -> None:
    out, call = toolbox.call("dry_run_delete", {"resource": "secrets", "name": "db", "namespace": "shop"})
    assert call.argv is not None and "[failed: kubectl error (exit 127)]" in out
    assert "binary not found" not in out and "withheld" in out
