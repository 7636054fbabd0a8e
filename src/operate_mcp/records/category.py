"""Every run's operation category, set in code from what ran (never from the model's words), so "what is our
update success rate?" has one answer: update, scale, autoscale, make-ha, backup, rollback, restart, delete,
remediate or other. Failing steps are named the same way, by verb and resource kind (`set image deployment`),
so metrics group "the same step on another object" together."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from operate_mcp.errors import CommandRejected
from operate_mcp.kube.classifier import ParsedCommand, classify, parse_kubectl
from operate_mcp.kube.manifests import parse_manifests
from operate_mcp.model.command import CommandClass, ProposedCommand
from operate_mcp.model.observation import Category
from operate_mcp.model.resources import singular

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


def _changes(cmd: ProposedCommand) -> bool:
    """Read-only steps (`rollout status`, `get`) ride along with changes; they never name the operation."""
    return classify(cmd.argv).command_class is not CommandClass.READ


def categorize(purpose: str, commands: Sequence[ProposedCommand]) -> Category:
    """The category of a run from its purpose and its commands, most telling first."""
    if purpose == "rollback":
        return "rollback"
    if purpose == "remediate":
        return "remediate"
    parsed: list[tuple[ParsedCommand, ProposedCommand]] = []
    for cmd in commands:
        try:
            parsed.append((parse_kubectl(cmd.argv), cmd))
        except CommandRejected:
            continue
    changes = [(p, cmd) for p, cmd in parsed if _changes(cmd)] or parsed
    seen = [(p.command, cmd) for p, cmd in changes]
    verbs = {p.verb for p, _ in changes}
    names = [c for c, _ in seen]
    kinds = set().union(*(_kinds(cmd) for _, cmd in seen)) if seen else set()
    resources = {r.resource for p, _ in changes for r in p.resources}
    if "delete" in verbs:
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
    if "scale" in verbs:
        return "scale"
    if any(c in WORKLOAD_CHANGES for c in names) or verbs & {"create", "apply", "patch", "replace", "edit"}:
        return "update"
    return "other"


def step_kind(argv: Sequence[str]) -> str:
    """A kubectl step by verb and resource kind: `set image deployment`, `scale statefulset`, `apply`.

    The names, flags and manifests are left out, so the same step against another object groups with it.
    A line kubectl's grammar cannot read keeps its first word after `kubectl`.
    """
    try:
        parsed = parse_kubectl(list(argv))
    except CommandRejected:
        words = [a for a in argv[1:2] if not a.startswith("-")]
        return words[0] if words else "kubectl"
    said = {singular(w) for w in parsed.command.split()}
    kinds = [k for k in dict.fromkeys(singular(r.resource) for r in parsed.resources) if k not in said]
    return " ".join([parsed.command, ",".join(kinds)]) if kinds else parsed.command


def step_group(failed_argv: Sequence[str] | None, failed_step: str | None) -> str | None:
    """How metrics name a run's failing step: the failed command's verb and kind, else the step as recorded.

    `failed_argv` is the first command that failed; without one (a validation check failed, or the
    executor stopped before the step ran) the recorded step is read back: `check:rollout` stays as is,
    a command line is split and named by verb and kind.
    """
    if failed_argv:
        return step_kind(failed_argv)
    if not failed_step:
        return None
    if failed_step.startswith("check:"):
        return failed_step
    try:
        argv = shlex.split(failed_step)
    except ValueError:
        return failed_step
    return step_kind(argv) if argv[:1] == ["kubectl"] else failed_step
