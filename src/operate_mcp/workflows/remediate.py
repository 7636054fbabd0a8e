"""remediate: a symptom in words becomes a diagnosis a person can check line by line, and a fix that goes
through the same session → approval → exact execution path as `operate`.

The analyzers run first (no model needed; without one, their findings are the answer). The model gets
their findings, the symptom and the same read / dry-run tools as `operate`; its diagnosis must cite
evidence our code has seen — an analyzer's line or a tool's output, found by code, never taken on the
model's word. Its fix is checked exactly like an `operate` proposal. After execution the analyzers run
again and say, finding by finding, whether the problem is gone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
from pydantic import BaseModel, Field

from operate_mcp.agent.loop import run_loop
from operate_mcp.agent.toolset import Toolset
from operate_mcp.errors import OperateError, SessionError
from operate_mcp.governance.approval import AUTO_REMEDIATE, auto_remediation_refused
from operate_mcp.kube.classifier import classify
from operate_mcp.kube.context import default_namespace
from operate_mcp.kube.reader import reader_for
from operate_mcp.model.command import CommandClass
from operate_mcp.model.finding import Evidence, Finding
from operate_mcp.model.proposal import DryRunResult
from operate_mcp.model.remediation import (
    CitedEvidence,
    Confidence,
    DiagnosisStatus,
    FindingCheck,
    Remediation,
    RemediationDraft,
)
from operate_mcp.model.session import Session
from operate_mcp.model.tool_call import ToolCall
from operate_mcp.prompts import load_prompt
from operate_mcp.redact import redact_text
from operate_mcp.untrusted import inert
from operate_mcp.workflows.decide import approve
from operate_mcp.workflows.diagnose import Diagnosis, diagnose
from operate_mcp.workflows.display import escaped, finding_lines
from operate_mcp.workflows.execute import execute
from operate_mcp.workflows.operate import (
    OperateDeps,
    audit_proposal,
    before_the_model,
    build_proposal,
    check_commands,
)
from operate_mcp.workflows.recheck import family
from operate_mcp.workflows.response import OperateResponse, to_response

PROMPT = "remediate-system"
MAX_FINDINGS_SHOWN = 25
MIN_CITED_CHARS = 8  # a citation must say something: "Error" appears everywhere
MAX_CITED = 20
MIN_ECHO_CHARS = 4  # shorter strings the model wrote are not cut out of tool outputs: "app" is everywhere
# Tool arguments that name an object: a read that succeeds with them names objects that exist, so their
# echo is the cluster's word. Every other string the model writes (a selector, field paths, a patch) is its own.
_NAMING_ARGUMENTS = frozenset(
    {"resource", "name", "namespace", "pod", "container", "for_object", "api_group", "output", "patch_type"}
)
# A kubectl tool's answer (kube/tools.py): the command line (the model's arguments), the status, the output.
_WRAPPED = re.compile(
    r'\A\$ [^\n]*\n\[[^\n]*\]\n<cluster-data source="[^"]*" trust="untrusted">\n(.*)\n</cluster-data>\Z', re.S
)
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_TARGET = re.compile(r"^(?:[A-Za-z][A-Za-z0-9.]*/)?[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class RemediateResult(BaseModel):
    """What the `remediate` tool returns (its output schema)."""

    status: DiagnosisStatus = Field(
        description="active: the problem is there now; resolved: it was, and is gone; "
        "not_found: nothing matching the symptom"
    )
    root_cause: str
    confidence: Confidence
    evidence: list[CitedEvidence] = Field(description="each line found by code in an analyzer finding or tool output")
    findings: list[Finding] = Field(description="the analyzers' findings in scope, worst first")
    analyzers_run: list[str]
    namespace: str
    target: str | None = None
    model: str = Field(description="the model provider that explained the findings, or 'none'")
    note: str = ""
    session_id: str | None = Field(
        default=None,
        description="the fix's session: approve and run it with "
        "operate(sessionId, executeChoice=1) or remediate(sessionId, executeChoice=1)",
    )
    session: OperateResponse | None = Field(
        default=None, description="the fix as an operate proposal (commands, dry-run, risk)"
    )
    rechecked: list[FindingCheck] = Field(default_factory=list, description="after execution: is each finding gone")
    next_action: str = ""


class _Witness:
    """The toolset the model gets, keeping what each tool answered: the texts a citation may quote."""

    def __init__(self, inner: Toolset) -> None:
        self.inner = inner
        self.outputs: list[tuple[str, str]] = []

    def definitions(self) -> list[dict[str, Any]]:
        return self.inner.definitions()

    def call(self, name: str, arguments: dict[str, Any], /) -> tuple[str, ToolCall]:
        text, call = self.inner.call(name, arguments)
        if _read_the_cluster(call):
            wrapped = _WRAPPED.match(text)
            self.outputs += [(name, piece) for piece in _unechoed(wrapped.group(1) if wrapped else text, arguments)]
        return text, call


def _read_the_cluster(call: ToolCall) -> bool:
    """Only a read that ran and succeeded is evidence: refusals and errors quote what the model sent, and a
    dry-run reports on the model's own change."""
    if not call.ok or call.is_error or call.fatal:
        return False
    return call.argv is None or classify(call.argv).command_class is CommandClass.READ


def _written(value: Any, key: str = "") -> list[str]:
    """The strings the model wrote into a call's arguments, but for the names of objects."""
    if isinstance(value, str):
        return [] if key in _NAMING_ARGUMENTS else [value]
    if isinstance(value, Mapping):
        return [s for k, v in value.items() for s in _written(v, str(k))]
    if isinstance(value, list):
        return [s for v in value for s in _written(v, key)]
    return []


def _unechoed(text: str, arguments: Mapping[str, Any]) -> list[str]:
    """A tool's output cut wherever it repeats what the model wrote (kube_get prints the field paths it
    was asked for), so no citation can span the model's own words."""
    pieces = [_flat(text)]
    for echo in sorted({_flat(s) for s in _written(arguments)}, key=len, reverse=True):
        if len(echo) >= MIN_ECHO_CHARS:
            pieces = [p for piece in pieces for p in piece.split(echo)]
    return [p for p in pieces if p.strip()]


def _flat(text: str) -> str:
    return " ".join(text.split())


def _as_shown(text: str) -> str:
    """Cluster text as the model is shown it: redacted on its own (one odd line never masks its neighbours),
    non-printable characters escaped, and no closing tag that could end the untrusted block."""
    return escaped(inert(redact_text(text)))


def in_scope(findings: Sequence[Finding], target: str | None) -> list[Finding]:
    """The findings about `target` (kind/name or name) and its pods and ReplicaSets first, then the rest."""
    if not target:
        return list(findings)
    name = target.split("/", 1)[-1]
    mine = [f for f in findings if f.name == name or family(f.kind, f.name) == name]
    return mine + [f for f in findings if f not in mine]


def _findings_block(findings: Sequence[Finding]) -> str:
    shown = [
        f.model_copy(
            update={
                "problem": _as_shown(f.problem),
                "evidence": [Evidence(source=e.source, text=_as_shown(e.text)) for e in f.evidence],
            }
        )
        for f in findings[:MAX_FINDINGS_SHOWN]
    ]
    lines = [line for f in shown for line in (*finding_lines(f), "")]
    if len(findings) > len(shown):
        lines.append(f"... and {len(findings) - len(shown)} more findings")
    body = "\n".join(lines).strip() or "(the analyzers found nothing)"
    return f'<cluster-data trust="untrusted">\n{body}\n</cluster-data>'


def build_user_message(
    symptom: str, namespace: str, target: str | None, diagnosis: Diagnosis, findings: Sequence[Finding], context: str
) -> str:
    parts = [f"<symptom>\n{symptom}\n</symptom>", f"<namespace>{namespace}</namespace>"]
    if target:
        parts.append(f"<object>{target}</object>")
    parts.append(
        f'<findings analyzers="{", ".join(diagnosis.analyzers_run)}">\n{_findings_block(findings)}\n</findings>'
    )
    if diagnosis.not_read:
        # API servers' messages: cluster text, one per line; inert again whole, so no tag spans two of them
        not_read = inert("\n".join(_as_shown(why) for why in diagnosis.not_read))
        parts.append(f'<not-read>\n<cluster-data trust="untrusted">\n{not_read}\n</cluster-data>\n</not-read>')
    if context:
        parts.append(f"<context>\n{context}\n</context>")
    parts.append("Investigate with your tools, then answer with the JSON diagnosis.")
    return "\n\n".join(parts)


def cite(
    evidence: Sequence[CitedEvidence], findings: Sequence[Finding], outputs: Sequence[tuple[str, str]]
) -> tuple[list[CitedEvidence], list[str]]:
    """Each cited line with where our code found it, and the problems with those it could not find.

    A citation counts only when its text (whitespace aside) appears in an analyzer's finding, as it was
    shown to the model, or in what the cluster answered a read (`_Witness`: never an echo of the model's own
    arguments). It is kept as found: whitespace, the model's control characters included, collapsed."""
    analyzer_texts = [
        _flat(_as_shown(t)) for f in findings for t in (f.problem, f.subject, *(e.text for e in f.evidence))
    ]
    tool_texts = [(name, _flat(text)) for name, text in outputs]
    found: list[CitedEvidence] = []
    problems: list[str] = []
    for i, item in enumerate(evidence[:MAX_CITED], 1):
        text = _flat(item.text)
        if len(text) < MIN_CITED_CHARS:
            problems.append(f"evidence {i} ({item.text!r}) is too short to prove anything; quote the whole line")
            continue
        if any(text in t for t in analyzer_texts):
            found.append(item.model_copy(update={"origin": "analyzer", "text": text}))
            continue
        tool = next((name for name, t in tool_texts if text in t), None)
        if tool is not None:
            found.append(item.model_copy(update={"origin": f"tool:{tool}", "text": text}))
            continue
        problems.append(
            f"evidence {i} ({item.text[:120]!r}) appears in nothing you read; cite lines exactly as they "
            "appear in a finding or in what a read tool returned (not in errors, dry-runs or your own "
            "arguments echoed back), or read them first"
        )
    if len(evidence) > MAX_CITED:
        problems.append(f"cite at most {MAX_CITED} evidence lines: the ones that prove the root cause")
    return found, problems


def _without_model(
    symptom: str, namespace: str, target: str | None, diagnosis: Diagnosis, findings: list[Finding]
) -> RemediateResult:
    serious = [f for f in findings if f.severity != "info"]
    worst = serious[0] if serious else None
    note = (
        "no model is configured (set ANTHROPIC_API_KEY, see README): these are the analyzers' findings alone; "
        "no root cause was reasoned about and no fix was proposed"
    )
    return RemediateResult(
        status="active" if worst else "not_found",
        root_cause=f"{worst.subject}: {worst.problem}" if worst else "the analyzers found no problem",
        confidence="low",
        evidence=[
            CitedEvidence(source=e.source, text=e.text, origin="analyzer") for e in (worst.evidence if worst else [])
        ],
        findings=findings,
        analyzers_run=diagnosis.analyzers_run,
        namespace=namespace,
        target=target,
        model="none",
        note=note,
        next_action="read the findings and their evidence; configure a model for a diagnosis and a fix",
    )


async def remediate(
    deps: OperateDeps,
    symptom: str,
    *,
    namespace: str | None,
    target: str | None,
    caller: str,
    triggered_by: str,
) -> RemediateResult:
    """Analyzers, then (with a model) a cited diagnosis and a checked fix saved as a session."""
    symptom = symptom.strip()
    if not symptom:
        raise SessionError("the symptom is empty; say what is wrong, e.g. 'checkout pods keep restarting'")
    if namespace is not None and not _NAMESPACE.match(namespace):
        raise SessionError(f"{namespace!r} is not a namespace name (lower case letters, digits and '-')")
    if target is not None and not _TARGET.match(target):
        raise SessionError(f"{target!r} is not an object; name it as kind/name (deployment/checkout) or name")
    ns = namespace if namespace else await anyio.to_thread.run_sync(default_namespace, deps.kubectl)
    reader = await anyio.to_thread.run_sync(reader_for, deps.kubectl)
    diagnosis = await anyio.to_thread.run_sync(lambda: diagnose(reader, namespace=ns))
    if not diagnosis.analyzers_run:
        raise OperateError(
            "remediate could not read the cluster: " + ("; ".join(diagnosis.not_read[:3]) or "no analyzer ran")
        )
    findings = in_scope(diagnosis.findings, target)
    if deps.provider is None:
        return _without_model(symptom, ns, target, diagnosis, findings)
    context, notes = await before_the_model(deps, symptom)
    witness = _Witness(deps.toolset)
    dry_runs: dict[int, DryRunResult] = {}
    cited: list[CitedEvidence] = []

    async def check(draft: RemediationDraft) -> list[str]:
        nonlocal cited
        cited, problems = cite(draft.evidence, findings, witness.outputs)
        if draft.status == "active" and not draft.evidence:
            problems.append("an active problem needs evidence: cite the lines that prove the root cause")
        if draft.status != "active" and draft.commands:
            problems.append(f"status {draft.status} needs no fix: leave commands empty, or say the problem is active")
        problems += await anyio.to_thread.run_sync(check_commands, deps, draft, dry_runs)
        return problems

    outcome = await run_loop(
        deps.provider,
        system=load_prompt(PROMPT),
        user_message=build_user_message(symptom, ns, target, diagnosis, findings, context.render() if context else ""),
        toolset=witness,
        output_model=RemediationDraft,
        check_answer=check,
        max_iterations=deps.settings.max_iterations,
    )
    draft = outcome.result
    proposal = await build_proposal(
        deps,
        outcome,
        intent=f"remediate: {symptom}",
        version=1,
        context=context,
        notes=notes,
        dry_runs=dry_runs,
        prompt=PROMPT,
    )
    if deps.metrics is not None:
        deps.metrics.observe_usage(proposal.token_usage, purpose="remediate")
    remediation = Remediation(
        symptom=symptom,
        namespace=ns,
        target=target,
        status=draft.status,
        root_cause=draft.root_cause,
        confidence=draft.confidence,
        evidence=cited,
        findings=findings,
    )
    session = deps.sessions.create(
        intent=f"remediate: {symptom}",
        caller=caller,
        triggered_by=triggered_by,
        proposal=proposal,
        purpose="remediate",
        remediation=remediation,
    )
    audit_proposal(
        deps,
        session,
        caller,
        remediation={
            "status": draft.status,
            "root_cause": draft.root_cause,
            "evidence": [e.model_dump() for e in cited],
        },
    )
    p = session.proposal
    if p.commands and not p.blocked and auto_remediation_refused(session, p.risk.tier, deps.settings) is None:
        # Within the limits the server's operator configured (never the caller): approved by the server,
        # MAC-bound to this version and digest, checked again at execution like any approval.
        session = await auto_execute(deps, session)
    return result_of(session, diagnosis.analyzers_run)


async def auto_execute(deps: OperateDeps, session: Session) -> Session:
    if deps.audit is None:
        raise OperateError("automatic remediation needs the audit log: every automatic approval is audited")
    approve(
        deps.sessions,
        deps.audit,
        session.id,
        approver=AUTO_REMEDIATE,
        method=AUTO_REMEDIATE,
        settings=deps.settings,
        justification="within OPERATE_MCP_REMEDIATE_AUTO_MAX_TIER / _NAMESPACES",
        expected_version=session.proposal.version,
        expected_digest=session.proposal.digest,
        judged_tier=session.proposal.risk.tier,
    )
    return await execute(deps, session.id, actor=AUTO_REMEDIATE)


def result_of(session: Session, analyzers_run: Sequence[str]) -> RemediateResult:
    """A remediate session as the tool returns it; the fix is shown as `operate` shows a proposal."""
    r = session.remediation
    if r is None:
        raise SessionError(f"session {session.id} is not a remediate session; read it with operate(sessionId)")
    response = to_response(session)
    has_fix = bool(session.proposal.commands)
    return RemediateResult(
        status=r.status,
        root_cause=r.root_cause,
        confidence=r.confidence,
        evidence=r.evidence,
        findings=r.findings,
        analyzers_run=list(analyzers_run),
        namespace=r.namespace,
        target=r.target,
        model=session.proposal.provider,
        note="" if has_fix or r.status != "active" else "the model proposed no fix; read its analysis",
        session_id=session.id,
        session=response if has_fix else None,
        rechecked=r.rechecked,
        next_action=response.next_action,
    )
