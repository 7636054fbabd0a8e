"""The Service, Ingress, NetworkPolicy and webhook analyzers over objects recorded on the test bed
(tests/fixtures/analyzers/network-*.json, made by record_network.py): each broken reference is named with
the lines that prove it, and the healthy namespace, with every analyzer of this family, says nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from operate_mcp.analyzers.base import Analyzer
from operate_mcp.analyzers.configmap import ConfigMapAnalyzer
from operate_mcp.analyzers.gateway import GatewayAnalyzer, GatewayClassAnalyzer, HTTPRouteAnalyzer
from operate_mcp.analyzers.ingress import IngressAnalyzer
from operate_mcp.analyzers.networkpolicy import NetworkPolicyAnalyzer
from operate_mcp.analyzers.node import NodeAnalyzer
from operate_mcp.analyzers.pvc import PVCAnalyzer
from operate_mcp.analyzers.registry import CORE, run_analyzers
from operate_mcp.analyzers.service import ServiceAnalyzer
from operate_mcp.analyzers.webhook import MutatingWebhookAnalyzer, ValidatingWebhookAnalyzer
from operate_mcp.model.finding import Finding

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "analyzers"
NETWORK_SCENARIOS = sorted(p.stem for p in FIXTURES.glob("network-*.json"))
FAMILY: list[Analyzer] = [
    ServiceAnalyzer(),
    IngressAnalyzer(),
    PVCAnalyzer(),
    NodeAnalyzer(),
    ConfigMapAnalyzer(),
    ValidatingWebhookAnalyzer(),
    MutatingWebhookAnalyzer(),
    NetworkPolicyAnalyzer(),
    GatewayClassAnalyzer(),
    GatewayAnalyzer(),
    HTTPRouteAnalyzer(),
]


def objects(scenario: str) -> dict[str, list[dict[str, Any]]]:
    return json.loads((FIXTURES / f"{scenario}.json").read_text())["objects"]


def found(scenario: str | dict[str, list[dict[str, Any]]], *analyzers: Analyzer) -> list[Finding]:
    state = objects(scenario) if isinstance(scenario, str) else scenario
    return run_analyzers(list(analyzers) or FAMILY, state)


def texts(f: Finding, source: str | None = None) -> list[str]:
    return [e.text for e in f.evidence if source is None or e.source == source]


def named(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(o for o in items if o["metadata"]["name"] == name)


# Services


def test_a_service_selecting_no_pod_cites_its_selector_and_the_pods_that_nearly_match():
    [svc] = found("network-service-selector", ServiceAnalyzer())
    assert (svc.kind, svc.name, svc.severity) == ("Service", "web", "error")
    assert svc.problem == "no ready endpoints: no pod has the labels app=web"
    assert 'spec.selector: {"app":"web"}' in texts(svc, "spec")
    near = texts(svc, "related-object")
    assert len(near) == 2 and all(re.fullmatch(r"Pod/web-v2-\S+: labels app=web-v2", t) for t in near)


def test_a_service_whose_pods_are_not_ready_says_why_each_is_not():
    [svc] = found("network-service-unready", ServiceAnalyzer())
    assert svc.problem == "no ready endpoints: none of its 2 pods is ready"
    cited = texts(svc, "related-object")
    assert len(cited) == 2
    assert all(
        t.startswith("Pod/api-") and t.endswith("running but not ready: its readiness probe fails") for t in cited
    )


def test_a_service_whose_pods_are_still_starting_is_only_a_warning():
    state = objects("network-service-unready")
    state["events"] = [e for e in state["events"] if e["reason"] != "Unhealthy"]  # no probe has failed yet
    [svc] = found(state, ServiceAnalyzer())
    assert (svc.severity, svc.problem) == ("warning", "no ready endpoints: none of its 2 pods is ready")


def test_a_service_publishing_not_ready_addresses_is_served_as_asked():
    state = objects("network-service-unready")
    state["services"][0]["spec"]["publishNotReadyAddresses"] = True
    for s in state["endpointslices"]:
        for e in s["endpoints"]:
            e["conditions"]["ready"] = True  # what the controller writes for such a Service
    assert found(state, ServiceAnalyzer()) == []


def test_a_named_target_port_no_pod_has_is_an_error_and_an_undeclared_number_a_warning():
    by_name = {f.name: f for f in found("network-service-port", ServiceAnalyzer())}
    named_port = by_name["web-metrics"]
    assert named_port.severity == "error"
    assert named_port.problem == "port 9090 has no endpoints: no container of its pods has a port named metrics"
    assert "spec.ports[metrics].targetPort: metrics" in texts(named_port, "spec")
    assert any(t.endswith("ports app 8080/TCP (http)") for t in texts(named_port, "related-object"))
    number = by_name["web"]
    assert number.severity == "warning"
    assert number.problem == "port 80 sends traffic to 8081, which no container of its pods declares"
    assert "spec.ports[http].targetPort: 8081" in texts(number, "spec")


def test_an_undeclared_target_port_is_not_judged_when_the_pods_declare_no_ports():
    state = objects("network-service-port")
    for pod in state["pods"]:
        pod["spec"]["containers"][0].pop("ports")
    assert [f.name for f in found(state, ServiceAnalyzer())] == ["web-metrics"]


def test_a_service_whose_workload_is_scaled_to_zero_is_not_reported():
    state = objects("network-service-selector")
    [d] = state["deployments"]
    d["spec"]["replicas"] = 0
    d["spec"]["template"]["metadata"]["labels"]["app"] = "web"
    state["pods"] = []
    assert found(state, ServiceAnalyzer()) == []


def test_external_name_and_selector_less_services_are_not_judged():
    state = objects("network-service-selector")
    [svc] = state["services"]
    external = {**svc, "spec": {"type": "ExternalName", "externalName": "db.example", "selector": {"app": "web"}}}
    by_hand = {**svc, "spec": {**svc["spec"], "selector": None}}
    for variant in (external, by_hand):
        assert found({**state, "services": [variant]}, ServiceAnalyzer()) == []


def test_a_service_says_nothing_when_pods_were_not_read():
    state = objects("network-service-selector")
    del state["pods"]
    assert found(state, ServiceAnalyzer()) == []


# Ingresses


def test_ingress_references_that_do_not_resolve_are_each_named():
    found_ = found("network-ingress", IngressAnalyzer())
    problems = {(f.name, f.problem): f for f in found_}
    assert set(problems) == {
        ("shop", "backend Service api does not exist: requests routed to it fail"),
        ("shop", "backend Service web has no port 8080: requests routed to it fail"),
        ("shop", "TLS Secret api-tls does not exist: hosts api.shop.example are served without this certificate"),
        ("ghost", "IngressClass nginx does not exist: no controller serves this Ingress"),
        ("legacy", "it names no IngressClass and none is the default: no controller may serve it"),
    }
    missing = problems[("shop", "backend Service api does not exist: requests routed to it fail")]
    assert texts(missing) == [
        "spec.rules[0].http.paths[1].backend.service.name: api",
        "Service/api: not found in namespace fx-network-ingress",
    ]
    port = problems[("shop", "backend Service web has no port 8080: requests routed to it fail")]
    assert texts(port) == [
        "spec.rules[0].http.paths[2].backend.service.port.number: 8080",
        "Service/web: ports 80/TCP (http)",
    ]
    tls = next(f for f in found_ if f.problem.startswith("TLS Secret"))
    assert texts(tls) == [
        "spec.tls[1].secretName: api-tls",
        "Secret/api-tls: not found in namespace fx-network-ingress",
    ]
    assert {f.severity for f in found_ if f.name != "legacy"} == {"error"}


def test_ingress_checks_need_what_they_compare_against_to_have_been_read():
    """No Secret names, no IngressClasses, no Services read: nothing to prove a reference broken."""
    state = objects("network-ingress")
    for resource in ("secretnames", "ingressclasses", "services"):
        del state[resource]
    assert found(state, IngressAnalyzer()) == []


def test_an_ingress_without_class_is_fine_when_a_default_class_exists():
    state = objects("network-ingress")
    [cls] = state["ingressclasses"]
    cls["metadata"].setdefault("annotations", {})["ingressclass.kubernetes.io/is-default-class"] = "true"
    assert "legacy" not in {f.name for f in found(state, IngressAnalyzer())}


def test_secret_names_are_names_only():
    """The fixture holds Secrets as the reader's `secretnames` lists them: kind and name, no data."""
    for scenario in NETWORK_SCENARIOS:
        for secret in objects(scenario).get("secretnames", []):
            assert set(secret) == {"kind", "apiVersion", "metadata"} and set(secret["metadata"]) == {
                "name",
                "namespace",
            }
        assert "secrets" not in objects(scenario)


# NetworkPolicies


def test_a_policy_selecting_no_pod_and_a_deny_all_cutting_off_a_service_are_warnings():
    by_name = {f.name: f for f in found("network-netpol", NetworkPolicyAnalyzer())}
    typo = by_name["api-from-web"]
    assert (typo.severity, typo.problem) == (
        "warning",
        "it selects none of the 2 pods in its namespace: it protects nothing",
    )
    assert 'spec.podSelector: {"matchLabels":{"app":"apii"}}' in texts(typo, "spec")
    assert all(t.startswith("Pod/web-") and "app=web" in t for t in texts(typo, "related-object"))
    deny = by_name["default-deny"]
    assert deny.severity == "warning"
    assert deny.problem == "it denies all ingress to the pods of Service web, and no policy lets any traffic back in"
    assert texts(deny, "spec") == ["spec.podSelector: {}", 'spec.policyTypes: ["Ingress"]', "spec.ingress: unset"]
    assert texts(deny, "related-object") == ["Service/web: its pods are selected by no policy with an ingress rule"]


def test_a_default_deny_next_to_a_policy_allowing_traffic_back_in_says_nothing():
    state = objects("network-netpol")
    allow = named(state["networkpolicies"], "api-from-web")
    allow["spec"]["podSelector"] = {"matchLabels": {"app": "web"}}
    assert found(state, NetworkPolicyAnalyzer()) == []


def test_a_namespace_without_policies_says_nothing():
    state = objects("network-netpol")
    state["networkpolicies"] = []
    assert found(state, NetworkPolicyAnalyzer()) == []


# Webhooks


def test_a_failing_webhook_whose_service_is_missing_blocks_admission_and_is_an_error():
    [hook] = found("network-webhook", ValidatingWebhookAnalyzer())
    assert (hook.kind, hook.name, hook.severity) == ("ValidatingWebhookConfiguration", "network-fx-missing", "error")
    assert hook.problem == (
        "webhook admission.fx-network-webhook.example.com calls Service fx-network-webhook/admission, "
        "which does not exist: every request it matches is refused (failurePolicy Fail)"
    )
    assert texts(hook) == [
        "webhooks[admission.fx-network-webhook.example.com].clientConfig.service: fx-network-webhook/admission",
        "webhooks[admission.fx-network-webhook.example.com].failurePolicy: Fail",
        "Service/admission: not found in namespace fx-network-webhook",
    ]


def test_an_ignored_webhook_whose_service_has_no_ready_endpoint_is_a_warning():
    [hook] = found("network-webhook", MutatingWebhookAnalyzer())
    assert (hook.name, hook.severity) == ("network-fx-unready", "warning")
    assert hook.problem.endswith(
        "which has no ready endpoint: requests it matches pass unchecked (failurePolicy Ignore)"
    )


def test_a_webhook_says_nothing_about_a_namespace_that_was_not_read():
    state = objects("network-webhook")
    for resource in ("services", "endpointslices"):
        state[resource] = [o for o in state[resource] if o["metadata"]["namespace"] != "fx-network-webhook"]
    assert found(state, ValidatingWebhookAnalyzer(), MutatingWebhookAnalyzer()) == []


def test_a_webhook_pointing_into_a_namespace_that_is_gone_is_reported():
    state = objects("network-webhook")
    state["services"] = state["endpointslices"] = []
    state["namespaces"] = [n for n in state["namespaces"] if n["metadata"]["name"] != "fx-network-webhook"]
    hooks = found(state, ValidatingWebhookAnalyzer())
    assert {h.name for h in hooks} == {"network-fx-missing", "network-fx-ok"}
    assert "Service/admission: namespace fx-network-webhook does not exist" in texts(hooks[0]) + texts(hooks[1])
    assert "Service/policy: namespace fx-network-webhook does not exist" in texts(hooks[0]) + texts(hooks[1])


# The family as a whole


def test_a_healthy_namespace_reports_nothing_not_even_info():
    healthy = objects("network-healthy")
    assert healthy["nodes"] and healthy["networkpolicies"] and healthy["ingresses"]
    assert any(p["status"]["phase"] == "Succeeded" for p in healthy["pods"])
    assert run_analyzers([*CORE, *FAMILY], healthy) == []


def test_the_family_says_what_it_reads_and_never_reads_secrets():
    reads = {a.name: (a.resource, a.reads, a.cluster_scoped) for a in FAMILY}
    assert reads["ingress"] == ("ingresses", ("services", "ingressclasses", "secretnames", "events"), False)
    assert {name for name, (_, _, cluster) in reads.items() if cluster} == {
        "node",
        "validatingwebhook",
        "mutatingwebhook",
        "gatewayclass",
    }
    assert all("secrets" not in (resource, *r) for resource, r, _ in reads.values())
    assert len(reads) == len(FAMILY)


@pytest.mark.parametrize("scenario", NETWORK_SCENARIOS)
def test_every_network_evidence_text_was_read_not_invented(scenario):
    """Each spec/status line quotes values present in the objects (`unset` for a field that is absent),
    each event line an event's message, each related-object line names an object or says it is missing."""
    state = objects(scenario)
    blob = json.dumps(state)
    messages = {e["message"] for e in state["events"]}
    findings = run_analyzers(FAMILY, state)
    if scenario != "network-healthy":
        assert findings
    for f in findings:
        assert f.name in blob
        for e in f.evidence:
            if e.source in ("status", "spec"):
                _, shown = e.text.split(": ", 1)
                if shown in ("unset", "none") or shown.startswith(("{", "[")):
                    continue
                assert shown.split(", ")[0] in blob or shown.split("/")[-1] in blob, e
            elif e.source == "event":
                assert any(e.text.endswith(m) for m in messages), e
            else:
                assert re.match(r"^(\S+/\S+: |\.\.\. and |no pod|IngressClasses: |StorageClasses: )", e.text), e
