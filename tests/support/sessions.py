"""Sessions made by hand for tests that need no cluster: local settings, proposals of given commands and tier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from operate_mcp.config import Settings
from operate_mcp.model.command import Classification, ProposedCommand, command_digest
from operate_mcp.model.proposal import CheckedCommand, Proposal, ProposedChanges, RiskAssessment, RiskTier
from operate_mcp.model.session import Session
from operate_mcp.workflows.sessions import SessionStore


def local_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """A private data dir, approver registry and server approval key (outside the data dir), no knowledge."""
    overrides.setdefault("knowledge_enabled", False)
    return Settings(
        data_dir=tmp_path / "data",
        approvers_dir=tmp_path / "config" / "approvers",
        approval_key_file=tmp_path / "config" / "approval.key",
        **overrides,
    )


def proposal_of(
    argvs: list[list[str]], tier: RiskTier, *, version: int = 1, intent: str = "update web", reason: str = "r"
) -> Proposal:
    """A proposal of these commands at this tier, as if analysed (classified mutating, not dry-run)."""
    cmds = [ProposedCommand(argv=a, description="d") for a in argvs]
    return Proposal(
        version=version,
        intent=intent,
        analysis="a",
        current_state="",
        changes=ProposedChanges(),
        commands=[
            CheckedCommand(
                command=c, display=c.display, classification=Classification(command_class="mutating", reason="r")
            )
            for c in cmds
        ],
        risk=RiskAssessment(tier=tier, reasons=[reason]),
        digest=command_digest(cmds),
        iterations=1,
        prompt_sha256="0" * 64,
        provider="scripted",
    )


def new_session(store: SessionStore, argvs: list[list[str]], tier: RiskTier, *, intent: str = "update web") -> Session:
    proposal = proposal_of(argvs, tier, intent=intent)
    return store.create(intent=intent, caller="agent", triggered_by="test", proposal=proposal)
