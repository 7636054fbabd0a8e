"""Replay: rebuild a past operation from the verified audit log only, as a new session needing approval again.

Sessions and records are convenient but editable; the audit log is the hash-chained,
signed source, so a replay refuses to run from a log that does not verify.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, Field

from operate_mcp.audit.log import AuditEntry, AuditLog, audit_log_for
from operate_mcp.audit.verify import verify
from operate_mcp.errors import OperateError
from operate_mcp.kube.classifier import parse_kubectl
from operate_mcp.kube.manifests import ManifestError, parse_manifests
from operate_mcp.model.command import ProposedCommand, command_digest
from operate_mcp.model.session import Session, check_session_id
from operate_mcp.prompts import prompt_sha256
from operate_mcp.redact import MASK
from operate_mcp.workflows.operate import PROMPT, OperateDeps, analyze, audit_proposal, fixed_proposal

OVERRIDABLE = {"intent", "namespace"}
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class ReplayError(OperateError):
    """The replay cannot be built; the message says why."""


class ReplayPlan(BaseModel):
    original_session: str
    intent: str
    commands: list[ProposedCommand]
    recorded_prompt_sha256: str | None
    warnings: list[str] = Field(default_factory=list)
    overrides: dict[str, str] = Field(default_factory=dict)


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in OVERRIDABLE:
            raise ReplayError(f"override {pair!r}: use key=value with key one of {', '.join(sorted(OVERRIDABLE))}")
        if key == "namespace" and not _NAMESPACE.match(value):
            raise ReplayError(f"override namespace={value!r} is not a valid namespace name")
        out[key] = value
    return out


def _retarget(cmd: ProposedCommand, namespace: str) -> ProposedCommand:
    """Point a command at another namespace, whichever way it spelled -n (or if it left it out)."""
    argv = list(cmd.argv)
    flags = [f for f in parse_kubectl(argv).flags if f.name == "namespace"]
    for flag in flags:
        if argv[flag.index] in ("-n", "--namespace"):
            argv[flag.index + 1] = namespace
        else:  # -nprod, -n=prod, --namespace=prod
            argv[flag.index] = f"--namespace={namespace}"
    if not flags:
        argv += ["-n", namespace]
    stdin = cmd.stdin
    if stdin is not None:
        stdin = _retarget_manifest(stdin, namespace)
    return ProposedCommand(argv=argv, stdin=stdin, description=cmd.description)


def _retarget_manifest(stdin: str, namespace: str) -> str:
    """Every object that names its namespace (list items too) moved to `namespace`; the rest follow -n.

    Read with the one manifest parser and written back as a JSON stream, which kubectl reads exactly
    as we do; a manifest we cannot read exactly is refused rather than half-retargeted.
    """
    try:
        objects = parse_manifests(stdin)
    except ManifestError as exc:
        raise ReplayError(
            f"cannot point the manifest at namespace {namespace}: {exc}. Replay without --override namespace=, "
            "or analyse the intent again in that namespace"
        ) from None
    if not any(o.namespace for o in objects):
        return stdin
    bodies = [
        {**o.body, "metadata": {**o.body["metadata"], "namespace": namespace}} if o.namespace else o.body
        for o in objects
    ]
    return "".join(json.dumps(b, indent=2) + "\n" for b in bodies)


def resolve_session_id(deps: OperateDeps, ref: str) -> str:
    """A replay starts from a session id (opr-...) or an execution record id (run-...)."""
    if ref.startswith("run-"):
        if deps.records is None:
            raise ReplayError("record ids need the record store; pass the session id (opr-...) instead")
        session_id: str | None = deps.records.get(ref).session_id
        if not session_id:
            raise ReplayError(f"record {ref} has no session to replay")
        return session_id
    return check_session_id(ref)


def plan_replay(deps: OperateDeps, ref: str, overrides: dict[str, str] | None = None) -> ReplayPlan:
    session_id = resolve_session_id(deps, ref)
    report = verify(deps.settings.data_dir, alert=True, witness=deps.settings.audit_witness_dir)
    if not report.ok:
        first = report.problems[0]
        raise ReplayError(
            f"the audit log does not verify ({first.kind}: {first.message}); replay only trusts a verified log. "
            "Run `operate-mcp audit verify` for details"
        )
    log: AuditLog = deps.audit if deps.audit is not None else audit_log_for(deps.settings)
    proposals: list[AuditEntry] = [e for e in log.entries() if e.session_id == session_id and e.kind == "proposal"]
    if not proposals:
        raise ReplayError(f"the audit log has no proposal for session {session_id}")
    data: dict[str, Any] = proposals[-1].data
    commands = [ProposedCommand.model_validate(c) for c in data.get("commands", [])]
    if any(MASK in (c.stdin or "") or any(MASK in a for a in c.argv) for c in commands):
        raise ReplayError(
            f"session {session_id} carried secret values, which the audit log never stores; it cannot be replayed "
            "from the log. Analyse the intent again instead"
        )
    if command_digest(commands) != data.get("digest"):
        raise ReplayError(f"the audited commands of {session_id} do not match their audited digest")
    overrides = overrides or {}
    warnings: list[str] = []
    recorded = data.get("prompt_sha256")
    if recorded and recorded != prompt_sha256(PROMPT):
        warnings.append(
            f"the system prompt changed since {session_id} was analysed "
            f"(sha256 {str(recorded)[:12]}… → {prompt_sha256(PROMPT)[:12]}…)"
        )
    if deps.knowledge is not None:
        for kind, key in (("pattern", "patterns_sha256"), ("policy", "policies_sha256")):
            then: dict[str, str] = data.get(key) or {}
            try:
                now = deps.knowledge.hashes(kind, list(then))  # type: ignore[arg-type]
            except OperateError:
                continue
            changed = sorted(i for i, h in then.items() if now.get(i) != h)
            if changed:
                warnings.append(
                    f"{key.split('_')[0]} changed or removed since the original analysis: {', '.join(changed)}"
                )
    if "namespace" in overrides:
        commands = [_retarget(c, overrides["namespace"]) for c in commands]
    refinements = data.get("refinements") or []
    intent = overrides.get("intent") or " ".join([str(data.get("intent", "")), *map(str, refinements)]).strip()
    return ReplayPlan(
        original_session=session_id,
        intent=intent,
        commands=commands,
        recorded_prompt_sha256=recorded,
        warnings=warnings,
        overrides=overrides,
    )


async def replay(
    deps: OperateDeps, plan: ReplayPlan, *, caller: str, triggered_by: str, fresh_context: bool = False
) -> Session:
    """A new session (purpose `replay`, parent = the original) that must be approved again."""
    if fresh_context:
        session = await analyze(deps, plan.intent, caller=caller, triggered_by=triggered_by)

        def mark(s: Session) -> None:
            s.parent_session = plan.original_session
            s.purpose = "replay"

        session = deps.sessions.transition(
            session.id,
            session.status,
            actor=caller,
            mutate=mark,
            note=f"replay of {plan.original_session} with fresh context",
        )
    else:
        proposal = await fixed_proposal(
            deps,
            plan.commands,
            intent=plan.intent,
            analysis=f"Replay of {plan.original_session}: the audited commands, dry-run again against the "
            "cluster as it is now.",
            risks=plan.warnings,
        )
        session = deps.sessions.create(
            intent=plan.intent,
            caller=caller,
            triggered_by=triggered_by,
            proposal=proposal,
            parent_session=plan.original_session,
            purpose="replay",
        )
    if deps.audit is not None:
        deps.audit.append(
            "replay",
            actor=caller,
            session_id=session.id,
            data={
                "original_session": plan.original_session,
                "warnings": plan.warnings,
                "overrides": plan.overrides,
                "fresh_context": fresh_context,
                "digest": session.proposal.digest,
            },
        )
        audit_proposal(deps, session, caller, replay_of=plan.original_session)
    return session
