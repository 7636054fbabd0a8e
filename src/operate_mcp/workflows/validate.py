"""After execution: deterministic checks first, then (when a model is configured) a read-only loop."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel

from operate_mcp.agent.loop import run_loop
from operate_mcp.agent.provider import Provider
from operate_mcp.errors import OperateError
from operate_mcp.kube.commands import parse_kubectl
from operate_mcp.kube.runner import Kubectl
from operate_mcp.kube.targets import Target, observe, unique_targets
from operate_mcp.kube.tools import ToolBox
from operate_mcp.model.command import ProposedCommand
from operate_mcp.model.session import Check, CommandOutcome, Validation
from operate_mcp.prompts import load_prompt

ROLLOUT_RESOURCES = {"deployments", "statefulsets", "daemonsets"}


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


def deterministic_checks(kubectl: Kubectl, commands: Sequence[ProposedCommand], timeout: int) -> list[Check]:
    checks: list[Check] = []
    gone = _deleted(commands)
    for t in unique_targets(commands):
        checks.append(_presence(kubectl, t, expect_gone=(t.resource, t.name) in gone))
        if t.resource in ROLLOUT_RESOURCES and (t.resource, t.name) not in gone:
            argv = ["kubectl", "rollout", "status", f"{t.resource}/{t.name}", f"--timeout={timeout}s"]
            if t.namespace:
                argv += ["-n", t.namespace]
            result = kubectl.run(argv, timeout=timeout + 15)
            checks.append(
                Check(
                    name=f"rollout status {t.resource}/{t.name}",
                    ok=result.ok,
                    detail=(result.stdout or result.stderr).strip()[-500:],
                )
            )
    return checks


def _presence(kubectl: Kubectl, t: Target, *, expect_gone: bool) -> Check:
    observed, _ = observe(kubectl, t)
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
) -> Validation:
    import anyio

    checks = await anyio.to_thread.run_sync(deterministic_checks, kubectl, commands, rollout_timeout)
    if provider is None:
        return Validation(checks=checks, model_verdict="skipped", model_summary="no model configured")
    try:
        outcome = await run_loop(
            provider,
            system=load_prompt("validate-system"),
            user_message=_validation_message(intent, outcomes, checks),
            toolbox=ToolBox(kubectl, read_only=True),
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
