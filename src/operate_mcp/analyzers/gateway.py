"""Gateway API (gateway.networking.k8s.io/v1): a GatewayClass its controller does not accept, a Gateway that
is not accepted or not programmed or names a missing class, an HTTPRoute whose parent Gateway or backend
Service is missing, or whose status says it is not accepted or its references do not resolve.

Conditions written for an older generation of the object (`observedGeneration` behind
`metadata.generation`) are not evidence: the controller has not judged the current spec yet. References
into a namespace that was not read are not judged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from operate_mcp.analyzers.ingress import shown_service_ports
from operate_mcp.analyzers.objects import KubeObject, deleting, meta, shown_condition, spec, status
from operate_mcp.analyzers.related import Related
from operate_mcp.model.finding import Evidence, Finding

GROUP = "gateway.networking.k8s.io"


class GatewayClassAnalyzer:
    name = "gatewayclass"
    resource = "gatewayclasses"
    cluster_scoped = True
    reads: tuple[str, ...] = ()

    def analyze(self, objects: Sequence[KubeObject], related: Related) -> list[Finding]:
        findings = []
        for gc in objects:
            failing = _failing(gc, gc.get("status"), "status", ("Accepted",))
            if failing and not deleting(gc):
                (_, c, _), *_ = failing
                findings.append(
                    Finding.of(
                        gc,
                        problem=f"not accepted by controller {spec(gc).get('controllerName')}: {_why(c)}",
                        severity="error",
                        evidence=[e for _, _, e in failing],
                    )
                )
        return findings


class GatewayAnalyzer:
    name = "gateway"
    resource = "gateways"
    cluster_scoped = False
    reads: tuple[str, ...] = ("gatewayclasses", "events")

    def analyze(self, objects: Sequence[KubeObject], related: Related) -> list[Finding]:
        return [f for gw in objects if not deleting(gw) and (f := gateway_finding(gw, related)) is not None]


class HTTPRouteAnalyzer:
    name = "httproute"
    resource = "httproutes"
    cluster_scoped = False
    reads: tuple[str, ...] = ("gateways", "services")

    def analyze(self, objects: Sequence[KubeObject], related: Related) -> list[Finding]:
        return [f for route in objects if not deleting(route) for f in route_findings(route, related)]


def _why(c: Mapping[str, Any]) -> str:
    return ": ".join(str(x) for x in (c.get("reason"), c.get("message")) if x) or "no reason given"


def _failing(
    obj: KubeObject, holder: object, at: str, kinds: Sequence[str]
) -> list[tuple[str, Mapping[str, Any], Evidence]]:
    """The conditions of `kinds` in `holder` that are False for the object's current generation."""
    if not isinstance(holder, Mapping):
        return []
    generation = meta(obj).get("generation")
    found = []
    for c in holder.get("conditions") or ():
        if not isinstance(c, Mapping) or c.get("type") not in kinds or c.get("status") != "False":
            continue
        observed = c.get("observedGeneration")
        if isinstance(generation, int) and isinstance(observed, int) and observed < generation:
            continue
        found.append((str(c["type"]), c, Evidence.status(f"{at}.conditions[{c['type']}]", shown_condition(c))))
    return found


def gateway_finding(gw: KubeObject, related: Related) -> Finding | None:
    wanted = spec(gw).get("gatewayClassName")
    events = related.events_for(gw, warning_only=True, limit=2)
    classes = {str(meta(c).get("name")) for c in related.objects("gatewayclasses")}
    if wanted and related.has("gatewayclasses") and wanted not in classes:
        return Finding.of(
            gw,
            problem=f"GatewayClass {wanted} does not exist: no controller programs this Gateway",
            severity="error",
            evidence=[
                Evidence.spec("spec.gatewayClassName", wanted),
                Evidence.related("GatewayClass", str(wanted), "not found"),
                *events,
            ],
        )
    failing = _failing(gw, gw.get("status"), "status", ("Accepted", "Programmed"))
    if not failing:
        return None
    kind, c, _ = failing[0]
    what = "not accepted" if kind == "Accepted" else "not programmed"
    return Finding.of(
        gw, problem=f"{what}: {_why(c)}", severity="error", evidence=[*(e for _, _, e in failing), *events]
    )


def _refs(route: KubeObject) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for i, rule in enumerate(spec(route).get("rules") or ()):
        for j, ref in enumerate(rule.get("backendRefs") or ()):
            if isinstance(ref, Mapping):
                yield f"spec.rules[{i}].backendRefs[{j}]", ref


def route_findings(route: KubeObject, related: Related) -> list[Finding]:
    ns = str(meta(route).get("namespace", ""))
    parents: list[Finding] = []
    backends: list[Finding] = []
    if related.has("gateways"):
        gateways = {(str(meta(g).get("namespace")), str(meta(g).get("name"))) for g in related.objects("gateways")}
        read = {n for n, _ in gateways} | {ns}
        for i, ref in enumerate(spec(route).get("parentRefs") or ()):
            if ref.get("kind", "Gateway") != "Gateway" or ref.get("group", GROUP) != GROUP:
                continue
            where = str(ref.get("namespace") or ns)
            if where in read and (where, str(ref.get("name"))) not in gateways:
                parents.append(
                    Finding.of(
                        route,
                        problem=f"parent Gateway {where}/{ref.get('name')} does not exist: the route is not served",
                        severity="error",
                        evidence=[
                            Evidence.spec(f"spec.parentRefs[{i}].name", ref.get("name")),
                            Evidence.related("Gateway", str(ref.get("name")), f"not found in namespace {where}"),
                        ],
                    )
                )
    if related.has("services"):
        services = {(str(meta(s).get("namespace")), str(meta(s).get("name"))): s for s in related.objects("services")}
        read = {n for n, _ in services} | {ns}
        for at, ref in _refs(route):
            if ref.get("kind", "Service") != "Service" or ref.get("group", "") not in ("", "core"):
                continue
            where, name = str(ref.get("namespace") or ns), str(ref.get("name"))
            svc = services.get((where, name))
            if where in read and svc is None:
                backends.append(
                    Finding.of(
                        route,
                        problem=f"backend Service {name} does not exist: requests routed to it fail",
                        severity="error",
                        evidence=[
                            Evidence.spec(f"{at}.name", name),
                            Evidence.related("Service", name, f"not found in namespace {where}"),
                        ],
                    )
                )
            elif (
                svc is not None
                and ref.get("port") is not None
                and not any(p.get("port") == ref.get("port") for p in spec(svc).get("ports") or ())
            ):
                backends.append(
                    Finding.of(
                        route,
                        problem=f"backend Service {name} has no port {ref.get('port')}: requests routed to it fail",
                        severity="error",
                        evidence=[
                            Evidence.spec(f"{at}.port", ref.get("port")),
                            Evidence.related("Service", name, f"ports {shown_service_ports(svc)}"),
                        ],
                    )
                )
    return [*parents, *backends, *_status_findings(route, parents, backends)]


def _status_findings(route: KubeObject, parents: list[Finding], backends: list[Finding]) -> list[Finding]:
    """What the Gateway controllers wrote in `status.parents`; a condition the spec already explains joins
    that finding as evidence instead of making a second one."""
    findings: list[Finding] = []
    for k, parent in enumerate(status(route).get("parents") or ()):
        ref = parent.get("parentRef") or {}
        for kind, c, evidence in _failing(route, parent, f"status.parents[{k}]", ("Accepted", "ResolvedRefs")):
            explained = parents if kind == "Accepted" else backends
            if explained:
                explained[0].evidence.append(evidence)
                continue
            what = "not accepted by" if kind == "Accepted" else "has references that do not resolve on"
            findings.append(
                Finding.of(
                    route,
                    problem=f"{what} Gateway {ref.get('name')}: {_why(c)}",
                    severity="error",
                    evidence=[evidence],
                )
            )
    return findings
