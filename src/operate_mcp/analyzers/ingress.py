"""Ingresses: backends that are not there (a missing Service, a port the Service does not have), a class no
controller serves, and TLS Secrets that do not exist. Secrets are known by name only (`secretnames`, never
their data); a resource that was not read proves nothing, so its checks are skipped."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from operate_mcp.analyzers.objects import KubeObject, deleting, meta, spec
from operate_mcp.analyzers.related import Related
from operate_mcp.model.finding import Evidence, Finding

CLASS_ANNOTATION = "kubernetes.io/ingress.class"  # the deprecated way to name a class, still honoured
DEFAULT_CLASS = "ingressclass.kubernetes.io/is-default-class"
SECRET_NAMES = "secretnames"  # noqa: S105  pseudo-resource: Secrets as `{kind, metadata: {name, namespace}}`, no data


class IngressAnalyzer:
    """One finding per broken reference of an Ingress: backend Service or port, IngressClass, TLS Secret."""

    name = "ingress"
    resource = "ingresses"
    cluster_scoped = False
    reads: tuple[str, ...] = ("services", "ingressclasses", SECRET_NAMES, "events")

    def analyze(self, objects: Sequence[KubeObject], related: Related) -> list[Finding]:
        return [f for ing in objects if not deleting(ing) for f in ingress_findings(ing, related)]


def _named(related: Related, resource: str, namespace: str | None) -> dict[str, KubeObject]:
    return {
        str(meta(o).get("name")): o
        for o in related.objects(resource)
        if namespace is None or meta(o).get("namespace") == namespace
    }


def backends(ing: KubeObject) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every Service backend with the field path it sits at: the default backend, then each rule's paths."""
    default = (spec(ing).get("defaultBackend") or {}).get("service")
    if isinstance(default, Mapping):
        yield "spec.defaultBackend.service", default
    for i, rule in enumerate(spec(ing).get("rules") or ()):
        for j, path in enumerate((rule.get("http") or {}).get("paths") or ()):
            service = (path.get("backend") or {}).get("service")
            if isinstance(service, Mapping):
                yield f"spec.rules[{i}].http.paths[{j}].backend.service", service


def shown_service_ports(svc: KubeObject) -> str:
    """`80/TCP (http), 443/TCP (https)`: the ports a Service offers."""
    shown = []
    for p in spec(svc).get("ports") or ():
        name = f" ({p['name']})" if p.get("name") else ""
        shown.append(f"{p.get('port')}/{p.get('protocol', 'TCP')}{name}")
    return ", ".join(shown) or "no ports"


def ingress_findings(ing: KubeObject, related: Related) -> list[Finding]:
    ns = meta(ing).get("namespace")
    events = related.events_for(ing, warning_only=True)
    findings = _class_findings(ing, related, events)
    if related.has("services"):
        services = _named(related, "services", ns)
        for at, backend in backends(ing):
            found = _backend_finding(ing, at, backend, services, ns, events)
            if found is not None:
                findings.append(found)
    if related.has(SECRET_NAMES):
        secrets = _named(related, SECRET_NAMES, ns)
        for i, tls in enumerate(spec(ing).get("tls") or ()):
            name = tls.get("secretName")
            if name and name not in secrets:
                findings.append(
                    Finding.of(
                        ing,
                        problem=f"TLS Secret {name} does not exist: hosts {', '.join(tls.get('hosts') or ['*'])} "
                        "are served without this certificate",
                        severity="error",
                        evidence=[
                            Evidence.spec(f"spec.tls[{i}].secretName", name),
                            Evidence.related("Secret", str(name), f"not found in namespace {ns}"),
                            *events,
                        ],
                    )
                )
    return findings


def _class_findings(ing: KubeObject, related: Related, events: list[Evidence]) -> list[Finding]:
    if not related.has("ingressclasses"):
        return []
    classes = _named(related, "ingressclasses", None)
    wanted = spec(ing).get("ingressClassName")
    if wanted:
        if wanted in classes:
            return []
        return [
            Finding.of(
                ing,
                problem=f"IngressClass {wanted} does not exist: no controller serves this Ingress",
                severity="error",
                evidence=[
                    Evidence.spec("spec.ingressClassName", wanted),
                    Evidence.related("IngressClass", str(wanted), "not found"),
                    *events,
                ],
            )
        ]
    if (meta(ing).get("annotations") or {}).get(CLASS_ANNOTATION):
        return []  # named the old way; the controller that owns that name decides
    if any((meta(c).get("annotations") or {}).get(DEFAULT_CLASS) == "true" for c in classes.values()):
        return []
    available = ", ".join(sorted(classes)) or "none"
    return [
        Finding.of(
            ing,
            problem="it names no IngressClass and none is the default: no controller may serve it",
            severity="warning",
            evidence=[
                Evidence.spec("spec.ingressClassName", "unset"),
                Evidence(
                    source="related-object", text=f"IngressClasses: {available}; none annotated {DEFAULT_CLASS}=true"
                ),
                *events,
            ],
        )
    ]


def _backend_finding(
    ing: KubeObject,
    at: str,
    backend: Mapping[str, Any],
    services: Mapping[str, KubeObject],
    ns: object,
    events: list[Evidence],
) -> Finding | None:
    name = str(backend.get("name") or "")
    svc = services.get(name)
    if svc is None:
        return Finding.of(
            ing,
            problem=f"backend Service {name} does not exist: requests routed to it fail",
            severity="error",
            evidence=[
                Evidence.spec(f"{at}.name", name),
                Evidence.related("Service", name, f"not found in namespace {ns}"),
                *events,
            ],
        )
    port = backend.get("port") or {}
    number, port_name = port.get("number"), port.get("name")
    offered = [p for p in spec(svc).get("ports") or () if isinstance(p, Mapping)]
    if number is not None and not any(p.get("port") == number for p in offered):
        field, value = "number", number
    elif port_name and not any(p.get("name") == port_name for p in offered):
        field, value = "name", port_name
    else:
        return None
    return Finding.of(
        ing,
        problem=f"backend Service {name} has no port {value}: requests routed to it fail",
        severity="error",
        evidence=[
            Evidence.spec(f"{at}.port.{field}", value),
            Evidence.related("Service", name, f"ports {shown_service_ports(svc)}"),
            *events,
        ],
    )
