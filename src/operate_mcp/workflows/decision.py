"""The decision record: recommendation -> approval(s) -> execution -> validation, for people and parsers.

Markdown with YAML front matter, one file per session, rewritten whenever the session ends.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from operate_mcp.fileio import atomic_write
from operate_mcp.model.session import Session
from operate_mcp.redact import redact, redact_text


def decision_path(data_dir: Path, session_id: str) -> Path:
    return data_dir / "decisions" / f"{session_id}.md"


def _argv(argv: list[str]) -> list[str]:
    """The argv as recorded: secret values (DB_PASS=..., URL passwords, --token x) masked."""
    return [str(a) for a in redact(list(argv))]


def render(session: Session) -> str:
    p = session.proposal
    front = {
        "session_id": session.id,
        "purpose": session.purpose,
        "parent_session": session.parent_session,
        "intent": p.intent,
        "status": session.status.value,
        "risk_tier": p.risk.tier.value,
        "risk_reasons": p.risk.reasons,
        "version": p.version,
        "digest": p.digest,
        "requested_by": session.caller,
        "triggered_by": session.triggered_by,
        "created_at": session.created_at.isoformat(),
        "finished_at": session.finished_at.isoformat() if session.finished_at else None,
        "approvals": [
            {"approver": a.approver, "at": a.at.isoformat(), "method": a.method, "justification": a.justification}
            for a in session.approvals
        ],
        "rejection": (
            {
                "by": session.rejection.approver,
                "at": session.rejection.at.isoformat(),
                "justification": session.rejection.justification,
            }
            if session.rejection
            else None
        ),
        "commands": [
            {"argv": _argv(o.argv), "exit_code": o.exit_code, "duration_seconds": round(o.duration_seconds, 3)}
            for o in session.outcomes
        ],
        "validation": (
            {
                "ok": session.validation.ok,
                "verdict": session.validation.model_verdict,
                "checks": [{"name": c.name, "ok": c.ok} for c in session.validation.checks],
            }
            if session.validation
            else None
        ),
    }
    lines = ["---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", "", f"# Decision: {p.intent}", ""]
    lines += [
        "## Recommendation",
        "",
        p.analysis,
        "",
        f"Risk: **{p.risk.tier.value}** — {'; '.join(p.risk.reasons)}",
        "",
    ]
    lines += [f"{i}. `{redact_text(c.display)}`" for i, c in enumerate(p.commands, 1)]
    lines += ["", "## Approval", ""]
    if session.approvals:
        lines += [
            f"- {a.approver} via {a.method} at {a.at:%Y-%m-%d %H:%M:%S} UTC"
            + (f": {a.justification}" if a.justification else "")
            for a in session.approvals
        ]
    else:
        lines.append("- none")
    if session.rejection:
        lines.append(f"- rejected by {session.rejection.approver}: {session.rejection.justification}")
    lines += ["", "## Execution", ""]
    lines += [
        f"- `{' '.join(_argv(o.argv))}` → exit {o.exit_code} in {o.duration_seconds:.2f}s" for o in session.outcomes
    ]
    if not session.outcomes:
        lines.append("- not executed")
    lines += ["", "## Validation", ""]
    if session.validation:
        lines += [f"- {'ok' if c.ok else 'FAILED'}: {c.name}" for c in session.validation.checks]
        if session.validation.model_verdict:
            lines.append(f"- model: {session.validation.model_verdict} — {session.validation.model_summary}")
    else:
        lines.append("- none")
    lines += ["", f"Final status: **{session.status.value}**", ""]
    return "\n".join(lines)


def write_decision_record(data_dir: Path, session: Session) -> Path:
    path = decision_path(data_dir, session.id)
    atomic_write(path, render(session))
    return path
