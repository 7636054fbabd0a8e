"""A finding: one problem an analyzer saw on one object, with the evidence a person can check line by line.

Its JSON is a stable format (`operate-mcp diagnose --format json`, issue #11):
`{"kind", "name", "namespace", "problem", "severity", "evidence": [{"source", "text"}]}`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Severity = Literal["critical", "error", "warning", "info"]
EvidenceSource = Literal["event", "status", "spec", "log", "related-object"]

SEVERITIES: tuple[Severity, ...] = ("critical", "error", "warning", "info")  # worst first
# What makes `diagnose` exit 1; post-execution validation is stricter (anything above info fails it).
FAILING: frozenset[Severity] = frozenset({"critical", "error"})


def show(value: object) -> str:
    """A field value as kubectl users read it: strings bare, everything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


class Evidence(BaseModel):
    """One line that proves a finding: where it was read (`source`) and the exact text read there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: EvidenceSource
    text: str

    @classmethod
    def status(cls, path: str, value: object) -> Evidence:
        """A status field and its value, e.g. `status.containerStatuses[app].restartCount: 7`."""
        return cls(source="status", text=f"{path}: {show(value)}")

    @classmethod
    def spec(cls, path: str, value: object) -> Evidence:
        return cls(source="spec", text=f"{path}: {show(value)}")

    @classmethod
    def related(cls, kind: str, name: str, text: str) -> Evidence:
        """What another object shows, e.g. a crash-looping pod cited by its Deployment."""
        return cls(source="related-object", text=f"{kind}/{name}: {text}")


class Finding(BaseModel):
    """One object, one problem, its severity and the evidence for it."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    name: str
    namespace: str | None = None
    problem: str
    severity: Severity
    evidence: list[Evidence]

    @classmethod
    def of(
        cls, obj: Mapping[str, Any], *, problem: str, severity: Severity, evidence: Sequence[Evidence] = ()
    ) -> Finding:
        """A finding about a Kubernetes object as the API server returns it (kind and metadata read from it)."""
        meta = obj.get("metadata") or {}
        return cls(
            kind=str(obj.get("kind") or "Object"),
            name=str(meta.get("name") or ""),
            namespace=meta.get("namespace"),
            problem=problem,
            severity=severity,
            evidence=list(evidence),
        )

    @property
    def failing(self) -> bool:
        return self.severity in FAILING

    @property
    def subject(self) -> str:
        """`Pod/web-1 in shop`: how the object is named to a person."""
        return f"{self.kind}/{self.name}" + (f" in {self.namespace}" if self.namespace else "")
