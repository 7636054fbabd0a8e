"""A remediation: the diagnosis of a symptom (status, root cause, the evidence that proves it) kept with
the session of its fix, and after execution whether each finding it addressed is gone."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from operate_mcp.model.finding import EvidenceSource, Finding
from operate_mcp.model.proposal import ProposalDraft

DiagnosisStatus = Literal["active", "resolved", "not_found"]
Confidence = Literal["high", "medium", "low"]


class CitedEvidence(BaseModel):
    """One line the diagnosis rests on, and where code found it: an analyzer's finding or a tool's output."""

    model_config = ConfigDict(extra="forbid")

    source: EvidenceSource | Literal["tool"]
    text: str
    origin: str = Field(default="", description="'analyzer' or 'tool:<name>': where our code found this text")


class RemediationDraft(ProposalDraft):
    """The model's answer to `remediate`: the diagnosis, and a fix in the shape of an operate proposal."""

    status: DiagnosisStatus
    root_cause: str
    confidence: Confidence
    evidence: list[CitedEvidence] = Field(default_factory=list)


class FindingCheck(BaseModel):
    """After the fix ran: is the finding gone? `now` is what the analyzers say of that object today."""

    subject: str
    problem: str
    gone: bool
    now: list[str] = Field(default_factory=list)


class Remediation(BaseModel):
    """What `remediate` concluded, kept with the fix's session so execution can check it."""

    symptom: str
    namespace: str
    target: str | None = None
    status: DiagnosisStatus
    root_cause: str
    confidence: Confidence
    evidence: list[CitedEvidence] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    rechecked: list[FindingCheck] = Field(default_factory=list)
