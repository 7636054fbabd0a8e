"""Risk tiers in code: how much human approval a proposal needs, and why."""

from __future__ import annotations

from collections.abc import Sequence

from operate_mcp.config import Settings
from operate_mcp.errors import CommandRejected
from operate_mcp.kube.commands import ProposedCommand, parse_kubectl
from operate_mcp.kube.targets import targets_of
from operate_mcp.workflows.proposal import ObservedObject, PolicyCheck, RiskAssessment, RiskTier

ORDER = [RiskTier.TRIVIAL, RiskTier.LOW, RiskTier.MEDIUM, RiskTier.CRITICAL]

SENSITIVE = {
    "secrets": "Secrets",
    "roles": "RBAC",
    "rolebindings": "RBAC",
    "clusterroles": "RBAC",
    "clusterrolebindings": "RBAC",
    "serviceaccounts": "service accounts",
    "namespaces": "namespaces",
    "customresourcedefinitions": "CRDs",
    "nodes": "nodes",
    "validatingwebhookconfigurations": "admission webhooks",
    "mutatingwebhookconfigurations": "admission webhooks",
    "persistentvolumes": "persistent volumes",
    "persistentvolumeclaims": "persistent volume claims",
}
TRIVIAL_COMMANDS = {"rollout restart", "rollout status", "rollout history", "annotate", "label"}
MAX_LOW_SCALE_DELTA = 2


def _replicas(argv: Sequence[str]) -> int | None:
    for token in argv:
        if token.startswith("--replicas="):
            try:
                return int(token.split("=", 1)[1])
            except ValueError:
                return None
    return None


def _command_tier(
    cmd: ProposedCommand, observed: dict[tuple[str, str | None], ObservedObject], production: set[str]
) -> tuple[RiskTier, str]:
    try:
        parsed = parse_kubectl(cmd.argv)
    except CommandRejected as exc:
        return RiskTier.CRITICAL, f"unparseable command: {exc}"
    what = parsed.command
    for resource in parsed.resource_types:  # named or not: `label secrets --all` touches Secrets too
        if resource in SENSITIVE:
            return RiskTier.CRITICAL, f"`{what}` touches {SENSITIVE[resource]}"
    if parsed.all_namespaces:
        return RiskTier.CRITICAL, f"`{what}` acts across all namespaces"
    for target in targets_of(cmd):
        if target.resource in SENSITIVE:
            return RiskTier.CRITICAL, f"`{what}` touches {SENSITIVE[target.resource]} ({target.name})"
        if target.namespace in production:
            return RiskTier.CRITICAL, f"`{what}` changes namespace {target.namespace}, marked production"
    if parsed.namespace in production:
        return RiskTier.CRITICAL, f"`{what}` runs in namespace {parsed.namespace}, marked production"
    if parsed.verb in ("delete", "drain", "cordon", "taint", "replace"):
        return RiskTier.CRITICAL, f"`{what}` removes or replaces objects"
    if what in TRIVIAL_COMMANDS:
        # Trivial means one person need not be asked: only for named objects in a named namespace.
        unnamed = any(r.name is None for r in parsed.resources) or not parsed.resources or parsed.selector
        if unnamed or any(f.name == "all" for f in parsed.flags):
            return RiskTier.MEDIUM, f"`{what}` on objects chosen by selector or --all"
        if parsed.namespace is None:
            return RiskTier.MEDIUM, f"`{what}` without -n runs in the kubeconfig's default namespace"
        return RiskTier.TRIVIAL, f"`{what}` is a restart or metadata change on named objects"
    if parsed.verb == "scale":
        wanted = _replicas(cmd.argv)
        current = [o.replicas for t in targets_of(cmd) if (o := observed.get((t.name, t.namespace)))]
        if wanted is not None and current and current[0] is not None:
            delta = abs(wanted - current[0])
            if wanted == 0:
                return RiskTier.MEDIUM, f"scale to zero takes the workload down (from {current[0]})"
            if delta <= MAX_LOW_SCALE_DELTA:
                return RiskTier.LOW, f"scale by {delta} replica(s), {current[0]} -> {wanted}"
            return RiskTier.MEDIUM, f"scale by {delta} replicas, {current[0]} -> {wanted}"
        return RiskTier.MEDIUM, "scale with an unknown current replica count"
    return RiskTier.MEDIUM, f"`{what}` changes a workload or its configuration"


def assess_risk(
    commands: Sequence[ProposedCommand],
    observed: Sequence[ObservedObject],
    policies: Sequence[PolicyCheck],
    settings: Settings,
) -> RiskAssessment:
    if not commands:
        return RiskAssessment(tier=RiskTier.TRIVIAL, reasons=["no commands to run"])
    by_name = {(o.name, o.namespace): o for o in observed}
    production = set(settings.production_namespaces)
    tiers = [_command_tier(c, by_name, production) for c in commands]
    for p in policies:
        if not p.passed and p.effect == "raise-tier":
            tiers.append((RiskTier.CRITICAL, f"policy {p.policy_id}: {p.message}"))
    top = max(tiers, key=lambda t: ORDER.index(t[0]))[0]
    return RiskAssessment(tier=top, reasons=[reason for tier, reason in tiers if tier is top])
