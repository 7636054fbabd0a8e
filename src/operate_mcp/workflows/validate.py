"""After execution: deterministic checks first, then (when a model is configured) a read-only loop.

The deterministic checks are: every touched object exists (or is gone, when deleted); every touched
rollout completes; and the analyzers find nothing wrong with the touched workloads and their pods,
which must stay Ready for a few seconds. A rollout that completes but leaves pods crash-looping is
not a success.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import anyio
from pydantic import BaseModel

from operate_mcp.agent.loop import run_loop
from operate_mcp.agent.provider import Provider
from operate_mcp.analyzers.base import Analyzer
from operate_mcp.analyzers.objects import KubeObject, condition, deleting, meta, shown_condition, status
from operate_mcp.analyzers.pod import is_ready
from operate_mcp.analyzers.registry import CORE, resources_read, run_analyzers
from operate_mcp.analyzers.related import Related
from operate_mcp.errors import OperateError
from operate_mcp.kube.classifier import parse_kubectl
from operate_mcp.kube.context import default_namespace
from operate_mcp.kube.inventory import read_inventory
from operate_mcp.kube.runner import Kubectl
from operate_mcp.kube.targets import Target, read_target, unique_targets
from operate_mcp.kube.tools import ToolBox
from operate_mcp.model.command import ProposedCommand
from operate_mcp.model.finding import Finding
from operate_mcp.model.session import Check, CommandOutcome, Validation
from operate_mcp.prompts import load_prompt
from operate_mcp.redact import redact_text

ROLLOUT_RESOURCES = {"deployments", "statefulsets", "daemonsets"}
# Workloads whose health the analyzers judge after a change: the object and the pods it owns.
WORKLOAD_RESOURCES = {"pods", "deployments", "replicasets", "statefulsets", "daemonsets", "jobs", "cronjobs"}
# What lies between a workload and its pods, read too so ownership can be followed.
OWNED_THROUGH = {"deployments": ("replicasets",), "cronjobs": ("jobs",)}
# How long pods must stay Ready before a change counts as healthy. A container without a readiness probe
# is Ready the moment it starts, so a rollout can complete before its pods crash: the same reason
# Deployments have minReadySeconds. Pods Ready for longer already (per their Ready condition) cost no wait.
STABLE_SECONDS = 5.0
POLL_SECONDS = 1.0
ROLLOUT_POLL_SECONDS = 5  # a rollout is watched in waits this long, the pods judged between them
MAX_FINDING_CHECKS = 10
MAX_DETAIL_CHARS = 1_000


class ValidationVerdict(BaseModel):
    verdict: Literal["healthy", "degraded", "failed"]
    summary: str


def _deleted(commands: Sequence[ProposedCommand]) -> set[tuple[str, str]]:
    gone: set[tuple[str, str]] = set()
    for cmd in commands:
        parsed = parse_kubectl(cmd.argv)
        if parsed.verb == "delete":
            gone |= {(r.resource, r.name) for r in parsed.resources if r.name}
    return gone


def deterministic_checks(
    kubectl: Kubectl,
    commands: Sequence[ProposedCommand],
    timeout: int,
    *,
    analyzers: Sequence[Analyzer] = CORE,
    stable_seconds: float = STABLE_SECONDS,
) -> list[Check]:
    """Presence, rollouts, then the workloads' health; all of it within `timeout` (plus the stable window)."""
    deadline = time.monotonic() + timeout
    checks: list[Check] = []
    gone = _deleted(commands)
    live: list[Target] = []
    for t in unique_targets(commands):
        checks.append(_presence(kubectl, t, expect_gone=(t.resource, t.name) in gone))
        if (t.resource, t.name) in gone:
            continue
        if t.resource in WORKLOAD_RESOURCES:
            live.append(t)
        if t.resource in ROLLOUT_RESOURCES:
            checks.append(_rollout(kubectl, t, deadline, analyzers))
    if live:
        deadline = max(deadline, time.monotonic() + stable_seconds)
        checks += health_checks(kubectl, live, analyzers=analyzers, deadline=deadline, stable_seconds=stable_seconds)
    return checks


def _rollout(kubectl: Kubectl, t: Target, deadline: float, analyzers: Sequence[Analyzer]) -> Check:
    """`kubectl rollout status`, in short waits; between them the analyzers look at the workload's pods,
    and a rollout whose new pods are failing (crash loop, image pull, ...) stops the wait at once: it
    will not complete by itself, and the person should hear so in seconds, not at the timeout."""
    name = f"rollout status {t.resource}/{t.name}"
    namespace = t.namespace or default_namespace(kubectl)
    resources = list(
        dict.fromkeys([*resources_read(analyzers), "pods", t.resource, *OWNED_THROUGH.get(t.resource, ())])
    )
    while True:
        wait = max(1, min(ROLLOUT_POLL_SECONDS, int(deadline - time.monotonic())))
        argv = ["kubectl", "rollout", "status", f"{t.resource}/{t.name}", f"--timeout={wait}s", "-n", namespace]
        result = kubectl.run(argv, timeout=wait + 15)
        detail = (result.stdout or result.stderr).strip()[-500:]
        if result.ok or time.monotonic() >= deadline:
            return Check(name=name, ok=result.ok, detail=detail)
        health = _read_health(kubectl, {namespace: [t]}, resources, analyzers, _PodWatch(STABLE_SECONDS))
        failing = [f for f in health.findings.values() if f.failing and f.kind == "Pod"]
        if failing:
            why = "; ".join(f"{f.subject}: {f.problem}" for f in failing[:3])
            return Check(
                name=name,
                ok=False,
                detail=redact_text(f"stopped waiting: its pods are failing ({why}). {detail}")[:500],
            )


def _presence(kubectl: Kubectl, t: Target, *, expect_gone: bool) -> Check:
    observed, _ = read_target(kubectl, t)
    where = f"{t.resource}/{t.name}" + (f" in {t.namespace}" if t.namespace else "")
    if expect_gone:
        return Check(
            name=f"{where} deleted", ok=not observed.exists, detail="gone" if not observed.exists else "still exists"
        )
    return Check(
        name=f"{where} exists",
        ok=observed.exists,
        detail=f"resourceVersion {observed.resource_version}" if observed.exists else "not found",
    )


def _since(timestamp: object) -> float | None:
    """Seconds since an API server timestamp (RFC 3339), by this machine's clock."""
    try:
        return (datetime.now(UTC) - datetime.fromisoformat(str(timestamp))).total_seconds()
    except (ValueError, TypeError):  # absent, or without a time zone
        return None


@dataclass
class _PodWatch:
    """What validation has seen of each pod across its reads: since when it has looked Ready, its restarts."""

    stable_seconds: float
    ready_seen: dict[str, float] = field(default_factory=dict)
    first_restarts: dict[tuple[str, str], int] = field(default_factory=dict)

    def settled(self, pod: KubeObject) -> bool:
        """Done (Succeeded, Failed) or Ready for the stable window: by the pod's Ready condition, or,
        whatever the clocks say, by what this validation has watched itself."""
        uid = str(meta(pod).get("uid"))
        if status(pod).get("phase") in ("Succeeded", "Failed"):
            return True
        if not is_ready(pod):
            self.ready_seen.pop(uid, None)
            return False
        watched = time.monotonic() - self.ready_seen.setdefault(uid, time.monotonic())
        ready = condition(pod, "Ready") or {}
        by_server = _since(ready.get("lastTransitionTime"))
        return watched >= self.stable_seconds or (by_server is not None and by_server >= self.stable_seconds)

    def restarts(self, pod: KubeObject) -> list[str]:
        """Containers that restarted while validation watched: a crash, even if the pod is Ready again."""
        uid = str(meta(pod).get("uid"))
        found: list[str] = []
        for cs in [*(status(pod).get("initContainerStatuses") or ()), *(status(pod).get("containerStatuses") or ())]:
            now = int(cs.get("restartCount") or 0)
            before = self.first_restarts.setdefault((uid, str(cs.get("name"))), now)
            if now > before:
                last = (cs.get("lastState") or {}).get("terminated") or {}
                found.append(
                    f"container {cs.get('name')}: restartCount {before} -> {now}; last exit code "
                    f"{last.get('exitCode')} ({last.get('reason')})"
                )
        return found


@dataclass
class _Health:
    """One read of the touched workloads: what the analyzers found and where the pods stand."""

    findings: dict[tuple[str, str, str, str], Finding] = field(default_factory=dict)
    pods: dict[str, KubeObject] = field(default_factory=dict)
    unsettled: list[KubeObject] = field(default_factory=list)
    restarted: dict[str, list[str]] = field(default_factory=dict)
    read_errors: list[str] = field(default_factory=list)
    subjects: list[tuple[Target, str, int]] = field(default_factory=list)  # target, namespace, pods

    @property
    def failing(self) -> bool:
        return bool(self.restarted) or any(f.failing for f in self.findings.values())


def _read_health(
    kubectl: Kubectl,
    by_namespace: dict[str, list[Target]],
    resources: Sequence[str],
    analyzers: Sequence[Analyzer],
    watch: _PodWatch,
) -> _Health:
    health = _Health()
    for namespace, targets in by_namespace.items():
        inventory = read_inventory(kubectl, namespace, resources)
        unread = {r: e for r, e in inventory.errors.items() if r != "events"}  # without events, evidence is status only
        health.read_errors += [f"{resource} in {namespace}: {error}" for resource, error in unread.items()]
        related = Related(inventory.objects)
        findings = run_analyzers(analyzers, inventory.objects)
        for t in targets:
            subject = next((o for o in inventory.objects.get(t.resource, ()) if meta(o).get("name") == t.name), None)
            if subject is None:
                continue  # the presence check says so
            family = [subject, *related.descendants(subject)]
            names = {(str(o.get("kind")), str(meta(o).get("name"))) for o in family}
            for f in findings:
                if (f.kind, f.name) in names:
                    health.findings[(f.kind, f.namespace or "", f.name, f.problem)] = f
            pods = [o for o in family if o.get("kind") == "Pod" and not deleting(o)]
            health.subjects.append((t, namespace, len(pods)))
            for pod in pods:
                health.pods[str(meta(pod).get("uid"))] = pod
    # A warning (running, not ready, no probe failure yet) may still turn into a crash or into Ready: wait on.
    failed = {(f.namespace, f.name) for f in health.findings.values() if f.kind == "Pod" and f.failing}
    for pod in health.pods.values():
        key = f"Pod/{meta(pod).get('name')} in {meta(pod).get('namespace')}"
        restarts = watch.restarts(pod)
        if restarts:
            health.restarted[key] = restarts
        if not watch.settled(pod) and (meta(pod).get("namespace"), meta(pod).get("name")) not in failed:
            health.unsettled.append(pod)
    return health


def health_checks(
    kubectl: Kubectl,
    targets: Sequence[Target],
    *,
    analyzers: Sequence[Analyzer] = CORE,
    deadline: float,
    stable_seconds: float = STABLE_SECONDS,
) -> list[Check]:
    """The analyzers over the touched workloads, read again until their pods are Ready for `stable_seconds`,
    something fails, or the deadline passes. Findings elsewhere in the namespace are not this change's."""
    fallback = default_namespace(kubectl) if any(t.namespace is None for t in targets) else "default"
    by_namespace: dict[str, list[Target]] = {}
    for t in targets:
        by_namespace.setdefault(t.namespace or fallback, []).append(t)
    extra = [r for t in targets for r in (t.resource, *OWNED_THROUGH.get(t.resource, ()))]
    resources = list(dict.fromkeys([*resources_read(analyzers), "pods", *extra]))
    watch = _PodWatch(stable_seconds)
    started = time.monotonic()
    while True:
        health = _read_health(kubectl, by_namespace, resources, analyzers, watch)
        if health.failing or health.read_errors or not health.unsettled or time.monotonic() >= deadline:
            break
        time.sleep(max(0.0, min(POLL_SECONDS, deadline - time.monotonic())))
    return _health_checks(health, analyzers, waited=time.monotonic() - started, stable_seconds=stable_seconds)


def _evidence(f: Finding) -> str:
    return redact_text("\n".join(f"[{e.source}] {e.text}" for e in f.evidence))[:MAX_DETAIL_CHARS]


def _health_checks(
    health: _Health, analyzers: Sequence[Analyzer], *, waited: float, stable_seconds: float
) -> list[Check]:
    checks = [Check(name=f"read {error.split(':')[0]}", ok=False, detail=error) for error in health.read_errors]
    findings = list(health.findings.values())
    for f in findings[:MAX_FINDING_CHECKS]:
        # Stricter than `diagnose`: after a change, a touched workload with a warning is not healthy either.
        name = redact_text(f"{f.subject}: {f.problem}")
        checks.append(Check(name=name, ok=f.severity == "info", detail=_evidence(f)))
    if len(findings) > MAX_FINDING_CHECKS:
        more = findings[MAX_FINDING_CHECKS:]
        checks.append(
            Check(
                name=f"{len(more)} more findings",
                ok=all(f.severity == "info" for f in more),
                detail="; ".join(redact_text(f"{f.subject}: {f.problem}") for f in more)[:MAX_DETAIL_CHARS],
            )
        )
    crashed = {f.subject for f in findings if f.failing}  # a restart the analyzers explain is said once
    for who, restarts in health.restarted.items():
        if who in crashed:
            continue
        checks.append(Check(name=f"{who} restarted during validation", ok=False, detail="; ".join(restarts)))
    reported = {(f.namespace, f.name) for f in findings if f.kind == "Pod"}
    for pod in health.unsettled:
        if (meta(pod).get("namespace"), meta(pod).get("name")) in reported:
            continue
        ready = condition(pod, "Ready")
        checks.append(
            Check(
                name=f"Pod/{meta(pod).get('name')} in {meta(pod).get('namespace')} not ready after {waited:.0f}s",
                ok=False,
                detail=f"phase {status(pod).get('phase')}; Ready {shown_condition(ready) if ready else 'unknown'}",
            )
        )
    if not checks:
        names = ", ".join(a.name for a in analyzers)
        for t, namespace, pods in health.subjects:
            checks.append(
                Check(
                    name=f"health of {t.resource}/{t.name} in {namespace}",
                    ok=True,
                    detail=f"{pods} pod(s) Ready for at least {stable_seconds:g}s; "
                    f"the {names} analyzers found no problem",
                )
            )
    return checks


def _validation_message(intent: str, outcomes: Sequence[CommandOutcome], checks: Sequence[Check]) -> str:
    lines = [f"<intent>\n{intent}\n</intent>", "<executed>"]
    for o in outcomes:
        lines.append(f"{' '.join(o.argv)} -> exit {o.exit_code}: {(o.stdout or o.stderr).strip()[:300]}")
    lines.append("</executed>\n<checks>")
    lines += [f"{'ok' if c.ok else 'FAILED'}: {c.name} {c.detail[:200]}" for c in checks]
    lines.append("</checks>\nCheck the result with your read-only tools, then answer with the JSON verdict.")
    return "\n".join(lines)


async def validate_execution(
    kubectl: Kubectl,
    provider: Provider | None,
    *,
    intent: str,
    commands: Sequence[ProposedCommand],
    outcomes: Sequence[CommandOutcome],
    rollout_timeout: int,
    max_iterations: int,
    analyzers: Sequence[Analyzer] = CORE,
    stable_seconds: float = STABLE_SECONDS,
) -> Validation:
    def checks_now() -> list[Check]:
        return deterministic_checks(
            kubectl, commands, rollout_timeout, analyzers=analyzers, stable_seconds=stable_seconds
        )

    checks = await anyio.to_thread.run_sync(checks_now)
    if provider is None:
        return Validation(checks=checks, model_verdict="skipped", model_summary="no model configured")
    try:
        outcome = await run_loop(
            provider,
            system=load_prompt("validate-system"),
            user_message=_validation_message(intent, outcomes, checks),
            toolset=ToolBox(kubectl, read_only=True),
            output_model=ValidationVerdict,
            max_iterations=max_iterations,
        )
    except OperateError as exc:
        return Validation(checks=checks, model_verdict="skipped", model_summary=f"model validation failed: {exc}")
    return Validation(
        checks=checks,
        model_verdict=outcome.result.verdict,
        model_summary=outcome.result.summary,
        iterations=outcome.iterations,
    )
