"""Execution metrics over a time window and a search query: counts, success rate, durations, per category and
intent, and the steps that fail most (by verb and resource kind).

Definitions, so the numbers mean the same thing everywhere they are shown:
* succeeded = status succeeded; failed = failed + partial + interrupted (a failed rollback is a failure);
  rolled_back = rollback executions that ran cleanly; running runs count in `total` and `by_status` only.
* success_rate = succeeded / (succeeded + failed); clean rollbacks are remedies, counted in neither.
* durations cover finished runs; p95 is the nearest-rank percentile (the ceil(0.95 n)-th smallest value).
* a failing step is named by the failed command's verb and resource kind (`set image deployment`), or the
  validation check that failed (`check:rollout`), so the same step on other objects counts together.

Runs the retention has archived are gone from the records, but not from the daily aggregates: a window that
reaches before the latest retention cutoff is answered from those (`source: daily aggregates`), when the query
is one they can answer (category:, namespace:, status:). There p95 is the upper bound of the duration bucket
holding the nearest-rank value, and there is no per-intent breakdown.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from operate_mcp.records.models import FAILURE_STATUSES, RunStatus
from operate_mcp.records.query import And, Qualifier, compile_query, parse_query
from operate_mcp.records.store import NO_DURATION, RecordStore

TOP_STEPS = 10
AGGREGATE_QUALIFIERS = ("category", "namespace", "status")
Source = Literal["records", "daily aggregates"]


class IntentMetrics(BaseModel):
    intent: str
    total: int
    succeeded: int
    failed: int
    rolled_back: int
    success_rate: float | None
    avg_duration_seconds: float | None
    p95_duration_seconds: float | None


class CategoryMetrics(BaseModel):
    """The figures of one operation category (update, scale, ...; records/category.py)."""

    category: str
    total: int
    succeeded: int
    failed: int
    rolled_back: int
    success_rate: float | None
    avg_duration_seconds: float | None
    p95_duration_seconds: float | None


class StepFailures(BaseModel):
    step: str  # verb and resource kind (`scale deployment`), or `check:<name>`
    failures: int
    example: str | None = None  # the latest full failing step of the group, when read from the records


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
    query: str = ""
    source: Source = "records"
    by_category: list[CategoryMetrics] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


def p95(values: list[float]) -> float | None:
    """Nearest-rank 95th percentile: a value that actually occurred, no interpolation."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


@dataclass
class _Tally:
    statuses: Counter[RunStatus] = field(default_factory=Counter)
    durations: list[float] = field(default_factory=list)  # exact, from the records
    buckets: Counter[float] = field(default_factory=Counter)  # runs per bucket bound, from the aggregates
    bucket_sums: dict[float, float] = field(default_factory=dict)
    duration_sum: float = 0.0
    timed: int = 0

    def add(self, status: RunStatus, duration: float, finished: bool) -> None:
        self.statuses[status] += 1
        if finished and status is not RunStatus.RUNNING:
            self.durations.append(duration)
            self.duration_sum += duration
            self.timed += 1

    def add_bucket(self, status: RunStatus, le: float, runs: int, duration_sum: float) -> None:
        self.statuses[status] += runs
        if le != NO_DURATION:
            self.buckets[le] += runs
            self.bucket_sums[le] = self.bucket_sums.get(le, 0.0) + duration_sum
            self.duration_sum += duration_sum
            self.timed += runs

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

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
        return self.duration_sum / self.timed if self.timed else None

    @property
    def p95(self) -> float | None:
        if self.durations or not self.buckets:
            return p95(self.durations)
        rank, seen = math.ceil(0.95 * self.timed), 0
        for le in sorted(self.buckets):
            seen += self.buckets[le]
            if seen >= rank:  # the open last bucket has no bound: its mean instead
                return le if math.isfinite(le) else self.bucket_sums[le] / self.buckets[le]
        return None

    def figures(self) -> dict[str, int | float | None]:
        return {
            "total": self.total, "succeeded": self.succeeded, "failed": self.failed, "rolled_back": self.rolled_back,
            "success_rate": self.success_rate, "avg_duration_seconds": self.avg, "p95_duration_seconds": self.p95,
        }


def _instant(value: date | datetime | None, *, end: bool) -> datetime | None:
    """A date means the whole UTC day: as a start its midnight, as an end the midnight after (inclusive)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, time(), tzinfo=UTC)


def today(now: datetime | None = None) -> date:
    """The default metrics window: the current UTC day."""
    return (now or datetime.now(UTC)).astimezone(UTC).date()


def _intent_key(intent: str) -> str:
    return " ".join(intent.lower().split())


def aggregate_filter(query: str) -> dict[str, str] | None:
    """The query as daily-aggregate filters, or None when the aggregates cannot answer it: only an AND of
    category:, namespace: and status:, each at most once, without wildcards or negation."""
    tree = parse_query(query)
    if tree is None:
        return {}
    found: dict[str, str] = {}
    for item in tree.items if isinstance(tree, And) else (tree,):
        if not isinstance(item, Qualifier) or item.name not in AGGREGATE_QUALIFIERS or item.name in found:
            return None
        if "*" in item.value or not item.value:
            return None
        found[item.name] = item.value.lower()
    return found


def _steps(counts: Counter[str], examples: dict[str, str]) -> list[StepFailures]:
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_STEPS]
    return [StepFailures(step=s, failures=n, example=examples.get(s)) for s, n in ordered]


def _by_category(tallies: dict[str, _Tally]) -> list[CategoryMetrics]:
    ordered = sorted(tallies.items(), key=lambda kv: (-kv[1].total, kv[0]))
    return [CategoryMetrics.model_validate({"category": name, **t.figures()}) for name, t in ordered]


def compute_metrics(
    store: RecordStore,
    *,
    start: date | datetime | None = None,
    end: date | datetime | None = None,
    by_intent: bool = False,
    query: str = "",
) -> Metrics:
    """Metrics of the runs matching `query` that started in [start, end) (None: unbounded on that side).

    Intents are grouped case- and whitespace-insensitively. The faces default the window to `today()`.
    """
    compile_query(query)  # a bad query is a QuerySyntaxError, whichever source answers
    lo, hi = _instant(start, end=False), _instant(end, end=True)
    notes: list[str] = []
    pruned = store.pruned_before()
    if pruned is not None and (lo is None or lo < pruned):
        filters = aggregate_filter(query)
        if filters is not None:
            return _from_daily(store, lo, hi, filters, query=query, by_intent=by_intent, pruned=pruned)
        notes.append(
            f"runs that started before {pruned:%Y-%m-%d %H:%M} UTC were archived by retention and are not counted: "
            f"the daily aggregates answer only queries made of {', '.join(q + ':' for q in AGGREGATE_QUALIFIERS)} "
            "(each once, no wildcards)"
        )
    overall = _Tally()
    intents: dict[str, _Tally] = {}
    categories: dict[str, _Tally] = {}
    shown: dict[str, str] = {}  # intent group key -> the spelling seen first, for display
    steps: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for row in store.metric_rows(lo, hi, query=query):
        overall.add(row.status, row.duration_seconds, row.finished)
        categories.setdefault(row.category, _Tally()).add(row.status, row.duration_seconds, row.finished)
        if by_intent:
            key = _intent_key(row.intent)
            shown.setdefault(key, row.intent)
            intents.setdefault(key, _Tally()).add(row.status, row.duration_seconds, row.finished)
        if row.step_group and row.status in FAILURE_STATUSES:
            steps[row.step_group] += 1
            if row.failed_step:
                examples[row.step_group] = row.failed_step  # rows come oldest first: the latest wins
    per_intent = [
        IntentMetrics.model_validate({"intent": shown[name], **t.figures()})
        for name, t in sorted(intents.items(), key=lambda kv: (-kv[1].total, kv[0]))
    ]
    return _metrics(lo, hi, overall, query=query, source="records", by_intent=per_intent,
                    by_category=_by_category(categories), failing_steps=_steps(steps, examples), notes=notes)


def _metrics(lo: datetime | None, hi: datetime | None, overall: _Tally, **fields: object) -> Metrics:
    figures = overall.figures()
    return Metrics.model_validate({
        "start": lo, "end": hi,
        **{k: v for k, v in figures.items() if k not in ("avg_duration_seconds", "p95_duration_seconds")},
        "by_status": {s.value: overall.statuses[s] for s in RunStatus if overall.statuses[s]},
        "avg_duration_seconds": figures["avg_duration_seconds"],
        "p95_duration_seconds": figures["p95_duration_seconds"],
        **fields,
    })


def _from_daily(
    store: RecordStore, lo: datetime | None, hi: datetime | None, filters: dict[str, str], *, query: str,
    by_intent: bool, pruned: datetime,
) -> Metrics:
    """The same figures from the daily aggregates, over whole UTC days."""
    first = lo.date() if lo else None
    last = (hi - timedelta(microseconds=1)).date() if hi else None
    notes = [f"runs before {pruned:%Y-%m-%d %H:%M} UTC were archived by retention: these figures come from the "
             "daily aggregates; p95 is the upper bound of the duration bucket that holds it"]
    day_lo = _instant(first, end=False)
    day_hi = _instant(last, end=True)
    if (day_lo, day_hi) != (lo, hi):
        notes.append("the daily aggregates count whole UTC days: the window was widened to "
                     f"{first or 'the first day'} .. {last or 'today'}")
    if by_intent:
        notes.append("no per-intent figures: intents are in the records only")
    overall = _Tally()
    categories: dict[str, _Tally] = {}
    for f in store.daily_figures(first, last, **filters):
        overall.add_bucket(f.status, f.le, f.runs, f.duration_sum)
        categories.setdefault(f.category, _Tally()).add_bucket(f.status, f.le, f.runs, f.duration_sum)
    steps = Counter(dict(store.daily_steps(first, last, **filters)))
    return _metrics(day_lo, day_hi, overall, query=query, source="daily aggregates", by_intent=[],
                    by_category=_by_category(categories), failing_steps=_steps(steps, {}), notes=notes)
