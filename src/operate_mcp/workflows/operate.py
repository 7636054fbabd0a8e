"""operate, first half: an intent becomes a checked, dry-run, risk-assessed proposal in a session."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

import anyio

from operate_mcp.agent.loop import LoopOutcome, run_loop
from operate_mcp.agent.provider import Provider
from operate_mcp.agent.toolset import Toolset
from operate_mcp.audit.log import AuditLog
from operate_mcp.config import Settings
from operate_mcp.errors import ConfigError, OperateError, SessionError
from operate_mcp.governance.risk import assess_risk
from operate_mcp.kube.classifier import classify_command
from operate_mcp.kube.context import default_namespace
from operate_mcp.kube.preflight import preflight
from operate_mcp.kube.runner import Kubectl
from operate_mcp.kube.targets import read_targets
from operate_mcp.kube.tools import ToolBox
from operate_mcp.model.command import CommandClass, ProposedCommand, command_digest, shell_quote
from operate_mcp.model.progress import Progress
from operate_mcp.model.proposal import (
    CheckedCommand,
    DryRunResult,
    KnowledgeRef,
    ObservedObject,
    PolicyCheck,
    Proposal,
    ProposalDraft,
    ProposedChanges,
)
from operate_mcp.model.session import Session, SessionStatus
from operate_mcp.prompts import load_prompt, prompt_sha256
from operate_mcp.records.alerts import FailureAlerts
from operate_mcp.records.anomaly_store import AnomalyStore
from operate_mcp.records.prometheus import RunMetrics
from operate_mcp.records.store import RecordStore
from operate_mcp.workflows.dryrun import dry_run
from operate_mcp.workflows.sessions import SessionStore

PROMPT = "operate-system"
D = TypeVar("D", bound=ProposalDraft)


class KnowledgeContext(Protocol):
    """What retrieval hands the analysis: a text block for the model, refs for the proposal."""

    def render(self) -> str: ...

    def refs(self) -> list[KnowledgeRef]: ...


class Knowledge(Protocol):
    def context_for(self, intent: str) -> KnowledgeContext: ...

    def check_policies(
        self, commands: list[ProposedCommand], observed: Sequence[ObservedObject] | None = None
    ) -> list[PolicyCheck]: ...

    def hashes(self, kind: Literal["pattern", "policy"], ids: Sequence[str]) -> dict[str, str]: ...


@dataclass
class OperateDeps:
    """What the operate use cases work with. The stores are optional so an analysis never depends on them."""

    settings: Settings
    kubectl: Kubectl
    provider: Provider | None
    sessions: SessionStore
    knowledge: Knowledge | None = None
    audit: AuditLog | None = None
    records: RecordStore | None = None
    alerts: FailureAlerts | None = None
    metrics: RunMetrics | None = None
    anomalies: AnomalyStore | None = None
    # The model's tools during analysis: the kubectl reads and dry-runs, unless a caller hands in others.
    toolset: Toolset = field(init=False)

    def __post_init__(self) -> None:
        self.toolset = ToolBox(self.kubectl)


def build_user_message(intent: str, refinements: list[str], context: str) -> str:
    """The dynamic half of the prompt: the intent and the retrieved context, nothing static."""
    parts = [f"<intent>\n{intent}\n</intent>"]
    for i, r in enumerate(refinements, 1):
        parts.append(f'<refinement n="{i}">\n{r}\n</refinement>')
    if context:
        parts.append(f"<context>\n{context}\n</context>")
    parts.append("Investigate with your tools, then answer with the JSON proposal.")
    return "\n\n".join(parts)


def check_commands(deps: OperateDeps, draft: ProposalDraft, dry_runs: dict[int, DryRunResult]) -> list[str]:
    """Classify and dry-run every proposed command; what fails goes back to the model."""
    problems: list[str] = []
    dry_runs.clear()
    for i, cmd in enumerate(draft.commands, 1):
        verdict = classify_command(cmd.argv, cmd.stdin)
        shown = shell_quote(cmd.argv)
        if verdict.command_class is CommandClass.FORBIDDEN:
            problems.append(f"command {i} `{shown}` is forbidden: {verdict.reason}")
        elif verdict.command_class is CommandClass.DRY_RUN:
            problems.append(f"command {i} `{shown}` has --dry-run; write it without, our code dry-runs it")
        elif verdict.command_class is CommandClass.READ:
            problems.append(f"command {i} `{shown}` only reads; put read-only checks under 'verification'")
        else:
            result = dry_run(deps.kubectl, cmd, i)
            dry_runs[i] = result
            if not result.ok:
                problems.append(f"command {i} `{shown}` failed its server-side dry-run: {result.error.strip()}")
    for i, cmd in enumerate(draft.verification, 1):
        if classify_command(cmd.argv, cmd.stdin).command_class is not CommandClass.READ:
            problems.append(f"verification {i} `{shell_quote(cmd.argv)}` must be read-only")
    for i, cmd in enumerate(draft.rollback_commands, 1):
        verdict = classify_command(cmd.argv, cmd.stdin)
        if verdict.command_class is not CommandClass.MUTATING:
            problems.append(
                f"rollback command {i} `{shell_quote(cmd.argv)}` is {verdict.command_class.value}: "
                f"{verdict.reason}; rollback commands are written like commands, without --dry-run"
            )
    return problems


async def check_policies(
    deps: OperateDeps, commands: list[ProposedCommand], observed: Sequence[ObservedObject]
) -> list[PolicyCheck]:
    """Policies are enforced in code on every proposal, whatever the model did with them."""
    if deps.knowledge is None:
        return []
    knowledge = deps.knowledge
    return await anyio.to_thread.run_sync(lambda: knowledge.check_policies(commands, observed))


async def knowledge_hashes(
    deps: OperateDeps, pattern_ids: Sequence[str], policy_ids: Sequence[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """What the proposal was built on, by content hash, so a replay can tell when it changed."""
    if deps.knowledge is None:
        return {}, {}
    knowledge = deps.knowledge

    def both() -> tuple[dict[str, str], dict[str, str]]:
        return knowledge.hashes("pattern", pattern_ids), knowledge.hashes("policy", policy_ids)

    try:
        return await anyio.to_thread.run_sync(both)
    except OperateError:
        return {}, {}


async def fixed_proposal(
    deps: OperateDeps,
    commands: list[ProposedCommand],
    *,
    intent: str,
    analysis: str,
    current_state: str = "",
    changes: ProposedChanges | None = None,
    risks: Sequence[str] = (),
    policies_block: bool = True,
) -> Proposal:
    """A proposal whose commands come from code (rollback, replay), checked like the model's:
    classified, dry-run as written, observed, policy-checked, risk-assessed. No model is involved."""

    def check() -> list[CheckedCommand]:
        return [
            CheckedCommand(
                command=c,
                display=c.display,
                classification=classify_command(c.argv, c.stdin),
                dry_run=dry_run(deps.kubectl, c, i),
            )
            for i, c in enumerate(commands, 1)
        ]

    checked = await anyio.to_thread.run_sync(check)
    observed = await anyio.to_thread.run_sync(read_targets, deps.kubectl, commands)
    policies = await check_policies(deps, commands, observed)
    failed = sum(1 for c in checked if c.dry_run is not None and not c.dry_run.ok)
    blocked_by_policy = policies_block and any(not p.passed and p.effect == "block" for p in policies)
    return Proposal(
        version=1,
        intent=intent,
        analysis=analysis + (f" {failed} command(s) failed their dry-run; see the results." if failed else ""),
        current_state=current_state,
        changes=changes or ProposedChanges(),
        commands=checked,
        risks=list(risks),
        risk=assess_risk(commands, observed, policies, deps.settings, default_namespace(deps.kubectl)),
        policies_checked=policies,
        observed_objects=observed,
        blocked=blocked_by_policy or failed > 0,
        digest=command_digest(commands),
        iterations=0,
        prompt_sha256=prompt_sha256(PROMPT),
        provider="none",
    )


def audit_proposal(deps: OperateDeps, session: Session, caller: str, **extra: object) -> None:
    """Everything a replay needs, in the audit log: intent, refinements, exact commands, digest, prompt hash."""
    if deps.audit is None:
        return
    p = session.proposal
    deps.audit.append(
        "proposal",
        actor=caller,
        session_id=session.id,
        data={
            "intent": session.intent,
            "refinements": session.refinements,
            "version": p.version,
            "digest": p.digest,
            "commands": [c.command.model_dump(mode="json") for c in p.commands],
            "risk_tier": p.risk.tier.value,
            "prompt_sha256": p.prompt_sha256,
            "blocked": p.blocked,
            "purpose": session.purpose,
            "patterns_sha256": p.patterns_sha256,
            "policies_sha256": p.policies_sha256,
            **extra,
        },
    )


async def build_proposal(
    deps: OperateDeps,
    outcome: LoopOutcome[D],
    *,
    intent: str,
    version: int,
    context: KnowledgeContext | None,
    notes: Sequence[str],
    dry_runs: dict[int, DryRunResult],
    prompt: str,
) -> Proposal:
    """The model's checked draft as a proposal: every command classified again, its objects observed,
    policies checked and the risk assessed in code, whatever the model said about them."""
    draft = outcome.result
    checked = [
        CheckedCommand(
            command=c, display=c.display, classification=classify_command(c.argv, c.stdin), dry_run=dry_runs.get(i)
        )
        for i, c in enumerate(draft.commands, 1)
    ]
    rollback = [
        CheckedCommand(command=c, display=c.display, classification=classify_command(c.argv, c.stdin))
        for c in draft.rollback_commands
    ]
    observed = await anyio.to_thread.run_sync(read_targets, deps.kubectl, draft.commands)
    policies = await check_policies(deps, draft.commands, observed)
    risk = assess_risk(draft.commands, observed, policies, deps.settings, default_namespace(deps.kubectl))
    pattern_ids = sorted(
        {*draft.patterns_applied, *(r.id for r in (context.refs() if context else []) if r.kind == "pattern")}
    )
    patterns_sha256, policies_sha256 = await knowledge_hashes(deps, pattern_ids, [p.policy_id for p in policies])
    return Proposal(
        version=version,
        intent=intent,
        analysis=draft.analysis,
        current_state=draft.current_state,
        changes=draft.changes,
        commands=checked,
        verification=draft.verification,
        rollback_commands=rollback,
        risks=[*draft.risks, *notes],
        risk=risk,
        patterns_applied=draft.patterns_applied,
        policies_checked=policies,
        capabilities_used=draft.capabilities_used,
        context_used=context.refs() if context else [],
        observed_objects=observed,
        blocked=any(not p.passed and p.effect == "block" for p in policies),
        digest=command_digest(draft.commands),
        iterations=outcome.iterations,
        token_usage=outcome.usage,
        prompt_sha256=prompt_sha256(prompt),
        patterns_sha256=patterns_sha256,
        policies_sha256=policies_sha256,
        provider=deps.provider.name if deps.provider else "none",
    )


async def before_the_model(deps: OperateDeps, query: str) -> tuple[KnowledgeContext | None, list[str]]:
    """What every model loop needs first: the preflight, then the organisation's context for `query`.

    Before any model call or retrieval: no cluster, no kubeconfig or no right to dry-run is one clear
    sentence now, not thirty model turns and a raw kubectl error. (A caller that hands the model other
    tools than kubectl's decides for itself what they need.) Context that cannot be retrieved becomes a
    note in the proposal, never a silent gap."""
    if isinstance(deps.toolset, ToolBox):
        await anyio.to_thread.run_sync(preflight, deps.kubectl)
    if deps.knowledge is None:
        return None, []
    try:
        return await anyio.to_thread.run_sync(deps.knowledge.context_for, query), []
    except OperateError as exc:  # e.g. the embeddings extra is not installed: say so, never silently
        return None, [f"organisational context (patterns, capabilities) was unavailable: {exc}"]


async def analyze(
    deps: OperateDeps,
    intent: str,
    *,
    caller: str,
    triggered_by: str,
    refine_session: str | None = None,
    refined_intent: str | None = None,
    on_progress: Progress | None = None,
) -> Session:
    """Run the loop, check everything in code, save the session; a refinement voids the old version."""
    previous: Session | None = None
    refinements: list[str] = []
    if refine_session is not None:
        previous = deps.sessions.load(refine_session)
        if previous.status not in (SessionStatus.PROPOSED, SessionStatus.APPROVED):
            raise SessionError(
                f"session {refine_session} is {previous.status.value}; only a proposed or approved session can be "
                "refined. Start a new one with operate(intent=...)"
            )
        intent = previous.intent
        refinements = [*previous.refinements, refined_intent or ""]
    intent = intent.strip()
    if not intent:
        raise SessionError("the intent is empty; say what you want done, e.g. 'scale api in shop to 5 replicas'")

    if deps.provider is None:
        raise ConfigError("no model is configured for analysis: set ANTHROPIC_API_KEY (see README, Configuration)")
    context, notes = await before_the_model(deps, " ".join([intent, *refinements]))
    dry_runs: dict[int, DryRunResult] = {}

    async def check_draft(draft: ProposalDraft) -> list[str]:
        return await anyio.to_thread.run_sync(check_commands, deps, draft, dry_runs)

    outcome = await run_loop(
        deps.provider,
        system=load_prompt(PROMPT),
        user_message=build_user_message(intent, refinements, context.render() if context else ""),
        toolset=deps.toolset,
        output_model=ProposalDraft,
        check_answer=check_draft,
        max_iterations=deps.settings.max_iterations,
        on_progress=on_progress,
    )
    proposal = await build_proposal(
        deps,
        outcome,
        intent=intent if not refinements else f"{intent} ({'; '.join(refinements)})",
        version=(previous.proposal.version + 1) if previous else 1,
        context=context,
        notes=notes,
        dry_runs=dry_runs,
        prompt=PROMPT,
    )
    if deps.metrics is not None:  # tokens per analysis, cache reads and writes included, for /metrics
        deps.metrics.observe_usage(proposal.token_usage, purpose="operate")
    if previous is None:
        session = deps.sessions.create(intent=intent, caller=caller, triggered_by=triggered_by, proposal=proposal)
    else:
        old = previous.proposal

        def refine(s: Session) -> None:
            # Versioned under the lock: two concurrent refinements get distinct versions, and both voided.
            s.voided_versions.append(s.proposal)
            s.proposal = proposal.model_copy(update={"version": s.proposal.version + 1})
            s.approvals = []
            s.refinements = refinements
            s.expires_at = deps.sessions.fresh_expiry()

        session = deps.sessions.transition(
            previous.id,
            SessionStatus.PROPOSED,
            actor=caller,
            expected={SessionStatus.PROPOSED, SessionStatus.APPROVED},
            note=f"refined to version {proposal.version}; version {old.version} voided",
            mutate=refine,
        )
    audit_proposal(deps, session, caller)
    return session
