"""The model's kubectl tools (kube/tools.py), the objects a command touches (kube/targets.py) and the
inventory the analyzers read (kube/inventory.py), against the real API server of the test bed."""

from __future__ import annotations

import json
import textwrap

import pytest

from operate_mcp.kube.inventory import read_inventory
from operate_mcp.kube.runner import Kubectl
from operate_mcp.kube.targets import (
    Target,
    fingerprint,
    read_target,
    read_targets,
    restorable,
    targets_of,
    unique_targets,
)
from operate_mcp.kube.tools import ToolBox
from operate_mcp.model.command import ProposedCommand
from support.manifests import bed_settings, deployment


@pytest.fixture
def kubectl(testbed, tmp_path) -> Kubectl:
    return Kubectl(bed_settings(testbed, tmp_path))


@pytest.fixture
def web(testbed, namespace) -> str:
    testbed.kubectl_run("apply", "-f", "-", stdin=deployment("web", namespace))
    testbed.kubectl_run("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    return namespace


def replicas(testbed, namespace: str) -> int:
    return int(testbed.kubectl_run("get", "deploy/web", "-n", namespace, "-o", "jsonpath={.spec.replicas}").stdout)


def cmd(*argv: str, stdin: str | None = None) -> ProposedCommand:
    return ProposedCommand(argv=["kubectl", *argv], stdin=stdin, description="test")


# --------------------------------------------------------------------------- the model's tools


def test_kube_get_returns_the_object_as_untrusted_data(kubectl, web):
    text, call = ToolBox(kubectl).call("kube_get", {"resource": "deployment", "name": "web", "namespace": web,
                                                    "output": "json"})
    assert call.ok and not call.is_error
    assert call.argv == ["kubectl", "get", "deployment", "web", "-n", web, "-o", "json"]
    assert '<cluster-data source="GetArgs" trust="untrusted">' in text
    body = text.split('trust="untrusted">\n', 1)[1].rsplit("\n</cluster-data>", 1)[0]
    obj = json.loads(body)
    assert obj["spec"]["replicas"] == 2 and "managedFields" not in obj["metadata"]


def test_kube_get_with_fields_keeps_only_the_paths_asked_for(kubectl, web):
    text, _ = ToolBox(kubectl).call("kube_get", {"resource": "deployments", "namespace": web, "output": "json",
                                                 "fields": ["spec.replicas", "status.readyReplicas"]})
    body = json.loads(text.split('trust="untrusted">\n', 1)[1].rsplit("\n</cluster-data>", 1)[0])
    assert body == {"items": [{"name": "web", "spec.replicas": 2, "status.readyReplicas": 2}]}


def test_kube_describe_and_events_show_what_happened(kubectl, web):
    toolbox = ToolBox(kubectl)
    described, _ = toolbox.call("kube_describe", {"resource": "deployment", "name": "web", "namespace": web})
    assert "Replicas:" in described and "ScalingReplicaSet" in described
    events, call = toolbox.call("kube_events", {"namespace": web, "for_object": "deployment/web"})
    assert call.argv == ["kubectl", "events", "-n", web, "--for", "deployment/web"]
    assert "Scaled up replica set" in events


def test_kube_logs_reads_the_previous_container(kubectl, testbed, web):
    pod = testbed.kubectl_run("get", "pods", "-n", web, "-o", "jsonpath={.items[0].metadata.name}").stdout
    text, call = ToolBox(kubectl).call("kube_logs", {"pod": pod, "namespace": web, "previous": True,
                                                     "tail_lines": 50})
    assert call.ok and call.argv[-3:] == ["--previous", "--tail=50", "--limit-bytes=32000"]
    assert "panic" in text  # the bed serves its crash log for --previous


def test_dry_run_scale_and_delete_change_nothing(kubectl, testbed, web):
    toolbox = ToolBox(kubectl)
    text, call = toolbox.call("dry_run_scale", {"resource": "deployment", "name": "web", "namespace": web,
                                                "replicas": 5})
    assert call.ok and call.argv[-1] == "--dry-run=server" and "scaled (server dry run)" in text
    text, call = toolbox.call("dry_run_delete", {"resource": "deployment", "name": "web", "namespace": web})
    assert call.ok and "deleted" in text and "(server dry run)" in text
    assert replicas(testbed, web) == 2


def test_a_dry_run_the_api_server_rejects_comes_back_to_the_model_with_its_reason(kubectl, web):
    manifest = json.dumps({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bad", "namespace": web},
                           "spec": {"replicas": -1, "selector": {"matchLabels": {"a": "b"}},
                                    "template": {"metadata": {"labels": {"a": "b"}},
                                                 "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
    text, call = ToolBox(kubectl).call("dry_run_apply", {"manifest": manifest, "namespace": web})
    assert not call.ok and "failed (exit 1)" in text
    assert "spec.replicas" in text and "must be greater than or equal to 0" in text


def test_invalid_arguments_and_unknown_tools_are_answered_not_run(kubectl):
    toolbox = ToolBox(kubectl)
    text, call = toolbox.call("kube_get", {"resource": "pods", "name": "../../etc/passwd"})
    assert call.is_error and call.argv is None and "is not a valid Kubernetes name" in text
    text, call = toolbox.call("kube_exec", {"pod": "web", "command": "sh"})
    assert call.is_error and text.startswith("unknown tool 'kube_exec'; available: kube_get")


def test_a_read_only_toolbox_offers_no_dry_runs(kubectl):
    names = [d["name"] for d in ToolBox(kubectl, read_only=True).definitions()]
    assert names and all(n.startswith("kube_") for n in names)
    _, call = ToolBox(kubectl, read_only=True).call("dry_run_scale", {"resource": "deployment", "name": "web",
                                                                      "replicas": 1})
    assert call.is_error and call.argv is None


# --------------------------------------------------------------------------- targets


def test_a_command_targets_the_objects_it_names_and_those_it_carries():
    manifest = textwrap.dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: settings}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: api, namespace: other}
        """)
    assert targets_of(cmd("set", "image", "deploy/web", "web=nginx:1.27", "-n", "shop")) == [
        Target(get_as="deploy", resource="deployments", name="web", namespace="shop")
    ]
    carried = targets_of(cmd("apply", "-f", "-", "-n", "shop", stdin=manifest))
    assert [(t.resource, t.name, t.namespace, t.kind) for t in carried] == [
        ("configmaps", "settings", "shop", "ConfigMap"),
        ("deployments", "api", "other", "Deployment"),
    ]
    assert targets_of(cmd("get", "pods")) == []  # a list names no object


def test_the_same_object_named_twice_is_one_target():
    found = unique_targets([cmd("scale", "deployment/web", "--replicas=3", "-n", "shop"),
                            cmd("annotate", "deployments", "web", "a=b", "-n", "shop")])
    assert [(t.resource, t.name) for t in found] == [("deployments", "web")]


def test_observe_reads_an_existing_object_and_says_when_one_is_missing(kubectl, web):
    seen, obj = read_target(kubectl, Target(get_as="deployment", resource="deployments", name="web", namespace=web))
    assert seen.exists and seen.kind == "Deployment" and seen.replicas == 2 and seen.generation == 1
    assert obj is not None and seen.fingerprint == fingerprint(obj)
    missing, nothing = read_target(kubectl, Target(get_as="deployment", resource="deployments", name="gone",
                                               namespace=web))
    assert not missing.exists and missing.error is None and nothing is None


def test_fingerprint_changes_with_the_spec_not_with_status(kubectl, testbed, web):
    target = Target(get_as="deployment", resource="deployments", name="web", namespace=web)
    before, obj = read_target(kubectl, target)
    assert obj is not None
    assert fingerprint({**obj, "status": {"readyReplicas": 0}}) == before.fingerprint
    testbed.kubectl_run("scale", "deploy/web", "--replicas=3", "-n", web)
    after, _ = read_target(kubectl, target)
    assert after.fingerprint != before.fingerprint and after.replicas == 3


def test_restorable_drops_what_the_server_owns(kubectl, web):
    _, obj = read_target(kubectl, Target(get_as="deployment", resource="deployments", name="web", namespace=web))
    assert obj is not None
    kept = restorable(obj)
    assert "status" not in kept
    assert not {"resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"} & set(kept["metadata"])
    assert "deployment.kubernetes.io/revision" not in kept["metadata"].get("annotations", {})
    assert kept["spec"] == obj["spec"]


def test_observe_objects_reads_each_touched_object_once(kubectl, web):
    seen = read_targets(kubectl, [cmd("scale", "deployment/web", "--replicas=3", "-n", web),
                                     cmd("delete", "configmap", "nothing", "-n", web)])
    assert [(o.kind, o.name, o.exists) for o in seen] == [("Deployment", "web", True), ("configmaps", "nothing", False)]


# --------------------------------------------------------------------------- the analyzers' inventory


def test_the_inventory_reads_each_resource_once_per_namespace(kubectl, web):
    inventory = read_inventory(kubectl, web, ["pods", "deployments", "events", "pods"])
    assert list(inventory.objects) == ["pods", "deployments", "events"] and inventory.errors == {}
    assert len(inventory.objects["pods"]) == 2 and inventory.objects["deployments"][0]["kind"] == "Deployment"


def test_the_inventory_records_what_it_could_not_read(kubectl, web):
    inventory = read_inventory(kubectl, web, ["pods", "no-such-things"])
    assert "no-such-things" not in inventory.objects and len(inventory.objects["pods"]) == 2
    assert inventory.errors == {"no-such-things": "unknown resource 'no-such-things'"}


@pytest.mark.parametrize("resource", ["secrets", "secret", "Secrets.v1"])
def test_the_inventory_never_reads_secrets(kubectl, resource):
    with pytest.raises(ValueError, match="never reads Secrets"):
        read_inventory(kubectl, "default", ["pods", resource])
