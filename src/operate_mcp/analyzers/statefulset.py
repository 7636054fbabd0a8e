"""StatefulSets: replicas not ready (with the pods and the Pending claims that show why), a governing
Service that does not exist, and volume claim templates naming a StorageClass that does not exist."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from operate_mcp.analyzers.deployment import pods_cited
from operate_mcp.analyzers.objects import KubeObject, deleting, meta, spec, status
from operate_mcp.analyzers.related import Related
from operate_mcp.model.finding import Evidence, Finding, Severity


class StatefulSetAnalyzer:
    """An empty list of services or storageclasses means they were read and none exist, so a name missing
    from it is missing from the cluster; a resource not read at all (forbidden) proves nothing."""

    name = "statefulset"
    resource = "statefulsets"
    cluster_scoped = False
    reads: tuple[str, ...] = ("pods", "events", "services", "persistentvolumeclaims", "storageclasses")

    def analyze(self, objects: Sequence[KubeObject], related: Related) -> list[Finding]:
        findings: list[Finding] = []
        for sts in objects:
            if deleting(sts):
                continue
            findings += _missing_storage_classes(sts, related)
            service = _missing_service(sts, related)
            if service is not None:
                findings.append(service)
            unready = _unready(sts, related)
            if unready is not None:
                findings.append(unready)
        return findings


def _names(related: Related, resource: str) -> set[str]:
    return {str(meta(o).get("name")) for o in related.objects(resource)}


def _templates(sts: KubeObject) -> list[Mapping[str, object]]:
    return [t for t in spec(sts).get("volumeClaimTemplates") or () if isinstance(t, Mapping)]


def _template_name(template: Mapping[str, object]) -> str:
    m = template.get("metadata")
    return str(m.get("name")) if isinstance(m, Mapping) else ""


def _unready(sts: KubeObject, related: Related) -> Finding | None:
    want = spec(sts).get("replicas", 1)
    if not isinstance(want, int) or want == 0:
        return None
    s = status(sts)
    ready = int(s.get("readyReplicas") or 0)
    if ready >= want:
        return None
    severity: Severity = "critical" if ready == 0 else "warning"
    evidence = [
        Evidence.status("status.readyReplicas", ready),
        Evidence.status("status.replicas", int(s.get("replicas") or 0)),
    ]
    if s.get("updateRevision") and s.get("currentRevision") != s.get("updateRevision"):
        evidence.append(Evidence.status("status.updateRevision", s["updateRevision"]))
    evidence += related.events_for(sts, warning_only=True)
    evidence += pods_cited(sts, related)
    evidence += _pending_claims(sts, related)
    return Finding.of(sts, problem=f"{ready} of {want} replicas ready", severity=severity, evidence=evidence)


def _pending_claims(sts: KubeObject, related: Related) -> list[Evidence]:
    """The claims its pods wait for: `<template>-<statefulset>-<ordinal>`, still Pending."""
    name = meta(sts).get("name")
    patterns = [re.compile(rf"{re.escape(_template_name(t))}-{re.escape(str(name))}-\d+") for t in _templates(sts)]
    cited: list[Evidence] = []
    for pvc in sorted(related.objects("persistentvolumeclaims"), key=lambda p: str(meta(p).get("name"))):
        claim = str(meta(pvc).get("name"))
        if status(pvc).get("phase") != "Pending" or not any(p.fullmatch(claim) for p in patterns):
            continue
        cited.append(Evidence.related("PersistentVolumeClaim", claim, "status.phase: Pending"))
        cited += related.events_for(pvc, warning_only=True, name_object=True, limit=1)
    return cited


def _missing_service(sts: KubeObject, related: Related) -> Finding | None:
    service = spec(sts).get("serviceName")
    if not service or not related.has("services") or service in _names(related, "services"):
        return None
    return Finding.of(
        sts,
        problem=f"its governing Service {service} does not exist: its pods get no stable DNS names",
        severity="warning",
        evidence=[
            Evidence.spec("spec.serviceName", service),
            Evidence.related("Service", str(service), f"not found in namespace {meta(sts).get('namespace')}"),
        ],
    )


def _missing_storage_classes(sts: KubeObject, related: Related) -> list[Finding]:
    if not related.has("storageclasses"):
        return []
    classes = _names(related, "storageclasses")
    findings: list[Finding] = []
    for template in _templates(sts):
        tspec = template.get("spec")
        wanted = tspec.get("storageClassName") if isinstance(tspec, Mapping) else None
        if not wanted or wanted in classes:  # unset: the default class; "": no dynamic provisioning
            continue
        tname = _template_name(template)
        findings.append(
            Finding.of(
                sts,
                problem=f"volume claim template {tname} names StorageClass {wanted}, which does not exist: "
                "its claims cannot be provisioned",
                severity="error",
                evidence=[
                    Evidence.spec(f"spec.volumeClaimTemplates[{tname}].spec.storageClassName", wanted),
                    Evidence.related("StorageClass", str(wanted), "not found"),
                ],
            )
        )
    return findings
