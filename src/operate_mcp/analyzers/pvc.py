"""PersistentVolumeClaims: Pending for a reason (a StorageClass that does not exist, no default class, a
provisioner that fails or never answers) and Lost. A claim whose class binds on first consumer and that
no pod has been scheduled with yet is waiting as designed: nothing to say (an unschedulable pod is the
pod's finding)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from operate_mcp.analyzers.objects import KubeObject, deleting, meta, spec, status
from operate_mcp.analyzers.pod import pod_findings
from operate_mcp.analyzers.related import Related
from operate_mcp.model.finding import Evidence, Finding

DEFAULT_CLASS = ("storageclass.kubernetes.io/is-default-class", "storageclass.beta.kubernetes.io/is-default-class")
SELECTED_NODE = "volume.kubernetes.io/selected-node"  # set by the scheduler once a consumer is placed
FAILING = ("ProvisioningFailed", "FailedBinding", "ClaimLost")
MAX_PODS_CITED = 3


class PVCAnalyzer:
    """Pending claims that will not bind by themselves, and Lost claims."""

    name = "pvc"
    resource = "persistentvolumeclaims"
    cluster_scoped = False
    reads: tuple[str, ...] = ("storageclasses", "events", "pods")

    def analyze(self, objects: Sequence[KubeObject], related: Related) -> list[Finding]:
        return [f for pvc in objects if (f := pvc_finding(pvc, related)) is not None]


def is_default(sc: KubeObject) -> bool:
    annotations = meta(sc).get("annotations") or {}
    return any(annotations.get(k) == "true" for k in DEFAULT_CLASS)


def pvc_finding(pvc: KubeObject, related: Related) -> Finding | None:
    phase = status(pvc).get("phase")
    if deleting(pvc):
        return None
    if phase == "Lost":
        return _lost(pvc, related)
    if phase != "Pending":
        return None
    wanted = spec(pvc).get("storageClassName")
    classes = {str(meta(sc).get("name")): sc for sc in related.objects("storageclasses")}
    events = related.events_for(pvc, reasons=(*FAILING, "ExternalProvisioning", "Provisioning"), limit=2)
    pods = _pods_cited(pvc, related)
    if wanted and related.has("storageclasses") and wanted not in classes:
        return Finding.of(
            pvc,
            problem=f"Pending: StorageClass {wanted} does not exist",
            severity="error",
            evidence=[
                Evidence.status("status.phase", phase),
                Evidence.spec("spec.storageClassName", wanted),
                Evidence.related("StorageClass", str(wanted), "not found"),
                *events,
                *pods,
            ],
        )
    if wanted is None and related.has("storageclasses") and not any(is_default(sc) for sc in classes.values()):
        return Finding.of(
            pvc,
            problem="Pending: it names no StorageClass and the cluster has no default one; "
            "only a matching PersistentVolume made by hand can bind it",
            severity="warning",
            evidence=[
                Evidence.status("status.phase", phase),
                Evidence.spec("spec.storageClassName", "unset"),
                Evidence(
                    source="related-object",
                    text=f"StorageClasses: {', '.join(sorted(classes)) or 'none'}; none is the default",
                ),
                *events,
                *pods,
            ],
        )
    sc = classes.get(str(wanted)) if wanted else next((c for c in classes.values() if is_default(c)), None)
    first_consumer = sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer"
    if first_consumer and not (meta(pvc).get("annotations") or {}).get(SELECTED_NODE):
        return None  # binds when its first pod is scheduled: waiting is the design
    failing = related.events_for(pvc, warning_only=True, reasons=FAILING, limit=2)
    if failing:
        return Finding.of(
            pvc,
            problem="Pending: its volume cannot be provisioned",
            severity="error",
            evidence=[Evidence.status("status.phase", phase), *failing, *pods],
        )
    waiting = related.events_for(pvc, reasons=("ExternalProvisioning",), limit=1)
    if waiting and sc is not None:
        return Finding.of(
            pvc,
            problem=f"Pending: waiting for provisioner {sc.get('provisioner')} to create its volume",
            severity="warning",
            evidence=[
                Evidence.status("status.phase", phase),
                Evidence.related("StorageClass", str(meta(sc).get("name")), f"provisioner {sc.get('provisioner')}"),
                *waiting,
                *pods,
            ],
        )
    return None  # just created, or bound by hand soon: no event says otherwise


def _lost(pvc: KubeObject, related: Related) -> Finding:
    volume = spec(pvc).get("volumeName")
    evidence = [Evidence.status("status.phase", "Lost")]
    if volume:
        evidence.append(Evidence.spec("spec.volumeName", volume))
    return Finding.of(
        pvc,
        problem=f"Lost: its PersistentVolume {volume} is gone" if volume else "Lost: its PersistentVolume is gone",
        severity="error",
        evidence=[*evidence, *related.events_for(pvc, warning_only=True, limit=2), *_pods_cited(pvc, related)],
    )


def claimants(pvc: KubeObject, related: Related) -> list[KubeObject]:
    """Pods whose volumes name this claim."""
    m = meta(pvc)
    return sorted(
        (
            p
            for p in related.objects("pods")
            if meta(p).get("namespace") == m.get("namespace")
            and any(
                isinstance(v, Mapping) and (v.get("persistentVolumeClaim") or {}).get("claimName") == m.get("name")
                for v in spec(p).get("volumes") or ()
            )
        ),
        key=lambda p: str(meta(p).get("name", "")),
    )


def _pods_cited(pvc: KubeObject, related: Related) -> list[Evidence]:
    cited = []
    for pod in claimants(pvc, related)[:MAX_PODS_CITED]:
        for f in pod_findings(pod, related)[:1]:
            cited.append(Evidence.related("Pod", f.name, f.problem))
    return cited
