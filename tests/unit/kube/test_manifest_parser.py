"""One manifest parser that reads stdin as kubectl does and fails closed (security issue #9, finding 6).

Each attack here used to be invisible: PyYAML failed, so risk, policies, drift, snapshots and the
audit masking saw no objects while kubectl applied all of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from operate_mcp.audit.log import AuditLog
from operate_mcp.config import Settings
from operate_mcp.errors import CommandRejected, OperateError
from operate_mcp.governance.risk import assess_risk
from operate_mcp.kube.classifier import classify_command
from operate_mcp.kube.manifests import ManifestError, describe_objects, parse_manifests
from operate_mcp.kube.runner import CommandResult, Kubectl
from operate_mcp.kube.targets import targets_of
from operate_mcp.model.command import CommandClass, ProposedCommand
from operate_mcp.redact import MASK, redact, redact_text
from operate_mcp.workflows.dryrun import dry_run
from operate_mcp.workflows.replay import _retarget

SECRET_VALUE = "c3VwZXItc2VjcmV0LXZhbHVlLTEyMzQ="


def obj(kind: str, name: str, api_version: str = "v1", **extra: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, **extra}


CRB = obj(
    "ClusterRoleBinding",
    "agent-is-admin",
    "rbac.authorization.k8s.io/v1",
    roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
    subjects=[{"kind": "ServiceAccount", "name": "default", "namespace": "shop"}],
)
DEPLOYMENT = {**obj("Deployment", "web", "apps/v1"), "metadata": {"name": "web", "namespace": "production"}}
SECRET = obj("Secret", "db", stringData={"dsn": SECRET_VALUE}, data={"tls.key": SECRET_VALUE})
JSON_STREAM = json.dumps(CRB) + json.dumps(DEPLOYMENT)  # `{...}{...}`: PyYAML cannot read it, kubectl can


def refs(text: str) -> list[str]:
    return [o.name_ref for o in parse_manifests(text)]


def apply(stdin: str, *extra: str) -> ProposedCommand:
    return ProposedCommand(argv=["kubectl", "apply", "-f", "-", *extra], stdin=stdin, description="x")


# ----------------------------------------------------------------------------- reading as kubectl does


def test_a_json_stream_of_two_objects_yields_both() -> None:
    assert refs(JSON_STREAM) == ["clusterrolebinding.rbac.authorization.k8s.io/agent-is-admin", "deployment.apps/web"]
    assert refs(json.dumps(CRB, indent=2) + "\n\n" + json.dumps(DEPLOYMENT, indent=2)) == refs(JSON_STREAM)


def test_yaml_documents_separated_by_dashes_yield_every_object() -> None:
    text = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n--- # next\n# only a comment\n---\n" \
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  namespace: shop\n"
    objects = parse_manifests(text)
    assert [(o.kind, o.name, o.namespace) for o in objects] == [("ConfigMap", "a", None), ("ConfigMap", "b", "shop")]
    assert [o.document for o in objects] == [1, 2]


def test_list_items_are_expanded_and_take_the_list_kind_when_they_name_none() -> None:
    text = json.dumps({
        "apiVersion": "v1",
        "kind": "SecretList",
        "items": [{"metadata": {"name": "inherits"}, "data": {"k": SECRET_VALUE}}, obj("ConfigMap", "own")],
    })
    assert refs(text) == ["secret/inherits", "configmap/own"]


def test_any_object_with_items_is_a_list_as_kubectl_reads_it() -> None:
    # kubectl applies the items of `kind: ConfigMap` with an `items` field; a ConfigMap is not what runs.
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: decoy}\nitems:\n" \
        "- {apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRoleBinding, metadata: {name: hidden}}\n"
    assert refs(text) == ["clusterrolebinding.rbac.authorization.k8s.io/hidden"]


def test_plain_scalars_mean_what_kubectl_sends() -> None:
    text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n" \
        "spec: {replicas: 0o1750, minReadySeconds: 1e1, paused: y, revisionHistoryLimit: 08, note: 2026-01-02}\n"
    spec = parse_manifests(text)[0].body["spec"]
    assert spec == {"replicas": 1000, "minReadySeconds": 10, "paused": True, "revisionHistoryLimit": 8,
                    "note": "2026-01-02"}


def test_describe_objects_names_kind_namespace_and_name() -> None:
    objects = parse_manifests(JSON_STREAM)
    assert describe_objects(objects) == [
        "ClusterRoleBinding agent-is-admin (no namespace in the manifest)",
        "Deployment production/web",
    ]
    assert describe_objects(objects, namespace="shop")[0] == "ClusterRoleBinding shop/agent-is-admin"


# ----------------------------------------------------------------------------- failing closed


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: !foo {x: y}\n", "tag '!foo' is refused"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: !!map {name: a}\n", "tag 'tag:yaml.org,2002:map' is refused"),
        ("!!python/object:os.system\napiVersion: v1\n", "is refused"),
        ("--- !ConfigMap\napiVersion: v1\n", "not a document separator"),
    ],
)
def test_a_tag_anywhere_is_refused_never_constructed(text: str, reason: str) -> None:
    with pytest.raises(ManifestError, match=reason):
        parse_manifests(text)


def test_a_document_after_an_end_marker_is_refused_never_dropped() -> None:
    # kubectl applies the ConfigMap and silently ignores the Secret after '...'.
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n...\n" + "apiVersion: v1\nkind: Secret\n" \
        "metadata: {name: s}\n"
    with pytest.raises(ManifestError, match=r"document 1 \(line 1\).*end marker '\.\.\.' on line 4"):
        parse_manifests(text)
    assert refs("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n...\n") == ["configmap/a"]


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"apiVersion": "v1", "metadata": {"name": "a"}}, "`kind` is missing"),
        ({"kind": "ConfigMap", "metadata": {"name": "a"}}, "`apiVersion` is missing"),
        ({"apiVersion": "v1", "kind": "ConfigMap"}, "`metadata` is null"),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}, "metadata.name is missing"),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": 5}}, "not a string"),
        ({"apiVersion": "v1", "kind": "-s", "metadata": {"name": "a"}}, "not a valid kind"),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "-n"}}, "not a valid"),
    ],
)
def test_a_document_without_kind_apiversion_or_name_is_refused(doc: dict[str, Any], reason: str) -> None:
    text = json.dumps(obj("ConfigMap", "fine")) + "\n" + json.dumps(doc)
    with pytest.raises(ManifestError, match=rf"document 2 \(line 2\).*{reason}"):
        parse_manifests(text)


def test_generate_name_alone_is_refused() -> None:
    with pytest.raises(ManifestError, match=r"generateName without metadata\.name is refused"):
        parse_manifests("apiVersion: v1\nkind: Pod\nmetadata: {generateName: web-}\n")


@pytest.mark.parametrize(
    "text", ["", "  \n", "---\n", "# nothing\n---\n", "null\n", "apiVersion: v1\nkind: List\nitems: []\n"]
)
def test_an_empty_stream_is_refused(text: str) -> None:
    with pytest.raises(ManifestError, match="holds no objects"):
        parse_manifests(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (json.dumps(obj("ConfigMap", "a")) + "\n---\n" + "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n",
         "not valid JSON"),
        (json.dumps(obj("ConfigMap", "a")) + "\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\n", "not valid JSON"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, name: b}\n", "key 'name' appears twice"),
        ('{"apiVersion": "v1", "kind": "ConfigMap", "kind": "Secret", "metadata": {"name": "a"}}', "appears twice"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: &m {name: a}\n", "anchor '&m' is refused"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n<<: {kind: Secret}\n", "merge keys"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nitems: null\n", "`items` field that is null"),
        ("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: List, items: []}\n", "list inside a list"),
        ("- apiVersion: v1\n  kind: ConfigMap\n", "is a list, not an object"),
    ],
)
def test_readings_kubectl_could_disagree_with_are_refused(text: str, reason: str) -> None:
    with pytest.raises(ManifestError, match=reason):
        parse_manifests(text)


def test_errors_name_the_document_but_never_quote_its_values() -> None:
    broken = f'apiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\nstringData:\n  dsn: "{SECRET_VALUE}\\q"\n'
    with pytest.raises(ManifestError) as caught:
        parse_manifests("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n" + broken)
    assert "document 2 (line 5)" in str(caught.value) and "line 9" in str(caught.value)
    assert SECRET_VALUE not in str(caught.value)
    assert isinstance(caught.value, CommandRejected)


# ----------------------------------------------------------------------------- the callers


def test_targets_see_every_object_of_a_json_stream_so_risk_is_critical() -> None:
    cmd = apply(JSON_STREAM, "-n", "shop")
    assert [(t.resource, t.name, t.namespace) for t in targets_of(cmd)] == [
        ("clusterrolebindings", "agent-is-admin", "shop"),
        ("deployments", "web", "production"),
    ]
    risk = assess_risk([cmd], [], [], Settings(), "shop")
    assert risk.tier.value == "critical", risk.reasons


def test_targets_of_an_unreadable_manifest_raise_and_risk_is_critical() -> None:
    cmd = apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: !foo {}\n", "-n", "shop")
    with pytest.raises(ManifestError):
        targets_of(cmd)
    assert assess_risk([cmd], [], [], Settings(), "shop").tier.value == "critical"


def test_a_command_carrying_an_unreadable_manifest_is_forbidden() -> None:
    verdict = classify_command(["kubectl", "apply", "-f", "-"], "apiVersion: v1\nkind: ConfigMap\n")
    assert verdict.command_class is CommandClass.FORBIDDEN and "metadata" in verdict.reason
    assert classify_command(["kubectl", "apply", "-f", "-"], JSON_STREAM).command_class is CommandClass.MUTATING


def test_a_secret_in_a_json_stream_is_masked_in_the_audit_log(tmp_path: Path) -> None:
    stdin = json.dumps(obj("ConfigMap", "a")) + json.dumps(SECRET)
    AuditLog(tmp_path).append("proposal", actor="alice", data={"commands": [apply(stdin).model_dump()]})
    raw = next((tmp_path / "audit").glob("*.jsonl")).read_text()
    assert SECRET_VALUE not in raw
    kept = json.loads(raw.splitlines()[0])["data"]["commands"][0]["stdin"]
    assert "dsn" in kept and "tls.key" in kept, "keys stay, so a reader sees what changed"
    assert SECRET_VALUE not in redact_text(stdin)


def test_secret_list_items_that_name_no_kind_are_masked() -> None:
    item = {"metadata": {"name": "s"}, "data": {"k": SECRET_VALUE}}
    listing = {"apiVersion": "v1", "kind": "SecretList", "items": [item]}
    assert SECRET_VALUE not in json.dumps(redact(listing))
    assert SECRET_VALUE not in redact_text(json.dumps(listing))
    assert SECRET_VALUE not in redact_text(json.dumps(listing) + json.dumps(obj("ConfigMap", "a")))


def test_an_unreadable_manifest_is_masked_whole_in_the_audit_log(tmp_path: Path) -> None:
    stdin = f"apiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\ndata: !!map {{tls.key: {SECRET_VALUE}}}\n"
    AuditLog(tmp_path).append("proposal", actor="alice", data={"commands": [apply(stdin).model_dump()]})
    raw = next((tmp_path / "audit").glob("*.jsonl")).read_text()
    assert SECRET_VALUE not in raw and MASK in raw and "could not be read exactly" in raw
    assert SECRET_VALUE not in redact_text(stdin)


def test_a_manifest_without_secrets_is_kept_as_written() -> None:
    stdin = json.dumps(obj("ConfigMap", "a", data={"mode": "fast"}))
    assert redact(apply(stdin).model_dump())["stdin"] == stdin


def test_replay_namespace_override_on_an_unreadable_manifest_is_a_clear_error() -> None:
    cmd = apply(json.dumps(obj("ConfigMap", "a")) + "\n---\napiVersion: v1\n", "-n", "shop")
    with pytest.raises(OperateError, match="cannot point the manifest at namespace staging: document 2"):
        _retarget(cmd, "staging")


def test_replay_namespace_override_moves_every_object_list_items_too() -> None:
    listing = {"apiVersion": "v1", "kind": "List", "items": [
        {**obj("ConfigMap", "a"), "metadata": {"name": "a", "namespace": "production"}},
        obj("ConfigMap", "b"),
    ]}
    moved = _retarget(apply(json.dumps(listing), "-n", "production"), "staging")
    assert moved.argv[-2:] == ["-n", "staging"]
    assert [(o.name, o.namespace) for o in parse_manifests(moved.stdin or "")] == [("a", "staging"), ("b", None)]


# ----------------------------------------------------------------------------- the dry-run comparison


class ScriptedKubectl(Kubectl):
    """kubectl's answer to the dry-run, fixed by the test; records what was run."""

    def __init__(self, tmp_path: Path, stdout: str, stderr: str = "", exit_code: int = 0) -> None:
        super().__init__(Settings(data_dir=tmp_path))
        self.answer = (stdout, stderr, exit_code)
        self.argv: list[str] = []

    def run(self, argv: Any, **kwargs: Any) -> CommandResult:  # type: ignore[override]
        self.argv = list(argv)
        stdout, stderr, code = self.answer
        return CommandResult(argv=self.argv, exit_code=code, stdout=stdout, stderr=stderr, duration_seconds=0.1)


def test_the_dry_run_asks_for_names_and_passes_when_kubectl_reports_what_we_read(tmp_path: Path) -> None:
    kubectl = ScriptedKubectl(tmp_path, "clusterrolebinding.rbac.authorization.k8s.io/agent-is-admin\n"
                                        "deployment.apps/web\n")
    result = dry_run(kubectl, apply(JSON_STREAM, "-n", "shop"), 1)
    assert result.ok, result.error
    assert kubectl.argv[-3:] == ["--dry-run=server", "-o", "name"]
    assert result.output.splitlines() == ["clusterrolebinding.rbac.authorization.k8s.io/agent-is-admin",
                                          "deployment.apps/web"]


def test_the_dry_run_fails_when_kubectl_reports_an_object_we_did_not_read(tmp_path: Path) -> None:
    kubectl = ScriptedKubectl(tmp_path, "configmap/a\nsecret/hidden\n")
    result = dry_run(kubectl, apply(json.dumps(obj("ConfigMap", "a"))), 1)
    assert not result.ok and "it reported secret/hidden, which the manifest we read does not hold" in result.error


def test_the_dry_run_fails_when_kubectl_does_not_report_an_object_we_read(tmp_path: Path) -> None:
    kubectl = ScriptedKubectl(tmp_path, "configmap/a\n")
    result = dry_run(kubectl, apply(json.dumps(obj("ConfigMap", "a")) + json.dumps(obj("ConfigMap", "b"))), 1)
    assert not result.ok and "it did not report configmap/b" in result.error


def test_an_unreadable_manifest_fails_the_dry_run_without_running_kubectl(tmp_path: Path) -> None:
    kubectl = ScriptedKubectl(tmp_path, "")
    result = dry_run(kubectl, apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n...\nkind: Secret\n"), 1)
    assert not result.ok and "end marker" in result.error and kubectl.argv == []


def test_the_dry_run_keeps_result_lines_only_and_a_short_error(tmp_path: Path) -> None:
    leaked = json.dumps(SECRET)
    kubectl = ScriptedKubectl(tmp_path, f"secret/db\n{leaked}\n", stderr="error: " + "x" * 2000, exit_code=1)
    result = dry_run(kubectl, apply(json.dumps(SECRET)), 1)
    assert not result.ok and SECRET_VALUE not in result.model_dump_json()
    assert result.output == "secret/db\n(1 other output line(s) withheld: only result lines are kept)"
    assert "withheld: the command touches a Secret" in result.error and "xxx" not in result.error


def test_a_failed_dry_run_keeps_a_short_error(tmp_path: Path) -> None:
    kubectl = ScriptedKubectl(tmp_path, "", stderr="error: " + "x" * 2000, exit_code=1)
    result = dry_run(kubectl, apply(json.dumps(obj("ConfigMap", "a"))), 1)
    assert len(result.error) <= 300 and result.error.startswith("error: xxx")
