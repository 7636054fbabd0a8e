"""Capability recognition from discovery output, and what a re-scan changes."""

from __future__ import annotations

from operate_mcp.knowledge.capabilities import (
    CATALOG,
    Discovery,
    diff,
    parse_api_resources,
    parse_crds,
    recognise,
)

ROWS = [
    ("NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND", "VERBS", "CATEGORIES"),
    ("bindings", "", "v1", "true", "Binding", "create", ""),
    ("namespaces", "ns", "v1", "false", "Namespace", "get,list", ""),
    ("horizontalpodautoscalers", "hpa", "autoscaling/v2", "true", "HorizontalPodAutoscaler", "get,list", "all"),
    ("nodes", "", "metrics.k8s.io/v1beta1", "false", "NodeMetrics", "get,list", ""),
    ("pods", "", "metrics.k8s.io/v1beta1", "true", "PodMetrics", "get,list", ""),
    ("scaledobjects", "so", "keda.sh/v1alpha1", "true", "ScaledObject", "get,list", "all"),
    ("backups", "", "velero.io/v1", "true", "Backup", "get,list", ""),
    ("httproutes", "", "gateway.networking.k8s.io/v1", "true", "HTTPRoute", "get,list", ""),
    ("widgets", "wd", "example.com/v1", "true", "Widget", "get,list", ""),
]


def tabwriter(rows: list[tuple[str, ...]]) -> str:
    """Columns padded as kubectl's tabwriter pads them (3 spaces); SHORTNAMES and CATEGORIES are often empty."""
    widths = [max(len(r[i]) for r in rows) + 3 for i in range(len(rows[0]))]
    return "\n".join("".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows) + "\n"


API_RESOURCES = tabwriter(ROWS)


def _crds(*specs: tuple[str, str, str]) -> list[dict[str, object]]:
    return [{"name": f"{plural}.{group}", "group": group, "kind": kind, "versions": ["v1"]} for plural, group, kind in
            specs]


def test_api_resources_are_read_by_column_even_when_cells_are_empty() -> None:
    rows = parse_api_resources(API_RESOURCES)
    by_name = {r.full_name: r for r in rows}
    assert by_name["bindings"].group == "" and by_name["bindings"].version == "v1"
    assert by_name["scaledobjects.keda.sh"].kind == "ScaledObject" and by_name["scaledobjects.keda.sh"].namespaced
    assert by_name["namespaces"].namespaced is False
    assert by_name["pods.metrics.k8s.io"].version == "v1beta1"
    assert parse_api_resources("") == []


def test_crd_list_is_read_from_json() -> None:
    text = ('{"items": [{"metadata": {"name": "backups.velero.io"}, "spec": {"group": "velero.io", '
            '"names": {"kind": "Backup", "plural": "backups"}, "versions": [{"name": "v1", "served": true}]}}]}')
    assert parse_crds(text) == [{"name": "backups.velero.io", "group": "velero.io", "kind": "Backup",
                                 "versions": ["v1"]}]


def test_known_addons_are_recognised_by_group_or_crd_and_unknown_crds_are_grouped() -> None:
    discovery = Discovery(
        resources=parse_api_resources(API_RESOURCES),
        crds=_crds(("scaledobjects", "keda.sh", "ScaledObject"), ("backups", "velero.io", "Backup"),
                   ("schedules", "velero.io", "Schedule"), ("widgets", "example.com", "Widget"),
                   ("applications", "argoproj.io", "Application"), ("rollouts", "argoproj.io", "Rollout")),
    )
    found = {c.id: c for c in recognise(discovery)}
    assert {"keda", "velero", "metrics-server", "gateway-api", "argo-cd", "argo-rollouts"} <= set(found)
    assert found["velero"].resources == ["backups.velero.io", "schedules.velero.io"]
    assert found["keda"].known and "scale to zero" in found["keda"].enables
    assert found["argo-cd"].resources == ["applications.argoproj.io"]
    widget = found["crd:example.com"]
    assert not widget.known and "Widget" in widget.description
    assert "istio" not in found and "kyverno" not in found


def test_the_catalog_covers_the_well_known_addons() -> None:
    ids = {a.id for a in CATALOG}
    assert {"keda", "vpa", "metrics-server", "prometheus-operator", "cert-manager", "velero", "cloudnative-pg",
            "kyverno", "gatekeeper", "argo-cd", "flux", "istio", "gateway-api"} <= ids


def test_a_rescan_reports_added_changed_removed_and_unchanged() -> None:
    first = recognise(Discovery(crds=_crds(("scaledobjects", "keda.sh", "ScaledObject"),
                                           ("backups", "velero.io", "Backup"))))
    second = recognise(Discovery(crds=_crds(("scaledobjects", "keda.sh", "ScaledObject"),
                                            ("backups", "velero.io", "Backup"), ("schedules", "velero.io", "Schedule"),
                                            ("certificates", "cert-manager.io", "Certificate"))))
    report = diff(first, second)
    assert report.added == ["cert-manager"] and report.changed == ["velero"] and report.unchanged == ["keda"]
    third = diff(second, recognise(Discovery(crds=_crds(("backups", "velero.io", "Backup")))))
    assert third.removed == ["cert-manager", "keda"] and third.changed == ["velero"]
