"""Execution metrics over a time window: counts, success rate, durations, per intent, the steps that fail most.

Definitions, so the numbers mean the same thing everywhere they are shown:
* succeeded = status succeeded; failed = failed + partial + interrupted (a failed rollback is a failure);
  rolled_back = rollback executions that ran cleanly; running runs count in `total` and `by_status` only.
* success_rate = succeeded / (succeeded + failed); clean rollbacks are remedies, counted in neither.
* durations cover finished runs; p95 is the nearest-rank percentile (the ceil(0.95 n)-th smallest value).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from pydantic import BaseModel, Field

from operate_mcp.records.models import FAILURE_STATUSES, RunStatus
from operate_mcp.records.store import RecordStore

TOP_STEPS = 10


class IntentMetrics(BaseModel):
    intent: str
    total: int
    succeeded: int
    failed: int
    rolled_back: int
    success_rate: float | None
    avg_duration_seconds: float | None
    p95_duration_seconds: float | None


class StepFailures(BaseModel):
    step: str
    failures: int


class Metrics(BaseModel):
    start: datetime | None
    end: datetime | None
    total: int
    succeeded: int
    failed: int
    rolled_back: int
    by_status: dict[str, int]
    success_rate: float | None
    avg_duration_seconds: float | None
    p95_duration_seconds: float | None
    by_intent: list[IntentMetrics] = Field(default_factory=list)
    failing_steps: list[StepFailures] = Field(default_factory=list)


def p95(values: list[float]) -> float | None:
    """Nearest-rank 95th percentile: a value that actually occurred, no interpolation."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


@dataclass
class _Tally:
    total: int = 0
    statuses: Counter[RunStatus] = field(default_factory=Counter)
    durations: list[float] = field(default_factory=list)

    def add(self, status: RunStatus, duration: float, finished: bool) -> None:
        self.total += 1
        self.statuses[status] += 1
        if finished and status is not RunStatus.RUNNING:
            self.durations.append(duration)

    @property
    def succeeded(self) -> int:
        return self.statuses[RunStatus.SUCCEEDED]

    @property
    def failed(self) -> int:
        return sum(self.statuses[s] for s in FAILURE_STATUSES)

    @property
    def rolled_back(self) -> int:
        return self.statuses[RunStatus.ROLLED_BACK]

    @property
    def success_rate(self) -> float | None:
        decided = self.succeeded + self.failed
        return self.succeeded / decided if decided else None

    @property
    def avg(self) -> float | None:
        return sum(self.durations) / len(self.durations) if self.durations else None


def _instant(value: date | datetime | None, *, end: bool) -> datetime | None:
    """A date means the whole UTC day: as a start its midnight, as an end the midnight after (inclusive)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, time(), tzinfo=UTC)


def _intent_key(intent: str) -> str:
    return " ".join(intent.lower().split())


def compute_metrics(
    store: RecordStore,
    *,
    start: date | datetime | None = None,
    end: date | datetime | None = None,
    by_intent: bool = False,
) -> Metrics:
    """Metrics of runs that started in [start, end); intents are grouped case- and whitespace-insensitively."""
    lo, hi = _instant(start, end=False), _instant(end, end=True)
    overall = _Tally()
    intents: dict[str, _Tally] = {}
    shown: dict[str, str] = {}  # group key -> the spelling seen first, for display
    steps: Counter[str] = Counter()
    for intent, status, duration, step, finished in store.metric_rows(lo, hi):
        overall.add(status, duration, finished)
        if by_intent:
            key = _intent_key(intent)
            shown.setdefault(key, intent)
            intents.setdefault(key, _Tally()).add(status, duration, finished)
        if step and status in FAILURE_STATUSES:
            steps[step] += 1
    per_intent = [
        IntentMetrics(
            intent=shown[name],
            total=t.total,
            succeeded=t.succeeded,
            failed=t.failed,
            rolled_back=t.rolled_back,
            success_rate=t.success_rate,
            avg_duration_seconds=t.avg,
            p95_duration_seconds=p95(t.durations),
        )
        for name, t in sorted(intents.items(), key=lambda kv: (-kv[1].total, kv[0]))
    ]
    return Metrics(
        start=lo,
        end=hi,
        total=overall.total,
        succeeded=overall.succeeded,
        failed=overall.failed,
        rolled_back=overall.rolled_back,
        by_status={s.value: overall.statuses[s] for s in RunStatus if overall.statuses[s]},
        success_rate=overall.success_rate,
        avg_duration_seconds=overall.avg,
        p95_duration_seconds=p95(overall.durations),
        by_intent=per_intent,
        failing_steps=[
            StepFailures(step=s, failures=n) for s, n in sorted(steps.items(), key=lambda kv: (-kv[1], kv[0]))
        ][:TOP_STEPS],
    )
