"""Admission webhooks whose Service is missing or has no ready endpoint. With `failurePolicy: Fail` (the
default) every request the webhook matches is refused, which breaks deployments far from the webhook, so
that is an error; with `Ignore` the webhook is skipped silently, a warning.

Run once per cluster, over Services and EndpointSlices of every namespace the caller read. A Service is
called missing only when its namespace was visibly read (some Service or EndpointSlice of it is there) or
the namespace itself is gone (`namespaces` read, and it is not among them); otherwise nothing is said.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from operate_mcp.analyzers.objects import KubeObject, deleting, meta
from operate_mcp.analyzers.related import Related
from operate_mcp.analyzers.service import judged, ready_endpoints
from operate_mcp.model.finding import Evidence, Finding, Severity


class ValidatingWebhookAnalyzer:
    name = "validatingwebhook"
    resource = "validatingwebhookconfigurations"
    cluster_scoped = True
    reads: tuple[str, ...] = ("services", "endpointslices", "namespaces")

    def analyze(self, objects: Sequence[KubeObject], related: Related) -> list[Finding]:
        return [f for config in objects for f in webhook_findings(config, related)]


class MutatingWebhookAnalyzer:
    name = "mutatingwebhook"
    resource = "mutatingwebhookconfigurations"
    cluster_scoped = True
    reads: tuple[str, ...] = ("services", "endpointslices", "namespaces")

    def analyze(self, objects: Sequence[KubeObject], related: Related) -> list[Finding]:
        return [f for config in objects for f in webhook_findings(config, related)]


def _seen_namespaces(related: Related) -> set[str]:
    return {str(meta(o).get("namespace")) for r in ("services", "endpointslices") for o in related.objects(r)}


def webhook_findings(config: KubeObject, related: Related) -> list[Finding]:
    if deleting(config) or not related.has("services"):
        return []
    seen = _seen_namespaces(related)
    existing = {str(meta(n).get("name")) for n in related.objects("namespaces")}
    findings: list[Finding] = []
    for i, hook in enumerate(config.get("webhooks") or ()):
        ref = (hook.get("clientConfig") or {}).get("service")
        if not isinstance(ref, Mapping):
            continue  # a URL: nothing in the cluster to check
        ns, name = str(ref.get("namespace", "")), str(ref.get("name", ""))
        gone = related.has("namespaces") and ns not in existing
        if ns not in seen and not gone:
            continue  # that namespace was not read: its Service may well be there
        svc = next(
            (s for s in related.objects("services") if meta(s).get("namespace") == ns and meta(s).get("name") == name),
            None,
        )
        if svc is None:
            where = f"namespace {ns} does not exist" if gone else f"not found in namespace {ns}"
            findings.append(
                _finding(
                    config,
                    i,
                    hook,
                    f"calls Service {ns}/{name}, which does not exist",
                    [Evidence.related("Service", name, where)],
                )
            )
            continue
        if judged(svc) and ready_endpoints(svc, related) == 0:  # selector-less: endpoints kept by hand
            findings.append(
                _finding(
                    config,
                    i,
                    hook,
                    f"calls Service {ns}/{name}, which has no ready endpoint",
                    [Evidence.related("Service", name, f"no ready endpoint in its EndpointSlices (namespace {ns})")],
                )
            )
    return findings


def _finding(config: KubeObject, i: int, hook: Mapping[str, Any], what: str, evidence: list[Evidence]) -> Finding:
    policy = str(hook.get("failurePolicy") or "Fail")
    severity: Severity = "error" if policy == "Fail" else "warning"
    effect = "every request it matches is refused" if policy == "Fail" else "requests it matches pass unchecked"
    ref = (hook.get("clientConfig") or {}).get("service") or {}
    at = f"webhooks[{hook.get('name') or i}]"
    return Finding.of(
        config,
        problem=f"webhook {hook.get('name')} {what}: {effect} (failurePolicy {policy})",
        severity=severity,
        evidence=[
            Evidence.spec(f"{at}.clientConfig.service", f"{ref.get('namespace')}/{ref.get('name')}"),
            Evidence.spec(f"{at}.failurePolicy", policy),
            *evidence,
        ],
    )
