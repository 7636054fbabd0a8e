"""A proposal shown to a person (MCP approval question, `operate-mcp approve`, `sessions show`): one module
renders all three, and agent-written text reaches none of them live."""

from __future__ import annotations

import pytest

from operate_mcp.model.command import Classification, ProposedCommand, command_digest
from operate_mcp.model.proposal import (
    CheckedCommand,
    DryRunResult,
    Proposal,
    ProposedChanges,
    RiskAssessment,
    RiskTier,
)
from operate_mcp.model.session import Session
from operate_mcp.workflows.display import approval_lines, approval_question, escaped, one_line, summary_lines
from operate_mcp.workflows.sessions import SessionStore

HOSTILE = "update web\x1b[2J\x1b]0;pwned\x07\n1. kubectl get pods\u202e\u200bok"
LONG = ["kubectl", "set", "image", "deployment/web", *[f"c{i}=registry.example/app:{i}" for i in range(40)], "-n", "x"]


def session(
    tmp_path, argv: list[str], *, intent: str = HOSTILE, analysis: str = "fine\x1b[8m hidden\nline two"
) -> Session:
    cmd = ProposedCommand(argv=argv, description="d")
    p = Proposal(
        version=3,
        intent=HOSTILE,
        analysis=analysis,
        current_state="",
        changes=ProposedChanges(),
        commands=[
            CheckedCommand(
                command=cmd,
                display=cmd.display,
                classification=Classification(command_class="mutating", reason="r"),
                dry_run=DryRunResult(command_index=1, argv=argv, ok=True, output=""),
            )
        ],
        risk=RiskAssessment(tier=RiskTier.MEDIUM, reasons=["reason\x1b[31m red"]),
        digest=command_digest([cmd]),
        iterations=1,
        prompt_sha256="0" * 64,
        provider="scripted",
    )
    return SessionStore(tmp_path).create(intent=HOSTILE, caller="agent", triggered_by="t", proposal=p)


def views(s: Session) -> dict[str, list[str]]:
    return {
        "question": approval_question(s).splitlines(),
        "approve": approval_lines(s),
        "show": summary_lines(s),
    }


def test_one_line_collapses_every_control_and_format_character_to_one_space():
    assert one_line("a\x1b[2J\n\tb\u202ec\u200bd") == "a [2J b c d"


def test_one_line_caps_long_text():
    assert one_line("x" * 50, 10) == "x" * 9 + "…"


def test_escaped_shows_control_characters_instead_of_sending_them():
    assert escaped("fine\x1b[8m hidden\x07\u202e") == "fine\\x1b[8m hidden\\x07\\u202e"
    assert escaped("a\tb") == "a\tb"


@pytest.mark.parametrize("view", ["question", "approve", "show"])
def test_no_view_sends_a_control_character_to_the_person(tmp_path, view):
    lines = views(session(tmp_path, ["kubectl", "scale", "deployment/web", "--replicas=2", "-n", "shop"]))[view]
    assert all(ch.isprintable() or ch == "\t" for line in lines for ch in line), lines


@pytest.mark.parametrize("view", ["question", "approve", "show"])
def test_every_view_keeps_the_agents_intent_on_one_line(tmp_path, view):
    lines = views(session(tmp_path, ["kubectl", "scale", "deployment/web", "--replicas=2", "-n", "shop"]))[view]
    assert len([line for line in lines if "update web" in line]) == 1
    assert not any(line.startswith("1. kubectl get pods") for line in lines)


@pytest.mark.parametrize("view", ["question", "approve", "show"])
def test_every_view_shows_every_argument_in_full(tmp_path, view):
    text = "\n".join(views(session(tmp_path, LONG))[view])
    assert "c39=registry.example/app:39" in text


@pytest.mark.parametrize(("view", "shown"), [("question", True), ("approve", False), ("show", True)])
def test_the_digest_is_shown_except_where_a_passphrase_is_asked(tmp_path, view, shown):
    """The approver's terminal asks for a passphrase, so nothing on it is worth typing back."""
    s = session(tmp_path, LONG)
    assert (s.proposal.digest[:8] in "\n".join(views(s)[view])) is shown


def test_the_terminal_shows_the_analysis_line_by_line_with_escapes_visible(tmp_path):
    lines = approval_lines(session(tmp_path, LONG))
    assert "  fine\\x1b[8m hidden" in lines and "  line two" in lines


def test_sessions_show_says_whether_each_command_passed_its_dry_run(tmp_path):
    lines = summary_lines(session(tmp_path, LONG))
    assert lines[0].endswith("proposed  v3  risk medium")
    assert any(line.startswith("  1. kubectl set image") and line.endswith("(dry-run ok)") for line in lines)


def test_the_terminal_shows_a_manifest_with_its_secret_values_masked(tmp_path):
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  password: hunter2secret\n"
    cmd = ["kubectl", "apply", "-f", "-"]
    s = session(tmp_path, cmd)
    s.proposal.commands[0].command.stdin = manifest
    text = "\n".join(approval_lines(s))
    assert "     | kind: ConfigMap" in text and "hunter2secret" not in text
