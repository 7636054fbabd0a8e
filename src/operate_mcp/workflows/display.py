"""A proposal shown to a person, as plain lines: the MCP approval question, `operate-mcp approve`, and
`operate-mcp sessions show` all render here, and the faces only print the lines.

Everything the agent wrote (intent, analysis, risk reasons, commands, manifests) is made inert by one
rule: a character that is not printable (controls, escape sequences, newlines, bidi and other format
characters) can neither recolour, hide or rewrite what the person reads, nor draw a fake command
list or digest. On one line such characters collapse to a space; kept line by line they become
visible `\\x..` escapes.
"""

from __future__ import annotations

import hashlib
from collections import Counter

from operate_mcp.errors import CommandRejected
from operate_mcp.kube.manifests import describe_objects, parse_manifests
from operate_mcp.model.finding import SEVERITIES, Finding
from operate_mcp.model.session import Session
from operate_mcp.redact import redact_manifest, redact_text
from operate_mcp.workflows.diagnose import Diagnosis

MANIFEST_LINES_SHOWN = 60  # in the approval question; the terminal shows every line
MANIFEST_LINE_WIDTH = 500
AGENT_TEXT_SHOWN = 300  # intent in the approval question, which the client shows in a dialog


def one_line(text: str, limit: int | None = None) -> str:
    """Agent text on one line: every non-printable character a space, runs of space collapsed, capped."""
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return flat if limit is None or len(flat) <= limit else flat[: limit - 1] + "…"


def escaped(text: str) -> str:
    """Agent text kept as written except that non-printable characters (tabs aside) show as escapes."""
    return "".join(ch if ch.isprintable() or ch == "\t" else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def manifest_objects(stdin: str) -> list[str]:
    """Every object a manifest holds (kind namespace/name), or why it cannot be read."""
    try:
        return describe_objects(parse_manifests(stdin))
    except CommandRejected as exc:
        return [f"UNREADABLE MANIFEST: {one_line(str(exc), AGENT_TEXT_SHOWN)}"]


def approval_question(session: Session) -> str:
    """The MCP elicitation: commands (every argument, in full: they run as shown), the objects of every
    manifest and the digest first; agent-written text after them, on one line each; manifest text last.
    Deterministic, because the resolver may run again."""
    p = session.proposal
    lines = [
        f"Approve {session.purpose} session {session.id} (v{p.version}), risk {p.risk.tier.value}.",
        "These commands will run exactly as shown, no shell:",
    ]
    for i, c in enumerate(p.commands, 1):
        lines.append(f"{i}. {one_line(c.display)}")
        if c.command.stdin:
            lines += [f"   object: {o}" for o in manifest_objects(c.command.stdin)]
    lines.append(f"Digest: sha256:{p.digest}")
    lines.append(f"Risk reasons: {one_line('; '.join(p.risk.reasons), 1000)}")
    lines.append(f"Intent (written by the agent, {one_line(session.caller)}): {one_line(p.intent, AGENT_TEXT_SHOWN)}")
    for i, c in enumerate(p.commands, 1):
        if c.command.stdin:
            manifest = redact_manifest(c.command.stdin).splitlines()
            shown = manifest[:MANIFEST_LINES_SHOWN]
            more = len(manifest) - len(shown)
            lines.append(f"Manifest of command {i}:")
            lines += [f"   | {escaped(line)[:MANIFEST_LINE_WIDTH]}" for line in shown]
            stdin_sha = hashlib.sha256(c.command.stdin.encode()).hexdigest()
            prefix = f"   ({more} more line(s); " if more else "   ("
            lines.append(f"{prefix}stdin sha256:{stdin_sha[:16]}…)")
    return "\n".join(lines)


def approval_lines(session: Session) -> list[str]:
    """What `operate-mcp approve` shows before it asks for the passphrase: what the signature will cover
    (session, version, tier, each command and its manifest), and why. Not the digest: a person checks
    commands, and nothing on this screen should be worth typing back."""
    p = session.proposal
    lines = [f"session {session.id}  version {p.version}  risk {p.risk.tier.value}"]
    lines += [f"  risk: {one_line(reason)}" for reason in p.risk.reasons]
    lines.append(f"intent: {one_line(p.intent)}")
    lines += ["analysis:", *_analysis(session)]
    lines.append("commands (exactly these run, in this order):")
    for i, c in enumerate(p.commands, 1):
        lines.append(f"  {i}. {escaped(c.display)}")
        if c.command.stdin:
            lines += [f"     | {escaped(line)}" for line in redact_text(c.command.stdin).splitlines()]
    return lines


def summary_lines(session: Session) -> list[str]:
    """`operate-mcp sessions show`: status, intent, analysis, each command with its dry-run, the digest."""
    p = session.proposal
    lines = [
        f"{session.id}  {session.status.value}  v{p.version}  risk {p.risk.tier.value}",
        f"intent: {one_line(p.intent)}",
        "analysis:",
        *_analysis(session),
    ]
    for i, c in enumerate(p.commands, 1):
        dry = "dry-run ok" if c.dry_run and c.dry_run.ok else "dry-run FAILED" if c.dry_run else "not dry-run"
        lines.append(f"  {i}. {one_line(c.display)}  ({dry})")
    lines.append(f"digest: {p.digest}")
    return lines


def _analysis(session: Session) -> list[str]:
    return [f"  {escaped(line)}" for line in session.proposal.analysis.splitlines()]


def finding_lines(f: Finding) -> list[str]:
    """A finding and its evidence, one line each. Evidence is the cluster's text (event messages, log
    lines an application wrote): shown escaped, so a log line cannot redraw the terminal."""
    lines = [f"{f.severity.upper():<8} {escaped(f.subject)}: {escaped(f.problem)}"]
    lines += [f"         [{e.source}] {escaped(e.text)}" for e in f.evidence]
    return lines


def diagnosis_lines(d: Diagnosis) -> list[str]:
    counts = Counter(f.severity for f in d.findings)
    tally = ", ".join(f"{counts[s]} {s}" for s in SEVERITIES if counts[s])
    lines = [
        f"diagnosis of {d.scope}: {len(d.findings)} finding{'s' if len(d.findings) != 1 else ''}"
        + (f" ({tally})" if tally else "")
        + f" in {d.duration_s:.2f}s; analyzers: {', '.join(d.analyzers_run) or 'none'}"
    ]
    for f in d.findings:
        lines += ["", *finding_lines(f)]
    if d.not_read or d.skipped:
        lines.append("")
    lines += [f"not read: {escaped(why)}" for why in d.not_read]
    lines += [f"skipped: {escaped(why)}" for why in d.skipped]
    return lines
