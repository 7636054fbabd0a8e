"""The proposal: what the model answers (ProposalDraft) and what the server stores and shows (Proposal)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from operate_mcp.model.command import Classification, ProposedCommand
from operate_mcp.model.usage import TokenUsage


class ResourceChange(BaseModel):
    kind: str
    name: str
    namespace: str | None = None
    summary: str = ""


class ProposedChanges(BaseModel):
    create: list[ResourceChange] = Field(default_factory=list)
    update: list[ResourceChange] = Field(default_factory=list)
    delete: list[ResourceChange] = Field(default_factory=list)


class ProposalDraft(BaseModel):
    """The model's final answer, validated before anything else looks at it."""

    model_config = ConfigDict(extra="ignore")

    analysis: str
    current_state: str = ""
    changes: ProposedChanges = Field(default_factory=ProposedChanges)
    commands: list[ProposedCommand] = Field(default_factory=list)
    verification: list[ProposedCommand] = Field(default_factory=list)
    rollback_commands: list[ProposedCommand] = Field(default_factory=list)
    risks: list[str] = Field(default_factory=list)
    patterns_applied: list[str] = Field(default_factory=list)
    capabilities_used: list[str] = Field(default_factory=list)


class DryRunResult(BaseModel):
    """Our code's server-side dry-run of one proposed command, exactly as written."""

    command_index: int
    argv: list[str]
    ok: bool
    output: str
    error: str = ""


class RiskTier(StrEnum):
    TRIVIAL = "trivial"
    LOW = "low"
    MEDIUM = "medium"
    CRITICAL = "critical"


class RiskAssessment(BaseModel):
    tier: RiskTier
    reasons: list[str]


class PolicyCheck(BaseModel):
    policy_id: str
    name: str
    passed: bool
    effect: str = "block"
    message: str = ""


class ObservedObject(BaseModel):
    """An object a command will touch, as the analysis saw it: the basis of the drift check."""

    kind: str
    resource: str | None = None
    name: str
    namespace: str | None = None
    exists: bool
    resource_version: str | None = None
    generation: int | None = None
    replicas: int | None = None
    fingerprint: str | None = None  # of the object minus status and server-owned fields
    error: str | None = None


class KnowledgeRef(BaseModel):
    id: str
    kind: str
    name: str
    score: float


class CheckedCommand(BaseModel):
    command: ProposedCommand
    display: str
    classification: Classification
    dry_run: DryRunResult | None = None


class Proposal(BaseModel):
    version: int
    intent: str
    analysis: str
    current_state: str
    changes: ProposedChanges
    commands: list[CheckedCommand]
    verification: list[ProposedCommand] = Field(default_factory=list)
    rollback_commands: list[CheckedCommand] = Field(default_factory=list)
    risks: list[str] = Field(default_factory=list)
    risk: RiskAssessment
    patterns_applied: list[str] = Field(default_factory=list)
    policies_checked: list[PolicyCheck] = Field(default_factory=list)
    capabilities_used: list[str] = Field(default_factory=list)
    context_used: list[KnowledgeRef] = Field(default_factory=list)
    observed_objects: list[ObservedObject] = Field(default_factory=list)
    blocked: bool = False
    digest: str
    iterations: int
    token_usage: TokenUsage = Field(default_factory=TokenUsage)
    prompt_sha256: str
    patterns_sha256: dict[str, str] = Field(default_factory=dict)
    policies_sha256: dict[str, str] = Field(default_factory=dict)
    provider: str

    def block_reason(self) -> str:
        """Why the proposal cannot be approved: failing policies, or commands whose dry-run failed."""
        failed = [c.policy_id for c in self.policies_checked if not c.passed and c.effect == "block"]
        if failed:
            return f"blocked by policy {', '.join(failed)}"
        broken = [str(i) for i, c in enumerate(self.commands, 1) if c.dry_run is not None and not c.dry_run.ok]
        return f"blocked: command(s) {', '.join(broken)} failed their server-side dry-run" if broken else ""

    def command_list(self) -> list[ProposedCommand]:
        return [c.command for c in self.commands]
