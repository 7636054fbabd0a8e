"""`diagnose`: every analyzer over a namespace (or all of them), no model.

Reads each resource once (one list call per kind, through the in-process client), the crashed
containers' log tails, then runs the pure analyzers. What could not be read is said, and an analyzer
whose objects could not be read is not counted as run: "no findings" must mean "looked, found none".
`remediate` starts here; `operate-mcp diagnose` prints it for people and CI pipelines.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from operate_mcp.analyzers.base import Analyzer
from operate_mcp.analyzers.logs import TAIL, LogRequest, wanted_logs
from operate_mcp.analyzers.registry import ALL, resources_read, run_analyzers
from operate_mcp.analyzers.related import LOGS
from operate_mcp.kube.reader import ClusterReader, Listing, list_many
from operate_mcp.model.finding import SEVERITIES, Finding

Objects = dict[str, list[dict[str, Any]]]

# Which API group each analyzer's kind lives in when the cluster may not serve it (CRDs).
OPTIONAL_GROUPS = {"gatewayclasses", "gateways", "httproutes"}


class Diagnosis(BaseModel):
    """The stable JSON of `operate-mcp diagnose --format json` (docs/remediate.md)."""

    model_config = ConfigDict(extra="forbid")

    findings: list[Finding]
    analyzers_run: list[str]
    duration_s: float
    scope: str = Field(description="the namespace diagnosed, or 'all namespaces'")
    not_read: list[str] = Field(default_factory=list, description="what could not be read, and why")
    skipped: list[str] = Field(default_factory=list, description="analyzers not run, and why")

    @property
    def failing(self) -> bool:
        return any(f.failing for f in self.findings)


def diagnose(
    reader: ClusterReader,
    *,
    namespace: str | None,
    analyzers: Sequence[Analyzer] = ALL,
    read_logs: bool = True,
) -> Diagnosis:
    """Findings for `namespace` (None: every namespace), worst first."""
    started = time.monotonic()
    skipped: list[str] = []
    usable: list[Analyzer] = []
    for a in analyzers:
        r = reader.resource(a.resource)
        if a.resource in OPTIONAL_GROUPS and r is not None and not reader.served(r.group):
            skipped.append(f"{a.name}: the cluster does not serve {r.group}")
        else:
            usable.append(a)
    per_namespace = [a for a in usable if not a.cluster_scoped]
    cluster_wide = [a for a in usable if a.cluster_scoped]
    listed = list_many(reader, resources_read(per_namespace), namespace)
    # Cluster-scoped analyzers look at their kinds and, across all namespaces, what those point at.
    listed_everywhere = list_many(
        reader, [p for p in resources_read(cluster_wide) if namespace is not None or p not in listed], None
    )
    everywhere = {**listed, **listed_everywhere} if namespace is None else listed_everywhere
    not_read = sorted({e for lst in (*listed.values(), *everywhere.values()) if (e := lst.error)})

    by_namespace = _split(reader, listed, namespace)
    if read_logs:
        _add_logs(reader, by_namespace)
    findings: list[Finding] = []
    for objects in by_namespace.values():
        findings += run_analyzers([a for a in per_namespace if a.resource in objects], objects)
    cluster_objects = {p: lst.items for p, lst in everywhere.items() if lst.error is None}
    findings += run_analyzers([a for a in cluster_wide if a.resource in cluster_objects], cluster_objects)

    ran = [a for a in per_namespace if listed[a.resource].error is None]
    ran += [a for a in cluster_wide if everywhere[a.resource].error is None]
    skipped += [f"{a.name}: its objects could not be read" for a in usable if a not in ran]
    names = [a.name for a in ran]
    if read_logs and any(a.resource == "pods" for a in ran):
        names.append("logs")
    findings.sort(key=lambda f: (SEVERITIES.index(f.severity), f.namespace or "", f.kind, f.name))
    return Diagnosis(
        findings=findings,
        analyzers_run=names,
        duration_s=round(time.monotonic() - started, 3),
        scope=namespace or "all namespaces",
        not_read=not_read,
        skipped=skipped,
    )


def _split(reader: ClusterReader, listed: dict[str, Listing], namespace: str | None) -> dict[str, Objects]:
    """One objects map per namespace; cluster-scoped kinds (storage classes, nodes) in each. A kind that
    could not be read is absent, not empty, so analyzers can tell "none exist" from "unknown"."""
    shared = {p: lst.items for p, lst in listed.items() if lst.error is None and not reader.namespaced(p)}
    namespaced = {p: lst for p, lst in listed.items() if lst.error is None and reader.namespaced(p)}
    if namespace is not None:
        return {namespace: {**{p: lst.items for p, lst in namespaced.items()}, **shared}}
    grouped: dict[str, Objects] = defaultdict(dict)
    for plural, lst in namespaced.items():
        for item in lst.items:
            ns = str((item.get("metadata") or {}).get("namespace") or "")
            grouped[ns].setdefault(plural, []).append(item)
    for objects in grouped.values():
        for plural in namespaced:
            objects.setdefault(plural, [])
        objects.update(shared)
    return dict(grouped)


def _add_logs(reader: ClusterReader, by_namespace: dict[str, Objects]) -> None:
    """The log tails that explain crashes, read side by side, under the `logs` pseudo-resource."""
    pods = [p for objects in by_namespace.values() for p in objects.get("pods", ())]
    wanted = wanted_logs(pods)
    for objects in by_namespace.values():
        objects.setdefault(LOGS, [])
    if not wanted:
        return

    def read(w: LogRequest) -> dict[str, Any] | None:
        got = reader.logs(w.namespace, w.pod, w.container, previous=w.previous, tail=TAIL)
        if got.error is not None or not got.items:
            return None
        return {
            "kind": "ContainerLog",
            "metadata": {"namespace": w.namespace, "name": w.pod},
            "container": w.container,
            "previous": w.previous,
            "lines": got.items[0]["lines"],
        }

    with ThreadPoolExecutor(max_workers=min(8, len(wanted))) as pool:
        for w, log in zip(wanted, pool.map(read, wanted), strict=True):
            if log is not None and w.namespace in by_namespace:
                by_namespace[w.namespace][LOGS].append(log)
