"""The Gateway API analyzers (GatewayClass, Gateway, HTTPRoute). The test bed serves no Gateway API CRDs and
runs no Gateway controller, so every object here is hand-built in the shape gateway.networking.k8s.io/v1
returns (conditions as a controller such as Envoy Gateway writes them)."""

from __future__ import annotations

from typing import Any

from operate_mcp.analyzers.gateway import GatewayAnalyzer, GatewayClassAnalyzer, HTTPRouteAnalyzer
from operate_mcp.analyzers.registry import run_analyzers
from operate_mcp.model.finding import Finding

NS = "shop"
GROUP = "gateway.networking.k8s.io/v1"


def cond(kind: str, status: str, reason: str, message: str, generation: int = 1) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": "2026-11-30T01:00:00Z",
    }


def gateway_class(name: str = "eg", *conditions: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": GROUP,
        "kind": "GatewayClass",
        "metadata": {"name": name, "generation": 1},
        "spec": {"controllerName": "gateway.envoyproxy.io/gatewayclass-controller"},
        "status": {"conditions": list(conditions) or [cond("Accepted", "True", "Accepted", "Valid GatewayClass")]},
    }


def gateway(name: str = "web", cls: str = "eg", *conditions: dict[str, Any], generation: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": GROUP,
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": NS, "generation": generation},
        "spec": {"gatewayClassName": cls, "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
        "status": {
            "conditions": list(conditions)
            or [
                cond("Accepted", "True", "Accepted", "accepted"),
                cond("Programmed", "True", "Programmed", "programmed"),
            ]
        },
    }


def service(name: str = "web", port: int = 80) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": port, "protocol": "TCP"}]},
    }


def route(parent: str = "web", backend: str = "web", port: int = 80, *conditions: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": GROUP,
        "kind": "HTTPRoute",
        "metadata": {"name": "shop", "namespace": NS, "generation": 1},
        "spec": {"parentRefs": [{"name": parent}], "rules": [{"backendRefs": [{"name": backend, "port": port}]}]},
        "status": {
            "parents": [
                {
                    "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": parent},
                    "controllerName": "gateway.envoyproxy.io/gatewayclass-controller",
                    "conditions": list(conditions)
                    or [
                        cond("Accepted", "True", "Accepted", "Route is accepted"),
                        cond("ResolvedRefs", "True", "ResolvedRefs", "Resolved all the Object references"),
                    ],
                }
            ]
        },
    }


def texts(f: Finding) -> list[str]:
    return [e.text for e in f.evidence]


def healthy() -> dict[str, list[dict[str, Any]]]:
    return {
        "gatewayclasses": [gateway_class()],
        "gateways": [gateway()],
        "httproutes": [route()],
        "services": [service()],
        "events": [],
    }


ALL = [GatewayClassAnalyzer(), GatewayAnalyzer(), HTTPRouteAnalyzer()]


def test_accepted_classes_programmed_gateways_and_resolved_routes_report_nothing():
    assert run_analyzers(ALL, healthy()) == []


def test_a_gateway_class_its_controller_rejects_is_an_error():
    rejected = gateway_class(
        "eg", cond("Accepted", "False", "InvalidParameters", 'parametersRef: EnvoyProxy "proxy-config" not found')
    )
    [f] = run_analyzers([GatewayClassAnalyzer()], {"gatewayclasses": [rejected]})
    assert f.severity == "error"
    assert f.problem == (
        "not accepted by controller gateway.envoyproxy.io/gatewayclass-controller: "
        'InvalidParameters: parametersRef: EnvoyProxy "proxy-config" not found'
    )
    assert texts(f) == [
        'status.conditions[Accepted]: False (InvalidParameters): parametersRef: EnvoyProxy "proxy-config" not found'
    ]


def test_a_gateway_naming_a_missing_class_is_an_error():
    state = {**healthy(), "gateways": [gateway("web", "nginx")]}
    [f] = run_analyzers([GatewayAnalyzer()], state)
    assert f.problem == "GatewayClass nginx does not exist: no controller programs this Gateway"
    assert texts(f) == ["spec.gatewayClassName: nginx", "GatewayClass/nginx: not found"]


def test_a_gateway_not_programmed_quotes_reason_and_message():
    broken = gateway(
        "web",
        "eg",
        cond("Accepted", "True", "Accepted", "accepted"),
        cond("Programmed", "False", "AddressNotAssigned", "No addresses have been assigned to the Gateway"),
    )
    [f] = run_analyzers([GatewayAnalyzer()], {**healthy(), "gateways": [broken]})
    assert f.problem == "not programmed: AddressNotAssigned: No addresses have been assigned to the Gateway"
    assert texts(f) == [
        "status.conditions[Programmed]: False (AddressNotAssigned): No addresses have been assigned to the Gateway"
    ]


def test_conditions_written_for_an_older_generation_are_not_evidence():
    stale = gateway(
        "web", "eg", cond("Programmed", "False", "Invalid", "listener port 70000 invalid", generation=1), generation=2
    )
    assert run_analyzers([GatewayAnalyzer()], {**healthy(), "gateways": [stale]}) == []


def test_a_route_to_a_missing_gateway_and_a_missing_service_names_both_and_folds_in_its_status():
    broken = route(
        "edge",
        "api",
        80,
        cond("Accepted", "False", "NoMatchingParent", "No listeners match this parent ref"),
        cond("ResolvedRefs", "False", "BackendNotFound", "Service shop/api not found"),
    )
    found = {f.problem: f for f in run_analyzers([HTTPRouteAnalyzer()], {**healthy(), "httproutes": [broken]})}
    assert set(found) == {
        "parent Gateway shop/edge does not exist: the route is not served",
        "backend Service api does not exist: requests routed to it fail",
    }
    parent = found["parent Gateway shop/edge does not exist: the route is not served"]
    assert texts(parent) == [
        "spec.parentRefs[0].name: edge",
        "Gateway/edge: not found in namespace shop",
        "status.parents[0].conditions[Accepted]: False (NoMatchingParent): No listeners match this parent ref",
    ]
    backend = found["backend Service api does not exist: requests routed to it fail"]
    assert texts(backend)[0] == "spec.rules[0].backendRefs[0].name: api"
    assert texts(backend)[-1] == (
        "status.parents[0].conditions[ResolvedRefs]: False (BackendNotFound): Service shop/api not found"
    )


def test_a_route_to_a_port_the_service_lacks_is_an_error():
    [f] = run_analyzers([HTTPRouteAnalyzer()], {**healthy(), "httproutes": [route("web", "web", 8080)]})
    assert f.problem == "backend Service web has no port 8080: requests routed to it fail"
    assert texts(f) == ["spec.rules[0].backendRefs[0].port: 8080", "Service/web: ports 80/TCP (http)"]


def test_a_route_condition_nothing_in_the_spec_explains_is_reported_on_its_own():
    refused = route(
        "web",
        "web",
        80,
        cond(
            "Accepted",
            "False",
            "NotAllowedByListeners",
            "No listeners included by this parent ref allowed this attachment.",
        ),
    )
    [f] = run_analyzers([HTTPRouteAnalyzer()], {**healthy(), "httproutes": [refused]})
    assert f.problem == (
        "not accepted by Gateway web: NotAllowedByListeners: No listeners included by this parent "
        "ref allowed this attachment."
    )


def test_references_into_namespaces_or_kinds_not_read_are_not_judged():
    elsewhere = route("web", "web")
    elsewhere["spec"]["parentRefs"] = [{"name": "shared", "namespace": "infra"}]
    elsewhere["spec"]["rules"][0]["backendRefs"] = [{"name": "api", "namespace": "backend", "port": 80}]
    state = {"httproutes": [elsewhere, route("edge", "api")]}  # gateways and services not read at all
    assert run_analyzers([HTTPRouteAnalyzer()], {**state}) == []
    assert run_analyzers([HTTPRouteAnalyzer()], {**healthy(), "httproutes": [elsewhere]}) == []
