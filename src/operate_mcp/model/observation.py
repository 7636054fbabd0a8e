"""What observation keeps of an execution: the cluster around it before and after (bounded, redacted),
what its logs say, and the anomalies found in it. Shared by the capture (observe/), the records store
(records/) and the anomaly rules, so a record, a rule and a query read the same fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Category = Literal[
    "update", "scale", "autoscale", "make-ha", "backup", "rollback", "restart", "delete", "remediate", "other"
]
CATEGORIES: tuple[Category, ...] = (
    "update", "scale", "autoscale", "make-ha", "backup", "rollback", "restart", "delete", "remediate", "other"
)
AnomalySeverity = Literal["P1", "P2", "P3"]


class ContainerImage(BaseModel):
    container: str
    image: str = ""
    image_id: str = ""


class PodState(BaseModel):
    """One pod of a touched workload at one moment."""

    model_config = ConfigDict(extra="forbid")

    name: str
    namespace: str
    owner: str = ""  # the workload it belongs to, kind/name (deployment/web)
    phase: str = ""
    ready: bool = False
    restarts: int = 0
    waiting_reason: str = ""  # CrashLoopBackOff, ImagePullBackOff, ...
    last_termination_reason: str = ""  # OOMKilled, Error, ...
    last_exit_code: int | None = None
    node: str = ""
    images: list[ContainerImage] = Field(default_factory=list)


class WorkloadState(BaseModel):
    """A touched workload at one moment (Deployment, StatefulSet, DaemonSet, ...)."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    name: str
    namespace: str
    exists: bool = True
    replicas: int | None = None
    ready: int | None = None
    available: int | None = None
    updated: int | None = None
    images: list[ContainerImage] = Field(default_factory=list)


class Usage(BaseModel):
    """CPU and memory of one pod from the metrics API, with its memory limit when it has one."""

    pod: str
    namespace: str
    cpu_millicores: float = 0.0
    memory_bytes: int = 0
    memory_limit_bytes: int | None = None

    @property
    def memory_percent(self) -> float | None:
        if not self.memory_limit_bytes:
            return None
        return 100.0 * self.memory_bytes / self.memory_limit_bytes


class ContainerLog(BaseModel):
    """The last lines of one container's log (the previous instance's with `previous`), redacted."""

    pod: str
    namespace: str
    container: str
    previous: bool = False
    lines: list[str] = Field(default_factory=list)


class Snapshot(BaseModel):
    """The cluster around an execution at one moment: bounded, redacted, self-contained."""

    model_config = ConfigDict(extra="forbid")

    at: datetime
    workloads: list[WorkloadState] = Field(default_factory=list)
    pods: list[PodState] = Field(default_factory=list)
    events: list[str] = Field(default_factory=list)  # "Warning BackOff (x3) Pod/web-1: Back-off restarting ..."
    usage: list[Usage] = Field(default_factory=list)
    logs: list[ContainerLog] = Field(default_factory=list)
    cluster_version: str = ""
    client_version: str = ""
    read_seconds: float = 0.0
    errors: list[str] = Field(default_factory=list)  # what could not be read


class TemplateCount(BaseModel):
    """An error-line template mined from logs (drain3), how often it occurred, and whether it is new."""

    template: str
    count: int
    new: bool = False


class LogAnalysis(BaseModel):
    """What one container's captured log says: levels, errors, stack traces, rate, stalls, templates."""

    model_config = ConfigDict(extra="forbid")

    pod: str
    namespace: str
    container: str
    previous: bool = False
    format: str = "plain"  # json | klog | python | go | java | node | plain
    lines: int = 0
    levels: dict[str, int] = Field(default_factory=dict)  # debug/info/warning/error/fatal -> count
    errors: int = 0
    first_error: str | None = None
    stack_traces: list[str] = Field(default_factory=list)  # each whole, lines joined by "\n"
    lines_per_second: float | None = None
    stalls: list[float] = Field(default_factory=list)  # gaps in seconds longer than the stall threshold
    collapsed: list[str] = Field(default_factory=list)  # the log with repeats collapsed: "line (x12)"
    templates: list[TemplateCount] = Field(default_factory=list)


class Anomaly(BaseModel):
    """Something about a run that does not match what was expected, with the evidence for it."""

    model_config = ConfigDict(extra="forbid")

    id: str
    run_id: str
    rule: str
    severity: AnomalySeverity
    detected_at: datetime
    category: Category = "other"
    namespace: str = ""
    target: str = ""  # kind/name
    expected: str
    actual: str
    evidence: list[str] = Field(default_factory=list)
    suggested_action: str = ""
    similar_runs: list[str] = Field(default_factory=list)
    late: bool = False  # found by `watch` after the execution ended
