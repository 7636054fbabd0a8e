"""The execution record: one finished (or running) execution as a queryable, self-contained data point.

A record is written once per execution from its session and never depends on the session file
again: outputs are redacted and capped here, so the store, exports and alerts never see secrets.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, field_validator

from operate_mcp.errors import OperateError
from operate_mcp.model.command import shell_quote
from operate_mcp.model.observation import Category, LogAnalysis, Snapshot
from operate_mcp.redact import redact, redact_text  # structured: Secret JSON/YAML, URL and argv credentials

if TYPE_CHECKING:
    pass

RECORD_ID = re.compile(r"^run-\d{13}-[0-9a-f]{8}$")
OUTPUT_CAP_CHARS = 8_000
ERROR_CAP_CHARS = 500


class RecordError(OperateError):
    """A record is missing, malformed, or cannot be built from the session given."""


class RecordNotFound(RecordError):
    """No record with that id; the message says how to find one."""


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIAL = "partial"  # some commands or checks failed, others went through
    ROLLED_BACK = "rolled_back"  # a rollback execution that ran cleanly
    INTERRUPTED = "interrupted"  # the executor died mid-way


FAILURE_STATUSES = frozenset({RunStatus.FAILED, RunStatus.PARTIAL, RunStatus.INTERRUPTED})


class ArtifactRef(BaseModel):
    """A pattern or policy used, with the hash of its content at the time, so a replay can tell it changed."""

    id: str
    sha256: str | None = None


class CommandRecord(BaseModel):
    index: int
    argv: list[str]
    exit_code: int
    duration_seconds: float
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    dry_run_ok: bool | None = None  # the analysis-time server dry-run of this exact command

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


class OutcomeCheck(BaseModel):
    name: str
    ok: bool
    detail: str = ""


class TokenCounts(BaseModel):
    input: int = 0
    output: int = 0
    cache_write: int = 0
    cache_read: int = 0


class ExecutionRecord(BaseModel):
    """Who asked for what, what ran, what came out; `namespaces`/`resources`/`tags` feed search qualifiers."""

    id: str = Field(pattern=RECORD_ID.pattern)
    started_at: datetime
    finished_at: datetime | None = None
    triggered_by: str = Field(min_length=1, description="cli | mcp:<client name> | api | scheduler")
    caller: str
    intent: str
    purpose: str = "operate"  # operate | rollback | replay | remediate
    params: dict[str, Any] = Field(default_factory=dict)
    parent_id: str | None = None  # the run or session this one retries, replays or rolls back
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    session_id: str | None = None
    proposal_version: int | None = None
    prompt_sha256: str | None = None
    patterns: list[ArtifactRef] = Field(default_factory=list)
    policies: list[ArtifactRef] = Field(default_factory=list)
    category: Category = "other"  # set in code from the commands (records/category.py)
    before: Snapshot | None = None  # the touched workloads, pods, events, usage and logs before the commands ran
    after: Snapshot | None = None  # ... and after validation
    commands: list[CommandRecord] = Field(default_factory=list)
    outcome_checks: list[OutcomeCheck] = Field(default_factory=list)
    log_excerpts: list[str] = Field(default_factory=list)
    log_analysis: list[LogAnalysis] = Field(default_factory=list)
    anomalies: list[str] = Field(default_factory=list)  # ids of the anomalies found in this run
    status: RunStatus
    duration_seconds: float = Field(default=0.0, ge=0)
    token_usage: TokenCounts = Field(default_factory=TokenCounts)
    namespaces: list[str] = Field(default_factory=list)
    resources: list[str] = Field(default_factory=list, description="kind/name, kind lower-case")
    failed_step: str | None = None
    error: str | None = None

    @field_validator("started_at", "finished_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        """Naive timestamps are taken as UTC, so ordering and date qualifiers never depend on the host's zone."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @field_validator("before", "after", mode="before")
    @classmethod
    def _snapshot(cls, value: Any) -> Any:
        """Records written before observation kept an empty list here: nothing was captured."""
        return None if value == [] else value

    @field_validator("tags", "namespaces", "resources")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(v for v in values if v))


def new_record_id(at: datetime | None = None) -> str:
    """`run-<epoch ms>-<8 hex>`: sorts by start time, unique without coordination."""
    ms = int(at.timestamp() * 1000) if at is not None else int(time.time() * 1000)
    return f"run-{ms:013d}-{uuid.uuid4().hex[:8]}"


def cap_text(text: str, limit: int = OUTPUT_CAP_CHARS) -> str:
    """Redact first (a cut must never split a secret past its pattern), then keep head and tail."""
    text = redact_text(text)
    if len(text) <= limit:
        return text
    head = limit // 4
    tail = limit - head
    return f"{text[:head]}\n… [{len(text) - limit} characters cut] …\n{text[-tail:]}"


def one_line(text: str, limit: int = ERROR_CAP_CHARS) -> str:
    lines = [line.strip() for line in redact_text(text).splitlines() if line.strip()]
    joined = lines[-1] if lines else ""
    return joined if len(joined) <= limit else joined[: limit - 1] + "…"


def step_name(argv: list[str]) -> str:
    """A failing step as people grep for it: the command line without manifests, redacted, capped."""
    shown = redact_text(shell_quote([str(a) for a in redact(list(argv))]))
    return shown if len(shown) <= 200 else shown[:199] + "…"
