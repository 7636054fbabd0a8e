"""Risk tiers in code: how much human approval a proposal needs, and why."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from operate_mcp.config import Settings
from operate_mcp.errors import CommandRejected
from operate_mcp.kube.classifier import ParsedCommand, parse_kubectl
from operate_mcp.kube.patches import UnreadablePatch, patch_body, sent_as_json
from operate_mcp.kube.targets import targets_of
from operate_mcp.model.command import ProposedCommand
from operate_mcp.model.proposal import ObservedObject, PolicyCheck, RiskAssessment, RiskTier

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
# Objects whose annotations steer traffic or access (ingress auth, allow-lists, service routing):
# changing one is never trivial, whatever the key.
TRAFFIC = {
    "ingresses",
    "services",
    "networkpolicies",
    "gateways.gateway.networking.k8s.io",
    "httproutes.gateway.networking.k8s.io",
}
MAX_LOW_SCALE_DELTA = 2


def _replicas(argv: Sequence[str]) -> int | None:
    for token in argv:
        if token.startswith("--replicas="):
            try:
                return int(token.split("=", 1)[1])
            except ValueError:
                return None
    return None


def _harmless_key(key: str, allowed: Sequence[str]) -> bool:
    return any(key == a or (a.endswith("/") and key.startswith(a)) for a in allowed)


def _annotate_tier(parsed: ParsedCommand, settings: Settings) -> tuple[RiskTier, str]:
    """Trivial only when every change sets an allow-listed annotation on named, non-traffic objects."""
    what = parsed.command
    pairs = [a for a in parsed.args if "=" in a or a.endswith("-")]
    if any(r.name is None for r in parsed.resources) or not parsed.resources or parsed.selector:
        return RiskTier.MEDIUM, f"`{what}` on objects chosen by selector or by type"
    if any(f.name == "all" for f in parsed.flags):
        return RiskTier.MEDIUM, f"`{what}` on every object (--all)"
    if any(p.endswith("-") and "=" not in p for p in pairs):
        return RiskTier.LOW, f"`{what}` removes annotations"
    if any(f.name == "overwrite" for f in parsed.flags):
        return RiskTier.LOW, f"`{what}` --overwrite replaces existing values"
    traffic = sorted({r.resource for r in parsed.resources} & TRAFFIC)
    if traffic:
        return RiskTier.LOW, f"`{what}` on {', '.join(traffic)}, whose annotations steer traffic or access"
    keys = [p.split("=", 1)[0] for p in pairs]
    if not keys or not all(_harmless_key(k, settings.trivial_annotation_keys) for k in keys):
        return RiskTier.LOW, f"`{what}` sets annotations outside the harmless list ({', '.join(keys) or 'none'})"
    return RiskTier.TRIVIAL, f"`{what}` sets only harmless annotations ({', '.join(keys)}) on named objects"


RESTARTABLE = {"deployments", "statefulsets", "daemonsets"}


def _named_workloads(parsed: ParsedCommand) -> bool:
    return (
        bool(parsed.resources)
        and all(r.name and r.resource in RESTARTABLE for r in parsed.resources)
        and not parsed.selector
        and not any(f.name == "all" for f in parsed.flags)
    )


def _json_patch_body(text: str) -> Any:
    """The patch as the API server reads it, or None. Only a body kubectl sends as written (JSON) is read
    as a restart: a YAML body goes through go-yaml in kubectl, and a reading that differs from ours could
    make "restart" to us "replicas: 0" to the cluster (kube/patches.py)."""
    if not sent_as_json(text):
        return None
    try:
        return patch_body(text)
    except UnreadablePatch:
        return None


def _restart_patch(parsed: ParsedCommand, settings: Settings) -> str | None:
    """The annotation key when a patch only sets a harmless pod-template annotation (the restartedAt
    patch `rollout restart` sends): it replaces the pods one by one, and changes nothing else."""
    flags = {f.name: f.value for f in parsed.flags}
    if set(flags) - {"patch", "type", "namespace"}:
        return None
    if flags.get("type") not in (None, "strategic", "merge") or not flags.get("patch"):
        return None
    body = _json_patch_body(flags["patch"] or "")
    template = body.get("spec") if isinstance(body, dict) and set(body) == {"spec"} else None
    template = template.get("template") if isinstance(template, dict) and set(template) == {"template"} else None
    metadata = template.get("metadata") if isinstance(template, dict) and set(template) == {"metadata"} else None
    notes = metadata.get("annotations") if isinstance(metadata, dict) and set(metadata) == {"annotations"} else None
    if not isinstance(notes, dict) or len(notes) != 1:
        return None
    [(key, value)] = notes.items()
    ok = isinstance(key, str) and isinstance(value, str) and _harmless_key(key, settings.trivial_annotation_keys)
    return key if ok else None


def _command_tier(
    cmd: ProposedCommand,
    observed: dict[tuple[str, str | None], ObservedObject],
    settings: Settings,
    default_namespace: str,
) -> tuple[RiskTier, str]:
    production = set(settings.production_namespaces)
    try:
        parsed = parse_kubectl(cmd.argv)
    except CommandRejected as exc:
        return RiskTier.CRITICAL, f"unparseable command: {exc}"
    what = parsed.command
    namespace = parsed.namespace or default_namespace
    try:
        targets = targets_of(cmd)
    except CommandRejected as exc:
        return RiskTier.CRITICAL, f"`{what}`: its objects cannot be read ({exc})"
    for resource in parsed.resource_types:  # named or not: `label secrets --all` touches Secrets too
        if resource in SENSITIVE:
            return RiskTier.CRITICAL, f"`{what}` touches {SENSITIVE[resource]}"
    if parsed.all_namespaces:
        return RiskTier.CRITICAL, f"`{what}` acts across all namespaces"
    for target in targets:
        if target.resource in SENSITIVE:
            return RiskTier.CRITICAL, f"`{what}` touches {SENSITIVE[target.resource]} ({target.name})"
        if (target.namespace or namespace) in production:
            return RiskTier.CRITICAL, f"`{what}` changes namespace {target.namespace or namespace}, marked production"
        seen = observed.get((target.name, target.namespace)) or observed.get((target.name, namespace))
        if seen is not None and seen.namespace in production:
            return RiskTier.CRITICAL, f"`{what}` changes {target.name}, observed in {seen.namespace}, marked production"
    if namespace in production:
        how = "" if parsed.namespace else " (the kubeconfig context's namespace: no -n given)"
        return RiskTier.CRITICAL, f"`{what}` runs in namespace {namespace}{how}, marked production"
    if parsed.verb in ("delete", "replace"):
        return RiskTier.CRITICAL, f"`{what}` removes or replaces objects"
    if parsed.verb in ("drain", "cordon", "uncordon", "taint"):
        return RiskTier.CRITICAL, f"`{what}` changes nodes"
    if parsed.verb == "apply" and any(f.name == "prune" for f in parsed.flags):
        return RiskTier.CRITICAL, f"`{what} --prune` deletes objects missing from the manifest"
    if parsed.verb == "annotate":
        return _annotate_tier(parsed, settings)
    if parsed.command == "rollout restart" and _named_workloads(parsed):
        return RiskTier.TRIVIAL, f"`{what}` restarts named workloads: their pods are replaced one by one"
    if parsed.verb == "patch" and _named_workloads(parsed) and (key := _restart_patch(parsed, settings)):
        return RiskTier.TRIVIAL, f"`{what}` only sets the pod-template annotation {key}: a restart"
    if parsed.verb == "label":
        # Labels select: a Service, a PDB or a NetworkPolicy may stop matching the pod.
        return RiskTier.LOW if parsed.resources and all(r.name for r in parsed.resources) and not parsed.selector else (
            RiskTier.MEDIUM
        ), f"`{what}` changes labels, which Services and policies select on"
    if parsed.verb == "scale":
        wanted = _replicas(cmd.argv)
        current = [o.replicas for t in targets if (o := observed.get((t.name, t.namespace or namespace)))]
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
    default_namespace: str = "default",
) -> RiskAssessment:
    """The tier a proposal needs, from its commands, the objects observed and the policies.

    `default_namespace` is where commands without `-n` act (the kubeconfig context's namespace).
    """
    if not commands:
        return RiskAssessment(tier=RiskTier.TRIVIAL, reasons=["no commands to run"])
    production = set(settings.production_namespaces)
    by_name: dict[tuple[str, str | None], ObservedObject] = {(o.name, o.namespace): o for o in observed}
    tiers = [_command_tier(c, by_name, settings, default_namespace) for c in commands]
    for o in observed:
        if o.namespace in production:
            tiers.append((RiskTier.CRITICAL, f"{o.kind}/{o.name} is in namespace {o.namespace}, marked production"))
    for p in policies:
        if not p.passed and p.effect == "raise-tier":
            tiers.append((RiskTier.CRITICAL, f"policy {p.policy_id}: {p.message}"))
    top = max(tiers, key=lambda t: ORDER.index(t[0]))[0]
    return RiskAssessment(tier=top, reasons=[reason for tier, reason in tiers if tier is top])
