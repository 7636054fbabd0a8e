"""The PersistentVolumeClaim, ConfigMap and Node analyzers. Claims and ConfigMaps were recorded on the test
bed (network-pvc, network-configmap); node states other than Ready are hand-built from a recorded node,
because the bed's nodes are shared and kwok turns any node it manages back to Ready."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from operate_mcp.analyzers.configmap import ConfigMapAnalyzer
from operate_mcp.analyzers.node import NodeAnalyzer
from operate_mcp.analyzers.pvc import PVCAnalyzer
from operate_mcp.analyzers.registry import run_analyzers
from operate_mcp.model.finding import Finding

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "analyzers"


def objects(scenario: str) -> dict[str, list[dict[str, Any]]]:
    return json.loads((FIXTURES / f"{scenario}.json").read_text())["objects"]


def texts(f: Finding, source: str | None = None) -> list[str]:
    return [e.text for e in f.evidence if source is None or e.source == source]


def claims(state: dict[str, list[dict[str, Any]]]) -> dict[str, Finding]:
    return {f.name: f for f in run_analyzers([PVCAnalyzer()], state)}


# PersistentVolumeClaims


def test_a_claim_naming_a_missing_storage_class_cites_it_and_the_pod_waiting_for_it():
    f = claims(objects("network-pvc"))["data-missing-class"]
    assert (f.severity, f.problem) == ("error", "Pending: StorageClass fast-ssd does not exist")
    assert texts(f)[:3] == [
        "status.phase: Pending",
        "spec.storageClassName: fast-ssd",
        "StorageClass/fast-ssd: not found",
    ]
    assert 'Warning ProvisioningFailed: storageclass.storage.k8s.io "fast-ssd" not found' in texts(f, "event")
    assert any(
        t.startswith("Pod/db: pod cannot be scheduled:") and "unbound immediate PersistentVolumeClaims" in t
        for t in texts(f, "related-object")
    )


def test_a_claim_with_no_class_and_no_default_class_is_a_warning():
    f = claims(objects("network-pvc"))["data-no-class"]
    assert f.severity == "warning"
    assert f.problem.startswith("Pending: it names no StorageClass and the cluster has no default one")
    assert any("no storage class is set" in t for t in texts(f, "event"))


def test_a_claim_whose_provisioner_never_answers_cites_the_external_provisioning_event():
    f = claims(objects("network-pvc"))["data-slow"]
    assert (f.severity, f.problem) == (
        "warning",
        "Pending: waiting for provisioner example.com/nothing to create its volume",
    )
    [event] = texts(f, "event")
    assert event.startswith("Normal ExternalProvisioning") and "external provisioner 'example.com/nothing'" in event


def test_a_claim_waiting_for_its_first_consumer_is_normal():
    state = objects("network-pvc")
    assert any(e["reason"] == "WaitForFirstConsumer" for e in state["events"])
    assert "data-wffc" not in claims(state)


def test_a_lost_claim_is_an_error_naming_its_volume():
    f = claims(objects("network-pvc"))["data-lost"]
    assert f.severity == "error" and f.problem.startswith("Lost: its PersistentVolume network-fx-")
    assert "status.phase: Lost" in texts(f)
    assert "Warning ClaimLost: Bound claim has lost its PersistentVolume. Data on the volume is lost!" in texts(f)


def test_exactly_the_broken_claims_are_reported_and_a_bound_one_is_not():
    assert set(claims(objects("network-pvc"))) == {"data-missing-class", "data-no-class", "data-slow", "data-lost"}
    assert claims(objects("network-healthy")) == {}


def test_storage_classes_not_read_prove_no_class_missing():
    state = objects("network-pvc")
    del state["storageclasses"]
    assert set(claims(state)) == {"data-lost", "data-missing-class"}  # the latter on its ProvisioningFailed event
    assert claims(state)["data-missing-class"].problem == "Pending: its volume cannot be provisioned"


def test_a_first_consumer_claim_whose_provisioning_fails_once_a_node_is_chosen_is_reported():
    state = objects("network-pvc")
    wffc = next(c for c in state["persistentvolumeclaims"] if c["metadata"]["name"] == "data-wffc")
    wffc["metadata"].setdefault("annotations", {})["volume.kubernetes.io/selected-node"] = "kwok-node-0"
    failed = next(e for e in state["events"] if e["reason"] == "ProvisioningFailed")
    state["events"].append(
        {**failed, "involvedObject": {**failed["involvedObject"], "name": "data-wffc", "uid": wffc["metadata"]["uid"]}}
    )
    assert claims(state)["data-wffc"].problem == "Pending: its volume cannot be provisioned"


# ConfigMaps


def test_unused_config_maps_are_info_and_keys_only():
    found = run_analyzers([ConfigMapAnalyzer()], objects("network-configmap"))
    assert [(f.name, f.severity, f.problem) for f in found] == [
        ("old-flags", "info", "unused: no pod refers to it"),
        ("placeholder", "info", "unused and empty: no pod refers to it"),
    ]
    assert "data keys: beta, dark-mode" in texts(found[0], "spec")
    assert all("true" not in t and "false" not in t for f in found for t in texts(f))  # values never shown


def test_config_maps_used_by_pods_templates_old_replicasets_or_owned_are_not_reported():
    """web-config (volume), web-env (envFrom), batch-config (a Deployment scaled to zero), web-config-v1
    (only the old ReplicaSet kept for rollback), kube-root-ca.crt (every namespace)."""
    state = objects("network-configmap")
    assert {c["metadata"]["name"] for c in state["configmaps"]} >= {
        "web-config",
        "web-env",
        "batch-config",
        "web-config-v1",
        "kube-root-ca.crt",
    }
    for cm in state["configmaps"]:
        if cm["metadata"]["name"] in ("old-flags", "placeholder"):
            cm["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Foo", "name": "x", "uid": "u"}]
    assert run_analyzers([ConfigMapAnalyzer()], state) == []


def test_a_leader_election_lock_is_not_a_left_over():
    state = objects("network-configmap")
    for cm in state["configmaps"]:
        cm["metadata"]["annotations"] = {"control-plane.alpha.kubernetes.io/leader": '{"holderIdentity":"x"}'}
    assert run_analyzers([ConfigMapAnalyzer()], state) == []


def test_config_maps_are_not_judged_without_pods_or_in_system_namespaces():
    state = objects("network-configmap")
    no_pods = {k: v for k, v in state.items() if k != "pods"}
    assert run_analyzers([ConfigMapAnalyzer()], no_pods) == []
    for cm in state["configmaps"]:
        cm["metadata"]["namespace"] = "kube-system"
    assert run_analyzers([ConfigMapAnalyzer()], state) == []


# Nodes


def node_in(conditions: dict[str, tuple[str, str, str]], unschedulable: bool = False) -> dict[str, Any]:
    node = copy.deepcopy(objects("network-healthy")["nodes"][0])
    for c in node["status"]["conditions"]:
        if c["type"] in conditions:
            c["status"], c["reason"], c["message"] = conditions[c["type"]]
    if unschedulable:
        node["spec"]["unschedulable"] = True
        node["spec"]["taints"] = [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
    return node


def test_ready_nodes_report_nothing():
    assert run_analyzers([NodeAnalyzer()], {"nodes": objects("network-healthy")["nodes"], "events": []}) == []


def test_a_node_not_ready_quotes_its_condition():
    node = node_in({"Ready": ("False", "KubeletNotReady", "container runtime network not ready: NetworkReady=false")})
    [f] = run_analyzers([NodeAnalyzer()], {"nodes": [node]})
    assert (f.kind, f.severity) == ("Node", "error")
    assert f.problem == "node is not ready: container runtime network not ready: NetworkReady=false"
    assert texts(f) == [
        "status.conditions[Ready]: False (KubeletNotReady): container runtime network not ready: NetworkReady=false"
    ]


def test_a_node_whose_kubelet_stopped_reporting_is_not_ready():
    node = node_in({"Ready": ("Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")})
    [f] = run_analyzers([NodeAnalyzer()], {"nodes": [node]})
    assert f.problem == "node is not ready: its kubelet stopped posting status"
    assert texts(f) == ["status.conditions[Ready]: Unknown (NodeStatusUnknown): Kubelet stopped posting node status."]


def test_pressure_conditions_are_warnings_and_no_network_an_error():
    node = node_in(
        {
            "MemoryPressure": ("True", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
            "NetworkUnavailable": ("True", "NoRouteCreated", "RouteController failed to create a route"),
        }
    )
    found = {f.problem: f for f in run_analyzers([NodeAnalyzer()], {"nodes": [node]})}
    memory = found["node is low on memory: pods may be evicted and new ones are not placed there"]
    assert memory.severity == "warning"
    assert texts(memory) == [
        "status.conditions[MemoryPressure]: True (KubeletHasInsufficientMemory): "
        "kubelet has insufficient memory available"
    ]
    assert found["node has no working network: its pods cannot be reached"].severity == "error"


def test_a_cordoned_node_is_info():
    [f] = run_analyzers([NodeAnalyzer()], {"nodes": [node_in({}, unschedulable=True)]})
    assert (f.severity, f.problem) == ("info", "node is cordoned: no new pods are placed on it")
    assert texts(f) == ["spec.unschedulable: true", "spec.taints: node.kubernetes.io/unschedulable:NoSchedule"]
