"""Every run's operation category, set in code from what ran (never from the model's words), so "what is our
update success rate?" has one answer: update, scale, autoscale, make-ha, backup, rollback, restart, delete,
remediate or other."""

from __future__ import annotations

from collections.abc import Sequence

from operate_mcp.errors import CommandRejected
from operate_mcp.kube.classifier import parse_kubectl
from operate_mcp.kube.manifests import parse_manifests
from operate_mcp.model.command import ProposedCommand
from operate_mcp.model.observation import Category

AUTOSCALERS = {"HorizontalPodAutoscaler", "ScaledObject", "VerticalPodAutoscaler"}
HIGH_AVAILABILITY = {"PodDisruptionBudget"}
BACKUPS = {"Backup", "Schedule", "VolumeSnapshot"}
WORKLOAD_CHANGES = {"set image", "set env", "set resources", "patch", "apply", "replace", "edit", "create"}


def _kinds(cmd: ProposedCommand) -> set[str]:
    if not cmd.stdin:
        return set()
    try:
        return {o.kind for o in parse_manifests(cmd.stdin)}
    except CommandRejected:
        return set()


def _restart(cmd: ProposedCommand, command: str) -> bool:
    if command == "rollout restart":
        return True
    return command == "patch" and "restartedAt" in " ".join(cmd.argv) and "image" not in " ".join(cmd.argv)


def categorize(purpose: str, commands: Sequence[ProposedCommand]) -> Category:
    """The category of a run from its purpose and its commands, most telling first."""
    if purpose == "rollback":
        return "rollback"
    if purpose == "remediate":
        return "remediate"
    seen: list[tuple[str, ProposedCommand]] = []
    for cmd in commands:
        try:
            seen.append((parse_kubectl(cmd.argv).command, cmd))
        except CommandRejected:
            continue
    names = [c for c, _ in seen]
    kinds = set().union(*(_kinds(cmd) for _, cmd in seen)) if seen else set()
    resources = {r.resource for c, cmd in seen for r in parse_kubectl(cmd.argv).resources}
    if any(c == "delete" for c in names):
        return "delete"
    if any(c == "rollout undo" for c in names):
        return "rollback"
    if kinds & HIGH_AVAILABILITY or "poddisruptionbudgets" in resources:
        return "make-ha"
    if kinds & AUTOSCALERS or "autoscale" in names or "horizontalpodautoscalers" in resources:
        return "autoscale"
    if kinds & BACKUPS:
        return "backup"
    if seen and all(_restart(cmd, c) for c, cmd in seen):
        return "restart"
    if any(c == "scale" for c in names):
        return "scale"
    if any(c in WORKLOAD_CHANGES for c in names):
        return "update"
    return "other"
